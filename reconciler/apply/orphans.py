"""Orders with a reconciler orderRef (`rc-...`) that the broker knows and the ledger does not.

They mean the store was lost, replaced or pointed elsewhere (or another reconciler with its own
store trades these accounts). Responsible for finding them in the broker's open orders,
completed orders and this client's executions, for the accounts of a cycle, so apply can
report them and refuse to trade while any is still working (it would be in flight twice).
Must not cancel, place or record anything, and must not print.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.model.actual import CompletedOrder, Execution, OpenOrder
from reconciler.model.ports import BrokerPort, OrderLedgerPort

REF_PREFIX = "rc-"
# `reconcile health --check-orders` places far-from-market probes that never enter the ledger.
HEALTH_PREFIX = "rc-health-"


@dataclass(frozen=True)
class OrphanOrder:
    order_ref: str
    account: str
    symbol: str
    side: str
    quantity: float | None  # None when only executions were seen
    filled: float
    status: str
    working: bool

    def render(self) -> str:
        size = "" if self.quantity is None else f" {self.quantity:g}"
        return (
            f"{self.order_ref} {self.account} {self.side}{size} {self.symbol}: {self.status}, "
            f"filled {self.filled:g}"
        )


async def orphan_orders(
    broker: BrokerPort, store: OrderLedgerPort, accounts: Sequence[str]
) -> list[OrphanOrder]:
    """rc- orders of `accounts` at the broker (working, completed today, or executed today by
    this client id) with no event in the ledger, working ones first."""
    return find_orphans(
        await broker.open_orders(),
        await broker.completed_orders(),
        await broker.executions(),
        store,
        accounts,
    )


def find_orphans(
    open_orders: Iterable[OpenOrder],
    completed_orders: Iterable[CompletedOrder],
    executions: Iterable[Execution],
    store: OrderLedgerPort,
    accounts: Sequence[str],
) -> list[OrphanOrder]:
    """`orphan_orders` from what the broker already answered (e.g. the cycle's snapshot)."""
    wanted = set(accounts)
    found: dict[str, OrphanOrder] = {}

    def unknown(ref: str, account: str) -> bool:
        return (
            bool(ref)
            and ref.startswith(REF_PREFIX)
            and not ref.startswith(HEALTH_PREFIX)
            and account in wanted
            and ref not in found
            and not store.order_events(ref)
        )

    for o in open_orders:
        if unknown(o.order_ref, o.account):
            found[o.order_ref] = OrphanOrder(
                o.order_ref, o.account, o.symbol, o.side, o.quantity, o.filled, o.status, True
            )
    for c in completed_orders:
        if unknown(c.order_ref, c.account):
            found[c.order_ref] = OrphanOrder(
                c.order_ref, c.account, c.symbol, c.side, c.quantity, c.filled, c.status, False
            )
    executed: dict[str, list[Execution]] = {}
    for e in executions:
        if e.order_ref in executed or unknown(e.order_ref, e.account):
            executed.setdefault(e.order_ref, []).append(e)
    for ref, fills in executed.items():
        first = fills[0]
        found[ref] = OrphanOrder(
            ref,
            first.account,
            first.symbol,
            first.side,
            None,
            float(sum(f.shares for f in fills)),
            "executed",
            False,
        )
    return sorted(found.values(), key=lambda o: (not o.working, o.order_ref))
