"""Execution: the only part that changes the world.

Responsible for sending a plan's orders and following them to a final answer: the INTENT row
is committed before each order is sent (write-ahead; the INTENTs of the orders that fit in
the current pacing window are committed together, then those orders are sent), orderRef is
the plan's deterministic leg reference, sends are paced by the broker session's one sliding
window (`reconciler.broker.pacing`), sells go first and buys once cash allows,
orders left working at their TTL are cancelled, and the out-of-band halt is honoured before
every send and at least every `halt_poll` seconds while orders work (working orders are then
cancelled). Nothing more is sent once the gateway reported 1100 during the session
(`link_problem`), nor once the process was asked to stop (`SHUTDOWN`, set on SIGTERM by the
daemon): orders already sent are then followed only until acknowledged or the stop's grace
runs out, and whatever is unresolved stays in the ledger for the next run's recovery. Each order's outcome comes from `reconciler.apply.outcome.classify`; when the
live answer is inconclusive (e.g. a cancel answered 10148, or fills never arrived) the broker
is asked by orderRef (open orders, completed orders, executions) and every fill is recorded
once (execId) before the outcome. Events are journalled by `reconciler.apply.journal`;
earlier cycles' orders are resolved by `reconciler.apply.recovery`. Must not plan, decide
risk, or print: progress goes to a callback.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Generic, Protocol, runtime_checkable

from reconciler.apply.journal import FillRecorder, OrderJournal, fill_dict, unique_fills
from reconciler.apply.outcome import (
    FILLED,
    REJECTED,
    UNKNOWN,
    Evidence,
    Verdict,
    benign,
    classify,
)
from reconciler.apply.recovery import CANCEL_GRACE_SECONDS, recover
from reconciler.apply.shutdown import SHUTDOWN, Shutdown
from reconciler.model.actual import Execution, OrderTrail
from reconciler.model.clock import Clock
from reconciler.model.plan import Plan, PlannedOrder, order_ref
from reconciler.model.ports import HandleT, OrderHandlePort, OrderLedgerPort, TradingPort
from reconciler.util.logs import get_logger

__all__ = [
    "SHUTDOWN",
    "Executor",
    "OrderOutcome",
    "ProgressBar",
    "Shutdown",
    "live_evidence",
    "not_sent_outcome",
    "recover",
    "scale_buys_to_cash",
    "slippage_bps",
]

# INTENTs committed in the first group (the first order waits for it), and at most ahead of
# the sending (one second's worth at the default 45 messages/s).
INTENT_BATCH = 6
INTENT_LOOKAHEAD = 45
# The out-of-band halt is read at least this often while orders work.
HALT_POLL_SECONDS = 1.0

Progress = Callable[[str], None]

log = get_logger("reconciler.apply.executor")
# An order's final outcome -> (level, event) of its one log line.
_OUTCOME_EVENTS = {
    "FILLED": ("info", "order filled"),
    "PARTIAL_CANCELLED": ("info", "order partly filled"),
    "CANCELLED": ("info", "order cancelled"),
    "REJECTED": ("warning", "order rejected"),
    "NOT_SENT": ("info", "order not sent"),
}




class _Stopped(Exception):
    """Following an order ended because the process is stopping."""


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


@runtime_checkable
class ProgressBar(Protocol):
    """A progress callback that also draws a bar of finished orders (the CLI's, on a
    terminal); a plain `Progress` callable gets the lines only."""

    def __call__(self, message: str, /) -> None: ...
    def orders_total(self, total: int, /) -> None: ...
    def order_done(self, outcome: OrderOutcome, /) -> None: ...


def slippage_bps(side: str, arrival: float | None, avg_fill: float | None) -> float | None:
    """Cost against the arrival price in basis points; positive means worse than arrival."""
    if not arrival or avg_fill is None:
        return None
    signed = (avg_fill - arrival) if side == "BUY" else (arrival - avg_fill)
    return round(signed / arrival * 10_000, 2)


def scale_buys_to_cash(
    buys: Sequence[PlannedOrder],
    shortfall: float,
    increments: dict[int, float],
    *,
    cash_for_buys: float | None = None,
) -> tuple[list[PlannedOrder], list[str]]:
    """Shrink buys when sells brought in less cash than planned (pure).

    What the buys cost less the shortfall is what they may spend; they are fitted to it by
    `reconciler.decide.sizing`, the planner's own rule: one factor, rounded down to size
    increments, commission re-estimated, none below its order's minTradeNotional (dropped
    instead). Returns the buys to send and notes for the report.
    """
    from reconciler.decide.sizing import fit_after_shortfall

    fit = fit_after_shortfall(buys, shortfall, increments, cash_for_buys=cash_for_buys)
    if not fit.scaled:
        return list(buys), []
    note = f"buys scaled by {fit.scale:.3f}: sells raised {shortfall:,.2f} less than planned"
    return list(fit.orders), [note]


def sell_shortfall_by_account(
    sells: Sequence[PlannedOrder], outcomes: Sequence[OrderOutcome]
) -> dict[str, float]:
    """Per account, how much less cash (base currency) the sells raised than planned (pure).

    A sell's planned proceeds are its `est_notional` (base currency); what it raised is its
    filled quantity times its average price, in the instrument's currency, converted with the
    rate the plan used (est_notional over quantity times arrival price; where the plan valued
    a sell below its arrival price this errs towards a larger shortfall, i.e. smaller buys).
    Sells that raised more than planned offset the others of the same account, never another
    account's.
    """
    shortfall: dict[str, float] = {}
    for order, outcome in zip(sells, outcomes, strict=True):
        raised = 0.0
        if outcome.filled and outcome.avg_price is not None:
            planned_local = order.quantity * order.arrival_price
            to_base = order.est_notional / planned_local if planned_local > 0 else 1.0
            raised = outcome.filled * outcome.avg_price * to_base
        shortfall[order.account] = shortfall.get(order.account, 0.0) + order.est_notional - raised
    return shortfall


class Executor(Generic[HandleT]):
    """Sends and follows one plan's orders through a broker session, recording to the store."""

    def __init__(
        self,
        plan: Plan,
        *,
        broker: TradingPort[HandleT],
        store: OrderLedgerPort,
        clock: Clock,
        cycle_id: int,
        progress: Progress = lambda _msg: None,
        cancel_grace_seconds: float = CANCEL_GRACE_SECONDS,
        halt_poll_seconds: float = HALT_POLL_SECONDS,
        size_increments: Mapping[int, float] | None = None,
    ) -> None:
        self.plan = plan
        self.broker = broker
        self.store = store
        self.clock = clock
        self.cycle_id = cycle_id
        self.progress = progress
        self.fills = FillRecorder(store)
        self.cancel_grace = cancel_grace_seconds
        self.halt_poll = halt_poll_seconds
        self.notes: list[str] = []
        self.size_increments = dict(size_increments or {})
        self.halted: str | None = None
        self._halt_checked_at: float | None = None

    # ------------------------------------------------------------ phases

    def _orders_total(self, total: int) -> None:
        if isinstance(self.progress, ProgressBar):
            self.progress.orders_total(total)

    def _order_done(self, outcome: OrderOutcome) -> None:
        if isinstance(self.progress, ProgressBar):
            self.progress.order_done(outcome)

    async def run(self, orders: Sequence[PlannedOrder] | None = None) -> list[OrderOutcome]:
        orders = list(self.plan.orders if orders is None else orders)
        self._orders_total(len(orders))
        sells = [o for o in orders if o.side == "SELL"]
        buys = [o for o in orders if o.side == "BUY"]
        outcomes = await self._run_phase(sells)
        if buys and self._check_halt(force=True) is not None:
            for order in buys:
                outcomes.append(self._not_sent(order, f"not sent: halted ({self.halted})"))
        elif buys:
            # Cash is per account: each account's buys shrink by what its own sells fell short.
            shortfalls = sell_shortfall_by_account(sells, outcomes)
            budgets = {a.account: a.cash_for_buys for a in self.plan.accounts}
            scaled = []
            for account in dict.fromkeys(b.account for b in buys):
                mine = [b for b in buys if b.account == account]
                kept_buys, notes = scale_buys_to_cash(
                    mine,
                    shortfalls.get(account, 0.0),
                    self.size_increments,
                    cash_for_buys=budgets.get(account),
                )
                scaled += kept_buys
                self.notes += [f"{account}: {note}" for note in notes]
            kept = {b.leg for b in scaled}
            dropped = [b for b in buys if b.leg not in kept]
            outcomes += await self._run_phase(scaled)
            for order in dropped:
                outcomes.append(
                    self._not_sent(order, "not sent: sells raised less cash than planned")
                )
        if self.halted is not None:
            self.notes.append(
                f"halted during the apply ({self.halted}): no further orders were sent and "
                "working orders were cancelled"
            )
        self.store.flush()  # every event of this apply committed before its outcomes count
        return sorted(outcomes, key=lambda o: o.leg)

    def _not_sent(self, order: PlannedOrder, message: str) -> OrderOutcome:
        outcome = not_sent_outcome(self.plan.plan_id, order, message)
        self._order_done(outcome)
        return outcome

    def _check_halt(self, *, force: bool = False) -> str | None:
        """The out-of-band halt's reason once it is set (then it stays set for this run).

        Reads the store at most every `halt_poll` seconds unless `force`; a switch that
        cannot be read counts as pulled, as every check that cannot be evaluated denies.
        """
        if self.halted is not None:
            return self.halted
        now = asyncio.get_running_loop().time()
        if (
            not force
            and self._halt_checked_at is not None
            and now - self._halt_checked_at < self.halt_poll
        ):
            return None
        self._halt_checked_at = now
        try:
            halt = self.store.current_halt()
        except Exception as exc:
            reason = f"the halt switch could not be read: {exc}"
        else:
            if halt is None:
                return None
            reason = halt.reason
        self.halted = reason
        log.warning("halted out of band: no further orders are sent", reason=reason)
        self.progress(
            f"HALTED out of band ({reason}): no further orders are sent; "
            "working orders are cancelled"
        )
        return reason

    def _stop_sending(self) -> str | None:
        """Why no further order may be sent (stopping, or the gateway's link lost), or None."""
        reason = (
            f"stopping ({SHUTDOWN.reason})" if SHUTDOWN.requested else self.broker.link_problem()
        )
        if reason is not None and reason not in self.notes:
            self.notes.append(reason)
            log.warning("no further orders are sent", reason=reason)
            self.progress(f"STOP  no further orders are sent: {reason}")
        return reason

    async def _run_phase(self, orders: Sequence[PlannedOrder]) -> list[OrderOutcome]:
        following: list[asyncio.Task[None]] = []
        placed: list[_Followed[HandleT]] = []
        outcomes: list[OrderOutcome] = []
        # Orders whose INTENT is committed and that wait for their turn in the pacing window.
        ready: collections.deque[tuple[PlannedOrder, str, OrderOutcome]] = collections.deque()
        changed = asyncio.Event()
        committing_done = False

        async def commit_ahead() -> None:
            # INTENTs are committed ahead of the sending, on a worker thread (the event loop
            # keeps reading the gateway), up to INTENT_LOOKAHEAD orders: a slow disk then
            # makes the groups bigger instead of the sending slower. The first group is
            # small, so the first order does not wait for a large commit.
            nonlocal committing_done
            position = 0
            try:
                while position < len(orders):
                    while len(ready) >= INTENT_LOOKAHEAD:
                        changed.clear()
                        await changed.wait()
                    take = INTENT_BATCH if position == 0 else INTENT_LOOKAHEAD - len(ready)
                    batch = orders[position : position + take]
                    position += len(batch)
                    sendable = self._admit(batch, outcomes)
                    if sendable:
                        await asyncio.to_thread(self._commit, sendable)
                        ready.extend(sendable)
                        changed.set()
            finally:
                committing_done = True
                changed.set()

        producer = asyncio.create_task(commit_ahead())
        try:
            while ready or not committing_done:
                if not ready:
                    changed.clear()
                    await changed.wait()
                    continue
                slots = await self.broker.send_slots()
                for _ in range(min(slots, len(ready))):
                    order, ref, outcome = ready.popleft()
                    # None of these is sent before its INTENT commit returned (write-ahead).
                    stop = self._stop_sending()
                    if stop is None and self._check_halt() is not None:
                        stop = f"halted ({self.halted})"
                    if stop is not None:
                        outcome.message = f"not sent: {stop}"
                        self._order_done(outcome)
                        continue
                    handle = await self._send(order, ref, outcome)
                    if handle is None:
                        self._order_done(outcome)
                        continue
                    followed = _Followed(order, ref, handle, outcome)
                    placed.append(followed)
                    following.append(asyncio.create_task(self._follow(followed)))
                changed.set()
        finally:
            if not producer.done():
                producer.cancel()
        await asyncio.gather(*following)
        await producer  # a commit that failed is raised here, after the sent orders' outcomes
        unresolved = [f for f in placed if f.ask_broker]
        if unresolved:
            await self._look_up(unresolved)
        return outcomes

    def _admit(
        self, batch: Sequence[PlannedOrder], outcomes: list[OrderOutcome]
    ) -> list[tuple[PlannedOrder, str, OrderOutcome]]:
        """The orders of `batch` that may still go (the halt read once per batch)."""
        halted = self._check_halt(force=True) is not None
        sendable = []
        for order in batch:
            outcome = not_sent_outcome(self.plan.plan_id, order)
            outcomes.append(outcome)
            if halted:
                outcome.message = f"not sent: halted ({self.halted})"
                self._order_done(outcome)
                continue
            sendable.append((order, order_ref(self.plan.plan_id, order.leg), outcome))
        return sendable

    def _commit(self, sendable: Sequence[tuple[PlannedOrder, str, OrderOutcome]]) -> None:
        # Write-ahead: the INTENTs are durable before any of these orders can reach the
        # broker, so a crash after this line leaves records that recovery resolves instead
        # of resending.
        self.store.record_intents(
            [({**asdict(o), "client_id": self.broker.client_id}, ref) for o, ref, _ in sendable],
            plan_id=self.plan.plan_id,
            cycle_id=self.cycle_id,
        )
        for order, ref, _ in sendable:
            log.info(
                "order intent",
                order_ref=ref,
                account=order.account,
                side=order.side,
                quantity=order.quantity,
                instrument=order.key,
                order_type=order.order_type,
                limit_price=order.limit_price,
                reason=order.reason,
            )

    async def _send(self, order: PlannedOrder, ref: str, outcome: OrderOutcome) -> HandleT | None:
        """Send one order whose INTENT is committed."""
        from reconciler.broker.errors import BrokerError

        self.progress(
            f"send  {ref} {order.account} {order.side} {order.quantity:g} {order.key} "
            f"{order.order_type}{'' if order.limit_price is None else f' @ {order.limit_price:g}'}"
        )
        try:
            handle = await self.broker.place_order(order, order_ref=ref)
        except BrokerError as exc:
            outcome.status = REJECTED
            outcome.message = str(exc)
            self.store.append_event_later(
                "REJ", order_ref=ref, account=order.account, payload={"message": str(exc)}
            )
            log.warning("order rejected", order_ref=ref, account=order.account, error=str(exc))
            self.progress(f"REJ   {ref}: {exc}")
            return None
        return handle

    async def _follow(self, followed: _Followed[HandleT]) -> None:
        from reconciler.broker.errors import BrokerError

        f = followed
        journal = OrderJournal(self.store, f.order, f.ref, f.handle, self.fills)
        watcher = asyncio.create_task(journal.watch())
        try:
            await self._wait_then_cancel(f)
        except BrokerError as exc:
            # The connection went away with the order at the broker: its outcome is unknown.
            # The INTENT stays unresolved; the next cycle resolves it from what the broker
            # knows and never resends it.
            f.outcome.status = UNKNOWN
            f.outcome.message = f"outcome unknown ({exc}); resolved at the next cycle"
            self._order_done(f.outcome)
            log.warning(
                "order outcome unknown", order_ref=f.ref, account=f.order.account, error=str(exc)
            )
            self.progress(f"UNKNOWN {f.ref}: {exc}")
            return
        except _Stopped:
            f.outcome.status = UNKNOWN
            f.outcome.message = (
                f"outcome unknown: stopping ({SHUTDOWN.reason}) before its final answer; "
                "resolved at the next run by orderRef, never resent"
            )
            self.store.append_event_later(
                "STATUS",
                order_ref=f.ref,
                account=f.order.account,
                payload={
                    "status": f.handle.status,
                    "filled": float(f.handle.filled),
                    "acknowledged": bool(f.handle.acknowledged),
                    "message": "left for recovery: the process stopped",
                },
            )
            self._order_done(f.outcome)
            log.warning(
                "order outcome unknown",
                order_ref=f.ref,
                account=f.order.account,
                error="stopping: left for the next run's recovery",
            )
            self.progress(f"UNKNOWN {f.ref}: left for the next run's recovery (stopping)")
            return
        finally:
            watcher.cancel()
            journal.drain()  # status changes and fills up to the final answer, in order
        fills = unique_fills(f.handle.fills)
        verdict = classify(live_evidence(f.order, f.handle, fills))
        if verdict.ask_broker:
            # e.g. the cancel at TTL answered 10148 and the client library flipped the order
            # to Cancelled: only the broker's records say what really happened.
            f.ask_broker = True
            self.progress(f"check {f.ref}: {verdict.reason}; asking the broker by orderRef")
            return
        self._record(f, verdict, fills, source="live")

    async def _wait_then_cancel(self, f: _Followed[HandleT]) -> None:
        """Follow the order until it is final (with its commissions), its TTL passes or the
        halt switch is pulled; in the last two cases cancel it and wait for the answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + f.order.ttl_seconds
        halted = False
        while not _settled(f.handle):
            if SHUTDOWN.requested:
                await self._wait_for_ack(f)
                if _settled(f.handle):
                    break
                raise _Stopped
            left = deadline - loop.time()
            if left <= 0:
                break
            await self.broker.wait_order(f.handle, timeout=min(left, self.halt_poll))
            if _settled(f.handle):
                break
            if not f.handle.is_final and self._check_halt() is not None:
                halted = True
                break
        if f.handle.is_final:
            return
        log.info(
            "order cancelling",
            order_ref=f.ref,
            account=f.order.account,
            why="halted" if halted else "ttl",
        )
        if halted:
            self.progress(f"halt  {f.ref}: cancelling ({self.halted})")
            f.note = f"halted ({self.halted}): cancelled"
        else:
            self.progress(f"ttl   {f.ref}: {f.order.ttl_seconds:g}s passed, cancelling the rest")
            f.note = f"TTL {f.order.ttl_seconds:g}s reached, rest cancelled"
        try:
            await self.broker.cancel_order(f.handle)
        except Exception as exc:  # the final answer decides; keep the reason
            f.note += f" (cancel failed: {exc})"
        await self.broker.wait_order(f.handle, timeout=self.cancel_grace)

    async def _wait_for_ack(self, f: _Followed[HandleT]) -> None:
        """Stopping: until the broker acknowledged the order (or it is final), at most for
        what is left of the stop's grace; what the order does afterwards is recovery's."""
        while not (f.handle.acknowledged or _settled(f.handle)):
            left = SHUTDOWN.grace_left()
            if left <= 0:
                return
            await self.broker.wait_order(f.handle, timeout=min(left, 0.2))

    async def _look_up(self, unresolved: Sequence[_Followed[HandleT]]) -> None:
        """The broker's records by orderRef (open and completed orders, executions) decide
        the outcome of orders whose live answer was inconclusive."""
        from reconciler.broker.errors import BrokerError

        try:
            trails = await self.broker.order_trails([f.ref for f in unresolved])
        except BrokerError as exc:
            for f in unresolved:
                f.outcome.status = UNKNOWN
                f.outcome.message = (
                    f"outcome unknown: the broker's records could not be read ({exc}); "
                    "resolved at the next cycle"
                )
                self._order_done(f.outcome)
                log.warning(
                    "order outcome unknown",
                    order_ref=f.ref,
                    account=f.order.account,
                    error=str(exc),
                )
                self.progress(f"UNKNOWN {f.ref}: {exc}")
            return
        for f in unresolved:
            trail = trails.get(f.ref) or OrderTrail(f.ref)
            fills = unique_fills(f.handle.fills, trail.executions)
            live = live_evidence(f.order, f.handle, fills)
            verdict = classify(
                replace(
                    live,
                    looked_up=True,
                    working_status=trail.working.status if trail.working else None,
                    completed_status=trail.completed.status if trail.completed else None,
                    completed_filled=trail.completed.filled if trail.completed else 0.0,
                )
            )
            self._record(f, verdict, fills, source="broker")

    # ------------------------------------------------------------ recording

    def _record(
        self, f: _Followed[HandleT], verdict: Verdict, fills: Sequence[Execution], *, source: str
    ) -> None:
        order, ref, outcome, handle = f.order, f.ref, f.outcome, f.handle
        outcome.perm_id = handle.perm_id
        self.fills.record_all(ref, order.account, fills)
        outcome.fills = [fill_dict(x) for x in fills]
        shares = float(sum(x.shares for x in fills))
        outcome.filled = float(verdict.filled)
        if shares > 0:
            outcome.avg_price = sum(x.shares * x.price for x in fills) / shares
        elif verdict.filled > 0 and handle.avg_fill_price:
            outcome.avg_price = handle.avg_fill_price
        outcome.commission = float(sum((x.commission or 0.0) for x in fills))
        outcome.slippage_bps = slippage_bps(order.side, order.arrival_price, outcome.avg_price)
        outcome.status = verdict.status if verdict.final else UNKNOWN
        error = handle.error
        outcome.message = _message(f.note, verdict, source, handle)
        if outcome.filled > 0:
            self.store.append_event_later(
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
        payload = {
            "status": handle.status,
            "outcome": verdict.status,
            "filled": outcome.filled,
            "avg_price": outcome.avg_price,
            "message": error,
            "source": source,
            "resolution": verdict.reason,
        }
        if verdict.kind is not None:  # final
            # The final event comes last so an order's latest ledger event is its outcome.
            self.store.append_event_later(
                verdict.kind, order_ref=ref, account=order.account, payload=payload
            )
        else:
            # No final answer: the INTENT stays unresolved and the next cycle's recovery
            # resolves it from the broker; it is never resent.
            self.store.append_event_later(
                "STATUS", order_ref=ref, account=order.account, payload=payload
            )
        self._order_done(outcome)
        level, event = _OUTCOME_EVENTS.get(outcome.status, ("warning", "order outcome unknown"))
        getattr(log, level)(
            event,
            order_ref=ref,
            account=order.account,
            filled=outcome.filled,
            quantity=order.quantity,
            avg_price=outcome.avg_price,
            commission=outcome.commission,
            slippage_bps=outcome.slippage_bps,
            code=_codes(handle.error_codes),
            message=outcome.message or None,
        )
        self.progress(
            f"{outcome.status:<7} {ref} filled {outcome.filled:g}/{order.quantity:g}"
            + (f" avg {outcome.avg_price:.4f}" if outcome.avg_price else "")
            + (f" ({outcome.message})" if outcome.message else "")
        )


def _codes(codes: Any) -> int | list[int] | None:
    """The gateway's error code(s) of an order for its log line: one code, or all of them."""
    found = sorted(codes or ())
    return found[0] if len(found) == 1 else (found or None)


@dataclass
class _Followed(Generic[HandleT]):
    """One sent order while the executor follows it."""

    order: PlannedOrder
    ref: str
    handle: HandleT
    outcome: OrderOutcome
    note: str = ""  # why it was cancelled (TTL, halt)
    ask_broker: bool = False  # the live answer was inconclusive


def live_evidence(
    order: PlannedOrder, handle: OrderHandlePort, fills: Sequence[Execution]
) -> Evidence:
    """What the live order handle says about the order (for `classify`)."""
    return Evidence(
        quantity=float(order.quantity),
        fill_shares=float(sum(x.shares for x in fills)),
        status=handle.status,
        acknowledged=bool(handle.perm_id),
        reported_filled=float(handle.reported_filled),
        error_codes=frozenset(handle.error_codes),
    )


def _message(note: str, verdict: Verdict, source: str, handle: OrderHandlePort) -> str:
    errors = "; ".join(f"error {code}: {text}" for code, text in handle.errors if not benign(code))
    parts = []
    if note and verdict.status != FILLED:
        parts.append(note)
    if source == "broker" or not verdict.final:
        parts.append(verdict.reason)
    parts.append(errors)
    return "; ".join(dict.fromkeys(p for p in parts if p))


def _settled(handle: OrderHandlePort) -> bool:
    """Final, and every fill's commission is in (or there is nothing more to wait for)."""
    return handle.is_final and handle.commissions_complete


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
