"""Recovery: resolving earlier cycles' unresolved orders from what the broker knows.

Responsible for `recover` (at the start of an apply, under the accounts' lock): every INTENT
without a final ledger event is looked up by orderRef in open orders, completed orders and
executions (of every client id that placed one); its fills are recorded once (execId), an
order still working past its TTL is cancelled as its own cycle would have done, and the
outcome is decided by the same classifier the executor uses. Also `record_inflight_fills`,
which records the fills of orders still unresolved (e.g. a killed cycle's, filling now)
before a position snapshot is compared with the ledger. Must not send new orders, resend an
order of unknown outcome, plan, or print: progress goes to a callback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.apply.journal import record_fills
from reconciler.apply.outcome import Evidence, classify
from reconciler.model.actual import OpenOrder, OrderTrail
from reconciler.model.clock import Clock
from reconciler.model.ports import BrokerPort, IntentView, OrderLedgerPort
from reconciler.util.logs import get_logger
from reconciler.util.polling import poll_until_async

log = get_logger("reconciler.apply.recovery")

CANCEL_GRACE_SECONDS = 10.0

Progress = Callable[[str], None]


async def recover(
    broker: BrokerPort,
    store: OrderLedgerPort,
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
    cancelled: list[str] = []
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
        await _wait_not_working(broker, set(cancelled), cancel_grace)
    trails = await broker.order_trails(
        [i.order_ref for i in pending], client_ids=_client_ids(pending)
    )
    results: list[dict[str, Any]] = []
    for intent in pending:
        ref = intent.order_ref
        trail = trails.get(ref) or OrderTrail(ref)
        record_fills(store, ref, intent.account, trail.executions)
        verdict = classify(
            Evidence(
                quantity=float(intent.quantity),
                fill_shares=store.filled_quantity(ref),
                looked_up=True,
                working_status=trail.working.status if trail.working else None,
                completed_status=trail.completed.status if trail.completed else None,
                completed_filled=trail.completed.filled if trail.completed else 0.0,
                owner_gone=True,  # recovery runs under the accounts' lock: the cycle is gone
            )
        )
        resolution = verdict.reason
        if trail.working is not None:
            o = trail.working
            resolution = notes.get(
                ref,
                f"still working at the broker: {o.status}, remaining {o.remaining:g}; "
                "counted as in flight",
            )
        elif ref in cancelled:
            resolution = f"cancelled by recovery after its TTL; filled {verdict.filled:g}"
        if verdict.kind is not None:
            store.append_event(
                verdict.kind,
                order_ref=ref,
                account=intent.account,
                payload={
                    "recovered": True,
                    "status": verdict.status,
                    "filled": verdict.filled,
                    "resolution": resolution,
                },
            )
        log.info(
            "order recovered",
            order_ref=ref,
            account=intent.account,
            outcome=verdict.status,
            filled=verdict.filled,
            resolution=resolution,
        )
        progress(f"recover {ref}: {resolution}")
        results.append(
            {
                "order_ref": ref,
                "account": intent.account,
                "resolution": resolution,
                "filled": verdict.filled,
            }
        )
    return results


async def record_inflight_fills(
    broker: BrokerPort, store: OrderLedgerPort, accounts: Sequence[str]
) -> int:
    """Record the executions of still unresolved orders of `accounts` (once per execId), so
    a position snapshot taken now is compared with a ledger that knows them; returns how many
    fills were new. Outcomes are left to recovery."""
    pending = [i for i in store.unresolved_intents() if i.account in accounts]
    if not pending:
        return 0
    trails = await broker.order_trails(
        [i.order_ref for i in pending], client_ids=_client_ids(pending)
    )
    return sum(
        record_fills(store, i.order_ref, i.account, trails[i.order_ref].executions)
        for i in pending
        if i.order_ref in trails
    )


def _client_ids(pending: Sequence[IntentView]) -> set[int]:
    return {int(i.order["client_id"]) for i in pending if i.order.get("client_id") is not None}


def _ttl_passed(intent: IntentView, now: dt.datetime) -> bool:
    # No grace: recovery runs under the accounts' lock, so the cycle that owned this order
    # is gone and nobody else will cancel it.
    ttl = float(intent.order.get("ttl_seconds") or 0.0)
    return (now - intent.intent_at).total_seconds() > ttl


async def _working_by_ref(broker: BrokerPort) -> dict[str, OpenOrder]:
    return {o.order_ref: o for o in await broker.open_orders() if o.order_ref}


async def _wait_not_working(
    broker: BrokerPort, refs: set[str], timeout: float
) -> dict[str, OpenOrder]:
    """Poll the gateway's open orders until `refs` are gone or `timeout` passes."""
    working: dict[str, OpenOrder] = {}

    async def gone() -> bool:
        nonlocal working
        working = await _working_by_ref(broker)
        return not (refs & set(working))

    # Polling the gateway's open orders: a cancel's end is not pushed to every client.
    await poll_until_async(gone, timeout=timeout, monotonic=asyncio.get_running_loop().time)
    return working
