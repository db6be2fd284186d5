"""The paper test order (the seeds' sanity-cancel): its report, its far-from-market limit
price and the refusal to send it to anything but a paper account.

Must not connect or send anything itself (the adapter does, through these rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reconciler.broker.errors import OrderError
from reconciler.model.accounts import PAPER_ACCOUNT_PREFIXES, is_paper_account

FAR_FROM_MARKET = 0.5  # the test order's limit is this fraction of the bid


@dataclass(frozen=True)
class OrderCheckReport:
    ok: bool
    account: str
    symbol: str
    order_ref: str
    limit_price: float
    order_id: int | None
    perm_id: int | None
    acknowledged: bool
    ack_status: str
    cancelled: bool
    final_status: str
    filled: float
    errors: tuple[str, ...] = ()

    def __str__(self) -> str:
        ack = f"ACK {self.ack_status}" if self.acknowledged else "no ACK"
        cancel = "CANCEL" if self.cancelled else f"not cancelled ({self.final_status})"
        problems = f"; {'; '.join(self.errors)}" if self.errors else ""
        return (
            f"{ack}, {cancel}: BUY 1 {self.symbol} LMT {self.limit_price:g} on {self.account} "
            f"orderRef {self.order_ref} permId {self.perm_id or '-'}{problems}"
        )


def refuse_unless_paper(account: str) -> None:
    if not is_paper_account(account):
        raise OrderError(
            f"refusing the order check on {account}: only paper accounts "
            f"({', '.join(p + '...' for p in PAPER_ACCOUNT_PREFIXES)}) may receive test orders"
        )


def far_limit_price(reference: float, min_tick: float) -> float:
    """FAR_FROM_MARKET of the reference, rounded down to the tick (at least one tick)."""
    tick = min_tick if min_tick > 0 else 0.01
    ticks = max(math.floor(reference * FAR_FROM_MARKET / tick + 1e-9), 1)
    return round(ticks * tick, 10)
