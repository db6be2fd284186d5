"""CLI commands that read the broker and may trade: plan, apply, lock, demo, run.

Parse flags, call `reconciler.cycle` (or the scheduler), render, exit with the documented codes (README).
No logic here; heavy modules (the IB client, SQLAlchemy) are imported inside the commands.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.app.cli.common import (
    DEFAULT_DIR,
    EXIT_CHANGES,
    EXIT_DRIFT_REMAINS,
    EXIT_OK,
    EXIT_REFUSED,
    FORMATS,
    READONLY_CLIENT_ID_HELP,
    account_option,
    connection_settings_or_none,
    directory_argument,
    echo_settings_warnings,
    exit_code_for_status,
    fail,
    gateway_option,
    load_desired_or_fail,
    load_plan_file_or_fail,
    load_settings_or_fail,
    open_store_or_fail,
    parse_duration_or_fail,
    stop_sending_on_sigterm,
    use_color,
)
from reconciler.util.files import atomic_write

if TYPE_CHECKING:
    from reconciler.model.report import CycleReport



# At most this long `apply` waits for its handshake to leave before it reads the desired
# state and the store: a local gateway accepts within milliseconds.
HANDSHAKE_HEAD_START = 0.2


def _run(coroutine):
    import asyncio  # imported here: `validate` shares this module list and must stay fast

    return asyncio.run(coroutine)


class _TerminalProgress:
    """Progress lines with times and a bar of finished orders, for a terminal (rich)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("orders"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task = None

    def __call__(self, message: str) -> None:
        self.console.log(message, highlight=False)

    def orders_total(self, total: int) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("orders", total=total)
        else:
            self.bar.update(self.task, total=(self.bar.tasks[0].total or 0) + total)

    def order_done(self, _outcome) -> None:
        if self.task is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()


def _progress_printer():
    """Plain lines on a pipe; timed lines and a progress bar on a terminal; with JSON logs,
    DEBUG log events (stderr then holds JSON lines only; the order events are logged)."""
    from reconciler.app.cli import log_format

    if log_format() == "json":
        from reconciler.app.scheduler import log_progress

        return log_progress
    if sys.stderr.isatty():
        return _TerminalProgress()
    return lambda msg: click.echo(msg, err=True)


@click.command("plan")
@directory_argument()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Write the plan artifact (JSON) to this file.",
)
@click.option(
    "--format", "fmt", type=FORMATS, default="text", show_default=True, help="Output format."
)
@click.option(
    "--base",
    "base_ref",
    metavar="REF",
    default=None,
    help="Show what the desired state changes compared with git revision REF (e.g. "
    "origin/main), read from the repository without touching the working tree. Default: "
    "compared with the last recorded cycle, when the store has one.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 in sync, 2 when the plan has orders, 4 when drift remains that no allowed "
    "order closes (denied, clipped to nothing, restricted).",
)
@gateway_option(client_id_help=READONLY_CLIENT_ID_HELP)
@account_option
def plan_command(directory, out, fmt, base_ref, detailed_exitcode, gateway, accounts):
    """Snapshot the broker, diff against DIRECTORY, plan orders within the risk limits.

    Sends nothing and connects read-only (client id IB_READONLY_CLIENT_ID, default 18).
    stdout carries only the plan in the chosen format (a pull-request comment with
    --format markdown); status lines go to stderr. Writes nothing into the repository (the
    store lives in the state directory). Exit 0 no changes (or any plan without
    --detailed-exitcode), 1 error; with --detailed-exitcode 2 orders to send, 4 no order but
    drift remains that no allowed order closes.
    """
    from reconciler.app.gateway import gateway_settings
    from reconciler.cycle import CycleError, plan_cycle
    from reconciler.model.clock import SystemClock
    from reconciler.model.plan import with_desired_changes, with_warnings
    from reconciler.model.settings import SettingsError, settings_warnings
    from reconciler.render.plan import render_plan

    settings = load_settings_or_fail(readonly=True)
    desired = load_desired_or_fail(directory)
    base = _load_base_or_fail(directory, base_ref) if base_ref else None
    clock = SystemClock()
    store = open_store_or_fail(settings, clock)
    try:
        with gateway_settings(gateway, settings) as gw:
            outcome = _run(plan_cycle(desired, gw, clock=clock, store=store, accounts=accounts))
    except SettingsError as exc:
        fail(str(exc))
    except CycleError as exc:
        fail(f"{exc}; no plan was written")
    for mismatch in outcome.lock_mismatches:
        click.echo(f"warning: {mismatch}", err=True)
    # On stderr already (load_settings_or_fail); the plan carries them into JSON and Markdown.
    plan = with_warnings(outcome.plan, settings_warnings(settings))
    if base is not None:
        from reconciler.cycle.plan import changes_against_base

        plan = with_desired_changes(plan, base.label, changes_against_base(desired, base))
    elif outcome.desired_changes is not None:
        plan = with_desired_changes(plan, "the last recorded cycle", outcome.desired_changes)
    if out:
        from reconciler.model.plan import dumps

        atomic_write(out, dumps(plan) + "\n")
    if fmt == "markdown":
        click.echo(render_plan(plan, fmt, context=_comment_context(settings, desired, out)), nl=False)
    else:
        click.echo(render_plan(plan, fmt, color=fmt == "text" and use_color()), nl=False)
    if out:
        click.echo(f"Plan written to {out}; apply it with: reconcile apply {out}", err=True)
    if not detailed_exitcode:
        sys.exit(EXIT_OK)
    if plan.has_changes:
        sys.exit(EXIT_CHANGES)
    from reconciler.model.outcome import drift_not_closed

    sys.exit(EXIT_DRIFT_REMAINS if drift_not_closed(plan) else EXIT_OK)


def _load_base_or_fail(directory: str, ref: str):
    from reconciler.desired.gitbase import GitBaseError, load_base

    try:
        return load_base(directory, ref)
    except GitBaseError as exc:
        fail(f"{exc}; nothing was planned")


def _comment_context(settings, desired, artifact):
    """What the PR comment says about where the plan will run (mode, orders, schedules)."""
    from reconciler.render.comment import CommentContext, ScheduleFacts

    return CommentContext(
        trading_mode=settings.trading_mode,
        orders_enabled=settings.orders_enabled,
        schedules=tuple(
            ScheduleFacts(s.name, s.self_heal, tuple(s.accounts)) for s in desired.schedules
        ),
        artifact=artifact,
    )


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[DIRECTORY] [PLANFILE]")
@click.option(
    "--dir",
    "dir_alias",
    default=None,
    metavar="DIRECTORY",
    type=click.Path(),
    help="Same as the DIRECTORY argument (kept for older scripts).",
)
@click.option(
    "--auto-approve", is_flag=True, help="Do not ask for 'yes' before sending a fresh plan."
)
@click.option(
    "--max-plan-age",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds after which a saved plan is stale.",
)
@click.option(
    "--lock-timeout",
    "lock_timeout",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Wait this long (e.g. 30s, 5m) for an account lock another apply or the daemon "
    "holds, instead of refusing at once (exit 3 when it is still held).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format of the cycle summary.",
)
@gateway_option
@account_option
def apply_command(
    paths, dir_alias, auto_approve, max_plan_age, lock_timeout, fmt, gateway, accounts
):
    """Apply PLANFILE (refused if edited or stale), or plan DIRECTORY and apply after
    confirmation.

    DIRECTORY (default desired_state/) and PLANFILE may be given in either order; a path
    that is a directory is the desired state, anything else a saved plan. Checks every
    safety gate first. With ORDERS_ENABLED unset this is a full dry run that sends nothing.
    A saved plan must match its SHA-256 digest, and its orders pass every risk check again
    against the limits in force now. Exit 0 applied (at least one fill), nothing to do or
    dry run; 1 error (PLANFILE unreadable, not a plan, another format version) or not
    approved; 3 refused (gate, halt, plan edited or without digest, stale plan, lock held
    after --lock-timeout, unknown working orders); 4 drift remains that this run could not
    close (orders planned but none filled, or every needed order denied).
    """
    directory, planfile = _directory_and_plan(paths, dir_alias)
    wait = parse_duration_or_fail(lock_timeout, "--lock-timeout")
    from reconciler.app.gateway import gateway_settings
    from reconciler.model.clock import SystemClock
    from reconciler.model.settings import SettingsError

    # The connection's settings are read first, without pydantic, so that the handshake
    # leaves before the rest is read (on the loading thread, then checked against them);
    # when they cannot be read that way (the embedded simulator, a value to report), all
    # settings are read first.
    early = connection_settings_or_none(gateway)
    settings = load_settings_or_fail() if early is None else None
    stop_sending_on_sigterm()
    clock = SystemClock()
    progress = _progress_printer()
    interactive = sys.stdin.isatty()
    from reconciler.app.observing import Observer, gateway_counts

    # Before connecting: the gateway counters from here on are this cycle's.
    since = gateway_counts()
    started = clock.now()
    # The settings, their Observer, the desired state and the store, once read (on a worker
    # thread when the settings are read while connecting).
    loaded: dict = {}
    if settings is not None:
        loaded.update(settings=settings, observer=Observer(settings, clock, since=since))

    def approve(plan) -> bool:
        from reconciler.render.plan import plan_header, plan_summary, render_plan_text

        # With --format json stdout carries only the report; the plan goes to stderr.
        if auto_approve:
            # Nobody reads the full tables before the orders go: rendering them would only
            # delay the first order. Each order's line follows as it is sent, and the whole
            # plan is in the cycle report and the store.
            click.echo(
                f"{plan_header(plan)}\n{plan_summary(plan)} (auto-approved; the full plan is in "
                "the cycle report)",
                err=fmt == "json",
            )
            return True
        click.echo(render_plan_text(plan), nl=False, err=fmt == "json")
        if not interactive:
            click.echo(
                "Not approved: stdin is not a terminal; use --auto-approve or a saved plan file.",
                err=True,
            )
            return False
        # Again where a person decides: progress lines may have scrolled them away.
        echo_settings_warnings(loaded["settings"])
        answer = click.prompt(
            "Apply these orders? Only 'yes' will be accepted", default="", show_default=False
        )
        return answer.strip() == "yes"

    def load_settings(connected):
        """The settings read in full, and the gateway settings of the cycle: as connected."""
        from reconciler.model.settings import connection_mismatch

        full = load_settings_or_fail(flags=early[1])
        with gateway_settings(gateway, full) as cycle_gw:  # HOST:PORT or env: no simulator
            problem = connection_mismatch(connected, cycle_gw)
        if problem:
            fail(problem)
        loaded.update(settings=full, observer=Observer(full, clock, since=since))
        return cycle_gw

    def load(gw):
        """Everything but the gateway: read while the connection is being made."""
        from reconciler import cycle

        if "settings" not in loaded:
            gw = load_settings(gw)
        desired = load_desired_or_fail(directory)
        plan_file = load_plan_file_or_fail(planfile) if planfile else None
        loaded["desired"] = desired
        store = loaded["observer"].store = open_store_or_fail(loaded["settings"], clock)
        loaded["store"] = store
        return cycle, gw, desired, plan_file, store

    async def connect_then_apply(gw):
        import asyncio
        import contextlib

        from reconciler.broker import Broker, library

        # The gateway first: its handshake and start-up sync travel while the desired state,
        # the plan file and the store are read on a worker thread (nothing is sent before
        # the cycle's gates and lock, as before). The client library is imported here, not
        # on the thread, so the first message does not wait for the loading.
        library.load(None)
        handshake = asyncio.Event()
        connecting = asyncio.ensure_future(
            Broker.connect(
                gw, readonly=not gw.orders_enabled, clock=clock, handshake_sent=handshake.set
            )
        )
        # The loading thread starts once the handshake left: started earlier, it competes
        # for the interpreter (its imports take ~0.3 s of CPU) with the few turns of the
        # loop that connect the socket. A gateway slow to accept holds it back briefly only.
        told = asyncio.ensure_future(handshake.wait())
        await asyncio.wait({connecting, told}, timeout=HANDSHAKE_HEAD_START)
        told.cancel()
        try:
            cycle, gw, desired, plan_file, store = await asyncio.to_thread(load, gw)
            from reconciler.decide.staleness import StalenessTolerance

            return await cycle.apply_cycle(
                desired,
                gw,
                clock=clock,
                store=store,
                plan_file=plan_file,
                approve=approve,
                progress=progress,
                accounts=accounts,
                tolerance=StalenessTolerance(max_age_seconds=max_plan_age),
                reports_dir=loaded["settings"].effective_reports_dir,
                lock_timeout=wait,
                connecting=connecting,
            )
        finally:
            # Whatever ended the command early, the connection does not outlive it.
            if not connecting.done():
                connecting.cancel()
            with contextlib.suppress(BaseException):
                await (await connecting).disconnect()

    if not (settings or early[0]).orders_enabled:
        click.echo(
            "ORDERS_ENABLED is false: DRY RUN. The plan is checked and recorded; nothing is sent.",
            err=True,
        )

    def observe(**ended) -> None:
        from reconciler.app.observing import facts_of

        desired = loaded.get("desired")
        observer = loaded.get("observer")
        if observer is None:  # ended before the settings were read: nothing to publish to
            return
        # For a cycle that fails early: the accounts it was meant for.
        mine = accounts or ([p.account for p in desired.portfolios] if desired else [])
        observer.cycle(
            facts_of("apply", started=started, finished=clock.now(), accounts=mine, **ended)
        )

    try:
        with (
            contextlib.nullcontext(early[0])
            if settings is None
            else gateway_settings(gateway, settings)
        ) as gw:
            outcome = _run(connect_then_apply(gw))
    except SettingsError as exc:
        fail(str(exc))
    except Exception as exc:
        from reconciler.cycle import CycleError, Refused

        if isinstance(exc, Refused):
            getattr(progress, "close", lambda: None)()
            for reason in exc.reasons:
                click.echo(f"refused: {reason}", err=True)
            observe(refused=exc)
            sys.exit(EXIT_REFUSED)
        if isinstance(exc, CycleError):
            getattr(progress, "close", lambda: None)()
            observe(error=exc)
            fail(str(exc))
        raise
    from reconciler.render.plan import render_json, render_plan_text

    getattr(progress, "close", lambda: None)()
    observe(outcome=outcome)
    report = outcome.report
    if fmt == "json":
        click.echo(render_json(report.to_dict()), nl=False)
    else:
        if planfile or not outcome.plan.orders:
            click.echo(render_plan_text(outcome.plan), nl=False)
        _echo_apply_summary(report)
    if report.report_files_error:
        click.echo(f"error: {report.report_files_error}", err=True)
    sys.exit(exit_code_for_status(outcome.status))


def _directory_and_plan(paths, dir_alias) -> tuple[str, str | None]:
    """Which argument is the desired-state directory and which the saved plan file."""
    directories = [p for p in paths if Path(p).is_dir()]
    files = [p for p in paths if not Path(p).is_dir()]
    if len(directories) > 1 or len(files) > 1 or len(paths) > 2:
        fail(
            f"apply takes at most one DIRECTORY and one PLANFILE, got {' '.join(paths)}"
        )
    if directories and dir_alias and Path(directories[0]) != Path(dir_alias):
        fail(f"DIRECTORY {directories[0]} and --dir {dir_alias} disagree; give it once")
    directory = directories[0] if directories else (dir_alias or DEFAULT_DIR)
    return directory, files[0] if files else None


def _echo_apply_summary(report: CycleReport) -> None:
    from reconciler.render.cycle_report import outcome_line

    for o in report.orders:
        click.echo(
            f"{o.status:<17} {o.order_ref} {o.side} {o.quantity:g} {o.key}"
            f" filled {o.filled:g}" + (f" ({o.message})" if o.message else "")
        )
    if report.orders:
        click.echo(f"Orders: {outcome_line(report)}.")
    click.echo(f"Cycle {report.cycle_id} {report.status}: {report.result or report.status}.")
    if report.files:
        click.echo(f"Report: {report.files[1]}")


@click.command("lock")
@directory_argument()
@gateway_option(client_id_help=READONLY_CLIENT_ID_HELP)
@click.option(
    "--check",
    is_flag=True,
    help="Verify the committed lockfile against the gateway (by conId) instead of writing it.",
)
def lock_command(directory, gateway, check):
    """Resolve every target instrument through the gateway and write instruments.lock.yaml.

    Commit the lockfile: a symbol then never silently resolves to a different contract, and
    plan/apply take its entries as they are (no request per instrument). --check verifies
    every entry against the gateway and writes nothing. Connects read-only. Exit 0 written
    (or, with --check, every entry agrees), 1 error (unknown or ambiguous instrument; with
    --check, an entry that disagrees or is missing). (Not related to `reconcile unlock`,
    which releases an account lease.)
    """
    from reconciler.app.gateway import gateway_settings
    from reconciler.app.operations import CycleError, check_lock, lock_instruments
    from reconciler.desired.lockfile import LOCK_FILENAME, render_lock
    from reconciler.model.clock import SystemClock
    from reconciler.model.settings import SettingsError

    settings = load_settings_or_fail(readonly=True)
    desired = load_desired_or_fail(directory)
    if check:
        try:
            with gateway_settings(gateway, settings) as gw:
                problems = _run(check_lock(desired, gw, clock=SystemClock()))
        except (SettingsError, CycleError) as exc:
            fail(str(exc))
        for line in problems:
            click.echo(line, err=True)
        if problems:
            fail(f"{len(problems)} lockfile problem(s); re-run `reconcile lock` and review")
        click.echo(f"Lockfile agrees with the gateway ({len(desired.lock)} instrument(s)).")
        return
    try:
        with gateway_settings(gateway, settings) as gw:
            entries = _run(lock_instruments(desired, gw, clock=SystemClock()))
    except SettingsError as exc:
        fail(str(exc))
    except CycleError as exc:
        fail(str(exc))
    path = Path(directory) / LOCK_FILENAME
    atomic_write(str(path), render_lock(entries))
    click.echo(f"Wrote {path} ({len(entries)} instrument(s)). Review and commit it.")


@click.command("demo")
@directory_argument(default=None)
def demo_command(directory):
    """Run the built-in simulator with the example desired state: plan, apply, plan again.

    DIRECTORY: a desired state to use instead of the example shipped with the package.

    Self-contained: an embedded gateway simulator, a temporary store and report directory;
    orders go to the simulator's paper accounts only. Exit 0 when the second plan shows no
    drift.
    """
    from reconciler.app.demo import DemoError, run_demo

    try:
        run_demo(directory, echo=click.echo)
    except DemoError as exc:
        fail(str(exc))
    sys.exit(EXIT_OK)


@click.command("run")
@directory_argument()
@click.option("--once", is_flag=True, help="Run one cycle now and exit (for a systemd timer).")
@click.option(
    "--ignore-window",
    is_flag=True,
    help="Let selfHeal cycles send orders outside the trading window (exchange calendar, "
    "liquidHours, guard minutes), e.g. against the simulator.",
)
@gateway_option
def run_command(directory, once, ignore_window, gateway):
    """Long-running scheduler: cycles on the Schedule's interval or cron (APScheduler).

    DIRECTORY defaults to desired_state/.
    Each cycle re-reads the desired state and the broker (level-triggered). With
    selfHeal: false a cycle only plans and reports drift; with selfHeal: true it applies
    (still subject to every gate, ORDERS_ENABLED included) inside the trading window only:
    outside it the cycle plans and reports and sends nothing. Stops on SIGINT/SIGTERM.
    With --once: exit 0 completed (applied, nothing to do, dry run, drift reported, outside
    the window), 1 error, 3 refused, 4 drift the cycle could not close.
    """
    from reconciler.app.cli import log_format
    from reconciler.app.scheduler import SchedulerError, run_scheduler

    settings = load_settings_or_fail()
    if once:  # the daemon installs its own handler (it also ends the loop)
        stop_sending_on_sigterm()
    # With JSON logs the process writes JSON lines only: the outcome is in the log.
    echo = click.echo if log_format() == "human" else (lambda _line: None)
    try:
        code = run_scheduler(
            directory,
            settings,
            gateway=gateway,
            once=once,
            echo=echo,
            ignore_window=ignore_window,
        )
    except SchedulerError as exc:
        fail(str(exc))
    sys.exit(code)


def register(cli: click.Group) -> None:
    for command in (plan_command, apply_command, lock_command, demo_command, run_command):
        cli.add_command(command)
