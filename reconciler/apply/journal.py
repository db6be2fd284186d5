"""The order journal: one order's broker events into the append-only ledger, as they arrive.

Responsible for turning what the broker reports about an order in flight into ledger events:
the first acknowledgement as ACK, every later status change as STATUS, gateway errors, each
fill once (PARTIAL, de-duplicated by execId) and commissions that arrive after their fill;
and `record_fills`, which records executions read from the broker the same way. Must not
decide an order's outcome (that is `reconciler.apply.outcome`), talk to the broker or print.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from reconciler.model.plan import PlannedOrder


class OrderJournal:
    """Records one order's broker events: the first acknowledgement as ACK, every later
    status change as STATUS, each fill once (PARTIAL) and late commissions."""

    ACK_STATUSES = frozenset({"PreSubmitted", "Submitted", "Filled", "PendingCancel"})

    def __init__(self, store, order: PlannedOrder, ref: str, handle) -> None:
        self.store = store
        self.order = order
        self.ref = ref
        self.handle = handle
        self.acked = False
        self.last_status: str | None = None

    async def watch(self) -> None:
        queue = getattr(self.handle, "events", None)
        if queue is None:
            return
        while True:
            self.record(await queue.get())

    def drain(self) -> None:
        queue = getattr(self.handle, "events", None)
        while queue is not None and not queue.empty():
            self.record(queue.get_nowait())

    def record(self, event) -> None:
        account = self.order.account
        if event.kind == "status" and event.status != self.last_status:
            self.last_status = event.status
            perm_id = getattr(self.handle, "perm_id", None)
            kind = "STATUS"
            if not self.acked and event.status in self.ACK_STATUSES and perm_id:
                self.acked, kind = True, "ACK"
            self.store.append_event(
                kind,
                order_ref=self.ref,
                account=account,
                payload={
                    "status": event.status,
                    "filled": event.filled,
                    "remaining": event.remaining,
                    "perm_id": perm_id,
                    "order_id": getattr(self.handle, "order_id", None),
                    "at": event.time.isoformat(),
                },
            )
        elif event.kind == "fill" and event.fill is not None:
            record_fills(self.store, self.ref, account, [event.fill])
        elif event.kind == "commission" and event.fill is not None:
            record_fills(self.store, self.ref, account, [event.fill])
            if event.fill.commission is not None:
                self.store.record_commission(
                    event.fill.exec_id, event.fill.commission, event.fill.commission_currency
                )
        elif event.kind == "error":
            self.store.append_event(
                "STATUS",
                order_ref=self.ref,
                account=account,
                payload={"error_code": event.error_code, "message": event.message},
            )


def fill_dict(fill) -> dict[str, Any]:
    time = getattr(fill, "time", None)
    return {
        "exec_id": fill.exec_id,
        "shares": fill.shares,
        "price": fill.price,
        "time": time.isoformat() if isinstance(time, dt.datetime) else time,
        "commission": getattr(fill, "commission", None),
    }


def record_fills(store, ref: str, account: str, fills: Iterable[Any]) -> int:
    """Record fills once each (execId de-duplicates); returns how many were new."""
    new = 0
    for f in fills:
        inserted = store.record_fill(
            exec_id=f.exec_id,
            order_ref=ref,
            account=account,
            con_id=getattr(f, "con_id", None),
            symbol=getattr(f, "symbol", None),
            side=getattr(f, "side", None),
            shares=f.shares,
            price=f.price,
            time=getattr(f, "time", None),
            commission=getattr(f, "commission", None),
        )
        commission = getattr(f, "commission", None)
        if not inserted and commission is not None:
            # The fill was recorded before its commission report arrived.
            store.record_commission(f.exec_id, commission, getattr(f, "commission_currency", None))
        if inserted:
            new += 1
            store.append_event(
                "PARTIAL",
                order_ref=ref,
                account=account,
                payload=fill_dict(f),
            )
    return new


def unique_fills(*groups: Iterable[Any]) -> list[Any]:
    """Fills from several sources (live events, executions read back), one per execId, in
    the order first seen."""
    seen: dict[str, Any] = {}
    for group in groups:
        for f in group:
            known = seen.get(f.exec_id)
            if known is None or (
                getattr(known, "commission", None) is None
                and getattr(f, "commission", None) is not None
            ):
                seen[f.exec_id] = f
    return list(seen.values())
