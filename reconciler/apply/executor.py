"""Execution: the only part that changes the world.

Responsible for sending a plan's orders and following them to a final answer: the INTENT row
is committed before each order is sent (write-ahead), orderRef is the plan's deterministic
leg reference, sends are paced by one token bucket, sells go first and buys once cash allows,
orders left working at their TTL are cancelled, and every status change, fill (de-duplicated
by execId) and the transaction-cost snapshot is appended to the ledger. Also recovery of
earlier unresolved INTENTs from the broker's open orders, completed orders and executions.
Must not plan, decide risk, or print: progress goes to a callback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from reconciler.model.clock import Clock
from reconciler.model.plan import Plan, PlannedOrder, order_ref

FINAL_STATUSES = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}
CANCEL_GRACE_SECONDS = 10.0
DEFAULT_MESSAGES_PER_SECOND = 45.0

Progress = Callable[[str], None]


@dataclass
class OrderOutcome:
    order_ref: str
    leg: int
    account: str
    key: str
    side: str
    quantity: float
    status: str  # FILLED | PARTIAL_CANCELLED | CANCELLED | REJECTED | NOT_SENT | UNKNOWN
    filled: float = 0.0
    avg_price: float | None = None
    commission: float = 0.0
    est_commission: float = 0.0
    arrival_price: float | None = None
    slippage_bps: float | None = None
    perm_id: int | None = None
    message: str = ""
    fills: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slippage_bps(side: str, arrival: float | None, avg_fill: float | None) -> float | None:
    """Cost against the arrival price in basis points; positive means worse than arrival."""
    if not arrival or avg_fill is None:
        return None
    signed = (avg_fill - arrival) if side == "BUY" else (arrival - avg_fill)
    return round(signed / arrival * 10_000, 2)


def scale_buys_to_cash(
    buys: Sequence[PlannedOrder], shortfall: float, increments: dict[int, float]
) -> tuple[list[PlannedOrder], list[str]]:
    """Shrink buys when sells brought in less cash than planned (pure).

    What the buys cost less the shortfall is what they may spend; they are fitted to it by
    `reconciler.decide.sizing`, the planner's own rule: one factor, rounded down to size
    increments, commission re-estimated, none below its order's minTradeNotional (dropped
    instead). Returns the buys to send and notes for the report.
    """
    from reconciler.decide.sizing import fit_after_shortfall

    fit = fit_after_shortfall(buys, shortfall, increments)
    if not fit.scaled:
        return list(buys), []
    note = f"buys scaled by {fit.scale:.3f}: sells raised {shortfall:,.2f} less than planned"
    return list(fit.orders), [note]


class Executor:
    """Sends and follows one plan's orders through a broker session, recording to the store."""

    def __init__(
        self,
        plan: Plan,
        *,
        broker,
        store,
        clock: Clock,
        cycle_id: int,
        progress: Progress = lambda _msg: None,
        messages_per_second: float = DEFAULT_MESSAGES_PER_SECOND,
        cancel_grace_seconds: float = CANCEL_GRACE_SECONDS,
        size_increments: Mapping[int, float] | None = None,
    ) -> None:
        from aiolimiter import AsyncLimiter

        self.plan = plan
        self.broker = broker
        self.store = store
        self.clock = clock
        self.cycle_id = cycle_id
        self.progress = progress
        self.limiter = AsyncLimiter(max(1.0, messages_per_second), 1.0)
        self.cancel_grace = cancel_grace_seconds
        self.notes: list[str] = []
        self.size_increments = dict(size_increments or {})

    # ------------------------------------------------------------ phases

    def _hook(self, name: str, *args: Any) -> None:
        """Optional structured progress (a terminal progress bar); plain callbacks lack it."""
        hook = getattr(self.progress, name, None)
        if callable(hook):
            hook(*args)

    async def run(self, orders: Sequence[PlannedOrder] | None = None) -> list[OrderOutcome]:
        orders = list(self.plan.orders if orders is None else orders)
        self._hook("orders_total", len(orders))
        sells = [o for o in orders if o.side == "SELL"]
        buys = [o for o in orders if o.side == "BUY"]
        outcomes = await self._run_phase(sells)
        if buys:
            shortfall = sum(
                self._planned_proceeds(o) - self._actual_proceeds(out)
                for o, out in zip(sells, outcomes, strict=True)
            )
            scaled, notes = scale_buys_to_cash(buys, shortfall, self.size_increments)
            self.notes += notes
            kept = {b.leg for b in scaled}
            dropped = [b for b in buys if b.leg not in kept]
            outcomes += await self._run_phase(scaled)
            for order in dropped:
                outcome = not_sent_outcome(self.plan.plan_id, order)
                outcome.message = "not sent: sells raised less cash than planned"
                outcomes.append(outcome)
                self._hook("order_done", outcome)
        return sorted(outcomes, key=lambda o: o.leg)

    @staticmethod
    def _planned_proceeds(order: PlannedOrder) -> float:
        return order.est_notional

    @staticmethod
    def _actual_proceeds(outcome: OrderOutcome) -> float:
        if not outcome.filled or outcome.avg_price is None:
            return 0.0
        return outcome.filled * outcome.avg_price

    async def _run_phase(self, orders: Sequence[PlannedOrder]) -> list[OrderOutcome]:
        placed: list[tuple[PlannedOrder, str, Any, OrderOutcome]] = []
        outcomes: list[OrderOutcome] = []
        halted_reason: str | None = None
        for order in orders:
            ref = order_ref(self.plan.plan_id, order.leg)
            outcome = not_sent_outcome(self.plan.plan_id, order)
            outcomes.append(outcome)
            if halted_reason is None:
                halt = self.store.current_halt()
                if halt is not None:
                    halted_reason = halt.reason
                    self.progress(f"HALTED out of band ({halt.reason}): no further orders are sent")
            if halted_reason is not None:
                outcome.message = f"not sent: halted ({halted_reason})"
                self._hook("order_done", outcome)
                continue
            handle = await self._send(order, ref, outcome)
            if handle is not None:
                placed.append((order, ref, handle, outcome))
            else:
                self._hook("order_done", outcome)
        await asyncio.gather(*(self._follow(o, ref, h, out) for o, ref, h, out in placed))
        return outcomes

    async def _send(self, order: PlannedOrder, ref: str, outcome: OrderOutcome):
        from reconciler.broker.errors import BrokerError

        # Write-ahead: the INTENT is committed before the order can reach the broker, so a
        # crash after this line leaves a record that recovery resolves instead of resending.
        self.store.record_intent(
            {**asdict(order), "client_id": getattr(self.broker, "client_id", None)},
            order_ref=ref,
            plan_id=self.plan.plan_id,
            cycle_id=self.cycle_id,
        )
        self.progress(
            f"send  {ref} {order.account} {order.side} {order.quantity:g} {order.key} "
            f"{order.order_type}{'' if order.limit_price is None else f' @ {order.limit_price:g}'}"
        )
        try:
            async with self.limiter:
                handle = await self.broker.place_order(order, order_ref=ref)
        except BrokerError as exc:
            outcome.status = "REJECTED"
            outcome.message = str(exc)
            self.store.append_event(
                "REJ", order_ref=ref, account=order.account, payload={"message": str(exc)}
            )
            self.progress(f"REJ   {ref}: {exc}")
            return None
        return handle

    async def _follow(self, order: PlannedOrder, ref: str, handle, outcome: OrderOutcome) -> None:
        from reconciler.broker.errors import BrokerError

        journal = _OrderJournal(self.store, order, ref, handle)
        watcher = asyncio.create_task(journal.watch())
        try:
            await self._wait_then_cancel(order, ref, handle, outcome, journal)
        except BrokerError as exc:
            # The connection went away with the order at the broker: its outcome is unknown.
            # The INTENT stays unresolved; the next cycle resolves it from what the broker
            # knows and never resends it.
            outcome.status = "UNKNOWN"
            outcome.message = f"outcome unknown ({exc}); resolved at the next cycle"
            self._hook("order_done", outcome)
            self.progress(f"UNKNOWN {ref}: {exc}")
        finally:
            watcher.cancel()
            journal.drain()

    async def _wait_then_cancel(self, order, ref, handle, outcome, journal) -> None:
        handle = await self.broker.wait_order(handle, timeout=order.ttl_seconds)
        if _status(handle) not in FINAL_STATUSES:
            self.progress(f"ttl   {ref}: {order.ttl_seconds:g}s passed, cancelling the rest")
            outcome.message = f"TTL {order.ttl_seconds:g}s reached, rest cancelled"
            try:
                async with self.limiter:
                    await self.broker.cancel_order(handle)
            except Exception as exc:  # the final answer below decides; keep the reason
                outcome.message = f"TTL reached, cancel failed: {exc}"
            handle = await self.broker.wait_order(handle, timeout=self.cancel_grace)
        journal.drain()  # status changes and fills up to the final answer, in order
        self._record_outcome(order, ref, handle, outcome)

    # ------------------------------------------------------------ recording

    def _record_outcome(self, order: PlannedOrder, ref: str, handle, outcome: OrderOutcome) -> None:
        status = _status(handle)
        outcome.perm_id = getattr(handle, "perm_id", None)
        record_fills(self.store, ref, order.account, getattr(handle, "fills", ()) or ())
        fills = list(getattr(handle, "fills", ()) or ())
        outcome.fills = [_fill_dict(f) for f in fills]
        outcome.filled = (
            float(sum(f.shares for f in fills))
            if fills
            else float(getattr(handle, "filled", 0) or 0)
        )
        if fills:
            outcome.avg_price = sum(f.shares * f.price for f in fills) / max(outcome.filled, 1e-12)
        elif getattr(handle, "avg_fill_price", None):
            outcome.avg_price = handle.avg_fill_price
        outcome.commission = float(sum((f.commission or 0.0) for f in fills))
        outcome.slippage_bps = slippage_bps(order.side, order.arrival_price, outcome.avg_price)
        error = getattr(handle, "error", "") or ""
        complete = outcome.filled >= order.quantity - 1e-9
        rejected = bool(getattr(handle, "rejected", False)) and outcome.filled <= 0
        if rejected:
            # The client libraries report a rejection (201) as Cancelled; the error says which.
            outcome.status = "REJECTED"
            kind = "REJ"
        elif status == "Filled" or complete:
            outcome.status = "FILLED"
            kind = "FILL"
        elif status in ("Cancelled", "ApiCancelled") and outcome.filled > 0:
            outcome.status = "PARTIAL_CANCELLED"
            kind = "CANCEL"
        elif status in ("Cancelled", "ApiCancelled"):
            outcome.status = "CANCELLED"
            kind = "CANCEL"
        elif status == "Inactive":
            outcome.status = "REJECTED"
            kind = "REJ"
        else:
            # No final answer within TTL + grace: leave the INTENT unresolved for recovery.
            outcome.status = "UNKNOWN"
            kind = None
        outcome.message = outcome.message or error
        if outcome.filled > 0:
            self.store.append_event(
                "PNL_SNAPSHOT",
                order_ref=ref,
                account=order.account,
                payload={
                    "arrival_price": order.arrival_price,
                    "avg_fill_price": outcome.avg_price,
                    "filled": outcome.filled,
                    "slippage_bps": outcome.slippage_bps,
                    "est_commission": order.est_commission,
                    "commission": outcome.commission,
                },
            )
        if kind is not None:
            # The final event comes last so an order's latest ledger event is its outcome.
            self.store.append_event(
                kind,
                order_ref=ref,
                account=order.account,
                payload={
                    "status": status,
                    "filled": outcome.filled,
                    "avg_price": outcome.avg_price,
                    "message": error,
                },
            )
        self._hook("order_done", outcome)
        self.progress(
            f"{outcome.status:<7} {ref} filled {outcome.filled:g}/{order.quantity:g}"
            + (f" avg {outcome.avg_price:.4f}" if outcome.avg_price else "")
            + (f" ({outcome.message})" if outcome.message else "")
        )


class _OrderJournal:
    """Records one order's broker events as they arrive: the first acknowledgement as ACK,
    every later status change as STATUS, each fill once (PARTIAL) and late commissions."""

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


def not_sent_outcome(plan_id: str, order: PlannedOrder, message: str = "") -> OrderOutcome:
    """A NOT_SENT outcome for an order, to be filled in as answers arrive."""
    return OrderOutcome(
        order_ref=order_ref(plan_id, order.leg),
        leg=order.leg,
        account=order.account,
        key=order.key,
        side=order.side,
        quantity=order.quantity,
        status="NOT_SENT",
        est_commission=order.est_commission,
        arrival_price=order.arrival_price,
        message=message,
    )


def _status(handle) -> str:
    return str(getattr(handle, "status", "") or "")


def _fill_dict(fill) -> dict[str, Any]:
    time = getattr(fill, "time", None)
    return {
        "exec_id": fill.exec_id,
        "shares": fill.shares,
        "price": fill.price,
        "time": time.isoformat() if isinstance(time, dt.datetime) else time,
        "commission": getattr(fill, "commission", None),
    }


def record_fills(store, ref: str, account: str, fills) -> int:
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
                payload=_fill_dict(f),
            )
    return new


async def recover(
    broker,
    store,
    accounts: Sequence[str],
    *,
    clock: Clock,
    progress: Progress,
    cancel_grace: float = CANCEL_GRACE_SECONDS,
) -> list[dict[str, Any]]:
    """Resolve earlier INTENTs that have no final answer, from what the broker knows.

    Looks each unresolved orderRef up in open orders, completed orders and executions (of
    every client id that placed one). Fills are recorded once (execId). An order still
    working past its TTL is cancelled, as its own cycle would have done; one within its TTL
    stays in flight (the planner counts it). An order the broker has never heard of is closed
    as RESOLVED (never reached the broker) and is never resent: the next plan computes the
    gap afresh from broker positions.
    """
    pending = [i for i in store.unresolved_intents() if i.account in accounts]
    if not pending:
        return []
    working = await _working_by_ref(broker)
    notes: dict[str, str] = {}
    expired = [i for i in pending if i.order_ref in working and _ttl_passed(i, clock.now())]
    cancelled = []
    for intent in expired:
        order = working[intent.order_ref]
        if order.client_id != broker.client_id:
            notes[intent.order_ref] = (
                f"past its TTL but placed by client id {order.client_id}: "
                f"cancel it with IB_CLIENT_ID={order.client_id} or in TWS"
            )
            continue
        await broker.cancel_open_order(order)
        cancelled.append(intent.order_ref)
    if cancelled:
        working = await _wait_not_working(broker, set(cancelled), cancel_grace)
    completed = {c.order_ref: c for c in await broker.completed_orders() if c.order_ref}
    executions = await _executions_by_ref(broker, pending)
    results = []
    for intent in pending:
        ref = intent.order_ref
        fills = executions.get(ref, [])
        record_fills(store, ref, intent.account, fills)
        filled = float(sum(f.shares for f in fills))
        if ref in working:
            o = working[ref]
            resolution = notes.get(
                ref,
                f"still working at the broker: {o.status}, remaining {o.remaining:g}; "
                "counted as in flight",
            )
            kind = None
        elif ref in completed:
            c = completed[ref]
            filled = max(filled, c.filled)
            kind = "FILL" if c.status == "Filled" else ("CANCEL" if "Cancel" in c.status else "REJ")
            resolution = f"completed at the broker: {c.status}, filled {filled:g}"
            if ref in cancelled:
                resolution = f"cancelled by recovery after its TTL; filled {filled:g}"
        elif fills:
            kind = "FILL" if filled >= intent.quantity - 1e-9 else "CANCEL"
            resolution = f"executions found: filled {filled:g}; no longer working"
        else:
            kind = "RESOLVED"
            resolution = (
                "the broker has no order, completed order or execution with this orderRef: "
                "it never reached the broker (not resent)"
            )
        if kind is not None:
            store.append_event(
                kind,
                order_ref=ref,
                account=intent.account,
                payload={"recovered": True, "filled": filled, "resolution": resolution},
            )
        progress(f"recover {ref}: {resolution}")
        results.append(
            {
                "order_ref": ref,
                "account": intent.account,
                "resolution": resolution,
                "filled": filled,
            }
        )
    return results


def _ttl_passed(intent, now: dt.datetime) -> bool:
    # No grace: recovery runs under the accounts' lock, so the cycle that owned this order
    # is gone and nobody else will cancel it.
    ttl = float(intent.order.get("ttl_seconds") or 0.0)
    return (now - intent.intent_at).total_seconds() > ttl


async def _working_by_ref(broker) -> dict[str, Any]:
    return {o.order_ref: o for o in await broker.open_orders() if o.order_ref}


async def _wait_not_working(broker, refs: set[str], timeout: float) -> dict[str, Any]:
    """Poll the gateway's open orders until `refs` are gone or `timeout` passes."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        working = await _working_by_ref(broker)
        if not (refs & set(working)) or time.monotonic() > deadline:
            return working
        await asyncio.sleep(0.1)


async def _executions_by_ref(broker, pending) -> dict[str, list]:
    """Executions of every client id that placed a pending order, once per execId."""
    client_ids = {broker.client_id} | {
        int(i.order["client_id"]) for i in pending if i.order.get("client_id") is not None
    }
    seen: dict[str, Any] = {}
    for client_id in sorted(client_ids):
        for e in await broker.executions(client_id=client_id):
            seen.setdefault(e.exec_id, e)
    by_ref: dict[str, list] = {}
    for e in seen.values():
        by_ref.setdefault(e.order_ref, []).append(e)
    return by_ref
