"""Actual state: one consistent, immutable snapshot of what the broker reports.

Responsible for the value types (`ActualState`, `AccountState`, `Position`, `Quote`,
`ContractInfo`, `OpenOrder`, `Execution`) and the stable fingerprint used to detect stale
plans. Must not talk to the broker (that is `reconciler.broker`, which builds these) and must
not import the IB client library. A snapshot is complete or it is not built at all: missing
data is an error upstream, never an empty collection here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import orjson

from reconciler.model.instrument import instrument_key

_Owned = TypeVar("_Owned", bound=Any)  # an open order or an execution: has `.account`


class SnapshotError(Exception):
    """The broker's picture is incomplete (timeout, lost connection, partial fetch).

    Temporary: the cycle stops before planning and the next cycle tries again.
    """


@dataclass(frozen=True)
class ContractInfo:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    min_tick: float = 0.01
    size_increment: float = 1.0
    long_name: str = ""
    time_zone_id: str = ""
    trading_hours: str = ""
    liquid_hours: str = ""

    @cached_property
    def key(self) -> str:
        return instrument_key(self.symbol, self.sec_type, self.currency)


@dataclass(frozen=True)
class Quote:
    con_id: int
    symbol: str
    bid: float | None
    ask: float | None
    last: float | None
    close: float | None
    time: dt.datetime | None  # when the quote was received (UTC)
    market_data_type: int = 1  # 1 live, 2 frozen, 3 delayed, 4 delayed frozen
    # Where the price came from: "live" (a market-data request this cycle) or "portfolio"
    # (the market price of the account's portfolio update, used only for instruments
    # clearly inside their band; risk refuses to send an order priced by one).
    source: str = "live"

    # Cached: a planner reads these figures many times per instrument. A frozen dataclass
    # without slots keeps them in the instance dict; they are not fields, so equality,
    # hashing and `dataclasses.replace` ignore them.
    @cached_property
    def mid(self) -> float | None:
        if _usable(self.bid) and _usable(self.ask) and self.ask >= self.bid:
            return (self.bid + self.ask) / 2.0
        return None

    @cached_property
    def reference_price(self) -> float | None:
        """Mid when the book is two-sided, else last, else close; None when nothing usable."""
        mid = self.mid
        if mid is not None:
            return mid
        for value in (self.last, self.close):
            if _usable(value):
                return value
        return None

    @cached_property
    def spread(self) -> float | None:
        """Spread as a fraction of mid; None when it cannot be computed."""
        mid = self.mid
        if mid is None or mid <= 0:
            return None
        return (self.ask - self.bid) / mid


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


@dataclass(frozen=True)
class Position:
    account: str
    con_id: int
    symbol: str
    sec_type: str
    currency: str
    quantity: float
    avg_cost: float
    # The market price of the account's portfolio update for this position (instrument
    # currency), when the snapshot has one: what steady-state cycles value in-band holdings by.
    market_price: float | None = None

    @property
    def key(self) -> str:
        return instrument_key(self.symbol, self.sec_type, self.currency)


@dataclass(frozen=True)
class OpenOrder:
    account: str
    order_id: int
    perm_id: int
    client_id: int
    con_id: int
    symbol: str
    side: str  # BUY | SELL
    quantity: float
    filled: float
    remaining: float
    order_type: str
    limit_price: float | None
    time_in_force: str
    order_ref: str
    status: str

    @property
    def signed_remaining(self) -> float:
        return self.remaining if self.side == "BUY" else -self.remaining


@dataclass(frozen=True)
class Execution:
    exec_id: str
    account: str
    con_id: int
    symbol: str
    side: str  # BUY | SELL (normalised from BOT/SLD)
    shares: float
    price: float
    time: dt.datetime
    order_id: int
    perm_id: int
    order_ref: str
    commission: float | None = None
    commission_currency: str | None = None


@dataclass(frozen=True)
class CompletedOrder:
    account: str
    perm_id: int
    con_id: int
    symbol: str
    side: str
    quantity: float
    filled: float
    order_ref: str
    status: str  # Filled | Cancelled | Inactive ...
    completed_time: str = ""


@dataclass(frozen=True)
class AccountState:
    account: str
    base_currency: str
    net_liquidation: float
    total_cash: float  # in base currency
    cash: Mapping[str, float]  # by currency, in that currency
    fx_rates: Mapping[str, float]  # currency -> base currency per unit (base itself is 1.0)
    gross_position_value: float
    buying_power: float
    available_funds: float
    positions: tuple[Position, ...] = ()

    def fx_rate(self, currency: str) -> float | None:
        """Base-currency units per unit of `currency`; None when unknown (never guessed).

        The one FX rule: the base currency is 1, any other currency needs a finite, positive
        rate from the broker's snapshot.
        """
        if currency == self.base_currency:
            return 1.0
        rate = self.fx_rates.get(currency)
        return rate if rate is not None and math.isfinite(rate) and rate > 0 else None

    def to_base(self, amount: float, currency: str) -> float:
        """Convert to base currency; raises KeyError when the rate is unknown (never guess)."""
        rate = self.fx_rate(currency)
        if rate is None:
            raise KeyError(currency)
        return amount * rate

    def held_by_con_id(self) -> Mapping[int, float]:
        """Quantity held per conId (positions of one instrument summed); read-only, worked
        out once per account state (drift, planner and risk each ask)."""
        return self._held

    @cached_property
    def _held(self) -> dict[int, float]:
        held: dict[int, float] = {}
        for position in self.positions:
            held[position.con_id] = held.get(position.con_id, 0.0) + position.quantity
        return held

    def position(self, con_id: int) -> Position | None:
        return next((p for p in self.positions if p.con_id == con_id), None)


def _by_account(items: Iterable[_Owned]) -> dict[str, tuple[_Owned, ...]]:
    grouped: dict[str, list[_Owned]] = {}
    for item in items:
        grouped.setdefault(item.account, []).append(item)
    return {account: tuple(found) for account, found in grouped.items()}


def in_flight_by_con_id(open_orders: Iterable[OpenOrder]) -> dict[int, float]:
    """Signed remaining quantity of open orders per conId (buys +, sells -)."""
    in_flight: dict[int, float] = {}
    for order in open_orders:
        in_flight[order.con_id] = in_flight.get(order.con_id, 0.0) + order.signed_remaining
    return in_flight


@dataclass(frozen=True)
class ActualState:
    snapshot_time: dt.datetime
    server_time: dt.datetime | None
    managed_accounts: tuple[str, ...]
    accounts: Mapping[str, AccountState]
    quotes: Mapping[int, Quote]  # by conId
    contracts: Mapping[int, ContractInfo]  # by conId
    open_orders: tuple[OpenOrder, ...] = ()
    executions: tuple[Execution, ...] = ()  # today's
    completed_orders: tuple[CompletedOrder, ...] = ()
    gateway: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def open_orders_for(self, account: str) -> tuple[OpenOrder, ...]:
        return self._open_orders_by_account.get(account, ())

    def executions_for(self, account: str) -> tuple[Execution, ...]:
        return self._executions_by_account.get(account, ())

    # Grouped once (cached in the instance dict, like Quote's figures): a plan of many
    # accounts asks for each account's orders and executions several times.
    @cached_property
    def _open_orders_by_account(self) -> dict[str, tuple[OpenOrder, ...]]:
        return _by_account(self.open_orders)

    @cached_property
    def _executions_by_account(self) -> dict[str, tuple[Execution, ...]]:
        return _by_account(self.executions)

    def fingerprint(self) -> str:
        """SHA-256 over what makes a plan stale: positions, open orders, NAV and quotes.

        Quotes and NAV are included rounded (prices to 4 significant digits' worth of cents,
        NAV to whole units) so jitter below any tolerance a plan uses does not matter; the
        precise staleness tolerances are applied by `reconciler.model.plan.staleness`.
        """
        return fingerprint_parts(self)["all"]


def fingerprint_parts(state: ActualState) -> dict[str, str]:
    """Separate digests for positions, open orders, NAV and quotes, plus their combination."""

    def digest(value: object) -> str:
        # orjson: the canonical JSON of ~10^5 positions in a tenth of the standard library's
        # time (keys sorted, no whitespace, non-finite numbers as null).
        blob = orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(blob).hexdigest()

    positions = sorted(
        (p.account, p.con_id, p.quantity)
        for a in state.accounts.values()
        for p in a.positions
        if p.quantity != 0
    )
    orders = sorted(
        (o.account, o.perm_id, o.con_id, o.side, o.remaining, o.limit_price)
        for o in state.open_orders
    )
    nav = sorted((a.account, round(a.net_liquidation)) for a in state.accounts.values())
    quotes = sorted(
        (q.con_id, None if q.reference_price is None else round(q.reference_price, 2))
        for q in state.quotes.values()
    )
    parts = {
        "positions": digest(positions),
        "open_orders": digest(orders),
        "nav": digest(nav),
        "quotes": digest(quotes),
    }
    parts["all"] = digest(parts)
    return parts


@dataclass(frozen=True)
class OrderTrail:
    """What the broker knows about one orderRef: the order if it is still working (any client
    id), its completed order, and its executions (one per execId)."""

    order_ref: str
    working: OpenOrder | None = None
    completed: CompletedOrder | None = None
    executions: tuple[Execution, ...] = ()

    @property
    def executed(self) -> float:
        return float(sum(e.shares for e in self.executions))
