"""Outcome classification: what became of one order, decided from what the broker says.

Responsible for one pure function, `classify`, used by both the executor (at the end of an
order's TTL) and recovery (for earlier cycles' orders), so the same broker state always gets
the same answer. It takes `Evidence` (the live order handle's view and/or the broker's answer
by orderRef: open orders, completed orders, executions) and returns a `Verdict`: the outcome,
the final ledger event kind (or None when the order stays unresolved), the filled quantity
and a one-line reason. Must not talk to the broker or the store, read the clock or print.

The rules, in short:
- The client libraries flip an order to Cancelled on any order error, including 10148 ("cannot
  be cancelled, state: Filled"): a live Cancelled is believed only when the gateway itself
  reported on the order, no error other than the cancel confirmation (202) or a warning came
  with it, and the fills we hold add up to the filled quantity the gateway reported.
  Anything less is inconclusive: the broker is asked by orderRef (`ask_broker`).
- A rejection (201, 103) with nothing filled is final.
- From the broker's answer: working means in flight (unresolved); a completed order is final
  with its status; executions alone mean filled (all or part); nothing at all means rejected
  (if the gateway said so), never reached the broker (when no one else will act on the order,
  i.e. recovery), or unknown (the executor leaves it for recovery).
- Shares the broker reports filled for which we hold no execution leave the order unresolved
  while its owner may still learn them; recovery (owner gone) records the final outcome and
  says how many shares lack an execution (the ledger-break check then shows the position).
"""

from __future__ import annotations

from dataclasses import dataclass

FILLED = "FILLED"
PARTIAL_CANCELLED = "PARTIAL_CANCELLED"
CANCELLED = "CANCELLED"
REJECTED = "REJECTED"
NOT_SENT = "NOT_SENT"
UNKNOWN = "UNKNOWN"
WORKING = "WORKING"
NEVER_REACHED = "NEVER_REACHED"

# Ledger event kinds of a final outcome (reconciler.store.ledger.FINAL_KINDS).
FILL, CANCEL, REJ, RESOLVED = "FILL", "CANCEL", "REJ", "RESOLVED"

REJECTED_CODES = frozenset({103, 201})
CANCEL_CONFIRMED = 202
# Order warnings that do not change the order's fate (the client libraries log them).
WARNING_CODES = frozenset({399, 404, 434, 10167})
CANCELLED_STATUSES = frozenset({"Cancelled", "ApiCancelled"})
EPSILON = 1e-9


def benign(code: int) -> bool:
    """An order error that leaves the gateway's reported status trustworthy."""
    return code == CANCEL_CONFIRMED or code in WARNING_CODES or 2100 <= code < 2200


@dataclass(frozen=True)
class Evidence:
    """What is known about one order. Live fields come from the order handle the executor
    followed; broker fields from open orders, completed orders and executions by orderRef
    (`looked_up` says they were read)."""

    quantity: float
    fill_shares: float = 0.0  # shares of the executions we hold, one per execId
    # live: the client library's order handle
    status: str = ""
    acknowledged: bool = False  # the gateway reported on the order (it has a permId)
    reported_filled: float = 0.0  # filled quantity in the gateway's last order status
    error_codes: frozenset[int] = frozenset()
    # the broker's answer by orderRef
    looked_up: bool = False
    working_status: str | None = None  # listed in open orders (any client id)
    completed_status: str | None = None
    completed_filled: float = 0.0
    owner_gone: bool = False  # nobody else will act on the order: what the broker lacks, never was


@dataclass(frozen=True)
class Verdict:
    status: (
        str  # FILLED | PARTIAL_CANCELLED | CANCELLED | REJECTED | WORKING | NEVER_REACHED | UNKNOWN
    )
    kind: str | None  # FILL | CANCEL | REJ | RESOLVED, or None: the order stays unresolved
    filled: float
    reason: str
    ask_broker: bool = False  # live evidence was inconclusive: look the order up by orderRef
    fills_missing: float = 0.0  # shares reported filled that have no execution we hold

    @property
    def final(self) -> bool:
        return self.kind is not None


def classify(evidence: Evidence) -> Verdict:
    """The outcome of one order from the evidence (pure)."""
    if evidence.looked_up:
        return _from_broker(evidence)
    return _from_live(evidence)


def _done(quantity: float, filled: float) -> bool:
    return filled >= quantity - EPSILON


def _cancel_verdict(quantity: float, filled: float, reason: str, missing: float = 0.0) -> Verdict:
    if _done(quantity, filled):
        return Verdict(FILLED, FILL, filled, reason, fills_missing=missing)
    if filled > EPSILON:
        return Verdict(PARTIAL_CANCELLED, CANCEL, filled, reason, fills_missing=missing)
    return Verdict(CANCELLED, CANCEL, 0.0, reason)


def _codes(codes: frozenset[int]) -> str:
    return ", ".join(str(c) for c in sorted(codes))


def _from_live(e: Evidence) -> Verdict:
    filled = max(e.fill_shares, e.reported_filled)

    def ask(why: str) -> Verdict:
        return Verdict(UNKNOWN, None, filled, why, ask_broker=True)

    if e.error_codes & REJECTED_CODES and filled <= EPSILON:
        return Verdict(
            REJECTED,
            REJ,
            0.0,
            f"rejected by the gateway (error {_codes(e.error_codes & REJECTED_CODES)})",
        )
    unexplained = frozenset(c for c in e.error_codes if not benign(c))
    if unexplained:
        return ask(
            f"error {_codes(unexplained)}: the live status {e.status or '-'} is not the broker's word"
        )
    if not e.acknowledged:
        return ask("the gateway never reported on the order")
    if e.fill_shares < e.reported_filled - EPSILON:
        return ask(
            f"the gateway reports {e.reported_filled:g} filled but {e.fill_shares:g} arrived as fills"
        )
    if _done(e.quantity, e.fill_shares):
        return Verdict(FILLED, FILL, e.fill_shares, "filled")
    if e.status == "Filled":
        return ask(f"Filled, but only {e.fill_shares:g} of {e.quantity:g} arrived as fills")
    if e.status in CANCELLED_STATUSES:
        return _cancel_verdict(e.quantity, e.fill_shares, f"{e.status} by the gateway")
    if e.status == "Inactive" and e.fill_shares <= EPSILON:
        return Verdict(REJECTED, REJ, 0.0, "inactive at the gateway")
    return ask(f"status {e.status or '-'} is not final")


def _from_broker(e: Evidence) -> Verdict:
    filled = max(e.fill_shares, e.completed_filled)
    missing = max(0.0, filled - e.fill_shares)
    if e.working_status is not None:
        return Verdict(WORKING, None, filled, f"still working at the broker: {e.working_status}")
    if missing > EPSILON and not e.owner_gone:
        return Verdict(
            UNKNOWN,
            None,
            filled,
            f"the broker reports {filled:g} filled but only {e.fill_shares:g} in executions; "
            "resolved at the next cycle",
            fills_missing=missing,
        )
    lacking = f"; {missing:g} filled shares have no execution record" if missing > EPSILON else ""
    if e.completed_status is not None:
        status = e.completed_status
        reason = f"completed at the broker: {status}, filled {filled:g}{lacking}"
        if status == "Filled" or _done(e.quantity, filled):
            return Verdict(FILLED, FILL, filled, reason, fills_missing=missing)
        if "Cancel" in status or filled > EPSILON:
            return _cancel_verdict(e.quantity, filled, reason, missing)
        return Verdict(REJECTED, REJ, 0.0, reason)
    if e.fill_shares > EPSILON:
        return _cancel_verdict(
            e.quantity,
            e.fill_shares,
            f"executions found: filled {e.fill_shares:g}; no longer working",
        )
    if e.error_codes & REJECTED_CODES:
        return Verdict(
            REJECTED,
            REJ,
            0.0,
            f"rejected by the gateway (error {_codes(e.error_codes & REJECTED_CODES)})",
        )
    if e.owner_gone:
        return Verdict(
            NEVER_REACHED,
            RESOLVED,
            0.0,
            "the broker has no order, completed order or execution with this orderRef: "
            "it never reached the broker (not resent)",
        )
    return Verdict(
        UNKNOWN,
        None,
        0.0,
        "the broker has no record of it (yet); resolved at the next cycle, never resent",
    )
