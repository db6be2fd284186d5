"""Recorded cycles: a cycle the store keeps (apply, the scheduler's drift report) is begun as
running, collects what it finds out, and is finished exactly once with its report, whatever
happens.

Responsible for the store's begin and finish of such a cycle, for the facts a cycle collects
while it runs (`ReportFacts`, the one mutable part), for building the `CycleReport` from them
once when the cycle ends, for writing its JSON and Markdown files (none for a cycle with
nothing to do when RECONCILER_REPORT_NOTHING_TO_DO=skip; then the report retention rule), for
the cycle's log context (`cycle_id` and `account` on every log line while it runs) and its
start, refusal and end log lines, and for handing the built report to the caller
(`RecordedCycle.report`) or with the `Refused`/`CycleError` that ended the cycle. Must not
decide what a cycle does, send orders, or print. See ARCHITECTURE.md.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler.cycle.common import CycleError, Refused
from reconciler.cycle.retention import prune_reports
from reconciler.model.actual import ActualState
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState
from reconciler.model.outcome import ERROR, REFUSED, RUNNING
from reconciler.model.plan import Plan, order_ref
from reconciler.model.ports import CycleStorePort
from reconciler.model.report import (
    AccountBalance,
    CycleReport,
    DesiredRef,
    GateRow,
    OrderCounts,
    OrderRow,
    WindowRow,
    decision_rows,
    drift_lines,
)
from reconciler.model.settings import ReportRetention, Settings
from reconciler.render.cycle_report import render_markdown
from reconciler.util.files import atomic_write
from reconciler.util.logs import bind_cycle, get_logger
from reconciler.util.process import holder_name

log = get_logger("reconciler.cycle")


def _lines(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@dataclass
class ReportFacts:
    """What a recorded cycle has found out so far; `build` turns it into its report.

    `None` means "not reached yet" and leaves the member out of the report.
    """

    cycle_id: int
    kind: str
    started_at: dt.datetime
    mode: str
    orders_enabled: bool
    accounts: tuple[str, ...]
    desired: DesiredRef
    warnings: tuple[str, ...] = ()
    status: str = RUNNING
    result: str | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gates: tuple[GateRow, ...] = ()
    lock_id: str | None = None
    recovery: Sequence[Mapping[str, Any]] | None = None
    orphan_orders: list[str] | None = None
    lock_mismatches: list[str] | None = None
    breaks: list[str] | None = None
    stale_reasons: list[str] | None = None
    risk_at_apply: list[str] | None = None
    window: list[WindowRow] | None = None  # set when the cycle checked a trading window
    plan: Plan | None = None  # the plan the cycle applied (or reported)
    orders: list[OrderRow] = field(default_factory=list)
    counts: Mapping[str, int] | None = None
    drift_not_closed: list[str] | None = None
    would_send: int | None = None
    plan_after: Plan | None = None  # the plan made from the snapshot after the orders
    breaks_after: list[str] | None = None
    balances_before: dict[str, tuple[str, float, float]] | None = None  # currency, NAV, cash
    balances_after: dict[str, tuple[str, float, float]] | None = None

    def balances(self) -> tuple[AccountBalance, ...] | None:
        if self.balances_before is None:
            return None
        after = self.balances_after or {}
        rows = []
        for account, (currency, nav, cash) in sorted(self.balances_before.items()):
            _, nav_after, cash_after = after.get(account, (currency, None, None))
            rows.append(AccountBalance(account, currency, nav, cash, nav_after, cash_after))
        return tuple(rows)

    def plan_orders(self) -> tuple[OrderRow, ...] | None:
        """A drift report's planned orders, as rows of orders not sent (apply: None)."""
        if self.kind != "plan" or self.plan is None:
            return None
        return tuple(
            OrderRow(
                order_ref=order_ref(self.plan.plan_id, o.leg),
                leg=o.leg,
                account=o.account,
                key=o.key,
                side=o.side,
                quantity=o.quantity,
                status="NOT_SENT",
                est_commission=o.est_commission,
                arrival_price=o.arrival_price,
                message="drift report: not sent",
                reason=o.reason,
                currency=o.currency,
            )
            for o in self.plan.orders
        )

    def order_rows(self) -> tuple[OrderRow, ...]:
        """The orders with what the plan knew of each: why it was sent, its currency."""
        planned = {o.leg: o for o in self.plan.orders} if self.plan else {}
        rows = []
        for row in self.orders:
            p = planned.get(row.leg)
            rows.append(row if p is None else replace(row, reason=p.reason, currency=p.currency))
        return tuple(rows)

    def build(
        self,
        finished_at: dt.datetime,
        *,
        files: Sequence[str] | None = None,
        report_files_error: str | None = None,
    ) -> CycleReport:
        plan, after = self.plan, self.plan_after
        return CycleReport(
            cycle_id=self.cycle_id,
            kind=self.kind,
            started_at=self.started_at,
            finished_at=finished_at,
            status=self.status,
            mode=self.mode,
            orders_enabled=self.orders_enabled,
            accounts=self.accounts,
            desired=self.desired,
            gates=self.gates,
            plan_id=plan.plan_id if plan else None,
            drift_before=drift_lines(plan) if plan else (),
            drift_after=drift_lines(after) if after else (),
            orders=self.order_rows(),
            denials=decision_rows(plan) if plan else (),
            errors=tuple(self.errors),
            notes=tuple(self.notes),
            warnings=self.warnings,
            lock_id=self.lock_id,
            recovery=None if self.recovery is None else tuple(self.recovery),
            orphan_orders=_lines(self.orphan_orders),
            lock_mismatches=_lines(self.lock_mismatches),
            breaks=_lines(self.breaks),
            stale_reasons=_lines(self.stale_reasons),
            risk_at_apply=_lines(self.risk_at_apply),
            window=None if self.window is None else tuple(self.window),
            planned_orders=len(plan.orders) if plan else None,
            totals=plan.totals if plan else None,
            counts=None if self.counts is None else OrderCounts.from_mapping(self.counts),
            drift_not_closed=_lines(self.drift_not_closed),
            would_send=self.would_send,
            result=self.result,
            remaining_orders_after=len(after.orders) if after else None,
            breaks_after=_lines(self.breaks_after),
            files=_lines(files),
            report_files_error=report_files_error,
            balances=self.balances(),
            plan_orders=self.plan_orders(),
        )


def account_balances(
    actual: ActualState, accounts: Sequence[str]
) -> dict[str, tuple[str, float, float]]:
    """NAV and cash (base currency) of each chosen account in a snapshot, for the report."""
    return {
        a: (s.base_currency, round(s.net_liquidation, 2), round(s.total_cash, 2))
        for a, s in actual.accounts.items()
        if a in accounts
    }


class RecordedCycle:
    """One cycle in the store, from `begin` (recorded as running) to its one finish."""

    def __init__(
        self,
        store: CycleStorePort,
        facts: ReportFacts,
        clock: Clock,
        reports_dir: str | None,
        files: ReportFiles | None = None,
    ) -> None:
        self.store = store
        self.facts = facts
        self.clock = clock
        self.reports_dir = reports_dir
        self.files = files or ReportFiles()
        self.report: CycleReport | None = None  # set when the cycle is finished

    @classmethod
    def begin(
        cls,
        store: CycleStorePort,
        kind: str,
        desired: DesiredState,
        settings: Settings,
        accounts: Sequence[str],
        *,
        clock: Clock,
        reports_dir: str | None,
        warnings: Sequence[str] = (),
    ) -> RecordedCycle:
        """Record the cycle as running (the store's errors propagate: nothing has happened)."""
        cycle_id = store.begin_cycle(
            kind,
            holder=holder_name(),
            accounts=accounts,
            desired_hash=desired.content_hash,
            git_commit=desired.git_commit,
            git_dirty=desired.git_dirty,
        )
        facts = ReportFacts(
            cycle_id=cycle_id,
            kind=kind,
            started_at=clock.now(),
            mode=settings.trading_mode,
            orders_enabled=settings.orders_enabled,
            accounts=tuple(accounts),
            desired=DesiredRef.of(desired),
            warnings=tuple(warnings),
        )
        files = ReportFiles(settings.report_retention, settings.report_nothing_to_do == "file")
        return cls(store, facts, clock, reports_dir, files)

    @property
    def cycle_id(self) -> int:
        return self.facts.cycle_id

    @contextmanager
    def finishing(self) -> Iterator[ReportFacts]:
        """Run the cycle's body with its facts; finish the cycle once, whatever happens.

        Finished with `facts.status` when the body returns; `refused` when it raises
        `Refused`, `error` when it raises `CycleError` (both re-raised carrying the report);
        any other exception is recorded as an error and raised as a `CycleError`, so a cycle
        is never left "running".
        """
        facts = self.facts
        with bind_cycle(cycle_id=self.cycle_id, account=",".join(facts.accounts)):
            log.info(
                "cycle started",
                kind=facts.kind,
                mode=facts.mode,
                orders_enabled=facts.orders_enabled,
                desired_hash=(facts.desired.hash or "")[:12] or None,
                git_commit=facts.desired.git_commit,
            )
            try:
                yield facts
            except Refused as exc:
                log.warning("cycle refused", reasons=list(exc.reasons))
                exc.report = self._finish(REFUSED, exc.reasons)
                raise
            except CycleError as exc:
                log.error("cycle failed", error=str(exc))
                exc.report = self._finish(ERROR, [str(exc)])
                raise
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
                log.error("cycle failed", error=why, exc_info=True)
                report = self._finish(ERROR, [why])
                raise CycleError(f"cycle {self.cycle_id} failed: {why}", report=report) from exc
            self._finish(facts.status)

    def _finish(self, status: str, errors: Sequence[str] | None = None) -> CycleReport:
        self.facts.status = status
        if errors is not None:
            self.facts.errors = list(errors)
        self.report = finish_cycle(
            self.store, self.facts, self.clock, self.reports_dir, files=self.files
        )
        r = self.report
        (log.info if status not in (REFUSED, ERROR) else log.warning)(
            "cycle finished",
            status=r.status,
            result=r.headline,
            planned_orders=r.planned_orders,
            duration_seconds=r.duration_seconds,
            report=r.files[1] if r.files else None,
        )
        return self.report


@dataclass(frozen=True)
class ReportFiles:
    """What happens to report files: written for a nothing-to-do cycle or not
    (RECONCILER_REPORT_NOTHING_TO_DO), and the retention rule applied after each write
    (RECONCILER_REPORT_RETENTION; None keeps every file)."""

    retention: ReportRetention | None = None
    nothing_to_do_file: bool = True


def finish_cycle(
    store: CycleStorePort,
    facts: ReportFacts,
    clock: Clock,
    reports_dir: str | None,
    *,
    files: ReportFiles = ReportFiles(),
) -> CycleReport:
    """Build the cycle's report, write its files and close the cycle in the store with it.

    The store's record does not depend on the files: a report that cannot be written (full
    disk, a directory that became read-only) is logged as an error and noted in the stored
    report, and the cycle is still closed with its true status, so the next cycle runs. A
    cycle with nothing to do gets no files when `files.nothing_to_do_file` is false (the
    store still records it). After a write, the retention rule removes old report files.
    """
    finished = clock.now()
    report = facts.build(finished)
    if reports_dir and (files.nothing_to_do_file or not report.nothing_to_do):
        paths = report_paths(reports_dir, facts.started_at, facts.cycle_id)
        report = facts.build(finished, files=[str(p) for p in paths])
        try:
            write_report_files(report, *paths)
        except OSError as exc:
            cause = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
            report = replace(
                report,
                files=(),
                report_files_error=(
                    f"report files not written to {reports_dir} ({cause}); the report is in "
                    "the store (reconcile show cycles)"
                ),
            )
            log.error("report files not written", error=report.report_files_error)
        else:
            _apply_retention(Path(reports_dir), files.retention, finished)
    try:
        store.finish_cycle(
            facts.cycle_id,
            report.status,
            report=report.to_dict(),
            error="; ".join(report.errors) or None,
        )
    except ValueError as exc:  # closed by someone else (operator, recovery): keep theirs
        log.warning("cycle not recorded", error=str(exc))
    return report


def _apply_retention(directory: Path, retention: ReportRetention | None, now: dt.datetime) -> None:
    if retention is None:
        return
    try:
        removed = prune_reports(directory, retention, now)
    except OSError as exc:  # a report kept too long never fails a cycle
        log.warning("report retention not applied", directory=str(directory), error=str(exc))
        return
    if removed:
        log.info(
            "old reports removed",
            retention=retention.render(),
            files=len(removed),
            directory=str(directory),
        )


def report_paths(reports_dir: str, started_at: dt.datetime, cycle_id: int) -> tuple[Path, Path]:
    """The JSON and Markdown files of a cycle: `20260107T170000-cycle12.json` / `.md`."""
    stamp = started_at.isoformat()[:19].replace(":", "").replace("-", "")
    stem = Path(reports_dir) / f"{stamp}-cycle{cycle_id}"
    return stem.with_suffix(".json"), stem.with_suffix(".md")


def write_report_files(report: CycleReport, json_path: Path, md_path: Path) -> None:
    """Write the report as JSON and Markdown; each file replaced atomically."""
    document = json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(json_path, document)
    atomic_write(md_path, render_markdown(report))
