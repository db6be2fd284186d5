"""The seeded price model of the simulated market: quotes and historical daily bars.

Responsible for each instrument's quote (bid/ask/last/close from a seeded random walk;
volatility 0 keeps prices fixed so plans are exact), prices set by tests, traded volume,
the price overrides worth persisting, and deterministic daily bars. Must not know about
accounts, orders, sessions or the wire protocol (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from reconciler.sim.market import Instrument, Universe, round_to_tick

TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


@dataclass
class Quote:
    bid: float | None
    ask: float | None
    last: float | None
    close: float | None
    high: float | None = None
    low: float | None = None
    open: float | None = None
    volume: float = 0.0
    bid_size: float = 500.0
    ask_size: float = 500.0
    last_size: float = 100.0
    time: dt.datetime | None = None

    @property
    def mid(self) -> float | None:
        if self.bid and self.ask and self.ask >= self.bid:
            return (self.bid + self.ask) / 2
        return None

    @property
    def mark(self) -> float | None:
        """What positions are valued at: last trade, else mid, else close."""
        return self.last or self.mid or self.close


@dataclass
class _Book:
    mid: float
    spread: float
    last: float
    close: float
    high: float
    low: float
    open: float
    volume: float = 0.0
    time: dt.datetime | None = None


class PriceModel:
    """Seeded random walk of mid prices; volatility 0 means prices never move on their own."""

    def __init__(self, universe: Universe, seed: int = 0, default_volatility: float = 0.0) -> None:
        self.universe = universe
        self.seed = seed
        self.default_volatility = default_volatility
        self._rng = random.Random(seed)
        self._books: dict[int, _Book] = {}
        for inst in universe:
            self.ensure(inst)

    def ensure(self, inst: Instrument) -> None:
        if inst.con_id not in self._books:
            price = round_to_tick(inst.price, inst.min_tick)
            self._books[inst.con_id] = _Book(
                mid=price,
                spread=inst.spread or inst.min_tick,
                last=price,
                close=price,
                high=price,
                low=price,
                open=price,
            )

    def volatility(self, inst: Instrument) -> float:
        return self.default_volatility if inst.volatility is None else inst.volatility

    def step(self, seconds: float, now: dt.datetime | None = None) -> list[int]:
        """Advance every instrument with volatility by `seconds`; returns changed conIds."""
        changed = []
        for inst in self.universe:
            sigma = self.volatility(inst)
            if sigma <= 0 or seconds <= 0:
                continue
            book = self._books[inst.con_id]
            scale = sigma * math.sqrt(seconds / TRADING_SECONDS_PER_YEAR)
            shock = self._rng.gauss(0.0, 1.0) * scale
            new_mid = max(inst.min_tick * 2, book.mid * math.exp(shock))
            book.mid = new_mid
            book.last = round_to_tick(new_mid, inst.min_tick)
            book.high = max(book.high, book.last)
            book.low = min(book.low, book.last)
            book.time = now
            changed.append(inst.con_id)
        return changed

    def set_quote(
        self,
        inst: Instrument,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        close: float | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.ensure(inst)
        book = self._books[inst.con_id]
        if bid is not None and ask is not None:
            if ask < bid:
                raise ValueError(f"{inst.symbol}: ask {ask} below bid {bid}")
            book.mid = (bid + ask) / 2
            book.spread = ask - bid
        elif bid is not None:
            book.mid = bid + book.spread / 2
        elif ask is not None:
            book.mid = ask - book.spread / 2
        if last is not None:
            book.last = last
            if bid is None and ask is None:
                book.mid = last
        elif bid is not None or ask is not None:
            book.last = round_to_tick(book.mid, inst.min_tick)
        if close is not None:
            book.close = close
        book.high = max(book.high, book.last)
        book.low = min(book.low, book.last)
        book.time = now

    def quote(self, inst: Instrument) -> Quote:
        self.ensure(inst)
        book = self._books[inst.con_id]
        tick = inst.min_tick
        half = book.spread / 2
        bid = round_to_tick(book.mid - half, tick)
        ask = round_to_tick(book.mid + half, tick)
        if ask <= bid:
            ask = round(bid + tick, 8)
        return Quote(
            bid=bid,
            ask=ask,
            last=round(book.last, 8),
            close=book.close,
            high=book.high,
            low=book.low,
            open=book.open,
            volume=book.volume,
            time=book.time,
        )

    def record_trade(self, con_id: int, shares: float) -> None:
        book = self._books.get(con_id)
        if book is not None:
            book.volume += shares

    def snapshot(self) -> dict[str, dict]:
        """Price overrides worth persisting (so a restarted simulator shows the same prices)."""
        return {
            str(con_id): {"mid": b.mid, "spread": b.spread, "last": b.last, "close": b.close}
            for con_id, b in self._books.items()
        }

    def restore(self, data: dict[str, dict]) -> None:
        for key, values in data.items():
            book = self._books.get(int(key))
            if book is None:
                continue
            book.mid = values["mid"]
            book.spread = values["spread"]
            book.last = values["last"]
            book.close = values["close"]

    def daily_bars(self, inst: Instrument, end_date: dt.date, days: int) -> list[tuple]:
        """Deterministic daily bars ending at the current close (weekdays only).

        History always has some movement (at least 15% annualised) so charts look like
        charts; it never changes the current quote, so plans stay exact at volatility 0.
        """
        self.ensure(inst)
        book = self._books[inst.con_id]
        rng = random.Random(f"{self.seed}:{inst.con_id}:{end_date.isoformat()}")
        sigma_day = max(self.volatility(inst), 0.15) / math.sqrt(252)
        dates: list[dt.date] = []
        day = end_date
        while len(dates) < days:
            if day.weekday() < 5:
                dates.append(day)
            day -= dt.timedelta(days=1)
        dates.reverse()
        bars: list[tuple] = []
        close = book.close
        closes = [close]
        for _ in range(len(dates) - 1):
            close = closes[-1] / math.exp(rng.gauss(0.0, sigma_day))
            closes.append(close)
        closes.reverse()
        tick = inst.min_tick
        prev = closes[0]
        for date, c in zip(dates, closes, strict=True):
            o = prev
            hi = max(o, c) * (1 + abs(rng.gauss(0.0, sigma_day / 2)))
            lo = min(o, c) * (1 - abs(rng.gauss(0.0, sigma_day / 2)))
            o, hi, lo, c_r = (round_to_tick(x, tick) for x in (o, hi, lo, c))
            volume = float(rng.randint(200_000, 5_000_000))
            wap = round_to_tick((hi + lo + c_r) / 3, tick)
            bars.append(
                (date.strftime("%Y%m%d"), o, hi, lo, c_r, volume, wap, rng.randint(1000, 20000))
            )
            prev = c
        return bars
