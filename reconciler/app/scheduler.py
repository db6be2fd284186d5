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
`reconciler.app.exit_codes`).

Connection resilience (daemon only): before each cycle the gateway's port is probed and, while
it refuses, retried with capped exponential backoff and jitter (tenacity), so a gateway that
is down at start or restarts mid-run is waited for, each retry logged with its delay. Every
cycle opens its own session and takes a fresh complete snapshot; a session that hears 1100
(the gateway's link to IBKR lost) sends nothing more, and the next cycle's snapshot fails
until 1101/1102 (see `Broker.link_problem`). SIGTERM (or Ctrl-C) stops sending at once,
waits up to the grace for in-flight acknowledgements, leaves unresolved orders in the ledger
for the next run's recovery, logs that it stopped and exits 0. The daemon's start, each
schedule, each reconnect retry, each cycle's outcome and its stop are structured log events
(`reconciler.observe.logs` decides their format); cycles' progress lines are DEBUG detail.
Tuning (environment):
RECONCILER_RECONNECT_INITIAL_SECONDS (first delay, default 1), RECONCILER_RECONNECT_MAX_SECONDS
(cap, default 60), RECONCILER_RECONNECT_JITTER_SECONDS (random extra up to, default 1),
RECONCILER_SHUTDOWN_GRACE_SECONDS (wait for acknowledgements on SIGTERM, default 10).
Must not contain planning or execution logic.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from reconciler.app.exit_codes import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    exit_code_for_status,
)
from reconciler.app.resilience import Resilience, SchedulerError
from reconciler.model.clock import Clock, SystemClock
from reconciler.model.desired import Schedule
from reconciler.model.settings import Settings
from reconciler.model.status import CycleStatus
from reconciler.observe.facts import CycleFacts
from reconciler.util.logs import get_logger

log = get_logger("reconciler.app.scheduler")


def log_progress(line: str) -> None:
    """A cycle's progress lines in the daemon: detail, the structured events say the rest."""
    log.debug("progress", line=line)


def wait_for_gateway(
    host: str,
    port: int,
    *,
    resilience: Resilience,
    stop: threading.Event,
    echo: Callable[[str], None] | None = None,
    probe_timeout: float = 5.0,
    on_unreachable: Callable[[], None] = lambda: None,
) -> bool:
    """Until the gateway's port accepts a connection: True, or False when `stop` is set.

    Retries with capped exponential backoff and jitter; each retry is logged (WARNING) with
    its delay, and also given to `echo` when one is passed.
    """
    import tenacity

    if stop.is_set():
        return False

    def probe() -> None:
        with socket.create_connection((host, port), timeout=probe_timeout):
            pass

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        on_unreachable()
        log.warning(
            "gateway unreachable",
            gateway=f"{host}:{port}",
            reason=_reason(error),
            retry=state.attempt_number,
            delay_seconds=round(delay, 2),
        )
        if echo is not None:
            echo(
                f"gateway {host}:{port} unreachable ({_reason(error)}); "
                f"retry {state.attempt_number} in {delay:.2f}s"
            )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(OSError),
        wait=tenacity.wait_exponential_jitter(
            initial=resilience.initial_seconds,
            max=resilience.max_seconds,
            jitter=resilience.jitter_seconds,
        ),
        stop=lambda _state: stop.is_set(),
        sleep=stop.wait,  # a stop request ends the wait at once
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        retrying(probe)
    except tenacity.RetryError:
        return False
    return not stop.is_set()


def _reason(error: BaseException | None) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def trigger_for(schedule: Schedule):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(schedule.timezone)
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=zone)
    return IntervalTrigger(seconds=schedule.interval_seconds or 900, timezone=zone)


@dataclass(frozen=True)
class CycleRun:
    """What one scheduled cycle did: a line for the log, the exit code `--once` uses and
    its facts for the metrics and notifications (`reconciler.app.observing`)."""

    line: str
    exit_code: int
    facts: CycleFacts | None = field(default=None, compare=False)


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
        log.info("git source", line=synced.line, commit=synced.commit)
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
    """One scheduled cycle: its line, exit code and facts. Never raises for a failed cycle.

    With a git source (RECONCILER_GIT_URL) the checkout is first brought to the branch head
    (fetched when `fetch_source`), and the cycle applies exactly that commit or refuses.
    """
    from reconciler.app.observing import facts_of

    started = clock.now()
    done = _run_cycle_outcome(
        directory,
        settings,
        schedule_name,
        clock=clock,
        store=store,
        echo=echo,
        ignore_window=ignore_window,
        fetch_source=fetch_source,
    )
    if done.facts is not None:
        return done
    # Ended before the Schedule was read (git source, invalid desired state): kind unknown.
    status = CycleStatus.REFUSED if done.exit_code == EXIT_REFUSED else CycleStatus.ERROR
    facts = facts_of("unknown", started=started, finished=clock.now(), status=status)
    return replace(done, facts=replace(facts, reasons=(done.line,)))


def _run_cycle_outcome(
    directory: str,
    settings: Settings,
    schedule_name: str | None,
    *,
    clock: Clock,
    store,
    echo: Callable[[str], None],
    ignore_window: bool,
    fetch_source: bool,
) -> CycleRun:
    from reconciler.app.observing import facts_of
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
    kind = "apply" if schedule is not None and schedule.self_heal else "plan"
    mine = accounts or [p.account for p in desired.portfolios]  # for a cycle that fails early
    started = clock.now()
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
                facts_of("apply", started=started, finished=clock.now(), outcome=outcome),
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
        return CycleRun(
            f"drift report (selfHeal false): {plan_summary(planned.plan)}",
            EXIT_OK,
            facts_of("plan", started=started, finished=clock.now(), outcome=planned),
        )
    except Refused as exc:
        facts = facts_of(kind, started=started, finished=clock.now(), accounts=mine, refused=exc)
        return CycleRun(f"refused: {'; '.join(exc.reasons)}", EXIT_REFUSED, facts)
    except (CycleError, StoreUnavailable) as exc:
        facts = facts_of(kind, started=started, finished=clock.now(), accounts=mine, error=exc)
        return CycleRun(f"error (will retry next cycle): {exc}", EXIT_ERROR, facts)


def _open_store(settings: Settings, clock: Clock):
    from reconciler.store import StoreUnavailable, open_store

    try:
        return open_store(settings.effective_db_url, clock=clock)
    except StoreUnavailable as exc:
        raise SchedulerError(f"cannot open the store {exc.database}: {exc.cause}") from exc


def _observe_failure(
    settings: Settings, clock: Clock, started: dt.datetime, why: str, exit_code: int
) -> None:
    """`run --once` ended before its cycle began: still a refused or failed cycle to publish."""
    from reconciler.app.observing import Observer, facts_of

    status = CycleStatus.REFUSED if exit_code == EXIT_REFUSED else CycleStatus.ERROR
    facts = facts_of("unknown", started=started, finished=clock.now(), status=status)
    Observer(settings, clock).cycle(replace(facts, reasons=(why,)))


def _log_cycle(schedule: str | None, done: CycleRun) -> None:
    """One line per scheduled cycle: INFO completed, WARNING refused or drift left, ERROR."""
    level = {EXIT_OK: "info", EXIT_ERROR: "error"}.get(done.exit_code, "warning")
    getattr(log, level)(
        "scheduled cycle done", schedule=schedule, outcome=done.line, exit_code=done.exit_code
    )


def run_scheduler(
    directory: str,
    settings: Settings,
    *,
    gateway: str | None,
    once: bool,
    echo: Callable[[str], None],
    clock: Clock | None = None,
    ignore_window: bool = False,
    progress: Callable[[str], None] = log_progress,
) -> int:
    """The daemon (or one cycle with `once`): returns the exit code. `echo` gets the
    one-line outcome of a `once` cycle (the command's output); `progress` the cycles'
    progress lines; everything else is logged."""
    from reconciler import __version__

    mode = "once" if once else "daemon"
    log.info("started", mode=mode, version=__version__, pid=os.getpid(), directory=directory)
    try:
        code = _run_scheduler(
            directory,
            settings,
            gateway=gateway,
            once=once,
            echo=echo,
            progress=progress,
            clock=clock,
            ignore_window=ignore_window,
        )
    except SchedulerError as exc:
        log.error("stopped: cannot start", mode=mode, error=str(exc).splitlines()[0])
        raise
    if once:
        log.info("stopped", mode=mode, exit_code=code)
    return code


def _run_scheduler(
    directory: str,
    settings: Settings,
    *,
    gateway: str | None,
    once: bool,
    echo: Callable[[str], None],
    progress: Callable[[str], None],
    clock: Clock | None = None,
    ignore_window: bool = False,
) -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler

    from reconciler.app.gateway import gateway_settings
    from reconciler.desired import load_desired_state
    from reconciler.model.diagnostics import DiagnosticsError, render_text

    clock = clock or SystemClock()
    from reconciler.model.settings import read_dotenv

    # Same precedence as the settings: the process environment over the `.env` file.
    resilience = Resilience.from_env({**read_dotenv(), **os.environ}) if not once else Resilience()
    # The git source first: a checkout stuck on a broken commit must still see the fix.
    # The start's sync line is part of `run --once`'s output (stdout, human format).
    started = clock.now()
    failed, _ = _sync_git_source(directory, settings, fetch=True, echo=echo)
    if failed is not None and once:
        _log_cycle(None, failed)
        echo(failed.line)
        _observe_failure(settings, clock, started, failed.line, failed.exit_code)
        return failed.exit_code
    if failed is not None:
        log.warning("git source at start", outcome=failed.line)
    try:
        desired = load_desired_state(directory)
    except DiagnosticsError as exc:
        why = f"desired state invalid:\n{render_text(exc.diagnostics)}"
        if once:
            _observe_failure(settings, clock, started, why, EXIT_ERROR)
        raise SchedulerError(why) from exc
    store = _open_store(settings, clock)
    from reconciler.app.observing import Observer

    # Metrics and notifications of every cycle (its /metrics server threads are daemons).
    observer = Observer(settings, clock, store=store, echo=echo)
    with gateway_settings(gateway, settings) as gw:
        if once:
            name = desired.schedules[0].name if desired.schedules else None
            done = run_cycle_outcome(
                directory,
                gw,
                name,
                clock=clock,
                store=store,
                echo=progress,
                ignore_window=ignore_window,
                fetch_source=False,  # fetched just above
            )
            _log_cycle(name, done)
            echo(done.line)
            if done.facts is not None:
                observer.cycle(done.facts)
            return done.exit_code
        if not desired.schedules:
            raise SchedulerError("no Schedule document in the desired state; add one or use --once")
        scheduler = BlockingScheduler(timezone=dt.UTC)
        stop = threading.Event()
        idle = threading.Event()
        idle.set()
        for schedule in desired.schedules:

            def job(name: str = schedule.name) -> None:
                if stop.is_set():
                    return
                idle.clear()
                try:
                    if not wait_for_gateway(
                        gw.gateway_host,
                        gw.gateway_port,
                        resilience=resilience,
                        stop=stop,
                        probe_timeout=gw.connect_timeout,
                        on_unreachable=observer.gateway_unreachable,
                    ):
                        return
                    done = run_cycle_outcome(
                        directory,
                        gw,
                        name,
                        clock=clock,
                        store=store,
                        echo=progress,
                        ignore_window=ignore_window,
                        fetch_source=settings.git_poll,
                    )
                    _log_cycle(name, done)
                    if done.facts is not None:
                        observer.cycle(done.facts)
                finally:
                    idle.set()

            scheduler.add_job(
                job,
                trigger_for(schedule),
                id=schedule.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=60,
                next_run_time=dt.datetime.now(dt.UTC),
            )
            log.info(
                "scheduled",
                schedule=schedule.name,
                trigger=f"cron {schedule.cron}"
                if schedule.cron
                else f"every {schedule.interval_seconds:g}s",
                timezone=schedule.timezone,
                self_heal=schedule.self_heal,
            )
        import contextlib
        import signal

        from reconciler.apply.shutdown import SHUTDOWN

        received: list[str] = []

        def request_stop(signum: int, _frame: object = None) -> None:
            name = signal.Signals(signum).name
            received.append(name)
            # Stop sending first: the running cycle sees it before its next order.
            SHUTDOWN.request(name, resilience.shutdown_grace_seconds)
            stop.set()
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, request_stop)
        try:
            serving = observer.serve_http()
        except OSError as exc:
            raise SchedulerError(
                f"cannot serve metrics on {settings.metrics_address}:{settings.metrics_port} "
                f"({exc.strerror or exc}); free the port or change RECONCILER_METRICS_PORT"
            ) from exc
        if serving:
            echo(f"metrics served at {serving}")
        try:
            scheduler.start()
        except KeyboardInterrupt:  # Ctrl-C ends the loop like SIGTERM
            request_stop(signal.SIGINT)
        if not received:
            log.info("stopped", mode="daemon", reason="scheduler ended")
            return EXIT_OK
        log.info("stopping: no further orders are sent", mode="daemon", signal=received[0])
        # The running cycle stops sending at once; it waits at most the grace for
        # acknowledgements, then records what is unresolved and finishes its report.
        finished = idle.wait(resilience.shutdown_grace_seconds + 30.0)
        unresolved = 0
        with contextlib.suppress(Exception):  # the count is for the log line only
            unresolved = len(store.unresolved_intents())
        log.info(
            "stopped",
            mode="daemon",
            signal=received[0],
            cycle_still_running=not finished,
            unresolved_orders=unresolved,
            detail=f"{unresolved} order(s) unresolved, left for the next run's recovery",
        )
        return EXIT_OK
