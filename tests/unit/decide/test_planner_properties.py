"""Planner properties over random books, prices, targets and limits (hypothesis).

Each property restates a promise of the planner without using its internals: orders are
re-checked against the limits from scratch, fills are simulated by hand.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

from builders import NOW, Book, limits, portfolio, target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.decide.drift import quantity_in_band, weight_in_band
from reconciler.decide.planner import plan_account
from reconciler.model.desired import Band

PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TOLERANCE = 1e-6


@dataclasses.dataclass
class Scenario:
    book: Book
    portfolio: object
    limits: object
    symbols: list[str]

    def plan(self):
        return plan_account(
            self.portfolio, self.limits, self.book.account_state(), self.book.actual(),
            self.book.resolved(), now=NOW,
        )


prices = st.integers(min_value=100, max_value=50_000).map(lambda cents: cents / 100)


@st.composite
def scenarios(draw, *, with_limits: bool = True) -> Scenario:
    count = draw(st.integers(1, 6))
    symbols = [f"S{i}" for i in range(count)]
    fx = draw(st.sampled_from([{"EUR": 1.1}, {"EUR": 0.9}, {}]))
    cash = draw(st.sampled_from([60_000, 20_000, 5_000, 0])) + draw(st.integers(0, 10_000))
    book = Book(cash=float(cash), fx=fx)
    for symbol in symbols:
        increment = draw(st.sampled_from([1.0, 1.0, 1.0, 0.1, 5.0]))
        held = draw(st.integers(0, 300)) * increment
        price = None if draw(st.integers(0, 19)) == 0 else draw(prices)
        book.instrument(
            symbol,
            price,
            held=held,
            currency=draw(st.sampled_from(["USD", "USD", "USD", "EUR"])),
            size_increment=increment,
            min_tick=draw(st.sampled_from([0.01, 0.05])),
            spread_bps=draw(st.sampled_from([1.0, 5.0, 40.0])),
            time=NOW - dt.timedelta(seconds=draw(st.sampled_from([0, 5, 90]))),
        )
        if held and price and draw(st.booleans()):
            side = draw(st.sampled_from(["BUY", "SELL"]))
            remaining = min(held, draw(st.integers(1, 50)) * increment)
            book.open_order(symbol, side, remaining, limit_price=price)
    for extra in range(draw(st.integers(0, 2))):
        book.hold(f"U{extra}", draw(st.integers(-20, 200)), draw(prices))
    if draw(st.booleans()):
        book.executed(symbols[0], "BUY", 10, 100.0)

    reserve = draw(st.sampled_from([0.0, 0.02, 0.05]))
    raw = [draw(st.integers(0, 100)) for _ in symbols]
    room = 1.0 - reserve
    scale = room / max(sum(raw), 1) * draw(st.sampled_from([1.0, 0.9, 0.5]))
    targets = []
    for symbol, weight in zip(symbols, raw, strict=True):
        currency = book.contract_of(symbol).currency
        if draw(st.integers(0, 4)) == 0:
            targets.append(target(symbol, quantity=draw(st.integers(0, 300)), currency=currency))
        else:
            targets.append(target(symbol, weight=round(weight * scale, 6), currency=currency))
    p = portfolio(
        *targets,
        cash_reserve=reserve,
        band=Band(
            absolute=draw(st.sampled_from([None, 0.005, 0.01, 0.05])),
            relative=draw(st.sampled_from([None, 0.1, 0.25])),
        ),
        min_trade_notional=float(draw(st.sampled_from([0, 100, 500]))),
        sells=draw(st.sampled_from(["allowed", "allowed", "buyOnly"])),
        unmanaged=draw(st.sampled_from(["ignore", "liquidate"])),
        capital=draw(st.sampled_from([None, None, 20_000.0])),
        execution={"order_type": draw(st.sampled_from(["LMT", "MKT", "MIDPRICE"])),
                   "limit_offset_bps": draw(st.sampled_from([0.0, 5.0, 25.0]))},
    )
    if not with_limits:
        return Scenario(book, p, limits(), symbols)
    lim = limits(
        trading_state=draw(st.sampled_from(["ACTIVE", "ACTIVE", "ACTIVE", "REDUCING", "HALTED"])),
        max_order_notional=draw(st.sampled_from([None, 500.0, 5_000.0])),
        max_position_notional=draw(st.sampled_from([None, 2_000.0, 20_000.0])),
        max_leverage=draw(st.sampled_from([None, 1.0, 1.5])),
        max_orders_per_cycle=draw(st.sampled_from([None, 1, 3])),
        max_cycle_turnover=draw(st.sampled_from([None, 0.05, 0.5])),
        max_daily_notional=draw(st.sampled_from([None, 1_000.0, 50_000.0])),
        max_price_age_seconds=draw(st.sampled_from([None, 30.0])),
        max_spread=draw(st.sampled_from([None, 0.001, 0.01])),
        restricted=tuple(draw(st.lists(st.sampled_from(symbols), max_size=2, unique=True))),
        on_breach=draw(st.sampled_from(["clip", "clip", "deny"])),
    )
    return Scenario(book, p, lim, symbols)


def _times(amount: float, rate: float | None) -> float | None:
    return None if rate is None else amount * rate


def _fx(book: Book, currency: str) -> float | None:
    return 1.0 if currency == book.base else book.fx.get(currency)


def _open_unit(book: Book, order) -> float | None:
    """Base value of one unit of an open order (the most it may cost: the highest of its
    limit, the ask and the reference price); None when it cannot be valued."""
    info = next(c for c in book.contracts.values() if c.con_id == order.con_id)
    q = book.quotes.get(order.con_id)
    prices = [order.limit_price, q.ask if q else None, q.reference_price if q else None]
    price = max((p for p in prices if p), default=None)
    rate = _fx(book, info.currency)
    return None if price is None or rate is None else price * rate


def _gross_change(book: Book, con_id: int, change: float, unit: float | None) -> float | None:
    """What an open order does to gross exposure (None when it cannot be valued): what it adds
    at the most it may cost, what it takes off at the reference price (nothing without one)."""
    if unit is None:
        return None
    if change > 0:
        return change * unit
    info = next(c for c in book.contracts.values() if c.con_id == con_id)
    q = book.quotes.get(con_id)
    rate = _fx(book, info.currency)
    if q is None or q.reference_price is None or rate is None:
        return 0.0
    return change * q.reference_price * rate


def _sum_or_none(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


# ---------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(scenarios())
def test_no_planned_order_violates_any_limit(s: Scenario):
    result = s.plan()
    account = s.book.account_state()
    lim = {row.name: row.value for row in s.limits.rows()}
    nav = account.net_liquidation
    held = {p.con_id: p.quantity for p in account.positions}
    effective = dict(held)
    for o in s.book.open_orders:
        effective[o.con_id] = effective.get(o.con_id, 0.0) + o.signed_remaining
    in_flight = {o.con_id: o for o in s.book.open_orders}.values()
    units = {o.con_id: _open_unit(s.book, o) for o in in_flight}
    gross = _sum_or_none(
        _gross_change(s.book, c, abs(effective[c]) - abs(held.get(c, 0.0)), units[c])
        for c in units
    )
    gross = None if gross is None else gross + account.gross_position_value
    daily = _sum_or_none(
        # An execution's price is in its instrument's currency (a EUR listing fills in EUR).
        [_times(e.shares * e.price, _fx(s.book, s.book.contract_of(e.symbol).currency))
         for e in s.book.executions]
        + [None if units[o.con_id] is None else o.remaining * units[o.con_id]
           for o in s.book.open_orders]
    )
    turnover = 0.0

    for count, order in enumerate(result.orders, start=1):
        assert lim["trading_state"] != "HALTED"
        q = s.book.quotes[order.con_id]
        assert q.reference_price is not None
        if lim["max_price_age_seconds"] is not None:
            assert q.time is not None
            assert (NOW - q.time).total_seconds() <= lim["max_price_age_seconds"]
        if lim["max_spread"] is not None:
            assert q.spread is not None and q.spread <= lim["max_spread"] + TOLERANCE
        unit = max(p for p in (order.limit_price, q.ask, q.reference_price) if p) * _fx(
            s.book, order.currency)
        notional = order.quantity * unit
        before = effective.get(order.con_id, 0.0)
        after = before + order.signed_quantity
        reduces = abs(after) <= abs(before) + TOLERANCE and after * before >= 0
        if lim["trading_state"] == "REDUCING" or order.symbol in lim["restricted"]:
            assert reduces
        if lim["max_order_notional"] is not None:
            assert notional <= lim["max_order_notional"] * (1 + TOLERANCE)
        if lim["max_position_notional"] is not None and not reduces:
            assert abs(after) * unit <= lim["max_position_notional"] * (1 + TOLERANCE)
        delta = (abs(after) - abs(before)) * unit
        if lim["max_leverage"] is not None and not reduces:
            assert gross is not None, "leverage cannot be evaluated: the order must be denied"
            assert (gross + delta) / nav <= lim["max_leverage"] * (1 + TOLERANCE)
        if lim["max_orders_per_cycle"] is not None:
            assert count <= lim["max_orders_per_cycle"]
        if lim["max_cycle_turnover"] is not None:
            assert (turnover + notional) / nav <= lim["max_cycle_turnover"] * (1 + TOLERANCE)
        if lim["max_daily_notional"] is not None:
            assert daily is not None, "daily notional cannot be evaluated: must be denied"
            assert daily + notional <= lim["max_daily_notional"] * (1 + TOLERANCE)
        effective[order.con_id] = after
        gross = None if gross is None else gross + delta
        turnover += notional
        daily = None if daily is None else daily + notional


@PROPERTY_SETTINGS
@given(scenarios())
def test_orders_are_positive_multiples_of_the_size_increment_one_per_instrument(s: Scenario):
    result = s.plan()
    assert len({o.con_id for o in result.orders}) == len(result.orders)
    assert [o.leg for o in result.orders] == list(range(1, len(result.orders) + 1))
    sides = [o.side for o in result.orders]
    assert sides == sorted(sides, key=lambda side: side != "SELL")  # sells first
    for order in result.orders:
        increment = s.book.contracts[order.key].size_increment
        steps = order.quantity / increment
        assert order.quantity > 0 and abs(steps - round(steps)) < 1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_no_sell_exceeds_the_position_so_nothing_is_ever_shorted(s: Scenario):
    result = s.plan()
    held = {p.con_id: p.quantity for p in s.book.account_state().positions}
    selling = {}
    for o in s.book.open_orders:
        if o.side == "SELL":
            selling[o.con_id] = selling.get(o.con_id, 0.0) + o.remaining
    for order in result.orders:
        if order.side == "SELL":
            assert order.quantity <= held.get(order.con_id, 0.0) - selling.get(order.con_id, 0.0) \
                + TOLERANCE


@PROPERTY_SETTINGS
@given(scenarios())
def test_buy_only_never_sells(s: Scenario):
    p = dataclasses.replace(s.portfolio, sells="buyOnly")
    result = dataclasses.replace(s, portfolio=p).plan()
    assert all(o.side == "BUY" for o in result.orders)


@PROPERTY_SETTINGS
@given(scenarios())
def test_restricted_instruments_never_appear_as_buys(s: Scenario):
    result = s.plan()
    restricted = set(s.limits.restricted.value)
    assert not any(o.side == "BUY" and o.symbol in restricted for o in result.orders)


@PROPERTY_SETTINGS
@given(scenarios(with_limits=False), st.floats(-0.9, 0.9))
def test_a_book_inside_its_bands_plans_nothing(s: Scenario, jitter: float):
    """Targets set to what is held (weights within 0.9 of the band): nothing to do."""
    account = s.book.account_state()
    capital = account.net_liquidation
    held = {p.con_id: p.quantity for p in account.positions}
    s.book.open_orders.clear()
    band = Band(absolute=0.01, relative=None)
    targets = []
    for symbol in s.symbols:
        info = s.book.contract_of(symbol)
        q = s.book.quotes.get(info.con_id)
        rate = _fx(s.book, info.currency)
        quantity = held.get(info.con_id, 0.0)
        if q is None or rate is None or capital <= 0:
            targets.append(target(symbol, quantity=quantity, currency=info.currency))
            continue
        weight = quantity * q.reference_price * rate / capital
        weight = max(0.0, weight + jitter * 0.01 * (weight > 0.01))
        targets.append(target(symbol, weight=weight, currency=info.currency))
    p = portfolio(*targets, band=band, unmanaged="ignore")
    result = dataclasses.replace(s, portfolio=p).plan()
    assert result.orders == ()


@PROPERTY_SETTINGS
@given(st.one_of(scenarios(), scenarios(with_limits=False)))
def test_after_filling_the_plan_every_instrument_is_in_band_or_the_gap_is_explained(
    s: Scenario,
):
    result = s.plan()
    capital = result.capital
    filled = {o.con_id: o.signed_quantity for o in result.orders}
    explained_keys = {d.key for d in result.decisions}
    scaled = any(n.startswith("buys scaled to cash") for n in result.notes)
    targets = {t.instrument.key: t for t in s.portfolio.targets}

    for row in result.drift:
        if row.status != "managed" or row.key not in targets:
            continue
        t = targets[row.key]
        after = row.quantity + row.in_flight + filled.get(row.con_id, 0.0)
        info = s.book.contracts[row.key]
        unit = row.price * _fx(s.book, info.currency)
        if t.weight is not None:
            inside = weight_in_band(after * unit / capital, t.weight, s.portfolio.band)
        else:
            inside = quantity_in_band(after, t.quantity, s.portfolio.band)
        if inside:
            continue
        gap = row.target_quantity - after
        explained = (
            row.key in explained_keys
            or any(n.startswith(f"{row.key}:") for n in result.notes)
            or (gap > 0 and scaled)
            or abs(gap) < info.size_increment - 1e-9  # rounding toward zero
        )
        assert explained, (row, gap, result.orders, result.notes)


def test_property_strategy_produces_plans_with_orders_and_decisions():
    """Guard against a strategy that only ever makes empty plans (vacuous properties)."""
    seen = {"orders": 0, "decisions": 0}

    @settings(max_examples=60, deadline=None, database=None)
    @given(scenarios())
    def collect(s: Scenario):
        result = s.plan()
        seen["orders"] += len(result.orders)
        seen["decisions"] += len(result.decisions)

    collect()
    assert seen["orders"] > 0 and seen["decisions"] > 0
    assert math.isfinite(seen["orders"])
