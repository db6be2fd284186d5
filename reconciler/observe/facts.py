"""The facts of one finished cycle that metrics and notifications are made from (pure).

Responsible for `CycleFacts` (the cycle's report when it was recorded, its plan, or only its
outcome and reasons when it ended before the store recorded it; the gateway counters of the
process) and for the readings both consumers share: the outcome word, the drift that stands
after the cycle, the instruments out of band. Must not do I/O or read a clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.model.plan import Plan
from reconciler.model.report import CycleReport, DriftLine
from reconciler.model.status import CycleStatus, DriftStatus

# The outcome label of reconciler_cycles_total, from a cycle's status (and kind).
OUTCOMES = (
    "applied",
    "nothing-to-do",
    "dry-run",
    "report-only",
    "outside-window",
    "blocked",
    "not-filled",
    "refused",
    "error",
)


@dataclass(frozen=True)
class GatewayFacts:
    """The gateway sessions of this process: monotonic counters and what was last seen."""

    messages_sent: int = 0
    pacing_waits: int = 0
    up: bool | None = None  # the last connection (or the daemon's port probe) succeeded
    link_ok: bool | None = None  # the gateway's link to IBKR when the last session ended


@dataclass(frozen=True)
class CycleFacts:
    """One finished cycle, recorded (`report`) or not (then `status`, `reasons`)."""

    kind: str  # apply | plan
    status: str  # a CycleStatus value
    started_at: dt.datetime
    finished_at: dt.datetime
    accounts: tuple[str, ...] = ()
    report: CycleReport | None = None
    plan: Plan | None = None
    reasons: tuple[str, ...] = ()  # why it was refused or failed
    ledger_verified: bool | None = None  # the store's hash chain checked after the cycle

    @classmethod
    def of_report(
        cls, report: CycleReport, plan: Plan | None = None, *, ledger_verified: bool | None = None
    ) -> CycleFacts:
        return cls(
            kind=report.kind,
            status=report.status,
            started_at=report.started_at,
            finished_at=report.finished_at,
            accounts=report.accounts,
            report=report,
            plan=plan,
            reasons=report.errors,
            ledger_verified=ledger_verified,
        )

    @property
    def duration_seconds(self) -> float:
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def outcome(self) -> str:
        return outcome_of(self.kind, self.status, self.report)

    @property
    def succeeded(self) -> bool:
        """The cycle ran to its end (whatever it found): not refused, failed or aborted."""
        return self.status not in (
            CycleStatus.REFUSED,
            CycleStatus.ERROR,
            CycleStatus.ABORTED,
            CycleStatus.RUNNING,
        )

    def standing_drift(self) -> tuple[DriftLine, ...]:
        """The drift the cycle leaves: after its orders when it measured it, else before."""
        if self.report is None:
            return ()
        return self.report.drift_after or self.report.drift_before

    def knows_drift(self) -> bool:
        return bool(self.report and (self.report.drift_after or self.report.drift_before))

    def out_of_band(self) -> dict[str, tuple[DriftLine, ...]]:
        """Managed instruments outside their band after the cycle, per account."""
        found: dict[str, list[DriftLine]] = {a: [] for a in self.accounts}
        for line in self.standing_drift():
            if line.status == DriftStatus.MANAGED and not line.in_band:
                found.setdefault(line.account, []).append(line)
        return {a: tuple(lines) for a, lines in found.items()}

    def max_abs_drift(self) -> dict[str, float]:
        """The largest |current - target weight| of a managed instrument, per account."""
        out: dict[str, float] = {}
        for line in self.standing_drift():
            if line.status == DriftStatus.MANAGED and line.drift is not None:
                out[line.account] = max(out.get(line.account, 0.0), abs(line.drift))
        return out

    def nav(self) -> Mapping[tuple[str, str], float]:
        """(account, base currency) -> net liquidation value at plan time."""
        if self.plan is None:
            return {}
        return {(a.account, a.base_currency): a.net_liquidation for a in self.plan.accounts}


def outcome_of(kind: str, status: str, report: CycleReport | None = None) -> str:
    """The outcome word of a cycle (one of OUTCOMES)."""
    if status in (CycleStatus.REFUSED,):
        return "refused"
    if status in (CycleStatus.ERROR, CycleStatus.ABORTED, CycleStatus.RUNNING):
        return "error"
    if kind == "plan":
        return "report-only"
    if status == CycleStatus.DRY_RUN:
        return "dry-run"
    if status == CycleStatus.OUTSIDE_WINDOW:
        return "outside-window"
    if status == CycleStatus.BLOCKED:
        return "blocked"
    if status == CycleStatus.PARTIAL:
        return "applied"
    if status == CycleStatus.OK:
        sent = bool(report and report.orders)
        return "applied" if sent else "nothing-to-do"
    return "not-filled"  # none-filled, unknown, not-approved
