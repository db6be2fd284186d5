"""Ports: the interfaces through which apply/ and cycle/ reach the broker session and the store.

Responsible for `typing.Protocol` definitions of what the effectful stages use: the broker
session (`BrokerPort`), a live order handle (`OrderHandlePort`) and its events, the store
(`StorePort`, made of `OrderLedgerPort` for what apply/ writes while orders work and
`CycleStorePort` for the cycle's bookkeeping) and the read-only views the store returns. Value
types that already live in `reconciler.model` (`Execution`, `OpenOrder`, `OrderTrail`, ...)
are used as they are. Must not import `reconciler.broker`, `reconciler.store` or an IB client:
the real classes (`broker.adapter.Broker`, `broker.orders.OrderHandle`, `store.api.Store`)
satisfy these structurally, which tests/unit/model/test_ports.py checks at runtime and with
mypy. See ARCHITECTURE.md.

Read-only members are properties so frozen dataclasses and plain attributes both satisfy them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence, Set
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from reconciler.model.actual import (
    ActualState,
    CompletedOrder,
    ContractInfo,
    Execution,
    OpenOrder,
    OrderTrail,
    Position,
    Quote,
)
from reconciler.model.desired import Instrument, LockedInstrument
from reconciler.model.plan import PlannedOrder, RiskDecision

__all__ = [
    "BrokerPort",
    "CycleRecord",
    "CycleStorePort",
    "HaltView",
    "HandleT",
    "IntentView",
    "LockLease",
    "OrderEventQueue",
    "OrderEventView",
    "OrderHandlePort",
    "OrderLedgerPort",
    "PositionRow",
    "StorePort",
    "TradingPort",
]

# ---------------------------------------------------------------- broker: one order in flight


@runtime_checkable
class OrderEventView(Protocol):
    """One change seen on an order (kind: status, fill, commission or error)."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def filled(self) -> float: ...
    @property
    def remaining(self) -> float: ...
    @property
    def time(self) -> dt.datetime: ...
    @property
    def fill(self) -> Execution | None: ...
    @property
    def error_code(self) -> int | None: ...
    @property
    def message(self) -> str: ...


class OrderEventQueue(Protocol):
    """The part of an `asyncio.Queue` of order events the order journal reads."""

    async def get(self) -> OrderEventView: ...
    def get_nowait(self) -> OrderEventView: ...
    def empty(self) -> bool: ...


@runtime_checkable
class OrderHandlePort(Protocol):
    """The live view of one sent order that the executor follows and the journal records."""

    @property
    def order_id(self) -> int: ...
    @property
    def order_ref(self) -> str: ...
    @property
    def perm_id(self) -> int | None:
        """None until the gateway reported on the order."""

    @property
    def status(self) -> str:
        """The client library's status ("" before the first order status)."""

    @property
    def filled(self) -> float: ...
    @property
    def reported_filled(self) -> float:
        """Filled quantity in the gateway's last order status (0 before any arrived)."""

    @property
    def remaining(self) -> float: ...
    @property
    def avg_fill_price(self) -> float | None: ...
    @property
    def fills(self) -> Sequence[Execution]: ...
    @property
    def errors(self) -> Sequence[tuple[int, str]]:
        """Gateway errors addressed to this order, as (code, message)."""

    @property
    def error_codes(self) -> Set[int]: ...
    @property
    def error(self) -> str:
        """The gateway's errors for this order in one line ("" when there were none)."""

    @property
    def is_final(self) -> bool: ...
    @property
    def acknowledged(self) -> bool: ...
    @property
    def rejected(self) -> bool: ...
    @property
    def commissions_complete(self) -> bool: ...
    @property
    def events(self) -> OrderEventQueue: ...


HandleT = TypeVar("HandleT", bound=OrderHandlePort)


# ---------------------------------------------------------------- broker: the session


@runtime_checkable
class BrokerPort(Protocol):
    """A connected gateway session: what recovery, orphan detection, the cycle and the
    operator's cancel use. Placing and following orders is `TradingPort`."""

    @property
    def client_id(self) -> int: ...
    @property
    def managed_accounts(self) -> Sequence[str]: ...

    async def resolve(
        self,
        instruments: Sequence[Instrument],
        lock: Mapping[str, LockedInstrument] | None = None,
        *,
        trust_lock: bool = False,
    ) -> Mapping[str, ContractInfo]:
        """ContractInfo by Instrument.key; raises on unknown, ambiguous or mismatched ones."""
        ...

    async def snapshot(
        self,
        accounts: Sequence[str],
        contracts: Mapping[str, ContractInfo],
        *,
        quotes: bool = True,
    ) -> ActualState:
        """Complete, or raises SnapshotError. `quotes=False`: no quote requests; positions
        carry their portfolio market price (steady state asks `quotes` for candidates)."""
        ...

    async def quotes(self, infos: Iterable[ContractInfo]) -> Mapping[int, Quote]: ...

    async def positions(self, accounts: Sequence[str]) -> Mapping[str, Sequence[Position]]:
        """Every non-zero position of `accounts`, from one positions request."""
        ...

    async def open_orders(self) -> Sequence[OpenOrder]:
        """Working orders of every client id."""
        ...

    async def completed_orders(self) -> Sequence[CompletedOrder]: ...

    async def executions(self, client_id: int | None = None) -> Sequence[Execution]: ...

    async def order_trails(
        self, refs: Iterable[str], *, client_ids: Iterable[int] = ()
    ) -> Mapping[str, OrderTrail]:
        """Every ref asked for has an entry; an empty trail means the broker has no record."""
        ...

    async def cancel_open_order(self, order: OpenOrder, *, as_master: bool = False) -> None: ...

    async def global_cancel(self) -> None: ...

    async def disconnect(self) -> None: ...


@runtime_checkable
class TradingPort(BrokerPort, Protocol[HandleT]):
    """A session that places orders and follows them. Generic in its order handle type: a
    session waits for and cancels only the handles its own `place_order` returned, so code
    that holds "some trading session" writes `TradingPort[Any]` and gets `HandleT` back."""

    async def place_order(self, order: PlannedOrder, *, order_ref: str) -> HandleT:
        """Sends at once; raises BrokerError when the order could not be sent."""
        ...

    async def wait_order(self, handle: HandleT, *, timeout: float) -> HandleT:
        """Until the order is final with its commissions, or `timeout` passes; raises
        BrokerError (ConnectionLost) when the connection goes first."""
        ...

    async def cancel_order(self, handle: HandleT) -> None: ...

    async def send_slots(self) -> int:
        """Wait until a message may leave without queueing for the pacing window; how many
        may leave now."""
        ...

    def link_problem(self) -> str | None:
        """Why nothing may be sent now (the gateway lost its link to IBKR), or None."""
        ...


# ---------------------------------------------------------------- store: views it returns


class HaltView(Protocol):
    @property
    def reason(self) -> str: ...


class IntentView(Protocol):
    """An order whose INTENT is in the ledger without a final outcome."""

    @property
    def order_ref(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def cycle_id(self) -> int | None: ...
    @property
    def quantity(self) -> float: ...
    @property
    def intent_at(self) -> dt.datetime: ...
    @property
    def order(self) -> Mapping[str, Any]:
        """The order as written with its INTENT (the PlannedOrder's fields + client_id)."""


class CycleRecord(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def accounts(self) -> Sequence[str]: ...
    @property
    def holder(self) -> str | None: ...
    @property
    def report(self) -> Any: ...


class PositionRow(Protocol):
    @property
    def con_id(self) -> int | None: ...
    @property
    def symbol(self) -> str: ...
    @property
    def quantity(self) -> float: ...


class LockLease(Protocol):
    """The writer lock over a cycle's accounts; released on leaving the `with` block."""

    @property
    def lock_id(self) -> str: ...
    def __enter__(self) -> LockLease: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...


# ---------------------------------------------------------------- store: the ports


@runtime_checkable
class OrderLedgerPort(Protocol):
    """What apply/ (executor, journal, recovery, orphans) reads and writes."""

    def current_halt(self) -> HaltView | None: ...

    def record_intent(
        self,
        order: Mapping[str, Any],
        *,
        order_ref: str,
        plan_id: str | None,
        cycle_id: int | None,
    ) -> None:
        """Commit the INTENT before the order is sent; if it raises, do not send."""
        ...

    def append_event(
        self,
        kind: str,
        *,
        order_ref: str | None = None,
        account: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> object: ...

    def record_intents(
        self,
        orders: Sequence[tuple[Mapping[str, Any], str]],
        *,
        plan_id: str | None,
        cycle_id: int | None,
    ) -> None:
        """Commit several (order, orderRef) INTENTs together before any of them is sent."""
        ...

    def append_event_later(
        self,
        kind: str,
        *,
        order_ref: str | None = None,
        account: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Append by the background writer, in order; reads and direct writes wait for it."""
        ...

    def record_fill_later(
        self, *, partial_event: Mapping[str, Any] | None = None, **fill: Any
    ) -> None: ...

    def record_commission_later(
        self, exec_id: str, commission: float, currency: str | None = None
    ) -> None: ...

    def flush(self) -> None:
        """Until every deferred write is committed; raises the first that failed."""
        ...

    def order_events(self, order_ref: str) -> Sequence[object]: ...

    def record_fill(
        self,
        *,
        exec_id: str,
        order_ref: str | None,
        account: str,
        con_id: int | None = None,
        symbol: str | None = None,
        side: str | None = None,
        shares: float,
        price: float,
        time: dt.datetime | None = None,
        commission: float | None = None,
        commission_currency: str | None = None,
        perm_id: int | None = None,
    ) -> bool:
        """False when the execId was already recorded."""
        ...

    def record_commission(
        self, exec_id: str, commission: float, currency: str | None = None
    ) -> bool: ...

    def unresolved_intents(self, account: str | None = None) -> Sequence[IntentView]: ...

    def filled_quantity(self, order_ref: str) -> float: ...


@runtime_checkable
class CycleStorePort(Protocol):
    """What cycle/ records and reads around a cycle."""

    @property
    def url(self) -> str: ...

    def begin_cycle(
        self,
        kind: str,
        *,
        accounts: Sequence[str] = (),
        desired_hash: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        plan_id: str | None = None,
        gates: Any = None,
        holder: str | None = None,
    ) -> int: ...

    def finish_cycle(
        self,
        cycle_id: int,
        status: str,
        report: Mapping[str, Any] | None,
        error: str | None = None,
    ) -> None:
        """Raises ValueError when the cycle is already finished (or does not exist)."""
        ...

    def list_cycles(self, account: str | None = None, limit: int = 50) -> Sequence[CycleRecord]: ...

    def account_lock(
        self, accounts: Sequence[str], holder: str, ttl_seconds: float = ...
    ) -> LockLease: ...

    def record_plan(self, plan_json: Mapping[str, Any]) -> str: ...

    def record_actual_state(self, cycle_id: int | None, actual: ActualState) -> Sequence[int]: ...

    def record_position_snapshot(
        self, cycle_id: int | None, account: str, positions: Iterable[Position]
    ) -> int: ...

    def record_denials(
        self, cycle_id: int | None, plan_id: str | None, decisions: Iterable[RiskDecision]
    ) -> int: ...

    def record_desired_snapshot(
        self, account: str, cycle_id: int | None, snapshot: Mapping[str, Any]
    ) -> None: ...

    def last_applied_desired_snapshot(self, account: str) -> Mapping[str, Any] | None: ...

    def last_snapshot_at(self, account: str) -> dt.datetime | None: ...

    def latest_positions(self, account: str | None = None) -> Sequence[PositionRow]: ...

    def net_fills_since(self, account: str, since: dt.datetime) -> Mapping[int, float]: ...


@runtime_checkable
class StorePort(OrderLedgerPort, CycleStorePort, Protocol):
    """The whole store as apply/ and cycle/ see it."""
