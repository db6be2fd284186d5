"""Planner: one table test per planning rule, and the plan artifact `build_plan` makes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from builders import (
    ACCOUNT,
    NOW,
    Book,
    actual_of,
    desired_of,
    limits,
    portfolio,
    target,
    with_quote,
)

from reconciler.decide.planner import (
    PlanningError,
    build_plan,
    capital_for,
    limit_price,
    new_plan_id,
    plan_account,
)
from reconciler.model.actual import fingerprint_parts
from reconciler.model.desired import Band
from reconciler.model.plan import dumps, loads, order_ref

MKT = {"order_type": "MKT"}


def plan(book: Book, p, lim=None):
    return plan_account(
        p, lim or limits(), book.account_state(), book.actual(), book.resolved(), now=NOW
    )


def orders_of(account_plan) -> list[tuple[str, str, float]]:
    return [(o.side, o.symbol, o.quantity) for o in account_plan.orders]


def codes(account_plan) -> list[tuple[str, str, str]]:
    return [(d.code, d.action, d.key) for d in account_plan.decisions]


# ---------------------------------------------------------------- sizing


def test_capital_is_nav_unless_the_portfolio_sets_it():
    account = Book(cash=1234.0).account_state()
    assert capital_for(portfolio(), account) == 1234.0
    assert capital_for(portfolio(capital=500.0), account) == 500.0


def test_a_weight_is_a_share_of_nav():
    book = Book(cash=100_000).quote_only("VTI", price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.40), cash_reserve=0.05))
    assert orders_of(result) == [("BUY", "VTI", 400)]


def test_a_weight_is_a_share_of_fixed_capital_when_set():
    book = Book(cash=100_000).quote_only("VTI", price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.5), capital=10_000))
    assert orders_of(result) == [("BUY", "VTI", 50)]


def test_buys_never_spend_the_cash_reserve():
    book = Book(cash=100_000).quote_only("VTI", price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.95), cash_reserve=0.05))
    spent = sum(o.est_notional + o.est_commission for o in result.orders)
    assert 0 < spent <= 95_000


def test_a_fixed_quantity_target_buys_the_missing_quantity():
    book = Book().hold("SGOV", 80, price=100.0)
    assert orders_of(plan(book, portfolio(target("SGOV", quantity=100)))) == [
        ("BUY", "SGOV", 20)]


def test_a_fixed_quantity_inside_its_relative_band_plans_nothing():
    book = Book().hold("SGOV", 95, price=100.0)
    result = plan(book, portfolio(target("SGOV", quantity=100), band=Band(relative=0.10)))
    assert result.orders == ()


# ---------------------------------------------------------------- bands


def test_a_book_inside_its_absolute_band_plans_nothing():
    book = Book(cash=4_550).hold("VTI", 545, price=10.0)  # 54.5% of 10000
    assert plan(book, portfolio(target("VTI", weight=0.55))).orders == ()


def test_outside_the_band_it_trades_all_the_way_to_target_not_to_the_band_edge():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0)  # 40% of 10000
    result = plan(book, portfolio(target("VTI", weight=0.55), execution=MKT))
    assert orders_of(result) == [("BUY", "VTI", 15)]  # to 55%, not 54%


def test_outside_the_relative_band_trades_even_inside_the_absolute_band():
    book = Book(cash=9_150).hold("VTI", 85, price=10.0)  # 8.5% vs 10%: 1.5 pts
    p = portfolio(target("VTI", weight=0.10), band=Band(absolute=0.05, relative=0.10))
    assert orders_of(plan(book, p)) == [("BUY", "VTI", 15)]


def test_an_order_below_min_trade_notional_is_skipped_with_a_note():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.55), min_trade_notional=2_000))
    assert result.orders == ()
    assert any("VTI" in n and "minTradeNotional" in n for n in result.notes)


def test_closing_a_position_completely_is_exempt_from_min_trade_notional():
    book = Book(cash=9_950).hold("OLD", 5, price=10.0)  # 0.5% of NAV, target 0
    p = portfolio(target("OLD", weight=0.0), band=Band(relative=0.2), min_trade_notional=250)
    assert orders_of(plan(book, p)) == [("SELL", "OLD", 5)]


# ---------------------------------------------------------------- rounding and shorts


def test_quantities_round_toward_zero_to_whole_shares():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.557), execution=MKT))
    assert orders_of(result) == [("BUY", "VTI", 15)]  # 15.7 -> 15, never 16


def test_quantities_round_toward_zero_to_the_contract_size_increment():
    book = Book(cash=1_000).quote_only("BTC", price=80.0, size_increment=0.1)
    result = plan(book, portfolio(target("BTC", weight=0.99), execution=MKT))
    assert orders_of(result) == [("BUY", "BTC", 12.3)]  # 12.375 -> 12.3


def test_excess_sells_round_toward_zero_in_magnitude():
    book = Book(cash=0).hold("VTI", 100, price=100.0)  # 100% held, target 50.5%
    result = plan(book, portfolio(target("VTI", weight=0.505)))
    assert orders_of(result) == [("SELL", "VTI", 49)]  # 49.5 -> 49


def test_a_sell_never_exceeds_what_is_held_even_with_an_open_buy_in_flight():
    book = Book(cash=50_000).hold("VTI", 10, price=100.0).open_order("VTI", "BUY", 100,
                                                                     limit_price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.0)))
    assert orders_of(result) == [("SELL", "VTI", 10)]
    assert any("no short" in n for n in result.notes)


def test_open_sells_reduce_what_may_still_be_sold():
    book = Book(cash=0).hold("VTI", 10, price=100.0).open_order("VTI", "SELL", 4,
                                                                limit_price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.0)))
    assert orders_of(result) == [("SELL", "VTI", 6)]


# ---------------------------------------------------------------- order and modes


def test_sells_come_before_buys_in_leg_order():
    book = Book(cash=0).hold("AAA", 100, price=100.0).quote_only("BBB", price=100.0)
    p = portfolio(target("AAA", weight=0.5), target("BBB", weight=0.5))
    result = plan(book, p)
    assert [(o.leg, o.side, o.symbol) for o in result.orders] == [
        (1, "SELL", "AAA"), (2, "BUY", "BBB")]


def test_buy_only_never_sells_but_still_buys():
    book = Book(cash=2_000).hold("AAA", 80, price=100.0).quote_only("BBB", price=100.0)
    p = portfolio(target("AAA", weight=0.5), target("BBB", weight=0.2), sells="buyOnly")
    result = plan(book, p)
    assert [o.side for o in result.orders] == ["BUY"]
    assert any("AAA" in n and "buy-only" in n for n in result.notes)


def test_unmanaged_holdings_are_left_alone_under_ignore():
    book = Book().hold("GME", 5, price=20.0)
    assert plan(book, portfolio(unmanaged="ignore")).orders == ()


def test_unmanaged_liquidate_sells_the_whole_holding_even_below_min_trade():
    book = Book().hold("GME", 5, price=20.0)
    result = plan(book, portfolio(unmanaged="liquidate", min_trade_notional=1_000))
    assert orders_of(result) == [("SELL", "GME", 5)]
    assert result.orders[0].reason == "GME: unmanaged holding 5, unmanaged=liquidate"


def test_unmanaged_liquidate_buys_back_a_short():
    book = Book().hold("GME", -5, price=20.0)
    assert orders_of(plan(book, portfolio(unmanaged="liquidate"))) == [("BUY", "GME", 5)]


def test_unmanaged_liquidate_in_buy_only_mode_sells_nothing():
    book = Book().hold("GME", 5, price=20.0)
    assert plan(book, portfolio(unmanaged="liquidate", sells="buyOnly")).orders == ()


# ---------------------------------------------------------------- in flight


def test_an_open_order_closing_the_gap_is_never_ordered_twice():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0).open_order("VTI", "BUY", 15,
                                                                    limit_price=100.0)
    assert plan(book, portfolio(target("VTI", weight=0.55))).orders == ()


def test_an_open_order_closing_part_of_the_gap_leaves_only_the_rest():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0).open_order("VTI", "BUY", 10,
                                                                    limit_price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.55), execution=MKT))
    assert orders_of(result) == [("BUY", "VTI", 5)]
    assert "in flight +10" in result.orders[0].reason


# ---------------------------------------------------------------- cash


def test_buys_are_scaled_down_to_the_cash_available_with_a_note():
    book = Book(cash=10_000).quote_only("AAA", price=100.0).quote_only("BBB", price=50.0)
    p = portfolio(target("AAA", quantity=100), target("BBB", quantity=100))  # 15000 wanted
    result = plan(book, p)
    spent = sum(o.est_notional + o.est_commission for o in result.orders)
    assert spent <= 10_000
    assert [o.quantity for o in result.orders] == [66, 66]
    assert any(n.startswith("buys scaled to cash: 0.67") for n in result.notes)


def test_open_buy_orders_take_their_cash_first():
    book = Book(cash=10_000).quote_only("AAA", price=100.0).quote_only("BBB", price=100.0)
    book.open_order("AAA", "BUY", 50, limit_price=100.0)  # valued at the ask, 100.01
    result = plan(book, portfolio(target("BBB", quantity=80)))
    assert [o.quantity for o in result.orders] == [49]
    assert any("open buys 5,000.50" in n for n in result.notes)


def test_an_open_buy_is_valued_at_the_most_it_may_cost():
    book = Book(cash=10_000).quote_only("AAA", price=100.0).quote_only("BBB", price=100.0)
    book.open_order("AAA", "BUY", 10)  # a market order pays the ask, not the mid
    book.open_order("AAA", "BUY", 10, limit_price=103.0)  # a limit above the ask may pay it
    result = plan(book, portfolio(target("BBB", quantity=1)))
    assert any("open buys 2,030.10" in n for n in result.notes)  # 10 x 100.01 + 10 x 103


def test_sell_proceeds_fund_buys_in_the_same_plan():
    book = Book(cash=0).hold("AAA", 100, price=100.0).quote_only("BBB", price=100.0)
    result = plan(book, portfolio(target("AAA", weight=0.0), target("BBB", weight=0.9)))
    assert orders_of(result) == [("SELL", "AAA", 100), ("BUY", "BBB", 90)]


def test_a_denied_sell_does_not_fund_buys():
    book = Book(cash=0).hold("AAA", 100, price=100.0).quote_only("BBB", price=100.0)
    with_quote(book, "AAA", time=NOW - dt.timedelta(minutes=5))
    p = portfolio(target("AAA", weight=0.0), target("BBB", weight=0.9))
    result = plan(book, p, limits(max_price_age_seconds=30))
    assert result.orders == ()
    assert ("PRICE_TOO_OLD", "deny", "AAA") in codes(result)
    assert any("BBB: buy dropped after scaling to cash" in n for n in result.notes)


def test_no_borrowing_unless_max_leverage_above_one_allows_it():
    book = Book(cash=10_000).quote_only("AAA", price=100.0)
    p = portfolio(target("AAA", quantity=140))
    without = plan(book, p, limits())
    with_leverage = plan(book, p, limits(max_leverage=1.5))
    assert without.orders[0].quantity <= 99
    assert with_leverage.orders[0].quantity == 140
    assert any("borrowing 5,000.00" in n for n in with_leverage.notes)


# ---------------------------------------------------------------- prices and estimates


@pytest.mark.parametrize(
    ("order_type", "side", "tick", "expected"),
    [
        ("LMT", "BUY", 0.01, 100.06),  # ask 100.01 + 5 bps = 100.060005, rounded down
        ("LMT", "SELL", 0.01, 99.95),  # bid 99.99 - 5 bps = 99.940005, rounded up
        ("LMT", "BUY", 0.05, 100.05),
        ("MIDPRICE", "BUY", 0.01, 100.06),  # the cap
        ("MKT", "BUY", 0.01, None),
        ("ADAPTIVE", "SELL", 0.01, None),
    ],
)
def test_limit_price_starts_at_the_far_side_and_rounds_conservatively(order_type, side, tick,
                                                                      expected):
    book = Book().quote_only("VTI", price=100.0)  # bid 99.99, ask 100.01
    q = book.quotes[book.contract_of("VTI").con_id]
    assert limit_price(side, q, order_type, 5.0, tick) == expected


def test_planned_order_carries_limit_price_from_quote_and_offset():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0, min_tick=0.05)
    p = portfolio(target("VTI", weight=0.55), execution={"limit_offset_bps": 5.0})
    order = plan(book, p).orders[0]
    assert (order.order_type, order.limit_price, order.arrival_price) == ("LMT", 100.05, 100.0)


def test_estimated_notional_is_in_base_currency_with_ibkr_commission():
    book = Book(cash=2_000, fx={"EUR": 1.10}).quote_only("SAP", price=100.0, currency="EUR")
    p = portfolio(target("SAP", quantity=10, currency="EUR"))
    order = plan(book, p).orders[0]
    assert order.est_notional == pytest.approx(10 * 100.06 * 1.10, abs=0.01)
    assert order.est_commission == 1.0


def test_reason_names_the_target_the_drift_and_the_band():
    book = Book(cash=5_880).hold("VTI", 412, price=10.0)
    p = portfolio(target("VTI", weight=0.55), band=Band(absolute=0.01, relative=0.20))
    order = plan(book, p).orders[0]
    assert order.reason == "VTI: weight 41.2% -> target 55.0% (drift -13.8 pts, band ±1.0/20%)"


# ---------------------------------------------------------------- things that cannot be planned


def test_a_target_without_price_gets_no_order_and_a_price_missing_denial():
    book = Book().quote_only("VTI", price=None)
    result = plan(book, portfolio(target("VTI", weight=0.5)))
    assert result.orders == ()
    assert codes(result) == [("PRICE_MISSING", "deny", "VTI")]


def test_a_target_without_fx_rate_gets_an_fx_rate_missing_denial():
    book = Book().quote_only("SAP", price=100.0, currency="EUR")
    result = plan(book, portfolio(target("SAP", weight=0.5, currency="EUR")))
    assert codes(result) == [("FX_RATE_MISSING", "deny", "SAP:STK:EUR")]


def test_an_unresolved_target_gets_an_instrument_unresolved_denial():
    result = plan(Book(), portfolio(target("NOPE", weight=0.5)))
    assert codes(result) == [("INSTRUMENT_UNRESOLVED", "deny", "NOPE")]


def test_weights_without_capital_get_a_nav_unknown_denial():
    book = Book(cash=0.0).quote_only("VTI", price=10.0)
    result = plan(book, portfolio(target("VTI", weight=0.5)))
    assert codes(result) == [("NAV_UNKNOWN", "deny", "VTI")]


def test_a_restricted_instrument_is_never_bought():
    book = Book().quote_only("GME", price=20.0)
    result = plan(book, portfolio(target("GME", weight=0.1)), limits(restricted=("GME",)))
    assert result.orders == ()
    assert codes(result) == [("INSTRUMENT_RESTRICTED", "deny", "GME")]


def test_halted_trading_plans_no_orders_but_still_shows_drift():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.55)), limits(halt="incident"))
    assert result.orders == ()
    assert codes(result) == [("TRADING_HALTED", "deny", "VTI")]
    assert result.drift[0].in_band is False


def test_risk_clips_appear_as_decisions_and_shrink_the_order():
    book = Book(cash=100_000).quote_only("VTI", price=100.0)
    result = plan(book, portfolio(target("VTI", weight=0.5)), limits(max_order_notional=5_000))
    assert orders_of(result) == [("BUY", "VTI", 49)]
    assert codes(result) == [("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "clip", "VTI")]


# ---------------------------------------------------------------- build_plan


def two_accounts():
    first = Book("DU0000001", cash=10_000).quote_only("VTI", price=100.0)
    first.quote_only("BND", price=50.0)
    second = Book("DU0000002", cash=5_000).hold("VTI", 10, price=100.0)
    desired = desired_of(
        portfolio(target("VTI", weight=0.5), target("BND", weight=0.3), account="DU0000001",
                  name="one"),
        portfolio(target("VTI", weight=0.2), account="DU0000002", name="two"),
    )
    resolved = {**first.resolved(), **second.resolved()}
    return desired, actual_of(first, second), resolved


def test_build_plan_numbers_legs_across_the_plan_from_one():
    desired, actual, resolved = two_accounts()
    result = build_plan(desired, actual, resolved, {"default": limits()}, now=NOW,
                        plan_id="p1")
    assert [o.leg for o in result.orders] == list(range(1, len(result.orders) + 1))
    assert {o.account for o in result.orders} == {"DU0000001", "DU0000002"}
    assert order_ref("p1", 1) == "rc-p1-001"


def test_build_plan_records_quotes_nav_fingerprint_and_desired_state():
    desired, actual, resolved = two_accounts()
    result = build_plan(desired, actual, resolved, {"default": limits()}, now=NOW,
                        plan_id="p1")
    vti = str(resolved["VTI"].con_id)
    assert result.quotes[vti]["symbol"] == "VTI"
    assert result.quotes[vti]["time"] == NOW.isoformat()
    assert result.nav == {"DU0000001": 10_000, "DU0000002": 6_000}
    assert result.actual_fingerprint == actual.fingerprint()
    assert result.fingerprint_parts == fingerprint_parts(actual)
    assert (result.desired_hash, result.git_commit, result.git_dirty) == ("0" * 64, "abc1234",
                                                                          False)
    assert result.desired_snapshot["DU0000002"]["portfolio"]["targets"]["VTI"]["weight"] == 0.2


def test_build_plan_can_be_limited_to_some_accounts():
    desired, actual, resolved = two_accounts()
    result = build_plan(desired, actual, resolved, {"default": limits()}, now=NOW,
                        plan_id="p1", accounts=["DU0000002"])
    assert [a.account for a in result.accounts] == ["DU0000002"]


def test_build_plan_refuses_an_account_the_snapshot_lacks():
    desired, _, resolved = two_accounts()
    actual = Book("DU0000001").actual()
    with pytest.raises(PlanningError, match=r"DU0000002.*not in the broker snapshot"):
        build_plan(desired, actual, resolved, {"default": limits()}, now=NOW, plan_id="p1")


def test_build_plan_refuses_an_unknown_account_filter_and_missing_limits():
    desired, actual, resolved = two_accounts()
    with pytest.raises(PlanningError, match="DU0000009"):
        build_plan(desired, actual, resolved, {"default": limits()}, now=NOW, plan_id="p",
                   accounts=["DU0000009"])
    with pytest.raises(PlanningError, match="risk policy 'default'"):
        build_plan(desired, actual, resolved, {}, now=NOW, plan_id="p")


def test_plan_survives_its_json_round_trip():
    desired, actual, resolved = two_accounts()
    original = build_plan(desired, actual, resolved, {"default": limits(max_order_notional=2000)},
                          now=NOW, plan_id="p1")
    assert original.decisions  # the clip travels too
    assert loads(dumps(original)) == original


def test_plan_for_an_account_planned_twice_is_identical():
    desired, actual, resolved = two_accounts()
    one = build_plan(desired, actual, resolved, {"default": limits()}, now=NOW, plan_id="p")
    two = build_plan(desired, actual, resolved, {"default": limits()}, now=NOW, plan_id="p")
    assert one == two


def test_new_plan_id_is_the_utc_minute_and_six_hex_digits_deterministic_with_an_rng():
    at = dt.datetime(2026, 11, 22, 1, 55, 30, tzinfo=dt.UTC)
    first = new_plan_id(at, random.Random(7))
    assert first == new_plan_id(at, random.Random(7))
    assert first.startswith("20261122T0155Z-") and len(first) == len("20261122T0155Z-") + 6
    assert len({new_plan_id(at) for _ in range(5)}) > 1  # unseeded: system randomness
    with pytest.raises(ValueError, match="naive"):
        new_plan_id(dt.datetime(2026, 11, 22))


def test_planned_orders_use_the_account_and_contract_details():
    book = Book(cash=10_000).quote_only("VTI", price=100.0)
    order = plan(book, portfolio(target("VTI", weight=0.5))).orders[0]
    info = book.contract_of("VTI")
    assert (order.account, order.con_id, order.exchange, order.currency) == (
        ACCOUNT, info.con_id, "SMART", "USD")
    assert dataclasses.asdict(order)["time_in_force"] == "DAY"
