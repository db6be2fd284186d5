"""Order primitives: building IB orders from planned orders, and live handles on them.

Responsible for `build_order` (a `PlannedOrder` + orderRef -> the client's `Order`: LMT, MKT,
MIDPRICE or IBKR's Adaptive algo; tif, outsideRth, account, orderRef, transmit) and
`OrderHandle`, our view of one order in flight: ids, status, filled/remaining, average price,
fills with commission (as `reconciler.model.actual.Execution`), gateway errors and a queue of
`OrderEvent`s for the executor to record. Must not decide whether to send an order (gates and
risk do), read the clock directly, or import a client library at module level.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from reconciler.broker import convert
from reconciler.broker.errors import OrderError
from reconciler.model.actual import Execution
from reconciler.model.plan import PlannedOrder

FINAL_STATUSES = convert.FINAL_STATUSES
ACKED_STATUSES = frozenset({"PreSubmitted", "Submitted", "Filled", "PendingCancel"})
REJECTED_CODES = frozenset({201, 103})
# cancel answers that are final: 202 cancelled, 10147 unknown id, 10148 already filled/cancelled
CANCEL_ANSWER_CODES = frozenset({202, 10147, 10148, 135})


def build_order(lib: ModuleType, planned: PlannedOrder, order_ref: str) -> Any:
    """The client library's Order for a planned order; raises OrderError on bad values."""
    if planned.side not in ("BUY", "SELL"):
        raise OrderError(f"{planned.key}: side {planned.side!r} is not BUY or SELL")
    if not (math.isfinite(planned.quantity) and planned.quantity > 0):
        raise OrderError(f"{planned.key}: quantity {planned.quantity!r} must be > 0")
    if not order_ref:
        raise OrderError(f"{planned.key}: an orderRef is required (it makes apply idempotent)")
    limit = planned.limit_price
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        raise OrderError(f"{planned.key}: limit price {limit!r} must be a positive number")
    kind = planned.order_type.upper()
    order = lib.Order(
        action=planned.side,
        totalQuantity=planned.quantity,
        tif=planned.time_in_force,
        outsideRth=bool(planned.outside_rth),
        account=planned.account,
        orderRef=order_ref,
        transmit=True,
    )
    if kind == "LMT":
        if limit is None:
            raise OrderError(f"{planned.key}: a LMT order needs a limit price")
        order.orderType, order.lmtPrice = "LMT", limit
    elif kind == "MKT":
        order.orderType = "MKT"
    elif kind == "MIDPRICE":
        order.orderType = "MIDPRICE"
        if limit is not None:  # the price cap: never pay more / sell for less than this
            order.lmtPrice = limit
    elif kind == "ADAPTIVE":
        order.orderType = "LMT" if limit is not None else "MKT"
        if limit is not None:
            order.lmtPrice = limit
        order.algoStrategy = "Adaptive"
        order.algoParams = [lib.TagValue("adaptivePriority", "Normal")]
    else:
        raise OrderError(f"{planned.key}: order type {planned.order_type!r} is not supported")
    return order


@dataclass(frozen=True)
class OrderEvent:
    """One change seen on an order: kind is status, fill, commission or error."""

    kind: str
    status: str
    filled: float
    remaining: float
    time: dt.datetime
    fill: Execution | None = None
    error_code: int | None = None
    message: str = ""


class OrderHandle:
    """Our live view of one order; updated by the client's events, read by the executor."""

    def __init__(
        self,
        trade: Any,
        *,
        now: Callable[[], dt.datetime],
        naive_zone: str = "UTC",
    ) -> None:
        self._trade = trade
        self._now = now
        self._zone = naive_zone
        self.errors: list[tuple[int, str]] = []
        self.events: asyncio.Queue[OrderEvent] = asyncio.Queue()
        self._changed = asyncio.Event()
        trade.statusEvent += self._on_status
        trade.fillEvent += self._on_fill
        trade.commissionReportEvent += self._on_commission

    # ------------------------------------------------------------ state

    @property
    def trade(self) -> Any:
        return self._trade

    @property
    def order_id(self) -> int:
        return int(self._trade.order.orderId)

    @property
    def perm_id(self) -> int | None:
        perm = self._trade.order.permId or self._trade.orderStatus.permId
        return int(perm) if perm else None

    @property
    def order_ref(self) -> str:
        return self._trade.order.orderRef or ""

    @property
    def account(self) -> str:
        return self._trade.order.account or ""

    @property
    def symbol(self) -> str:
        return self._trade.contract.symbol

    @property
    def con_id(self) -> int:
        return int(self._trade.contract.conId)

    @property
    def side(self) -> str:
        return convert.side(self._trade.order.action)

    @property
    def quantity(self) -> float:
        return float(self._trade.order.totalQuantity)

    @property
    def status(self) -> str:
        return self._trade.orderStatus.status or ""

    @property
    def filled(self) -> float:
        from_fills = sum(f.execution.shares for f in self._trade.fills)
        return max(float(self._trade.orderStatus.filled or 0.0), float(from_fills))

    @property
    def reported_filled(self) -> float:
        """The filled quantity in the gateway's last order status (0 before any arrived)."""
        return float(self._trade.orderStatus.filled or 0.0)

    @property
    def error_codes(self) -> frozenset[int]:
        """Codes of the gateway errors addressed to this order (e.g. 202, 10148)."""
        return frozenset(code for code, _ in self.errors)

    @property
    def remaining(self) -> float:
        if self.is_final:
            return 0.0
        return max(self.quantity - self.filled, 0.0)

    @property
    def avg_fill_price(self) -> float | None:
        reported = convert.price(self._trade.orderStatus.avgFillPrice)
        if reported is not None:
            return reported
        fills = self._trade.fills
        shares = sum(f.execution.shares for f in fills)
        if not shares:
            return None
        return sum(f.execution.shares * f.execution.price for f in fills) / shares

    @property
    def fills(self) -> tuple[Execution, ...]:
        return tuple(convert.execution(f, naive_zone=self._zone) for f in self._trade.fills)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def acknowledged(self) -> bool:
        """The gateway accepted the order (it has a permId or a working/done status)."""
        return self.status in ACKED_STATUSES or (self.is_final and not self.rejected)

    @property
    def rejected(self) -> bool:
        codes = {code for code, _ in self.errors}
        return bool(codes & REJECTED_CODES) or (self.status == "Inactive" and not self._trade.fills)

    @property
    def commissions_complete(self) -> bool:
        return all(convert.has_commission(f.commissionReport) for f in self._trade.fills)

    @property
    def error_message(self) -> str:
        """The gateway's errors for this order, e.g. 'error 201: Order rejected - ...'."""
        return "; ".join(f"error {c}: {m}" for c, m in self.errors)

    error = error_message

    def __repr__(self) -> str:
        return (
            f"OrderHandle(ref={self.order_ref!r}, id={self.order_id}, perm={self.perm_id}, "
            f"{self.side} {self.quantity:g} {self.symbol}, status={self.status}, "
            f"filled={self.filled:g})"
        )

    # ------------------------------------------------------------ events

    def _emit(self, kind: str, **extra: Any) -> None:
        event = OrderEvent(
            kind=kind,
            status=self.status,
            filled=self.filled,
            remaining=self.remaining,
            time=self._now(),
            **extra,
        )
        self.events.put_nowait(event)
        self._changed.set()

    def _on_status(self, _trade: Any) -> None:
        self._emit("status")

    def _on_fill(self, _trade: Any, fill: Any) -> None:
        self._emit("fill", fill=convert.execution(fill, naive_zone=self._zone))

    def _on_commission(self, _trade: Any, fill: Any, report: Any) -> None:
        self._emit("commission", fill=convert.execution(fill, report, naive_zone=self._zone))

    def record_error(self, code: int, message: str) -> None:
        """Called by the broker for gateway errors addressed to this order id."""
        self.errors.append((code, message))
        self._emit("error", error_code=code, message=message)

    def wake(self) -> None:
        """Wake waiters (e.g. when the connection is lost)."""
        self._changed.set()

    async def wait_changed(self, timeout: float) -> bool:
        """Wait until something changed (True) or `timeout` passed (False)."""
        if self._changed.is_set():
            self._changed.clear()
            return True
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation of
        # the waiting task that arrives as the event fires, and a halted executor would then
        # keep following its order until the TTL.
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            return False
        self._changed.clear()
        return True

    def detach(self) -> None:
        self._trade.statusEvent -= self._on_status
        self._trade.fillEvent -= self._on_fill
        self._trade.commissionReportEvent -= self._on_commission
