"""The market model: universe lookups, the seeded price model, hours, bars."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.sim.hours import MarketHours
from reconciler.sim.market import Universe, builtin_universe
from reconciler.sim.prices import PriceModel


@pytest.fixture
def universe():
    return Universe(builtin_universe())


def test_universe_has_at_least_40_us_instruments_with_unique_con_ids(universe):
    us = [i for i in universe if i.currency == "USD"]
    assert len(us) >= 40
    assert len({i.con_id for i in universe}) == len(universe)


def test_resolve_when_symbol_has_two_listings_then_both_are_candidates(universe):
    assert len(universe.resolve(0, "DUAL", "STK", "SMART", "", "USD")) == 2
    assert len(universe.resolve(0, "DUAL", "STK", "SMART", "NYSE", "USD")) == 1
    assert len(universe.resolve(0, "SHOP", "STK", "SMART", "", "")) == 2
    assert universe.resolve(265598, "", "", "", "", "")[0].symbol == "AAPL"
    assert universe.resolve(0, "NOSUCH", "STK", "SMART", "", "USD") == []


def test_price_model_when_volatility_zero_then_prices_never_move(universe):
    model = PriceModel(universe, seed=1, default_volatility=0.0)
    vti = universe.by_symbol("VTI")[0]
    before = model.quote(vti)
    assert model.step(3600.0) == []
    assert model.quote(vti) == before
    assert (before.bid, before.ask, before.last) == (289.99, 290.01, 290.0)


def test_price_model_when_seeded_then_walk_is_reproducible(universe):
    vti = universe.by_symbol("VTI")[0]
    walks = []
    for _ in range(2):
        model = PriceModel(Universe(builtin_universe()), seed=42, default_volatility=0.3)
        for _ in range(10):
            model.step(60.0)
        walks.append(model.quote(model.universe.get(vti.con_id)).last)
    assert walks[0] == walks[1] != 290.0


def test_set_quote_moves_bid_ask_and_last(universe):
    model = PriceModel(universe)
    aapl = universe.by_symbol("AAPL")[0]
    model.set_quote(aapl, bid=200.0, ask=200.10)
    quote = model.quote(aapl)
    assert (quote.bid, quote.ask, quote.last) == (200.0, 200.1, 200.05)
    with pytest.raises(ValueError):
        model.set_quote(aapl, bid=201, ask=200)


def test_daily_bars_are_weekdays_ending_at_the_close(universe):
    model = PriceModel(universe, seed=3)
    gld = universe.by_symbol("GLD")[0]
    bars = model.daily_bars(gld, dt.date(2026, 1, 9), 10)
    assert len(bars) == 10
    assert bars[-1][0] == "20260109" and bars[-1][4] == 240.0
    assert all(dt.datetime.strptime(b[0], "%Y%m%d").weekday() < 5 for b in bars)
    assert bars == model.daily_bars(gld, dt.date(2026, 1, 9), 10)


def test_hours_when_regular_then_open_only_in_the_session(universe):
    vti = universe.by_symbol("VTI")[0]
    hours = MarketHours(enabled=True)
    monday_open = dt.datetime(2026, 1, 12, 15, 0, tzinfo=dt.UTC)  # 10:00 ET
    monday_early = dt.datetime(2026, 1, 12, 13, 0, tzinfo=dt.UTC)  # 08:00 ET
    saturday = dt.datetime(2026, 1, 10, 15, 0, tzinfo=dt.UTC)
    assert hours.is_open(vti, monday_open)
    assert not hours.is_open(vti, monday_early)
    assert hours.is_open(vti, monday_early, outside_rth=True)
    assert not hours.is_open(vti, saturday, outside_rth=True)
    assert hours.session_close(vti, monday_early) == dt.datetime(2026, 1, 12, 21, 0, tzinfo=dt.UTC)
    assert MarketHours().is_open(vti, saturday)


def test_hours_text_uses_ib_format(universe):
    vti = universe.by_symbol("VTI")[0]
    saturday = dt.datetime(2026, 1, 10, 15, 0, tzinfo=dt.UTC)
    text = MarketHours(enabled=True).hours_text(vti, saturday, extended=False, days=3)
    assert text == "20260110:CLOSED;20260111:CLOSED;20260112:0930-20260112:1600"


def test_hours_text_when_always_open_then_each_day_runs_to_the_next_midnight(universe):
    vti = universe.by_symbol("VTI")[0]
    saturday = dt.datetime(2026, 1, 10, 15, 0, tzinfo=dt.UTC)
    text = MarketHours().hours_text(vti, saturday, extended=True, days=2)
    assert text == "20260110:0000-20260111:0000;20260111:0000-20260112:0000"


HALF_DAY = dt.date(2026, 11, 27)
THANKSGIVING = dt.date(2026, 11, 26)


def test_hours_on_an_early_close_shorten_the_regular_and_extended_sessions(universe):
    vti = universe.by_symbol("VTI")[0]
    hours = MarketHours(
        enabled=True, holidays=frozenset({THANKSGIVING}), early_closes={HALF_DAY: "13:00"}
    )
    before_close = dt.datetime(2026, 11, 27, 17, 59, tzinfo=dt.UTC)  # 12:59 New York
    after_close = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)
    assert hours.is_open(vti, before_close) and not hours.is_open(vti, after_close)
    assert hours.is_open(vti, after_close, outside_rth=True)
    assert not hours.is_open(vti, dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC), True)
    assert hours.session_close(vti, before_close) == after_close  # DAY orders expire then
    wednesday = dt.datetime(2026, 11, 25, 22, 0, tzinfo=dt.UTC)  # after Wednesday's close
    assert hours.session_close(vti, wednesday) == after_close  # Thursday is a holiday
    assert hours.hours_text(vti, wednesday, extended=False, days=3) == (
        "20261125:0930-20261125:1600;20261126:CLOSED;20261127:0930-20261127:1300"
    )
    assert hours.hours_text(vti, wednesday, extended=True, days=3) == (
        "20261125:0400-20261125:2000;20261126:CLOSED;20261127:0400-20261127:1700"
    )


def test_hours_early_close_after_the_regular_close_changes_nothing(universe):
    vti = universe.by_symbol("VTI")[0]
    hours = MarketHours(enabled=True, early_closes={HALF_DAY: "17:00"})
    assert (
        hours.hours_text(
            vti, dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC), extended=False, days=1
        )
        == "20261127:0930-20261127:1600"
    )
