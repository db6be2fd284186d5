"""Sizing: increments, ticks, commission, resizing and fitting buys to cash, with values."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from builders import NOW, Book, desired_of, limits, planned, portfolio, target

from reconciler.decide.planner import build_plan
from reconciler.decide.sizing import (
    estimate_commission,
    fit_after_shortfall,
    fit_buys_to_cash,
    floor_to_increment,
    resize,
    round_to_tick,
    size_increment,
)
from reconciler.model.plan import PlannedOrder, dumps, loads


def buy(
    leg: int,
    quantity: float,
    notional: float,
    *,
    commission: float = 1.0,
    con_id: int | None = None,
    min_trade: float = 0.0,
) -> PlannedOrder:
    book = Book().quote_only("AAA", price=100.0)
    order = planned(book, "AAA", "BUY", quantity, leg=leg)
    return dataclasses.replace(
        order,
        con_id=con_id if con_id is not None else leg,
        key=f"S{leg}",
        est_notional=notional,
        est_commission=commission,
        min_trade_notional=min_trade,
    )


def cost(orders) -> float:
    return sum(o.est_notional + o.est_commission for o in orders)


# ---------------------------------------------------------------- increments and ticks


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 1.0),
        (0.0, 1.0),
        (-5.0, 1.0),
        (math.nan, 1.0),
        (math.inf, 1.0),
        (0.01, 0.01),
        (25.0, 25.0),
    ],
)
def test_a_contract_without_a_usable_size_increment_trades_whole_shares(given, expected):
    assert size_increment(given) == expected


@pytest.mark.parametrize(
    ("quantity", "increment", "expected"),
    [
        (10.99, 1.0, 10.0),
        (0.37, 0.1, 0.3),
        (0.3, 0.1, 0.3),  # 0.3 / 0.1 is 2.9999999999999996 in floats: still three tenths
        (0.7, 0.1, 0.7),
        (54.99999999999999, 1.0, 55.0),  # a float-noise target of 55 shares
        (54.9999, 1.0, 54.0),  # but real shortfalls round down
        (123.0, 25.0, 100.0),
        (0.999, 0.01, 0.99),
        (-1.0, 1.0, 0.0),
        (0.4, 0.5, 0.0),
        (5.0, 0.0, 0.0),
    ],
)
def test_floor_to_increment_rounds_toward_zero(quantity, increment, expected):
    assert floor_to_increment(quantity, increment) == expected


def test_floor_to_increment_refuses_a_quantity_that_is_not_a_number():
    with pytest.raises(ValueError, match="inf"):
        floor_to_increment(math.inf, 1.0)


@pytest.mark.parametrize(
    ("price", "tick", "down", "expected"),
    [
        (100.060005, 0.01, True, 100.06),  # a buy limit: down
        (99.940005, 0.01, False, 99.95),  # a sell limit: up
        (100.05000000000001, 0.01, False, 100.05),  # float noise is not a tick
        (100.07, 0.05, True, 100.05),
        (100.07, 0.05, False, 100.1),
        (0.004, 0.01, True, 0.01),  # never below one tick
        (12.345, None, True, 12.345),
        (12.345, 0.0, False, 12.345),
    ],
)
def test_round_to_tick_is_conservative_for_each_side(price, tick, down, expected):
    assert round_to_tick(price, tick, down=down) == expected


# ---------------------------------------------------------------- commission and resizing


@pytest.mark.parametrize(
    ("quantity", "notional", "expected"),
    [
        (100, 10_000, 1.0),  # 0.50 per share: the 1.00 minimum
        (1000, 100_000, 5.0),
        (333, 33_300, 1.665),
        (10, 50, 0.5),  # at most 1% of the trade value
        (0, 0, 0.0),
        (-3, 300, 0.0),
    ],
)
def test_estimate_commission_follows_ibkr_fixed_schedule(quantity, notional, expected):
    assert estimate_commission(quantity, notional) == expected


def test_resize_keeps_the_unit_value_to_the_cent_and_estimates_commission_afresh():
    order = buy(1, 3, 1000.00, commission=1.0)
    smaller = resize(order, 2)
    assert (smaller.quantity, smaller.est_notional, smaller.est_commission) == (2, 666.67, 1.0)
    tiny = resize(buy(2, 1000, 5000.0, commission=5.0), 10)
    assert (tiny.est_notional, tiny.est_commission) == (50.0, 0.5)


def test_resize_to_the_same_quantity_is_the_same_order():
    order = buy(1, 3, 1000.00)
    assert resize(order, 3) is order


# ---------------------------------------------------------------- fitting buys to cash


def test_buys_that_fit_the_budget_are_left_alone():
    buys = (buy(1, 10, 1000.0), buy(2, 20, 1000.0))
    fit = fit_buys_to_cash(buys, 2002.0, {})
    assert fit.orders == buys and fit.dropped == () and not fit.scaled and fit.scale == 1.0


def test_buys_over_budget_are_scaled_by_one_factor_and_rounded_down_to_increments():
    buys = (buy(1, 10, 1000.0), buy(2, 20, 1000.0))  # cost 2002
    fit = fit_buys_to_cash(buys, 1502.0, {1: 1.0, 2: 1.0})  # (1502 - 2) / 2000 = 0.75
    assert fit.scaled and fit.scale == 0.75
    assert [(o.quantity, o.est_notional, o.est_commission) for o in fit.orders] == [
        (7.0, 700.0, 1.0),
        (15.0, 750.0, 1.0),
    ]
    assert fit.cost <= 1502.0 and (fit.wanted, fit.budget) == (2002.0, 1502.0)


def test_scaled_buys_use_fractional_increments_exactly():
    buys = (buy(1, 1.0, 1000.0, commission=1.0),)
    fit = fit_buys_to_cash(buys, 301.0, {1: 0.1})  # factor 0.3: 0.3 shares, three tenths
    assert [o.quantity for o in fit.orders] == [0.3]
    assert fit.orders[0].est_notional == 300.0


def test_scaled_buys_get_their_commission_re_estimated():
    buys = (buy(1, 1000, 50_000.0, commission=5.0),)
    fit = fit_buys_to_cash(buys, 25_005.0, {})  # factor 0.5
    assert fit.orders[0].quantity == 500
    assert fit.orders[0].est_commission == 2.5  # 0.005 x 500, no longer the old 5.00


def test_a_scaled_buy_below_its_min_trade_notional_is_dropped():
    buys = (buy(1, 10, 1000.0, min_trade=500.0), buy(2, 10, 1000.0, min_trade=500.0))
    fit = fit_buys_to_cash(buys, 1002.0, {})  # factor 0.5: 500 each, exactly the minimum
    assert [o.est_notional for o in fit.orders] == [500.0, 500.0]
    fit = fit_buys_to_cash(buys, 902.0, {})  # factor 0.45: 4 shares, 400 < 500
    assert fit.orders == () and fit.dropped == buys


def test_cent_rounding_never_lets_scaled_buys_exceed_the_budget():
    # Factor 0.666668 makes 2 shares of 333.3333..., which rounds to 666.67 + 1.00 commission:
    # 0.002 over a budget of 667.668. The buy gives up one more share instead.
    fit = fit_buys_to_cash((buy(1, 3, 1000.0, commission=1.0),), 667.668, {})
    assert [o.quantity for o in fit.orders] == [1]
    assert fit.cost <= 667.668


def test_no_cash_or_no_number_buys_nothing():
    buys = (buy(1, 10, 1000.0),)
    assert fit_buys_to_cash(buys, -50.0, {}).orders == ()
    assert fit_buys_to_cash(buys, math.nan, {}).orders == ()
    assert fit_buys_to_cash((), 0.0, {}).scaled is False


def test_after_a_shortfall_buys_spend_their_cost_less_what_sells_did_not_raise():
    buys = (buy(1, 10, 1000.0), buy(2, 20, 1000.0))
    assert fit_after_shortfall(buys, 0.0, {}).orders == buys
    assert fit_after_shortfall(buys, -10.0, {}).scaled is False
    fit = fit_after_shortfall(buys, 500.0, {})
    assert [o.quantity for o in fit.orders] == [7.0, 15.0] and fit.budget == 1502.0
    assert fit_after_shortfall(buys, math.inf, {}).orders == ()


# ---------------------------------------------------------------- the plan carries the rule


def test_planned_orders_carry_the_min_trade_notional_and_removing_it_is_an_edit():
    import pytest

    from reconciler.model.plan import PlanIntegrityError

    book = Book(cash=10_000).quote_only("VTI", price=100.0)
    desired = desired_of(portfolio(target("VTI", weight=0.5), min_trade_notional=250.0))
    plan = build_plan(
        desired, book.actual(), book.resolved(), {"default": limits()}, now=NOW, plan_id="p"
    )
    assert [o.min_trade_notional for o in plan.orders] == [250.0]
    assert [o.min_trade_notional for o in loads(dumps(plan)).orders] == [250.0]
    data = json.loads(dumps(plan))
    for account in data["accounts"]:
        table = account["orders"]
        column = table["columns"].index("min_trade_notional")
        del table["columns"][column]
        for row in table["rows"]:
            del row[column]
    with pytest.raises(PlanIntegrityError, match="min_trade_notional"):
        loads(json.dumps(data))
