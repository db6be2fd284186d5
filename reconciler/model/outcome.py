"""What a cycle achieved, in words and in one status (pure).

Responsible for the cycle statuses recorded in the store and reports, for counting order
outcomes (filled, partly filled, rejected, cancelled, not sent, unknown), for telling whether a
plan leaves drift that no allowed order closes, and for choosing an apply cycle's status from
those facts, so that "applied" is only said when something was filled. Must not do I/O, print
or map statuses to exit codes (the app does that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.model.plan import Plan
from reconciler.model.status import CycleStatus, DriftStatus, OrderOutcome

# Cycle statuses, by their short names (the members of `CycleStatus`).
RUNNING = CycleStatus.RUNNING
OK = CycleStatus.OK
PARTIAL = CycleStatus.PARTIAL
DRY_RUN = CycleStatus.DRY_RUN
OUTSIDE_WINDOW = CycleStatus.OUTSIDE_WINDOW
NONE_FILLED = CycleStatus.NONE_FILLED
BLOCKED = CycleStatus.BLOCKED
NOT_APPROVED = CycleStatus.NOT_APPROVED
UNKNOWN = CycleStatus.UNKNOWN
REFUSED = CycleStatus.REFUSED
ERROR = CycleStatus.ERROR
ABORTED = CycleStatus.ABORTED

# Order outcome status -> the words of the summary line, in its order.
COUNTED = (
    (OrderOutcome.FILLED, "filled"),
    (OrderOutcome.PARTIAL_CANCELLED, "partly filled"),
    (OrderOutcome.REJECTED, "rejected"),
    (OrderOutcome.CANCELLED, "cancelled"),
    (OrderOutcome.NOT_SENT, "not sent"),
    (OrderOutcome.UNKNOWN, "unknown"),
)


def order_counts(orders: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many orders ended in each outcome ("filled", "partly filled", ...).

    An order that filled something before its cancel counts as partly filled whatever its
    status says; an unrecognised status counts as unknown.
    """
    counts = {words: 0 for _, words in COUNTED}
    names = dict(COUNTED)
    for order in orders:
        status = str(order.get("status") or "UNKNOWN")
        if status not in names:
            status = "UNKNOWN"
        if status not in ("FILLED", "PARTIAL_CANCELLED") and float(order.get("filled") or 0) > 0:
            status = "PARTIAL_CANCELLED"
        counts[names[status]] += 1
    return counts


def drift_not_closed(plan: Plan) -> list[str]:
    """Managed instruments (account:key) that stay out of band because no order is planned
    for them: denied, clipped to nothing, restricted or skipped. Empty when the plan has
    orders for everything out of band or nothing is out of band."""
    ordered = {(o.account, o.key) for o in plan.orders}
    outside = [
        (r.account, r.key)
        for a in plan.accounts
        for r in a.drift
        if r.status != DriftStatus.UNMANAGED and not r.in_band and (r.account, r.key) not in ordered
    ]
    blocked = [
        (d.account, d.key)
        for d in plan.decisions
        if (d.action == "deny" or d.allowed_quantity <= 0) and (d.account, d.key) not in ordered
    ]
    seen: dict[tuple[str, str], None] = dict.fromkeys(outside + blocked)
    return [f"{account}:{key}" for account, key in seen]


def apply_status(
    *,
    planned: int,
    approved: bool,
    dry_run: bool,
    orders: Iterable[Mapping[str, Any]],
    not_closed: Iterable[str] = (),
    outside_window: bool = False,
) -> str:
    """The status of an apply cycle that ran to its end (not refused, no error)."""
    orders = list(orders)
    if outside_window and planned:
        return OUTSIDE_WINDOW
    if dry_run and planned:
        return DRY_RUN
    if planned and not approved:
        return NOT_APPROVED
    if not planned:
        return BLOCKED if list(not_closed) else (DRY_RUN if dry_run else OK)
    counts = order_counts(orders)
    if counts["filled"] + counts["partly filled"]:
        return OK if counts["filled"] == len(orders) == planned else PARTIAL
    if counts["unknown"]:
        return UNKNOWN
    return NONE_FILLED


def summary_line(counts: Mapping[str, int], planned: int | None = None) -> str:
    """'7 order(s): 5 filled, 1 partly filled, 1 rejected, 0 cancelled, 0 not sent, 0 unknown'."""
    total = sum(counts.values()) if planned is None else planned
    parts = ", ".join(f"{counts.get(words, 0)} {words}" for _, words in COUNTED)
    return f"{total} order(s): {parts}"


def apply_result(
    status: str,
    counts: Mapping[str, int],
    not_closed: Iterable[str],
    outside_window: Iterable[str] = (),
) -> str:
    """The one-line result of an apply cycle for its report, `status` and the CLI;
    `outside_window` are the reasons an outside-window cycle sent nothing."""
    not_closed = list(not_closed)
    sent = sum(counts.values()) - counts.get("not sent", 0)
    total = sum(counts.values())
    if status == DRY_RUN:
        if not total:
            return "dry run (ORDERS_ENABLED is false): nothing to do"
        return (
            f"dry run (ORDERS_ENABLED is false): {total} order(s) would have been sent; "
            "nothing was sent"
        )
    if status == OUTSIDE_WINDOW:
        return (
            f"outside the trading window: {total} order(s) planned, nothing was sent ("
            + "; ".join(outside_window)
            + ")"
        )
    if status == NOT_APPROVED:
        return "not approved: nothing was sent"
    if status == BLOCKED:
        return (
            f"nothing sent: no allowed order closes the drift of {len(not_closed)} "
            f"instrument(s) outside their band ({', '.join(not_closed)}); see the risk decisions"
        )
    if status == OK and not total:
        return "nothing to do"
    if status == OK:
        return f"applied: all {total} order(s) filled"
    if status == PARTIAL:
        return f"partly applied: {summary_line(counts)}"
    if status == UNKNOWN:
        return f"outcome unknown, resolved at the next cycle: {summary_line(counts)}"
    if status == NONE_FILLED:
        why = "none was sent" if not sent else "none filled"
        return f"NOTHING FILLED ({why}): {summary_line(counts)}"
    return status
