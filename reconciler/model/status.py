"""The closed vocabularies of the ledger and the reports: event kinds, order outcomes, drift
statuses and cycle outcomes, as `StrEnum`s.

They compare equal to their string values, so stored rows and JSON stay plain strings; a
misspelled member is an AttributeError at import time instead of a row that never counts as
final. Must not carry behaviour beyond classifying members.
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """What one ledger event records."""

    INTENT = "INTENT"  # written and committed before an order may be sent
    ACK = "ACK"  # the broker acknowledged the order
    STATUS = "STATUS"  # any other broker status change worth keeping
    PARTIAL = "PARTIAL"  # a fill that leaves the order working
    FILL = "FILL"  # final: filled
    CANCEL = "CANCEL"  # final: cancelled (possibly after partial fills)
    REJ = "REJ"  # final: rejected
    RESOLVED = "RESOLVED"  # final: recovery settled the outcome from the broker
    PNL_SNAPSHOT = "PNL_SNAPSHOT"  # transaction cost of a filled order
    BREAK = "BREAK"  # ledger and broker disagree
    HALT = "HALT"
    RESUME = "RESUME"
    UNLOCK = "UNLOCK"

    @property
    def is_final(self) -> bool:
        return self in FINAL_EVENT_KINDS


FINAL_EVENT_KINDS = frozenset(
    {EventKind.FILL, EventKind.CANCEL, EventKind.REJ, EventKind.RESOLVED}
)


class OrderOutcome(StrEnum):
    """How one planned order ended, as a cycle reports it."""

    FILLED = "FILLED"
    PARTIAL_CANCELLED = "PARTIAL_CANCELLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    NOT_SENT = "NOT_SENT"
    UNKNOWN = "UNKNOWN"  # no final answer yet: recovery resolves it from the broker


class DriftStatus(StrEnum):
    """Why a drift row is (or is not) something the planner can act on."""

    MANAGED = "managed"
    UNMANAGED = "unmanaged"
    MISSING_PRICE = "missing-price"
    MISSING_FX = "missing-fx"
    UNRESOLVED = "unresolved"
    NO_CAPITAL = "no-capital"


class CycleStatus(StrEnum):
    """The status of a cycle row and of its report."""

    RUNNING = "running"
    OK = "ok"  # completed: every planned order filled, or nothing to do and in sync
    PARTIAL = "partial"  # some orders filled (in whole or in part), others did not
    DRY_RUN = "dry-run"  # ORDERS_ENABLED is false: planned, checked, recorded, nothing sent
    OUTSIDE_WINDOW = "outside-window"  # market closed or in the guard minutes: nothing sent
    NONE_FILLED = "none-filled"  # orders planned and approved, none filled anything
    BLOCKED = "blocked"  # out of band, but no allowed order: every needed order denied
    NOT_APPROVED = "not-approved"
    UNKNOWN = "unknown"  # some outcomes unknown and nothing known to be filled
    REFUSED = "refused"
    ERROR = "error"
    ABORTED = "aborted"
