"""Risk re-check of a saved plan at apply time: the same checks, the limits and world of now."""

from __future__ import annotations

import dataclasses

import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.decide.planner import build_plan
from reconciler.decide.risk import RiskContext, recheck_plan

ACCOUNT = "DU0000001"


def book() -> Book:
    return Book(ACCOUNT, cash=100_000.0).hold("VTI", 100, price=100.0).instrument("BND", 50.0)


def saved_plan(b: Book, **limit_changes):
    desired = desired_of(portfolio(target("VTI", weight=0.2), target("BND", weight=0.5)))
    return build_plan(
        desired,
        actual_of(b),
        b.resolved(),
        {"default": limits(**limit_changes)},
        now=NOW,
        plan_id="p1",
    )


def context(b: Book) -> dict[str, RiskContext]:
    return {ACCOUNT: RiskContext.for_account(actual_of(b), ACCOUNT, now=NOW)}


def test_an_unchanged_world_and_unchanged_limits_take_no_new_decision():
    b = book()
    plan = saved_plan(b)
    assert plan.orders
    checked, decisions = recheck_plan(plan, context(b), {ACCOUNT: limits()})
    assert decisions == () and checked is plan


def test_a_limit_tightened_since_the_plan_clips_the_order_and_keeps_its_leg():
    b = book()
    plan = saved_plan(b)
    bnd = next(o for o in plan.orders if o.key == "BND")
    assert bnd.quantity * 50.0 > 20_000
    checked, decisions = recheck_plan(
        plan, context(b), {ACCOUNT: limits(max_order_notional=20_000)}
    )
    [clip] = decisions
    assert (clip.code, clip.action, clip.key) == ("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "clip", "BND")
    assert clip.detail["stage"] == "apply"
    clipped = next(o for o in checked.orders if o.key == "BND")
    assert clipped.leg == bnd.leg and clipped.quantity < bnd.quantity
    assert clipped.quantity * max(bnd.limit_price or 0, 50.01) <= 20_000
    assert clipped.est_notional < bnd.est_notional  # the shown notional follows the quantity
    assert checked.totals["clips"] == plan.totals["clips"] + 1
    assert clip in checked.decisions


def test_a_halt_since_the_plan_denies_every_order():
    b = book()
    plan = saved_plan(b)
    assert len(plan.orders) == 2
    checked, decisions = recheck_plan(plan, context(b), {ACCOUNT: limits(halt="desk says stop")})
    assert checked.orders == ()
    assert {(d.code, d.action) for d in decisions} == {("TRADING_HALTED", "deny")}
    assert len(decisions) == 2  # one denial per order


def test_an_enlarged_order_is_held_to_the_limits_it_would_have_met_at_plan_time():
    b = book()
    plan = saved_plan(b, max_order_notional=60_000)
    vti = next(o for o in plan.orders if o.key == "BND")
    forged = dataclasses.replace(
        plan,
        accounts=tuple(
            dataclasses.replace(
                a,
                orders=tuple(
                    dataclasses.replace(o, quantity=o.quantity * 100) if o is vti else o
                    for o in a.orders
                ),
            )
            for a in plan.accounts
        ),
    )
    checked, decisions = recheck_plan(
        forged, context(b), {ACCOUNT: limits(max_order_notional=60_000)}
    )
    sent = next(o for o in checked.orders if o.key == "BND")
    assert sent.quantity * 50.01 <= 60_000 + 1e-6
    assert decisions and decisions[0].code == "NOTIONAL_EXCEEDS_MAX_PER_ORDER"


def test_todays_executions_since_the_plan_count_against_the_daily_notional():
    planned_book = book()
    plan = saved_plan(planned_book)
    traded = book().executed("VTI", "BUY", 900, 100.0)  # 90,000 executed today since the plan
    checked, decisions = recheck_plan(
        plan, context(traded), {ACCOUNT: limits(max_daily_notional=100_000)}
    )
    assert decisions and {d.code for d in decisions} == {"DAILY_NOTIONAL_EXCEEDED"}
    assert sum(o.est_notional for o in plan.orders) > 10_000
    assert sum(o.est_notional for o in checked.orders) <= 10_000  # what is left of the day


def test_an_account_with_orders_but_no_context_is_an_error_not_a_pass():
    b = book()
    plan = saved_plan(b)
    with pytest.raises(ValueError, match=ACCOUNT):
        recheck_plan(plan, {}, {ACCOUNT: limits()})
