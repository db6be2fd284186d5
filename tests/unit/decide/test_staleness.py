"""A saved plan against a fresh snapshot: every reason it is stale is named."""

import dataclasses
import datetime as dt

from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target, with_quote

from reconciler.decide.planner import build_plan
from reconciler.decide.staleness import StalenessTolerance, stale_reasons


def book():
    return Book(cash=50_000.0).instrument("VTI", 290.0, held=100).instrument("BND", 73.0)


def make_plan(b):
    desired = desired_of(portfolio(target("VTI", weight=0.5), target("BND", weight=0.3)))
    plan = build_plan(
        desired, actual_of(b), b.resolved(), {"default": limits()}, now=NOW, plan_id="p1"
    )
    return desired, plan


def test_unchanged_world_is_not_stale():
    desired, plan = make_plan(book())
    assert plan.orders
    assert stale_reasons(plan, actual_of(book()), desired.content_hash, NOW) == []


def test_plan_older_than_its_limit_is_stale():
    desired, plan = make_plan(book())
    later = NOW + dt.timedelta(seconds=301)
    reasons = stale_reasons(plan, actual_of(book()), desired.content_hash, later)
    assert reasons == ["plan is 301s old (limit 300s)"]


def test_changed_desired_state_is_stale():
    _, plan = make_plan(book())
    reasons = stale_reasons(plan, actual_of(book()), "f" * 64, NOW)
    assert len(reasons) == 1 and reasons[0].startswith("desired state changed")


def test_changed_positions_are_stale():
    desired, plan = make_plan(book())
    moved = Book(cash=50_000.0).instrument("VTI", 290.0, held=101).instrument("BND", 73.0)
    reasons = stale_reasons(plan, actual_of(moved), desired.content_hash, NOW)
    assert "positions changed since the plan" in reasons


def test_new_open_order_is_stale():
    desired, plan = make_plan(book())
    b = book().open_order("BND", "BUY", 10, limit_price=73.0)
    reasons = stale_reasons(plan, actual_of(b), desired.content_hash, NOW)
    assert "open orders changed since the plan" in reasons


def test_quote_moving_past_tolerance_is_stale_but_small_moves_are_not():
    desired, plan = make_plan(book())
    small = with_quote(book(), "BND", bid=73.2, ask=73.3, last=73.25)  # +0.4%
    assert stale_reasons(plan, actual_of(small), desired.content_hash, NOW) == []
    big = with_quote(book(), "BND", bid=75.0, ask=75.1, last=75.05)  # +2.8%
    reasons = stale_reasons(plan, actual_of(big), desired.content_hash, NOW)
    assert any(r.startswith("BND moved") for r in reasons)


def test_nav_moving_past_tolerance_is_stale():
    desired, plan = make_plan(book())
    richer = Book(cash=51_000.0).instrument("VTI", 290.0, held=100).instrument("BND", 73.0)
    reasons = stale_reasons(
        plan, actual_of(richer), desired.content_hash, NOW, StalenessTolerance(nav_fraction=0.005)
    )
    assert any(r.startswith("NAV of DU0000001 moved") for r in reasons)


def test_missing_quote_for_an_ordered_instrument_is_stale():
    desired, plan = make_plan(book())
    b = with_quote(book(), "BND", bid=None, ask=None, last=None, close=None)
    reasons = stale_reasons(plan, actual_of(b), desired.content_hash, NOW)
    assert "no usable quote now for BND" in reasons


def test_round_trip_through_json_keeps_staleness_inputs():
    from reconciler.model.plan import dumps, loads

    desired, plan = make_plan(book())
    again = loads(dumps(plan))
    assert dataclasses.asdict(again) == dataclasses.asdict(plan)
    assert stale_reasons(again, actual_of(book()), desired.content_hash, NOW) == []
