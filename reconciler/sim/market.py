"""Instruments, the built-in universe, trading hours and the seeded price model.

Responsible for what the simulated market knows: contracts (conId, exchanges, minTick,
sizeIncrement, hours), their quotes (bid/ask/last/close from a seeded random walk; volatility 0
keeps prices fixed so plans are exact), historical daily bars and whether a market is open.
Must not know about accounts, orders or the wire protocol.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

UTC = dt.UTC
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


@dataclass
class Instrument:
    con_id: int
    symbol: str
    primary_exchange: str
    currency: str = "USD"
    price: float = 100.0
    spread: float | None = None  # None: a few ticks, proportional to price
    sec_type: str = "STK"
    exchange: str = "SMART"
    long_name: str = ""
    stock_type: str = "COMMON"  # COMMON | ETF
    min_tick: float = 0.01
    size_increment: float = 1.0
    min_size: float = 1.0
    volatility: float | None = None  # annualised; None: market default
    liquidity: float | None = None  # max shares per fill; None: market default (unlimited)
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    isin: str = ""
    time_zone_id: str = "US/Eastern"
    rth: tuple[str, str] = ("09:30", "16:00")
    extended: tuple[str, str] = ("04:00", "20:00")
    local_symbol: str = ""
    trading_class: str = ""
    valid_exchanges: str = "SMART,NYSE,ARCA,NASDAQ,BATS,IEX"
    order_types: str = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,DAY,GTC,IOC,LMT,MIDPX,MKT,OPG"
    market_rule_ids: str = "26,26,26,26,26,26"

    def __post_init__(self) -> None:
        if not self.local_symbol:
            self.local_symbol = self.symbol
        if not self.trading_class:
            self.trading_class = "NMS" if self.primary_exchange == "NASDAQ" else self.symbol
        if self.spread is None:
            # an even number of ticks keeps the mid exactly on the configured price
            half_ticks = max(1, round(self.price * 0.00005 / self.min_tick))
            self.spread = round(2 * half_ticks * self.min_tick, 8)

    @property
    def key(self) -> str:
        """How operators name it: bare symbol for US stocks in USD, else symbol:type:currency."""
        if self.sec_type == "STK" and self.currency == "USD":
            return self.symbol
        return f"{self.symbol}:{self.sec_type}:{self.currency}"


# (symbol, conId, primaryExchange, price, longName, stockType)
# conIds marked real are IB's public contract ids; the 9xxxxxxxx range is made up and stable.
_US_UNIVERSE = [
    ("VTI", 900000001, "ARCA", 290.00, "VANGUARD TOTAL STOCK MKT ETF", "ETF"),
    ("VOO", 900000002, "ARCA", 530.00, "VANGUARD S&P 500 ETF", "ETF"),
    ("SPY", 756733, "ARCA", 580.00, "SPDR S&P 500 ETF TRUST", "ETF"),  # real
    ("IVV", 900000004, "ARCA", 585.00, "ISHARES CORE S&P 500 ETF", "ETF"),
    ("QQQ", 320227571, "NASDAQ", 500.00, "INVESCO QQQ TRUST SERIES 1", "ETF"),  # real
    ("BND", 900000006, "NASDAQ", 73.00, "VANGUARD TOTAL BOND MARKET", "ETF"),
    ("AGG", 900000007, "ARCA", 98.00, "ISHARES CORE U.S. AGGREGATE", "ETF"),
    ("SGOV", 900000008, "ARCA", 100.40, "ISHARES 0-3 MONTH TREASURY BO", "ETF"),
    ("BIL", 900000009, "ARCA", 91.50, "SPDR BBG 1-3 MONTH T-BILL ETF", "ETF"),
    ("SHV", 900000010, "NASDAQ", 110.20, "ISHARES SHORT TREASURY BOND", "ETF"),
    ("TLT", 900000011, "NASDAQ", 92.00, "ISHARES 20+ YEAR TREASURY BD", "ETF"),
    ("IEF", 900000012, "NASDAQ", 94.00, "ISHARES 7-10 YEAR TREASURY BD", "ETF"),
    ("SHY", 900000013, "NASDAQ", 82.00, "ISHARES 1-3 YEAR TREASURY BD", "ETF"),
    ("VXUS", 900000014, "NASDAQ", 64.00, "VANGUARD TOTAL INTL STOCK", "ETF"),
    ("VEA", 900000015, "ARCA", 50.00, "VANGUARD FTSE DEVELOPED ETF", "ETF"),
    ("VWO", 900000016, "ARCA", 45.00, "VANGUARD FTSE EMERGING MARKET", "ETF"),
    ("IEMG", 900000017, "ARCA", 55.00, "ISHARES CORE MSCI EMERGING", "ETF"),
    ("EFA", 900000018, "ARCA", 80.00, "ISHARES MSCI EAFE ETF", "ETF"),
    ("GLD", 900000019, "ARCA", 240.00, "SPDR GOLD SHARES", "ETF"),
    ("IAU", 900000020, "ARCA", 46.00, "ISHARES GOLD TRUST", "ETF"),
    ("VNQ", 900000021, "ARCA", 90.00, "VANGUARD REAL ESTATE ETF", "ETF"),
    ("SCHD", 900000022, "ARCA", 28.00, "SCHWAB US DVD EQUITY ETF", "ETF"),
    ("VIG", 900000023, "ARCA", 195.00, "VANGUARD DIVIDEND APPREC ETF", "ETF"),
    ("VTV", 900000024, "ARCA", 175.00, "VANGUARD VALUE ETF", "ETF"),
    ("VUG", 900000025, "ARCA", 400.00, "VANGUARD GROWTH ETF", "ETF"),
    ("IWM", 900000026, "ARCA", 220.00, "ISHARES RUSSELL 2000 ETF", "ETF"),
    ("LQD", 900000027, "ARCA", 108.00, "ISHARES IBOXX INVESTMENT GRA", "ETF"),
    ("TIP", 900000028, "ARCA", 109.00, "ISHARES TIPS BOND ETF", "ETF"),
    ("AAPL", 265598, "NASDAQ", 230.00, "APPLE INC", "COMMON"),  # real
    ("MSFT", 272093, "NASDAQ", 420.00, "MICROSOFT CORP", "COMMON"),  # real
    ("AMZN", 3691937, "NASDAQ", 190.00, "AMAZON.COM INC", "COMMON"),  # real
    ("GOOGL", 208813719, "NASDAQ", 170.00, "ALPHABET INC-CL A", "COMMON"),  # real
    ("GOOG", 208813720, "NASDAQ", 172.00, "ALPHABET INC-CL C", "COMMON"),  # real
    ("META", 107113386, "NASDAQ", 580.00, "META PLATFORMS INC-CLASS A", "COMMON"),  # real
    ("NVDA", 4815747, "NASDAQ", 135.00, "NVIDIA CORP", "COMMON"),  # real
    ("TSLA", 76792991, "NASDAQ", 250.00, "TESLA INC", "COMMON"),  # real
    ("IBM", 8314, "NYSE", 220.00, "INTL BUSINESS MACHINES CORP", "COMMON"),  # real
    ("INTC", 270639, "NASDAQ", 22.00, "INTEL CORP", "COMMON"),  # real
    ("CSCO", 268084, "NASDAQ", 58.00, "CISCO SYSTEMS INC", "COMMON"),  # real
    ("JPM", 900000040, "NYSE", 220.00, "JPMORGAN CHASE & CO", "COMMON"),
    ("JNJ", 900000041, "NYSE", 155.00, "JOHNSON & JOHNSON", "COMMON"),
    ("V", 900000042, "NYSE", 290.00, "VISA INC-CLASS A SHARES", "COMMON"),
    ("PG", 900000043, "NYSE", 165.00, "PROCTER & GAMBLE CO/THE", "COMMON"),
    ("XOM", 900000044, "NYSE", 115.00, "EXXON MOBIL CORP", "COMMON"),
    ("KO", 900000045, "NYSE", 65.00, "COCA-COLA CO/THE", "COMMON"),
    ("PEP", 900000046, "NASDAQ", 160.00, "PEPSICO INC", "COMMON"),
    ("WMT", 900000047, "NYSE", 85.00, "WALMART INC", "COMMON"),
    ("DIS", 900000048, "NYSE", 95.00, "WALT DISNEY CO/THE", "COMMON"),
    ("UNH", 900000049, "NYSE", 560.00, "UNITEDHEALTH GROUP INC", "COMMON"),
    ("HD", 900000050, "NYSE", 400.00, "HOME DEPOT INC", "COMMON"),
    ("GME", 900000051, "NYSE", 25.00, "GAMESTOP CORP-CLASS A", "COMMON"),
    # Two listings in USD under one symbol: qualifying "DUAL" on SMART/USD is ambiguous unless
    # primaryExchange or conId pins it (exercises the reconciler's candidate listing).
    ("DUAL", 900000060, "NYSE", 40.00, "DUAL LISTED HOLDINGS (NYSE LINE)", "COMMON"),
    ("DUAL", 900000061, "NASDAQ", 40.00, "DUAL LISTED HOLDINGS (NASDAQ LINE)", "COMMON"),
]

# Non-USD listings for multi-currency accounts. SHOP also trades on NYSE in USD, so a bare
# SMART request without currency is ambiguous too.
_FOREIGN_UNIVERSE = [
    dict(symbol="SAP", con_id=900000101, primary_exchange="IBIS", currency="EUR", price=220.0,
         long_name="SAP SE", time_zone_id="MET", rth=("09:00", "17:30"),
         extended=("08:00", "22:00"), valid_exchanges="SMART,IBIS,FWB"),
    dict(symbol="SHOP", con_id=900000102, primary_exchange="TSE", currency="CAD", price=150.0,
         long_name="SHOPIFY INC - CLASS A", time_zone_id="America/Toronto",
         valid_exchanges="SMART,TSE,ALPHA,CHIXCA"),
    dict(symbol="SHOP", con_id=900000103, primary_exchange="NYSE", currency="USD", price=110.0,
         long_name="SHOPIFY INC - CLASS A", stock_type="COMMON"),
    dict(symbol="VOD", con_id=900000104, primary_exchange="LSE", currency="GBP", price=0.70,
         long_name="VODAFONE GROUP PLC", time_zone_id="Europe/London",
         rth=("08:00", "16:30"), extended=("08:00", "16:30"), min_tick=0.0002,
         valid_exchanges="SMART,LSE"),
]

DEFAULT_FX = {"USD": 1.0, "EUR": 1.08, "CAD": 0.73, "GBP": 1.27, "CHF": 1.12, "JPY": 0.0067}


def builtin_universe() -> list[Instrument]:
    instruments = [
        Instrument(con_id=con_id, symbol=symbol, primary_exchange=primary, price=price,
                   long_name=name, stock_type=stock_type)
        for symbol, con_id, primary, price, name, stock_type in _US_UNIVERSE
    ]
    instruments += [Instrument(**spec) for spec in _FOREIGN_UNIVERSE]
    return instruments


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 8)


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


class Universe:
    """The instruments the market knows, with lookup as contract details would do it."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self._by_con_id: dict[int, Instrument] = {}
        for inst in instruments:
            self.add(inst)

    def add(self, inst: Instrument) -> None:
        self._by_con_id[inst.con_id] = inst

    def __iter__(self):
        return iter(self._by_con_id.values())

    def __len__(self) -> int:
        return len(self._by_con_id)

    def get(self, con_id: int) -> Instrument | None:
        return self._by_con_id.get(con_id)

    def by_symbol(self, symbol: str, currency: str = "", primary_exchange: str = ""
                  ) -> list[Instrument]:
        symbol = symbol.upper()
        return [
            inst for inst in self._by_con_id.values()
            if inst.symbol == symbol
            and (not currency or inst.currency == currency.upper())
            and (not primary_exchange or inst.primary_exchange == primary_exchange.upper())
        ]

    def resolve(self, con_id: int, symbol: str, sec_type: str, exchange: str,
                primary_exchange: str, currency: str) -> list[Instrument]:
        """All instruments matching a request contract, as reqContractDetails matches."""
        if con_id:
            inst = self._by_con_id.get(con_id)
            if inst is None:
                return []
            if symbol and symbol.upper() != inst.symbol:
                return []
            return [inst]
        if not symbol:
            return []
        if sec_type and sec_type.upper() != "STK":
            return []
        candidates = self.by_symbol(symbol, currency, primary_exchange)
        exchange = (exchange or "").upper()
        if exchange and exchange != "SMART":
            candidates = [
                inst for inst in candidates
                if exchange == inst.primary_exchange or exchange in inst.valid_exchanges.split(",")
            ]
        return candidates


class PriceModel:
    """Seeded random walk of mid prices; volatility 0 means prices never move on their own."""

    def __init__(self, universe: Universe, seed: int = 0, default_volatility: float = 0.0
                 ) -> None:
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
                mid=price, spread=inst.spread or inst.min_tick, last=price, close=price,
                high=price, low=price, open=price,
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

    def set_quote(self, inst: Instrument, *, bid: float | None = None, ask: float | None = None,
                  last: float | None = None, close: float | None = None,
                  now: dt.datetime | None = None) -> None:
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
        return Quote(bid=bid, ask=ask, last=round(book.last, 8), close=book.close,
                     high=book.high, low=book.low, open=book.open, volume=book.volume,
                     time=book.time)

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
            bars.append((date.strftime("%Y%m%d"), o, hi, lo, c_r, volume, wap,
                         rng.randint(1000, 20000)))
            prev = c
        return bars


@dataclass
class MarketHours:
    """Whether trading hours govern fills. Default: the market never closes (demo at any hour).

    With hours enabled, weekends and ``holidays`` are closed and ``early_closes`` (exchange-
    local date -> regular close "HH:MM") shorten a day: the regular session ends then and the
    extended session ends as much earlier, as US half days do (13:00, after-hours to 17:00).
    Fills, DAY expiry and the contract-details hours text all read the same sessions.
    """

    enabled: bool = False
    outside_hours: str = "queue"  # queue: wait for the open | reject: error 201
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    early_closes: dict[dt.date, str] = field(default_factory=dict)

    def session(self, inst: Instrument, day: dt.date, extended: bool = False
                ) -> tuple[dt.datetime, dt.datetime] | None:
        """(start, end) of the session on an exchange-local day; None when it is closed."""
        if day.weekday() >= 5 or day in self.holidays:
            return None
        tz = ZoneInfo(inst.time_zone_id)
        span = inst.extended if extended else inst.rth
        start, end = _at(day, span[0], tz), _at(day, span[1], tz)
        early = self.early_closes.get(day)
        if early is not None:
            cut = _at(day, inst.rth[1], tz) - _at(day, early, tz)
            if cut > dt.timedelta(0):
                end -= cut
        return (start, end) if end > start else None

    def is_open(self, inst: Instrument, now: dt.datetime, outside_rth: bool = False) -> bool:
        if not self.enabled:
            return True
        day = now.astimezone(ZoneInfo(inst.time_zone_id)).date()
        session = self.session(inst, day, extended=outside_rth)
        return session is not None and session[0] <= now < session[1]

    def session_close(self, inst: Instrument, now: dt.datetime) -> dt.datetime | None:
        """End of the regular session in progress or next to come (DAY orders expire then)."""
        if not self.enabled:
            return None
        first = now.astimezone(ZoneInfo(inst.time_zone_id)).date()
        for offset in range(0, 10):
            session = self.session(inst, first + dt.timedelta(days=offset))
            if session is not None and session[1] > now:
                return session[1]
        return None

    def hours_text(self, inst: Instrument, now: dt.datetime, extended: bool, days: int = 7
                   ) -> str:
        """Contract-details hours in IB's format, from the exchange-local day of `now`:
        ``20260105:0930-20260105:1600;20260110:CLOSED``. tradingHours is the extended
        session, liquidHours the regular one; an always-open market spans whole days."""
        first = now.astimezone(ZoneInfo(inst.time_zone_id)).date()
        parts = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            stamp = day.strftime("%Y%m%d")
            if not self.enabled:
                following = (day + dt.timedelta(days=1)).strftime("%Y%m%d")
                parts.append(f"{stamp}:0000-{following}:0000")
                continue
            session = self.session(inst, day, extended)
            if session is None:
                parts.append(f"{stamp}:CLOSED")
            else:
                parts.append(f"{session[0]:%Y%m%d:%H%M}-{session[1]:%Y%m%d:%H%M}")
        return ";".join(parts)


def _at(day: dt.date, hh_mm: str, tz: ZoneInfo) -> dt.datetime:
    hour, minute = (int(part) for part in hh_mm.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def with_overrides(inst: Instrument, **changes) -> Instrument:
    return replace(inst, **changes)
