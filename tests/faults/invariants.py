"""The safety invariants every fault scenario ends with, checked from both sides: the
reconciler's ledger (the store, opened read-only by URL) and the simulated broker (its orders,
executions, positions and the journal of every placeOrder it received).

Responsible for reading those two views (`broker_view(sim)`, `ledger_view(db_url)`) and for
small checks over them that return violations as sentences (`violations(...)`) or fail a test
(`assert_safe(...)`): no orderRef placed twice at the broker, no reconciler order at the
broker without its write-ahead INTENT in the ledger, every broker execution of a reconciler
order in the ledger exactly once (and none the broker never made), a final ledger outcome
agreeing with the broker's filled quantity, no order over the order-notional limit, and a
ledger whose hash chain verifies. Must not change either side, sleep, or know a scenario:
scenarios add their own expectations on top (e.g. the positions they must converge to).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

PLACE_ORDER = 3  # incoming TWS message id of placeOrder
REF_PREFIX = "rc-"  # orderRefs of the reconciler's orders
FINAL_KINDS = frozenset({"FILL", "CANCEL", "REJ", "RESOLVED"})
EPSILON = 1e-6


@dataclass(frozen=True)
class BrokerOrder:
    order_ref: str
    client_id: int
    account: str
    symbol: str
    action: str
    quantity: float
    limit_price: float | None
    filled: float
    status: str


@dataclass(frozen=True)
class BrokerView:
    """What the simulated broker holds, read on its own loop in one go."""

    placed_refs: tuple[str, ...]  # orderRef of every placeOrder received (journal), in order
    orders: tuple[BrokerOrder, ...]
    executions: dict[str, tuple[str, float]]  # execId -> (orderRef, shares)
    positions: dict[str, dict[str, float]]  # account -> symbol -> quantity (non-zero)

    def order(self, ref: str) -> BrokerOrder:
        return next(o for o in self.orders if o.order_ref == ref)

    def ours(self) -> tuple[BrokerOrder, ...]:
        return tuple(o for o in self.orders if o.order_ref.startswith(REF_PREFIX))


@dataclass(frozen=True)
class LedgerView:
    orders: dict[str, object]  # orderRef -> store OrderView
    fills: dict[str, tuple[str | None, float]]  # execId -> (orderRef, shares)
    fill_rows: int  # fill rows in the store (one per execId when nothing was doubled)
    kinds_by_ref: dict[str, tuple[str, ...]]
    event_kinds: tuple[str, ...]
    chain_ok: bool
    chain_reason: str


def _ref_of(fields: Iterable[str]) -> str:
    refs = [f for f in fields if f.startswith(REF_PREFIX)]
    return refs[0] if len(refs) == 1 else ""


def broker_view(sim) -> BrokerView:
    """The simulator's state (`sim` is a `run_in_thread` handle)."""

    def read() -> BrokerView:
        gateway = sim.gateway
        book = gateway.book
        placed = tuple(
            _ref_of(entry["fields"]) for entry in gateway.journal.messages("in", PLACE_ORDER)
        )
        orders = tuple(
            BrokerOrder(
                o.order_ref,
                o.client_id,
                o.account,
                gateway.universe.get(o.con_id).symbol,
                o.action,
                o.total_quantity,
                o.lmt_price or None,
                o.filled,
                o.status,
            )
            for o in book.orders.values()
        )
        refs = {o.perm_id: o.order_ref for o in book.orders.values()}
        executions = {
            e.exec_id: (getattr(e, "order_ref", "") or refs.get(e.perm_id, ""), e.shares)
            for e in book.executions
        }
        held = {
            account: {inst.symbol: qty for inst, qty, _ in book.positions(account) if qty}
            for account in book.accounts
        }
        return BrokerView(placed, orders, executions, held)

    return sim.call(read)


def ledger_view(db_url: str) -> LedgerView:
    """The store's orders, fills and events (opened, read, closed)."""
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        orders = {o.order_ref: o for o in store.list_orders(limit=100_000)}
        rows = store.list_fills(limit=100_000)
        fills = {f.exec_id: (f.order_ref, f.shares) for f in rows}
        kinds = {ref: tuple(e.kind for e in store.order_events(ref)) for ref in orders}
        events = tuple(e.kind for e in reversed(store.recent_events(limit=100_000)))
        verified = store.verify_ledger()
        return LedgerView(orders, fills, len(rows), kinds, events, verified.ok, verified.reason)
    finally:
        store.close()


# ------------------------------------------------------------------ checks


def duplicate_placed_refs(broker: BrokerView) -> list[str]:
    counts = Counter(ref for ref in broker.placed_refs if ref)
    return sorted(ref for ref, n in counts.items() if n > 1)


def violations(
    ledger: LedgerView,
    broker: BrokerView,
    *,
    max_order_notional: float | None = 60_000.0,
    settled: bool = True,
) -> list[str]:
    """Every invariant the pair breaks, as sentences (empty: safe).

    `settled`: no reconciler order is still working or awaiting recovery, so every broker
    execution must already be in the ledger (while orders work, only the reverse holds)."""
    found: list[str] = []
    for ref in duplicate_placed_refs(broker):
        found.append(f"orderRef {ref} was placed more than once at the broker")
    for ref in sorted({r for r in broker.placed_refs if r} - set(ledger.orders)):
        found.append(f"orderRef {ref} reached the broker without an INTENT in the ledger")
    ours = {
        ref: (r, shares)
        for ref, (r, shares) in broker.executions.items()
        if r.startswith(REF_PREFIX)
    }
    if ledger.fill_rows != len(ledger.fills):
        found.append(f"{ledger.fill_rows} fill rows for {len(ledger.fills)} execIds in the ledger")
    for exec_id, (ref, _) in ledger.fills.items():
        if exec_id not in broker.executions:
            found.append(f"ledger fill {exec_id} ({ref}) is no execution at the broker")
    if settled:
        for exec_id, (ref, _) in sorted(ours.items()):
            if exec_id not in ledger.fills:
                found.append(f"broker execution {exec_id} of {ref} is missing from the ledger")
    for order in broker.ours():
        kinds = ledger.kinds_by_ref.get(order.order_ref, ())
        if kinds.count("FILL") > 1:
            found.append(f"{order.order_ref}: {kinds.count('FILL')} FILL events in the ledger")
        if kinds.count("INTENT") > 1:
            found.append(f"{order.order_ref}: {kinds.count('INTENT')} INTENTs in the ledger")
        final = [k for k in kinds if k in FINAL_KINDS]
        if len(final) > 1:
            found.append(f"{order.order_ref}: more than one final ledger event {kinds}")
        if final:
            recorded = ledger.orders[order.order_ref].filled_quantity
            if abs(recorded - order.filled) > EPSILON:
                found.append(
                    f"{order.order_ref}: ledger says {final[-1]} filled {recorded:g}, "
                    f"the broker filled {order.filled:g} ({order.status})"
                )
            if order.status in ("PreSubmitted", "Submitted") and settled:
                found.append(f"{order.order_ref}: final in the ledger but working at the broker")
        elif settled and order.status in ("Filled", "Cancelled", "Inactive"):
            found.append(
                f"{order.order_ref}: {order.status} at the broker, unresolved in the ledger"
            )
        if max_order_notional is not None and order.limit_price:
            notional = order.quantity * order.limit_price
            if notional > max_order_notional + EPSILON:
                found.append(
                    f"{order.order_ref}: notional {notional:.2f} over the limit "
                    f"{max_order_notional:g}"
                )
    if not ledger.chain_ok:
        found.append(f"the ledger's hash chain does not verify: {ledger.chain_reason}")
    return found


def assert_safe(
    db_url: str,
    sim,
    *,
    max_order_notional: float | None = 60_000.0,
    settled: bool = True,
    positions: dict[str, float] | None = None,
    account: str = "DU0000001",
) -> tuple[LedgerView, BrokerView]:
    """Fail with every violated invariant; return both views for the scenario's own checks.
    `positions`: the broker positions the account must hold (e.g. the targets)."""
    broker = broker_view(sim)
    ledger = ledger_view(db_url)
    found = violations(ledger, broker, max_order_notional=max_order_notional, settled=settled)
    if positions is not None and broker.positions.get(account, {}) != {
        s: q for s, q in positions.items() if q
    }:
        found.append(f"broker positions {broker.positions.get(account)} are not {positions}")
    assert not found, "unsafe outcome:\n- " + "\n- ".join(found)
    return ledger, broker
