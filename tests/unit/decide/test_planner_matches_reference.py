"""The optimised planner plans exactly what the planner before issue 12 planned.

`reference_planner/` is the pre-optimisation planner, risk, sizing, drift and desired-state
snapshot, kept verbatim (import-adjusted). On random books, prices, targets and limits (the
strategy of `test_planner_properties`), both must give equal plans: orders, decisions (codes,
clips, denials, details), notes, drift rows, cash budget and the desired-state snapshot;
and a saved plan's apply-time re-check must agree too.
"""

from __future__ import annotations

import dataclasses

from builders import NOW, actual_of, desired_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_planner import planner as reference
from reference_planner import risk as reference_risk
from test_planner_properties import scenarios

from reconciler.decide import risk
from reconciler.decide.planner import build_plan
from reconciler.model.plan import dumps, loads

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same_accounts(new, old):
    """Account by account, the two plans' drift, orders, decisions, notes and cash budget are
    equal (decisions compared field by field, details included)."""
    for mine, theirs in zip(new.accounts, old.accounts, strict=True):
        assert mine.drift == theirs.drift
        assert mine.orders == theirs.orders
        assert [dataclasses.astuple(d) for d in mine.decisions] == [
            dataclasses.astuple(d) for d in theirs.decisions
        ]
        assert mine.notes == theirs.notes
        assert mine.cash_for_buys == theirs.cash_for_buys


def _policy_of(scenario):
    limits = scenario.limits
    return {
        "name": "default",
        **{name: getattr(limits, name).value for name in reference_risk._GIT_LIMITS},
        "trading_state": limits.state,
        "restricted": tuple(limits.restricted.value or ()),
        "on_breach": limits.on_breach.value,
    }


def _both(scenario, halt: str | None):
    from builders import policy

    rules = policy(**_policy_of(scenario))
    desired = desired_of(scenario.portfolio, policies=[rules])
    actual = actual_of(scenario.book)
    resolved = scenario.book.resolved()
    new = build_plan(
        desired, actual, resolved, {"default": risk.effective_limits(rules, {}, halt=halt)},
        now=NOW, plan_id="p",
    )
    old = reference.build_plan(
        desired, actual, resolved,
        {"default": reference_risk.effective_limits(rules, {}, halt=halt)}, now=NOW, plan_id="p",
    )
    return new, old


@SETTINGS
@given(scenarios(), st.sampled_from([None, None, None, "operator halt"]))
def test_optimised_planner_when_given_random_books_then_plans_equal_the_reference(
    scenario, halt
):
    new, old = _both(scenario, halt)
    assert_same_accounts(new, old)
    # The optimised plan also states each price's source (all live here).
    assert {q.pop("price_source") for q in map(dict, new.quotes.values())} <= {"live"}
    sources = {k: dict(v) for k, v in new.quotes.items()}
    for quote in sources.values():
        quote.pop("price_source")
    assert dataclasses.replace(new, quotes=sources) == old
    assert new.desired_snapshot == old.desired_snapshot
    assert new.warnings == old.warnings


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_recheck_when_given_a_saved_plan_then_agrees_with_the_reference(scenario):
    new, _ = _both(scenario, None)
    plan = loads(dumps(new))
    assert plan == new
    book = scenario.book
    actual = actual_of(book)
    ctx = risk.RiskContext.for_account(actual, book.account, now=NOW,
                                       extra_contracts=book.resolved().values())
    ref_ctx = reference_risk.RiskContext.for_account(
        actual, book.account, now=NOW, extra_contracts=book.resolved().values()
    )
    limits = risk.effective_limits(reference_risk.RiskPolicy(**_policy_of(scenario)), {})
    ref_limits = reference_risk.effective_limits(
        reference_risk.RiskPolicy(**_policy_of(scenario)), {}
    )
    mine = risk.recheck_plan(plan, {book.account: ctx}, {book.account: limits})
    theirs = reference_risk.recheck_plan(
        plan, {book.account: ref_ctx}, {book.account: ref_limits}
    )
    assert mine == theirs
