"""Instruments and the built-in universe of the simulated market.

Responsible for what the simulated market lists: contracts (conId, exchanges, minTick,
sizeIncrement, session spans, default price), the built-in US and non-USD universe with its
deliberately ambiguous symbols, default exchange rates, and contract lookup as
reqContractDetails matches. Prices are ``reconciler.sim.prices``, sessions
``reconciler.sim.hours``. Must not know about accounts, orders or the wire protocol (see
ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    dict(
        symbol="SAP",
        con_id=900000101,
        primary_exchange="IBIS",
        currency="EUR",
        price=220.0,
        long_name="SAP SE",
        time_zone_id="MET",
        rth=("09:00", "17:30"),
        extended=("08:00", "22:00"),
        valid_exchanges="SMART,IBIS,FWB",
    ),
    dict(
        symbol="SHOP",
        con_id=900000102,
        primary_exchange="TSE",
        currency="CAD",
        price=150.0,
        long_name="SHOPIFY INC - CLASS A",
        time_zone_id="America/Toronto",
        valid_exchanges="SMART,TSE,ALPHA,CHIXCA",
    ),
    dict(
        symbol="SHOP",
        con_id=900000103,
        primary_exchange="NYSE",
        currency="USD",
        price=110.0,
        long_name="SHOPIFY INC - CLASS A",
        stock_type="COMMON",
    ),
    dict(
        symbol="VOD",
        con_id=900000104,
        primary_exchange="LSE",
        currency="GBP",
        price=0.70,
        long_name="VODAFONE GROUP PLC",
        time_zone_id="Europe/London",
        rth=("08:00", "16:30"),
        extended=("08:00", "16:30"),
        min_tick=0.0002,
        valid_exchanges="SMART,LSE",
    ),
]

DEFAULT_FX = {"USD": 1.0, "EUR": 1.08, "CAD": 0.73, "GBP": 1.27, "CHF": 1.12, "JPY": 0.0067}


def builtin_universe() -> list[Instrument]:
    instruments = [
        Instrument(
            con_id=con_id,
            symbol=symbol,
            primary_exchange=primary,
            price=price,
            long_name=name,
            stock_type=stock_type,
        )
        for symbol, con_id, primary, price, name, stock_type in _US_UNIVERSE
    ]
    instruments += [Instrument(**spec) for spec in _FOREIGN_UNIVERSE]
    return instruments


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 8)


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

    def by_symbol(
        self, symbol: str, currency: str = "", primary_exchange: str = ""
    ) -> list[Instrument]:
        symbol = symbol.upper()
        return [
            inst
            for inst in self._by_con_id.values()
            if inst.symbol == symbol
            and (not currency or inst.currency == currency.upper())
            and (not primary_exchange or inst.primary_exchange == primary_exchange.upper())
        ]

    def resolve(
        self,
        con_id: int,
        symbol: str,
        sec_type: str,
        exchange: str,
        primary_exchange: str,
        currency: str,
    ) -> list[Instrument]:
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
                inst
                for inst in candidates
                if exchange == inst.primary_exchange or exchange in inst.valid_exchanges.split(",")
            ]
        return candidates
