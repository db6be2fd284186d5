"""`reconcile run`: the long-running reconcile loop on APScheduler 3.

Responsible for turning `Schedule` documents into triggers (interval or cron, in the
schedule's timezone) and running level-triggered cycles: each re-reads the desired state and
the broker. selfHeal false plans and reports drift only; selfHeal true applies through every
gate and only inside the trading window: each traded instrument's exchange calendar (holidays,
early closes) narrowed by the gateway's liquidHours, minus the Schedule's guard minutes
(`reconciler.cycle.window`); outside it the cycle plans and reports, sends nothing, says why
and exits 0. With a git source configured, each cycle first brings the checkout to the
branch head (`reconciler.desired.gitsource`). A failed cycle is logged and the next one runs
(temporary errors); an invalid desired state skips cycles until fixed. `run --once` exits
with the cycle's code (0 completed, 1 error, 3 refused, 4 drift this run could not close; see
`reconciler.app.exit_codes`). Must not contain planning or execution logic.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from reconciler.app.exit_codes import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    exit_code_for_status,
)
from reconciler.model.clock import Clock, SystemClock
from reconciler.model.desired import Schedule
from reconciler.model.settings import Settings

log = logging.getLogger("reconciler.app.scheduler")


class SchedulerError(Exception):
    """The scheduler cannot start (no Schedule, invalid desired state at start)."""


def trigger_for(schedule: Schedule):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(schedule.timezone)
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=zone)
    return IntervalTrigger(seconds=schedule.interval_seconds or 900, timezone=zone)


@dataclass(frozen=True)
class CycleRun:
    """What one scheduled cycle did: a line for the log and the exit code `--once` uses."""

    line: str
    exit_code: int


def run_cycle(
    directory: str,
    settings: Settings,
    schedule_name: str | None,
    *,
    clock: Clock,
    store,
    echo: Callable[[str], None],
    ignore_window: bool = False,
    fetch_source: bool = True,
) -> str:
    """One scheduled cycle; returns a one-line outcome. Never raises for a failed cycle."""
    return run_cycle_outcome(
        directory,
        settings,
        schedule_name,
        clock=clock,
        store=store,
        echo=echo,
        ignore_window=ignore_window,
        fetch_source=fetch_source,
    ).line


def _sync_git_source(
    directory: str, settings: Settings, *, fetch: bool, echo: Callable[[str], None]
) -> tuple[CycleRun | None, str | None]:
    """Bring the checkout to the git source's branch head: (the failed cycle, None) or
    (None, the commit this cycle must apply; None without a git source)."""
    from reconciler.desired.gitsource import GitSourceError, GitSourceRefused, sync_for_cycle

    try:
        synced = sync_for_cycle(directory, settings, fetch=fetch)
    except GitSourceRefused as exc:
        return CycleRun(f"refused: {exc}", EXIT_REFUSED), None
    except GitSourceError as exc:
        return CycleRun(f"error (will retry next cycle): {exc}", EXIT_ERROR), None
    if synced is None:
        return None, None
    if synced.fetched or synced.moved:
        echo(synced.line)
    return None, synced.commit


def run_cycle_outcome(
    directory: str,
    settings: Settings,
    schedule_name: str | None,
    *,
    clock: Clock,
    store,
    echo: Callable[[str], None],
    ignore_window: bool = False,
    fetch_source: bool = True,
) -> CycleRun:
    """One scheduled cycle: its line and exit code. Never raises for a failed cycle.

    With a git source (RECONCILER_GIT_URL) the checkout is first brought to the branch head
    (fetched when `fetch_source`), and the cycle applies exactly that commit or refuses.
    """
    from reconciler.cycle import CycleError, Refused, apply_cycle, drift_report_cycle
    from reconciler.desired import load_desired_state
    from reconciler.model.diagnostics import DiagnosticsError
    from reconciler.render.plan import plan_summary
    from reconciler.store import StoreUnavailable

    failed, source_commit = _sync_git_source(directory, settings, fetch=fetch_source, echo=echo)
    if failed is not None:
        return failed
    try:
        desired = load_desired_state(directory)
    except DiagnosticsError as exc:
        return CycleRun(
            f"skipped: desired state invalid ({len(exc.diagnostics)} problem(s)); fix and commit",
            EXIT_ERROR,
        )
    if source_commit is not None and desired.git_commit != source_commit:
        return CycleRun(
            f"refused: the desired state read is at {(desired.git_commit or 'no commit')[:10]}, "
            f"not the git source's head {source_commit[:10]}"
            + (f" ({desired.git_problem})" if desired.git_problem else ""),
            EXIT_REFUSED,
        )
    schedule = next((s for s in desired.schedules if s.name == schedule_name), None)
    if schedule is None and desired.schedules:
        schedule = desired.schedules[0]
    accounts = list(schedule.accounts) if schedule and schedule.accounts else None
    try:
        if schedule is not None and schedule.self_heal:
            outcome = asyncio.run(
                apply_cycle(
                    desired,
                    settings,
                    clock=clock,
                    store=store,
                    approve=lambda _p: True,
                    progress=echo,
                    accounts=accounts,
                    reports_dir=settings.effective_reports_dir,
                    window=None if ignore_window else schedule.window,
                )
            )
            return CycleRun(
                f"apply cycle {outcome.report.cycle_id} {outcome.status}: {outcome.report.result}",
                exit_code_for_status(outcome.status),
            )
        planned = asyncio.run(
            drift_report_cycle(
                desired,
                settings,
                clock=clock,
                store=store,
                accounts=accounts,
                reports_dir=settings.effective_reports_dir,
            )
        )
        return CycleRun(f"drift report (selfHeal false): {plan_summary(planned.plan)}", EXIT_OK)
    except Refused as exc:
        return CycleRun(f"refused: {'; '.join(exc.reasons)}", EXIT_REFUSED)
    except (CycleError, StoreUnavailable) as exc:
        return CycleRun(f"error (will retry next cycle): {exc}", EXIT_ERROR)


def _open_store(settings: Settings, clock: Clock):
    from reconciler.store import StoreUnavailable, open_store

    try:
        return open_store(settings.effective_db_url, clock=clock)
    except StoreUnavailable as exc:
        raise SchedulerError(f"cannot open the store {exc.database}: {exc.cause}") from exc


def run_scheduler(
    directory: str,
    settings: Settings,
    *,
    gateway: str | None,
    once: bool,
    echo: Callable[[str], None],
    clock: Clock | None = None,
    ignore_window: bool = False,
) -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler

    from reconciler.app.gateway import gateway_settings
    from reconciler.desired import load_desired_state
    from reconciler.model.diagnostics import DiagnosticsError, render_text

    clock = clock or SystemClock()
    # The git source first: a checkout stuck on a broken commit must still see the fix.
    failed, _ = _sync_git_source(directory, settings, fetch=True, echo=echo)
    if failed is not None and once:
        echo(failed.line)
        return failed.exit_code
    if failed is not None:
        echo(f"git source at start: {failed.line}")
    try:
        desired = load_desired_state(directory)
    except DiagnosticsError as exc:
        raise SchedulerError(f"desired state invalid:\n{render_text(exc.diagnostics)}") from exc
    store = _open_store(settings, clock)
    with gateway_settings(gateway, settings) as gw:
        if once:
            name = desired.schedules[0].name if desired.schedules else None
            done = run_cycle_outcome(
                directory,
                gw,
                name,
                clock=clock,
                store=store,
                echo=echo,
                ignore_window=ignore_window,
                fetch_source=False,  # fetched just above
            )
            echo(done.line)
            return done.exit_code
        if not desired.schedules:
            raise SchedulerError("no Schedule document in the desired state; add one or use --once")
        scheduler = BlockingScheduler(timezone=dt.UTC)
        for schedule in desired.schedules:

            def job(name: str = schedule.name) -> None:
                echo(
                    f"{clock.now():%Y-%m-%dT%H:%M:%SZ} {name}: "
                    + run_cycle(
                        directory,
                        gw,
                        name,
                        clock=clock,
                        store=store,
                        echo=echo,
                        ignore_window=ignore_window,
                        fetch_source=settings.git_poll,
                    )
                )

            scheduler.add_job(
                job,
                trigger_for(schedule),
                id=schedule.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=60,
                next_run_time=dt.datetime.now(dt.UTC),
            )
            echo(
                f"scheduled {schedule.name}: {'cron ' + schedule.cron if schedule.cron else f'every {schedule.interval_seconds:g}s'}"
                f" ({schedule.timezone}), selfHeal={'true' if schedule.self_heal else 'false'}"
            )
        import contextlib
        import signal

        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the loop cleanly
            scheduler.start()
        return 0
