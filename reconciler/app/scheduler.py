"""`reconcile run`: the long-running reconcile loop on APScheduler 3.

Responsible for turning `Schedule` documents into triggers (interval or cron, in the
schedule's timezone), deciding whether a cycle may trade now (trading window: not in the first
or last N minutes of the regular session), and running level-triggered cycles: each re-reads
the desired state and the broker. selfHeal false plans and reports drift only; selfHeal true
applies through every gate. A failed cycle is logged and the next one runs (temporary
errors); an invalid desired state skips cycles until fixed. `run --once` exits with the
cycle's code (0 completed, 1 error, 3 refused, 4 drift this run could not close; see
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

SESSION_OPEN = dt.time(9, 30)
SESSION_CLOSE = dt.time(16, 0)
SESSION_ZONE = ZoneInfo("America/New_York")


class SchedulerError(Exception):
    """The scheduler cannot start (no Schedule, invalid desired state at start)."""


def in_trading_window(now: dt.datetime, schedule: Schedule) -> tuple[bool, str]:
    """Is `now` inside the regular US session minus the schedule's guard minutes? (pure)

    The session is NYSE/Nasdaq regular hours, 09:30-16:00 America/New_York, Monday to
    Friday; exchange holidays are not modelled (the gateway rejects or holds orders then).
    """
    local = now.astimezone(SESSION_ZONE)
    if local.weekday() >= 5:
        return False, f"weekend ({local:%a %H:%M} New York)"
    day = local.date()
    open_at = dt.datetime.combine(day, SESSION_OPEN, SESSION_ZONE) + dt.timedelta(
        minutes=schedule.window.avoid_open_minutes
    )
    close_at = dt.datetime.combine(day, SESSION_CLOSE, SESSION_ZONE) - dt.timedelta(
        minutes=schedule.window.avoid_close_minutes
    )
    if local < open_at:
        return False, f"before the window opens at {open_at:%H:%M} New York"
    if local >= close_at:
        return False, f"after the window closes at {close_at:%H:%M} New York"
    return True, f"inside the window {open_at:%H:%M}-{close_at:%H:%M} New York"


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
    ).line


def run_cycle_outcome(
    directory: str,
    settings: Settings,
    schedule_name: str | None,
    *,
    clock: Clock,
    store,
    echo: Callable[[str], None],
    ignore_window: bool = False,
) -> CycleRun:
    """One scheduled cycle: its line and exit code. Never raises for a failed cycle."""
    from reconciler.cycle import CycleError, Refused, apply_cycle, drift_report_cycle
    from reconciler.desired import load_desired_state
    from reconciler.model.diagnostics import DiagnosticsError
    from reconciler.render.plan import plan_summary
    from reconciler.store import StoreUnavailable

    try:
        desired = load_desired_state(directory)
    except DiagnosticsError as exc:
        return CycleRun(
            f"skipped: desired state invalid ({len(exc.diagnostics)} problem(s)); fix and commit",
            EXIT_ERROR,
        )
    schedule = next((s for s in desired.schedules if s.name == schedule_name), None)
    if schedule is None and desired.schedules:
        schedule = desired.schedules[0]
    accounts = list(schedule.accounts) if schedule and schedule.accounts else None
    if schedule is not None and not ignore_window:
        ok, why = in_trading_window(clock.now(), schedule)
        if not ok:
            return CycleRun(f"skipped: outside the trading window ({why})", EXIT_OK)
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
