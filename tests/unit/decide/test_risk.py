"""Risk: effective limits (git, env, halt) and one table test per check code."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import NOW, Book, limits, planned, policy, with_quote

from reconciler.decide import risk
from reconciler.decide.risk import (
    EffectiveLimits,
    RiskContext,
    check_orders,
    effective_limits,
    open_order_unit,
    risk_price,
)
from reconciler.model.settings import SettingsError


def run(book: Book, *orders, min_trade: float = 0.0, lim: EffectiveLimits | None = None,
        **limit_changes):
    ctx = RiskContext(**book.ctx_parts(), min_trade_notional=min_trade)
    return check_orders(list(orders), ctx, lim or limits(**limit_changes))


def codes(decisions) -> list[tuple[str, str]]:
    return [(d.code, d.action) for d in decisions]


@pytest.fixture
def book() -> Book:
    return Book(cash=50_000).hold("VTI", 100, price=100.0).quote_only("BND", price=50.0)


# ---------------------------------------------------------------- effective limits


def test_effective_limits_without_env_are_the_git_values_with_git_source():
    lim = effective_limits(policy(max_order_notional=5000), {})
    assert lim.max_order_notional.value == 5000
    assert lim.max_order_notional.source == "git:RiskPolicy/default"
    assert lim.max_leverage.value is None and lim.max_leverage.source == "unset"
    assert lim.trading_state.value == "ACTIVE"


def test_effective_limits_env_tightens_git_when_enabled():
    env = {"EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_ORDER_NOTIONAL": "2000"}
    lim = effective_limits(policy(max_order_notional=5000), env)
    assert lim.max_order_notional.value == 2000
    assert lim.max_order_notional.source == "env:EXEC_RISK_MAX_ORDER_NOTIONAL"
    assert "git: 5000" in lim.max_order_notional.note


def test_effective_limits_env_looser_than_git_is_ignored_and_source_stays_git():
    env = {"EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_LEVERAGE": "3"}
    lim = effective_limits(policy(max_leverage=1.5), env)
    assert lim.max_leverage.value == 1.5
    assert lim.max_leverage.source == "git:RiskPolicy/default"
    assert "looser than git" in lim.max_leverage.note


def test_effective_limits_env_sets_a_limit_git_leaves_unset():
    env = {"EXEC_RISK_ENABLED": "1", "EXEC_RISK_MAX_POSITION_NOTIONAL": "15000"}
    lim = effective_limits(policy(), env)
    assert lim.max_position_notional.value == 15000
    assert lim.max_position_notional.source == "env:EXEC_RISK_MAX_POSITION_NOTIONAL"


def test_effective_limits_env_zero_means_no_override_for_that_limit():
    env = {"EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_ORDER_NOTIONAL": "0"}
    lim = effective_limits(policy(max_order_notional=5000), env)
    assert (lim.max_order_notional.value, lim.max_order_notional.source) == (
        5000, "git:RiskPolicy/default")


@pytest.mark.parametrize("switch", [None, "false", "0", ""])
def test_effective_limits_env_is_not_applied_when_master_switch_is_off(switch):
    env = {"EXEC_RISK_MAX_ORDER_NOTIONAL": "100"}
    if switch is not None:
        env["EXEC_RISK_ENABLED"] = switch
    lim = effective_limits(policy(max_order_notional=5000), env)
    assert lim.max_order_notional.value == 5000
    assert "EXEC_RISK_ENABLED is off" in lim.max_order_notional.note


@pytest.mark.parametrize("raw", ["abc", "-5", "nan", "inf"])
def test_effective_limits_invalid_env_number_raises_naming_the_variable(raw):
    env = {"EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_LEVERAGE": raw}
    with pytest.raises(SettingsError, match="EXEC_RISK_MAX_LEVERAGE"):
        effective_limits(policy(), env)


def test_effective_limits_invalid_master_switch_raises_naming_it():
    with pytest.raises(SettingsError, match="EXEC_RISK_ENABLED"):
        effective_limits(policy(), {"EXEC_RISK_ENABLED": "maybe"})


def test_effective_limits_halt_forces_halted_with_store_source():
    lim = effective_limits(policy(trading_state="ACTIVE"), {}, halt="ops: broker incident")
    assert lim.trading_state.value == "HALTED"
    assert lim.trading_state.source == "store:halt"
    assert "broker incident" in lim.trading_state.note


def test_effective_limits_rows_list_every_limit_once_for_show_risk():
    names = [row.name for row in limits().rows()]
    assert names == [
        "trading_state", "max_order_notional", "max_position_notional", "max_leverage",
        "max_orders_per_cycle", "max_cycle_turnover", "max_daily_notional",
        "max_price_age_seconds", "max_spread", "restricted", "on_breach", "allow_delayed_data",
    ]


# ---------------------------------------------------------------- one test per code


def test_trading_halted_denies_every_order_even_a_reducing_sell(book):
    accepted, decisions = run(book, planned(book, "VTI", "SELL", 10), trading_state="HALTED")
    assert accepted == ()
    assert codes(decisions) == [("TRADING_HALTED", "deny")]


def test_trading_reducing_denies_a_buy_that_increases_the_position(book):
    accepted, decisions = run(book, planned(book, "VTI", "BUY", 10), trading_state="REDUCING")
    assert accepted == ()
    assert codes(decisions) == [("TRADING_REDUCING_DENIES_INCREASE", "deny")]


def test_trading_reducing_allows_a_sell_that_reduces(book):
    accepted, decisions = run(book, planned(book, "VTI", "SELL", 40), trading_state="REDUCING")
    assert [o.quantity for o in accepted] == [40]
    assert decisions == ()


def test_trading_reducing_clips_a_sell_that_would_cross_zero_to_flat(book):
    accepted, decisions = run(book, planned(book, "VTI", "SELL", 150), trading_state="REDUCING")
    assert [o.quantity for o in accepted] == [100]
    assert codes(decisions) == [("TRADING_REDUCING_DENIES_INCREASE", "clip")]


def test_instrument_restricted_denies_a_buy(book):
    accepted, decisions = run(book, planned(book, "BND", "BUY", 10), restricted=("BND",))
    assert accepted == ()
    assert codes(decisions) == [("INSTRUMENT_RESTRICTED", "deny")]
    assert decisions[0].detail["instrument"] == "BND"


def test_instrument_restricted_still_lets_a_holding_be_sold(book):
    accepted, _ = run(book, planned(book, "VTI", "SELL", 100), restricted=("VTI",))
    assert [o.quantity for o in accepted] == [100]


def test_price_missing_denies_when_there_is_no_quote(book):
    book.quote_only("XYZ", price=None)
    accepted, decisions = run(book, planned(book, "XYZ", "BUY", 1, limit_price=10.0))
    assert accepted == ()
    assert codes(decisions) == [("PRICE_MISSING", "deny")]


def test_price_missing_denies_when_the_quote_has_no_usable_price(book):
    with_quote(book, "BND", bid=None, ask=None, last=None, close=None)
    _, decisions = run(book, planned(book, "BND", "BUY", 1, limit_price=50.0))
    assert codes(decisions) == [("PRICE_MISSING", "deny")]


def test_price_time_missing_denies_when_max_price_age_is_set(book):
    with_quote(book, "BND", time=None)
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_price_age_seconds=30)
    assert codes(decisions) == [("PRICE_TIME_MISSING", "deny")]


def test_quote_delayed_denies_delayed_or_frozen_data_unless_the_policy_allows_it(book):
    with_quote(book, "BND", market_data_type=3)
    _, decisions = run(book, planned(book, "BND", "BUY", 1))
    assert codes(decisions) == [("QUOTE_DELAYED", "deny")]
    assert decisions[0].render() == "QUOTE_DELAYED: symbol=BND market_data_type=3"
    accepted, decisions = run(book, planned(book, "BND", "BUY", 1), allow_delayed_data=True)
    assert decisions == () and len(accepted) == 1


def test_price_too_old_denies_a_quote_older_than_max_price_age(book):
    with_quote(book, "BND", time=NOW - dt.timedelta(seconds=45))
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_price_age_seconds=30)
    assert codes(decisions) == [("PRICE_TOO_OLD", "deny")]
    assert decisions[0].render() == "PRICE_TOO_OLD: max_age=30 age=45"


def test_price_age_within_the_limit_passes(book):
    with_quote(book, "BND", time=NOW - dt.timedelta(seconds=29))
    accepted, decisions = run(book, planned(book, "BND", "BUY", 1), max_price_age_seconds=30)
    assert len(accepted) == 1 and decisions == ()


def test_quote_not_two_sided_denies_when_max_spread_is_set(book):
    with_quote(book, "BND", bid=None)
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_spread=0.01)
    assert codes(decisions) == [("QUOTE_NOT_TWO_SIDED", "deny")]


def test_spread_too_wide_denies(book):
    with_quote(book, "BND", bid=49.0, ask=51.0)  # 4% of mid
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_spread=0.01)
    assert codes(decisions) == [("SPREAD_TOO_WIDE", "deny")]
    assert decisions[0].detail == {"max": 0.01, "got": 0.04}


def test_fx_rate_missing_denies_an_order_in_a_currency_without_rate():
    book = Book(fx={}).quote_only("SAP", price=120.0, currency="EUR")
    accepted, decisions = run(book, planned(book, "SAP", "BUY", 1, limit_price=120.0))
    assert accepted == ()
    assert codes(decisions) == [("FX_RATE_MISSING", "deny")]


def test_notional_exceeds_max_per_order_clips_down_to_the_size_increment(book):
    order = planned(book, "BND", "BUY", 150, limit_price=50.0)  # 7500
    accepted, decisions = run(book, order, max_order_notional=5000)
    # risk values at the highest of limit, ask (50.005) and reference: 99 * 50.005 <= 5000
    assert [o.quantity for o in accepted] == [99]
    assert codes(decisions) == [("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "clip")]
    assert decisions[0].render().startswith("NOTIONAL_EXCEEDS_MAX_PER_ORDER: max=5000 got=7500.")
    assert accepted[0].est_notional == pytest.approx(99 * 50.0)


def test_notional_exceeds_max_per_order_denies_when_on_breach_is_deny(book):
    order = planned(book, "BND", "BUY", 150, limit_price=50.0)
    accepted, decisions = run(book, order, max_order_notional=5000, on_breach="deny")
    assert accepted == ()
    assert codes(decisions) == [("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "deny")]


def test_a_clip_below_one_size_increment_is_a_denial(book):
    order = planned(book, "BND", "BUY", 10, limit_price=50.0)
    accepted, decisions = run(book, order, max_order_notional=40)
    assert accepted == ()
    assert codes(decisions) == [("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "deny")]
    assert decisions[0].detail["clipped_to"] == 0


def test_a_clip_below_min_trade_notional_is_a_denial(book):
    order = planned(book, "BND", "BUY", 10, limit_price=50.0)
    accepted, decisions = run(book, order, max_order_notional=200, min_trade=250)
    assert accepted == ()
    assert codes(decisions) == [("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "deny")]


def test_position_exceeds_max_notional_counts_open_orders_in_flight(book):
    book.open_order("VTI", "BUY", 20, limit_price=100.0)  # effective 120 shares
    accepted, decisions = run(book, planned(book, "VTI", "BUY", 50, limit_price=100.0),
                              max_position_notional=15_000)
    # risk price is the ask 100.01: (120 + q) * 100.01 <= 15000 -> q = 29
    assert [o.quantity for o in accepted] == [29]
    assert codes(decisions) == [("POSITION_EXCEEDS_MAX_NOTIONAL", "clip")]


def test_position_limit_never_blocks_a_sell_that_reduces(book):
    accepted, decisions = run(book, planned(book, "VTI", "SELL", 10), max_position_notional=100)
    assert [o.quantity for o in accepted] == [10] and decisions == ()


def test_nav_unknown_denies_when_leverage_or_turnover_is_limited():
    book = Book(nav=0.0).quote_only("BND", price=50.0)
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_leverage=1.0)
    assert codes(decisions) == [("NAV_UNKNOWN", "deny")]


def test_leverage_exceeds_max_clips_gross_exposure_to_the_limit():
    book = Book(cash=0.0).hold("VTI", 100, price=100.0).quote_only("BND", price=50.0)
    # NAV 10000, gross 10000: leverage 1.5 leaves 5000 of room
    accepted, decisions = run(book, planned(book, "BND", "BUY", 200, limit_price=50.0),
                              max_leverage=1.5)
    assert [o.quantity for o in accepted] == [99]  # 99 * 50.005 <= 5000
    assert codes(decisions) == [("LEVERAGE_EXCEEDS_MAX", "clip")]


def test_leverage_counts_earlier_sells_of_the_same_cycle():
    book = Book(cash=0.0).hold("VTI", 100, price=100.0).quote_only("BND", price=50.0)
    sell = planned(book, "VTI", "SELL", 50, limit_price=99.95, leg=1)
    buy = planned(book, "BND", "BUY", 90, limit_price=50.0, leg=2)
    accepted, decisions = run(book, sell, buy, max_leverage=1.0)
    assert [o.quantity for o in accepted] == [50, 90]
    assert decisions == ()


def test_leverage_takes_an_open_sell_off_gross_at_the_market_not_at_its_limit(book):
    book.open_order("VTI", "SELL", 100, limit_price=150.0)  # resting far above the market
    accepted, decisions = run(book, planned(book, "BND", "BUY", 200), max_leverage=0.1)
    # NAV 60000, gross 10000 less the 100 VTI at their mark of 100: room 6000 / 50.005 ask
    assert codes(decisions) == [("LEVERAGE_EXCEEDS_MAX", "clip")]
    assert accepted[0].quantity == 119


def test_gross_exposure_unknown_denies_when_an_open_order_cannot_be_valued(book):
    book.quote_only("XYZ", price=None).open_order("XYZ", "BUY", 10)
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_leverage=2.0)
    assert codes(decisions) == [("GROSS_EXPOSURE_UNKNOWN", "deny")]


def test_orders_per_cycle_exceeded_denies_orders_after_the_limit(book):
    orders = [planned(book, "BND", "BUY", 1, leg=i) for i in (1, 2, 3)]
    accepted, decisions = run(book, *orders, max_orders_per_cycle=2)
    assert [o.leg for o in accepted] == [1, 2]
    assert codes(decisions) == [("ORDERS_PER_CYCLE_EXCEEDED", "deny")]
    assert decisions[0].render() == "ORDERS_PER_CYCLE_EXCEEDED: max=2 got=3"


def test_cycle_turnover_exceeded_clips_the_order_that_crosses_it(book):
    # NAV 60000; 10% = 6000 of turnover
    first = planned(book, "VTI", "SELL", 40, limit_price=100.0, leg=1)  # ~4000
    second = planned(book, "BND", "BUY", 100, limit_price=50.0, leg=2)  # ~5000
    accepted, decisions = run(book, first, second, max_cycle_turnover=0.10)
    assert accepted[0].quantity == 40
    assert accepted[1].quantity == pytest.approx(39)  # (6000 - 4000.4) / 50.005
    assert codes(decisions) == [("CYCLE_TURNOVER_EXCEEDED", "clip")]


def test_daily_notional_exceeded_counts_todays_executions(book):
    book.executed("VTI", "BUY", 30, 100.0)  # 3000 already today
    accepted, decisions = run(book, planned(book, "BND", "BUY", 100, limit_price=50.0),
                              max_daily_notional=5000)
    assert [o.quantity for o in accepted] == [39]
    assert codes(decisions) == [("DAILY_NOTIONAL_EXCEEDED", "clip")]
    assert decisions[0].detail["today"] == 3000


def test_daily_notional_unknown_denies_when_an_execution_cannot_be_valued():
    book = Book(fx={}).quote_only("SAP", price=100.0, currency="EUR")
    book.quote_only("BND", price=50.0).executed("SAP", "BUY", 1, 100.0)
    _, decisions = run(book, planned(book, "BND", "BUY", 1), max_daily_notional=5000)
    assert codes(decisions) == [("DAILY_NOTIONAL_UNKNOWN", "deny")]


# ---------------------------------------------------------------- how the checks combine


def test_checks_run_in_order_so_halted_is_reported_before_a_missing_price(book):
    book.quote_only("XYZ", price=None)
    _, decisions = run(book, planned(book, "XYZ", "BUY", 1, limit_price=1.0),
                       trading_state="HALTED")
    assert codes(decisions) == [("TRADING_HALTED", "deny")]


def test_two_clips_on_one_order_are_both_recorded_and_only_shrink_it(book):
    order = planned(book, "BND", "BUY", 300, limit_price=50.0)
    accepted, decisions = run(book, order, max_order_notional=10_000, max_daily_notional=4000)
    assert codes(decisions) == [("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "clip"),
                                ("DAILY_NOTIONAL_EXCEEDED", "clip")]
    assert decisions[0].requested_quantity == 300
    assert decisions[1].requested_quantity == decisions[0].allowed_quantity
    assert accepted[0].quantity == decisions[1].allowed_quantity < 300


def test_check_order_lists_every_code_once_as_documented():
    assert list(risk.CHECK_ORDER) == [
        "TRADING_HALTED", "TRADING_REDUCING_DENIES_INCREASE", "INSTRUMENT_RESTRICTED",
        "PRICE_MISSING", "QUOTE_NOT_LIVE", "QUOTE_DELAYED", "PRICE_TIME_MISSING", "PRICE_TOO_OLD",
        "QUOTE_NOT_TWO_SIDED", "SPREAD_TOO_WIDE", "FX_RATE_MISSING",
        "NOTIONAL_EXCEEDS_MAX_PER_ORDER", "POSITION_EXCEEDS_MAX_NOTIONAL", "NAV_UNKNOWN",
        "GROSS_EXPOSURE_UNKNOWN", "LEVERAGE_EXCEEDS_MAX", "ORDERS_PER_CYCLE_EXCEEDED",
        "CYCLE_TURNOVER_EXCEEDED", "DAILY_NOTIONAL_UNKNOWN", "DAILY_NOTIONAL_EXCEEDED",
    ]
    codes_defined = {
        value for name, value in vars(risk).items()
        if name.isupper() and isinstance(value, str) and value == name
    }
    assert codes_defined == set(risk.CHECK_ORDER)


def test_survivors_keep_their_legs_and_context_is_not_changed(book):
    ctx = RiskContext(**book.ctx_parts())
    orders = [planned(book, "BND", "BUY", 1, leg=7)]
    first = check_orders(orders, ctx, limits(max_orders_per_cycle=1))
    second = check_orders(orders, ctx, limits(max_orders_per_cycle=1))
    assert first == second
    assert first[0][0].leg == 7


# ---------------------------------------------------------------- helpers


def test_an_open_order_is_valued_at_the_highest_of_limit_ask_and_reference_in_base(book):
    book.quote_only("SAP", price=100.0, currency="EUR")
    book.fx["EUR"] = 1.1
    book.open_order("BND", "BUY", 10, limit_price=49.0)  # resting below the ask 50.005
    book.open_order("BND", "BUY", 10, limit_price=52.0)
    book.open_order("BND", "SELL", 10, limit_price=-1.0)  # an unusable limit is ignored
    book.open_order("SAP", "BUY", 10)
    ctx = RiskContext(**book.ctx_parts())
    units = [open_order_unit(ctx, o) for o in ctx.open_orders]
    assert units == [50.005, 52.0, 50.005, pytest.approx(100.01 * 1.1)]


def test_an_open_order_without_a_quote_is_valued_at_its_limit_and_else_not_at_all(book):
    book.quote_only("XYZ", price=None).open_order("XYZ", "BUY", 10, limit_price=20.0)
    book.open_order("XYZ", "BUY", 10)
    book.quote_only("SAP", price=100.0, currency="EUR").open_order("SAP", "BUY", 1)  # no fx
    ctx = RiskContext(**book.ctx_parts())
    assert [open_order_unit(ctx, o) for o in ctx.open_orders] == [20.0, None, None]


def test_risk_price_is_the_highest_of_limit_ask_and_reference(book):
    q = book.quotes[book.contract_of("BND").con_id]
    assert risk_price(planned(book, "BND", "BUY", 1, limit_price=51.0), q) == 51.0
    assert risk_price(planned(book, "BND", "SELL", 1, limit_price=49.0), q) == q.ask
