"""Recorded cycles: a cycle the store keeps (apply, the scheduler's drift report) is begun as
running, collects what it finds out, and is finished exactly once with its report, whatever
happens.

Responsible for the store's begin and finish of such a cycle, for the facts a cycle collects
while it runs (`ReportFacts`, the one mutable part), for building the `CycleReport` from them
once when the cycle ends, for writing its JSON and Markdown files, and for handing the built
report to the caller (`RecordedCycle.report`) or with the `Refused`/`CycleError` that ended
the cycle. Must not decide what a cycle does, send orders, or print. See ARCHITECTURE.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler.cycle.common import CycleError, Refused
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState
from reconciler.model.outcome import ERROR, REFUSED, RUNNING
from reconciler.model.plan import Plan
from reconciler.model.ports import CycleStorePort
from reconciler.model.report import (
    CycleReport,
    DesiredRef,
    GateRow,
    OrderCounts,
    OrderRow,
    WindowRow,
    decision_rows,
    drift_lines,
)
from reconciler.model.settings import Settings
from reconciler.render.cycle_report import render_markdown
from reconciler.util.files import atomic_write
from reconciler.util.process import holder_name

log = logging.getLogger("reconciler.cycle")


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
            orders=tuple(self.orders),
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
        )


class RecordedCycle:
    """One cycle in the store, from `begin` (recorded as running) to its one finish."""

    def __init__(
        self, store: CycleStorePort, facts: ReportFacts, clock: Clock, reports_dir: str | None
    ) -> None:
        self.store = store
        self.facts = facts
        self.clock = clock
        self.reports_dir = reports_dir
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
        return cls(store, facts, clock, reports_dir)

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
        try:
            yield self.facts
        except Refused as exc:
            exc.report = self._finish(REFUSED, exc.reasons)
            raise
        except CycleError as exc:
            exc.report = self._finish(ERROR, [str(exc)])
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            report = self._finish(ERROR, [why])
            raise CycleError(f"cycle {self.cycle_id} failed: {why}", report=report) from exc
        self._finish(self.facts.status)

    def _finish(self, status: str, errors: Sequence[str] | None = None) -> CycleReport:
        self.facts.status = status
        if errors is not None:
            self.facts.errors = list(errors)
        self.report = finish_cycle(self.store, self.facts, self.clock, self.reports_dir)
        return self.report


def finish_cycle(
    store: CycleStorePort, facts: ReportFacts, clock: Clock, reports_dir: str | None
) -> CycleReport:
    """Build the cycle's report, write its files and close the cycle in the store with it.

    The store's record does not depend on the files: a report that cannot be written (full
    disk, a directory that became read-only) is logged as an error and noted in the stored
    report, and the cycle is still closed with its true status, so the next cycle runs.
    """
    finished = clock.now()
    if not reports_dir:
        report = facts.build(finished)
    else:
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
            log.error("cycle %s: %s", facts.cycle_id, report.report_files_error)
    try:
        store.finish_cycle(
            facts.cycle_id,
            report.status,
            report=report.to_dict(),
            error="; ".join(report.errors) or None,
        )
    except ValueError as exc:  # closed by someone else (operator, recovery): keep theirs
        log.warning("cycle %s not recorded: %s", facts.cycle_id, exc)
    return report


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
