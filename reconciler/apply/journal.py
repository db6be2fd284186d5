"""The order journal: one order's broker events into the append-only ledger, as they arrive.

Responsible for turning what the broker reports about an order in flight into ledger events:
the first acknowledgement as ACK, every later status change as STATUS, gateway errors, each
fill once (PARTIAL, de-duplicated by execId) and commissions that arrive after their fill;
`FillRecorder`, which sends each fill and each commission of a cycle to the store once (the
same fill arrives as an execution, again with its commission report, and again in the final
outcome); `record_fills`, which records executions read from the broker the same way; and
`record_late_fills`, which records a snapshot's executions of our orders that the ledger
lacks whatever the order's ledger state (IB may report a fill after the order's final
status).
Events go to the store's background writer (`append_event_later`): written in order, off
the event loop; only the INTENT must be durable before an order leaves. Must not decide an
order's outcome (that is `reconciler.apply.outcome`), talk to the broker or print.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from reconciler.model.actual import Execution
from reconciler.model.plan import PlannedOrder
from reconciler.model.ports import OrderEventView, OrderHandlePort, OrderLedgerPort
from reconciler.util.logs import get_logger

log = get_logger("reconciler.apply.journal")


class OrderJournal:
    """Records one order's broker events: the first acknowledgement as ACK, every later
    status change as STATUS, each fill once (PARTIAL) and late commissions."""

    ACK_STATUSES = frozenset({"PreSubmitted", "Submitted", "Filled", "PendingCancel"})

    def __init__(
        self,
        store: OrderLedgerPort,
        order: PlannedOrder,
        ref: str,
        handle: OrderHandlePort,
        fills: FillRecorder | None = None,
    ) -> None:
        self.store = store
        self.fills = fills or FillRecorder(store)
        self.order = order
        self.ref = ref
        self.handle = handle
        self.acked = False
        self.last_status: str | None = None

    async def watch(self) -> None:
        while True:
            self.record(await self.handle.events.get())

    def drain(self) -> None:
        while not self.handle.events.empty():
            self.record(self.handle.events.get_nowait())

    def record(self, event: OrderEventView) -> None:
        account = self.order.account
        if event.kind == "status" and event.status != self.last_status:
            self.last_status = event.status
            perm_id = self.handle.perm_id
            kind = "STATUS"
            if not self.acked and event.status in self.ACK_STATUSES and perm_id:
                self.acked, kind = True, "ACK"
            self.store.append_event_later(
                kind,
                order_ref=self.ref,
                account=account,
                payload={
                    "status": event.status,
                    "filled": event.filled,
                    "remaining": event.remaining,
                    "perm_id": perm_id,
                    "order_id": self.handle.order_id,
                    "at": event.time.isoformat(),
                },
            )
            (log.info if kind == "ACK" else log.debug)(
                "order acknowledged" if kind == "ACK" else "order status",
                order_ref=self.ref,
                account=account,
                status=event.status,
                filled=event.filled,
                remaining=event.remaining,
                perm_id=perm_id,
            )
        elif event.kind in ("fill", "commission") and event.fill is not None:
            self.fills.record(self.ref, account, event.fill)
        elif event.kind == "error":
            log.warning(
                "order error from the gateway",
                order_ref=self.ref,
                account=account,
                code=event.error_code,
                message=event.message,
            )
            self.store.append_event_later(
                "STATUS",
                order_ref=self.ref,
                account=account,
                payload={"error_code": event.error_code, "message": event.message},
            )


class FillRecorder:
    """Each fill, and each commission, of one apply sent to the store once (by execId).

    The store de-duplicates by execId as well (a fill recorded by an earlier process); this
    keeps the repeats of one process from costing a write each."""

    def __init__(self, store: OrderLedgerPort) -> None:
        self.store = store
        self._seen: dict[str, bool] = {}  # execId -> its commission was recorded

    def record(self, ref: str, account: str, f: Execution) -> None:
        had_commission = self._seen.get(f.exec_id)
        if had_commission is None:
            self._seen[f.exec_id] = f.commission is not None
            _log_fill(ref, account, f)
            self.store.record_fill_later(partial_event=fill_dict(f), **fill_row(ref, account, f))
        elif not had_commission and f.commission is not None:
            self._seen[f.exec_id] = True
            self.store.record_commission_later(f.exec_id, f.commission, f.commission_currency)

    def record_all(self, ref: str, account: str, fills: Iterable[Execution]) -> None:
        for f in fills:
            self.record(ref, account, f)


def fill_row(ref: str, account: str, f: Execution) -> dict[str, Any]:
    """The store's fill columns of one execution of order `ref`."""
    return dict(
        exec_id=f.exec_id,
        order_ref=ref,
        account=account,
        con_id=f.con_id,
        symbol=f.symbol,
        side=f.side,
        shares=f.shares,
        price=f.price,
        time=f.time,
        commission=f.commission,
        commission_currency=f.commission_currency,
    )


def _log_fill(ref: str, account: str, f: Execution) -> None:
    log.info(
        "order fill",
        order_ref=ref,
        account=account,
        exec_id=f.exec_id,
        shares=f.shares,
        price=f.price,
        commission=f.commission,
    )


def fill_dict(fill: Execution) -> dict[str, Any]:
    # The client libraries may give no time for an execution (convert.to_utc returns None).
    time: dt.datetime | None = fill.time
    return {
        "exec_id": fill.exec_id,
        "shares": fill.shares,
        "price": fill.price,
        "time": time.isoformat() if isinstance(time, dt.datetime) else time,
        "commission": fill.commission,
    }


def record_fills(store: OrderLedgerPort, ref: str, account: str, fills: Iterable[Execution]) -> int:
    """Record fills once each (execId de-duplicates); returns how many were new."""
    new = 0
    for f in fills:
        inserted = store.record_fill(**fill_row(ref, account, f))
        if not inserted and f.commission is not None:
            # The fill was recorded before its commission report arrived.
            store.record_commission(f.exec_id, f.commission, f.commission_currency)
        if inserted:
            new += 1
            _log_fill(ref, account, f)
            store.append_event(
                "PARTIAL",
                order_ref=ref,
                account=account,
                payload=fill_dict(f),
            )
    return new


def record_late_fills(
    store: OrderLedgerPort, executions: Iterable[Execution], accounts: Collection[str]
) -> list[Execution]:
    """Record the executions of the reconciler's own orders (orderRefs the ledger knows) that
    it lacks, even of orders whose outcome is already final: a fill that crossed the cancel
    can be reported after the order's Cancelled status, and an order's filled quantity is
    the sum of its executions. Returns the executions that were new."""
    known: dict[str, bool] = {}
    new: list[Execution] = []
    for execution in executions:
        ref = execution.order_ref
        if not ref or execution.account not in accounts:
            continue
        if ref not in known:
            known[ref] = bool(store.order_events(ref))
        if known[ref] and record_fills(store, ref, execution.account, [execution]):
            new.append(execution)
    return new


def unique_fills(*groups: Iterable[Execution]) -> list[Execution]:
    """Fills from several sources (live events, executions read back), one per execId, in
    the order first seen."""
    seen: dict[str, Execution] = {}
    for group in groups:
        for f in group:
            known = seen.get(f.exec_id)
            if known is None or (known.commission is None and f.commission is not None):
                seen[f.exec_id] = f
    return list(seen.values())
