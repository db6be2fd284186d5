"""The records the simulated book is made of: accounts, holdings, orders, executions, fills.

Responsible for these values, their small derived properties (remaining quantity, working or
not) and ``BookError``, the refusal the book raises with the IB error code to send back.
Must not hold behaviour that needs prices, the clock or other records: that is the rest of
``reconciler.sim.book`` (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

UTC = dt.UTC
WORKING = ("PreSubmitted", "Submitted")
DONE = ("Filled", "Cancelled", "Inactive")


class BookError(Exception):
    """A request the simulated broker refuses; `code` is the IB error code to send back."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Holding:
    con_id: int
    quantity: float
    avg_cost: float
    realized_pnl: float = 0.0


@dataclass
class Account:
    account_id: str
    base_currency: str = "USD"
    account_type: str = "cash"  # cash | margin
    cash: dict[str, float] = field(default_factory=dict)
    holdings: dict[int, Holding] = field(default_factory=dict)


@dataclass
class SimOrder:
    perm_id: int
    client_id: int
    order_id: int
    account: str
    con_id: int
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    outside_rth: bool
    order_ref: str
    created_at: str
    aux_price: float | None = None
    algo_strategy: str = ""
    algo_params: list[tuple[str, str]] = field(default_factory=list)
    exchange: str = "SMART"
    good_till_date: str = ""
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission_paid: float = 0.0
    completed_time: str = ""
    completed_status: str = ""
    expires_at: str = ""
    # Latency state is part of the book so it survives a restart from the state file: an
    # order the exchange acknowledged keeps working, one whose fill latency elapsed may fill.
    acknowledged: bool = False
    eligible: bool = False

    @property
    def remaining(self) -> float:
        return max(0.0, round(self.total_quantity - self.filled, 8))

    @property
    def is_working(self) -> bool:
        return self.status in WORKING

    @property
    def is_buy(self) -> bool:
        return self.action == "BUY"


@dataclass
class SimExecution:
    exec_id: str
    perm_id: int
    order_id: int
    client_id: int
    account: str
    con_id: int
    side: str  # BOT | SLD
    shares: float
    price: float
    time: str  # ISO 8601 UTC
    exchange: str
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    commission_currency: str
    realized_pnl: float | None

    @property
    def time_text(self) -> str:
        return dt.datetime.fromisoformat(self.time).strftime("%Y%m%d %H:%M:%S UTC")

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.time)


@dataclass
class Fill:
    order: SimOrder
    execution: SimExecution


def ib_time(at: dt.datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")
