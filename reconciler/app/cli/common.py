"""Shared CLI plumbing: exit codes, error rendering, settings and store from env + flags.

Must not hold command logic; only what several command modules need to turn results into
output and exit codes.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from reconciler.app.exit_codes import (  # noqa: F401  (re-exported for the command modules)
    EXIT_CHANGES,
    EXIT_DRIFT_REMAINS,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    exit_code_for_status,
)

FORMATS = click.Choice(["text", "json", "markdown"])
DEFAULT_DIR = "desired_state"


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print a one-line error for a user mistake or an environment problem and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _settings_flags() -> dict:
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get("settings_flags", {})) if ctx is not None else {}


def load_settings_or_fail(*, readonly: bool = False, flags: dict | None = None, **overrides):
    """Settings from the environment and `.env`, with this command's flags on top; every
    configuration warning (unknown variable, risk override not applied) on stderr.

    `readonly`: the command only reads the gateway, so it connects with IB_READONLY_CLIENT_ID
    (default 18) unless --client-id says otherwise, never with the daemon's or apply's id.
    `flags`: the command's (`connection_settings_or_none`), when called off its thread."""
    from reconciler.model.settings import SettingsError, load_settings

    flags = _settings_flags() if flags is None else flags
    try:
        settings = load_settings()
        if readonly and "client_id" not in flags:
            settings = settings.with_overrides(client_id=settings.readonly_client_id)
        settings = settings.with_overrides(**{**flags, **overrides})
    except SettingsError as exc:
        fail(str(exc))
    echo_settings_warnings(settings)
    return settings


def connection_settings_or_none(gateway: str | None):
    """(settings to connect with, the command's flags), read without loading pydantic
    (`settings.connection_fields`), this command's flags and `--gateway HOST:PORT` on top;
    only the connection's fields are set. None when they cannot be read that way (the
    embedded simulator, a value `load_settings_or_fail` must report): load them all first.
    The caller loads the full settings while it connects and checks them against these."""
    from reconciler.app.gateway import parse_gateway
    from reconciler.model.settings import (
        Settings,
        SettingsError,
        connection_fields,
        read_dotenv,
    )

    try:
        kind, value = parse_gateway(gateway)
        dotenv = read_dotenv()
    except (SettingsError, OSError, UnicodeDecodeError):
        return None
    fields = connection_fields(os.environ, dotenv) if kind != "sim" else None
    if fields is None:
        return None
    flags = _settings_flags()
    settings = Settings(**fields).with_overrides(**flags)
    if kind == "hostport":
        host, _, port = str(value).rpartition(":")
        settings = settings.with_overrides(gateway_host=host, gateway_port=int(port))
    return settings, flags


def use_color(stream=None) -> bool:
    """Colour only for a person at a terminal: never on a pipe or file, never with NO_COLOR
    set to anything (no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def directory_argument(default: str | None = DEFAULT_DIR, what: str = "Desired-state directory"):
    """The desired-state directory as an optional DIRECTORY argument, with `--dir` kept as an
    alias for older scripts; the command receives `directory`."""

    def decorate(func):
        @functools.wraps(func)
        def command(*args, directory=None, dir_alias=None, **kwargs):
            if directory and dir_alias and Path(directory) != Path(dir_alias):
                fail(f"DIRECTORY {directory} and --dir {dir_alias} disagree; give it once")
            return func(*args, directory=directory or dir_alias or default, **kwargs)

        command = click.option(
            "--dir",
            "dir_alias",
            default=None,
            metavar="DIRECTORY",
            type=click.Path(),
            help="Same as the DIRECTORY argument (kept for older scripts).",
        )(command)
        return click.argument("directory", required=False, type=click.Path())(command)

    return decorate


def load_plan_file_or_fail(planfile: str, consequence: str = "nothing was sent"):
    """A saved plan, verified; exit 1 when unreadable, 3 when edited (`consequence` says
    what did not happen)."""
    from reconciler.model.plan import PlanFileError, PlanIntegrityError, loads

    try:
        text = Path(planfile).read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"plan file {planfile} does not exist")
    except IsADirectoryError:
        fail(f"{planfile} is a directory, not a plan file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read plan file {planfile}: {exc}")
    try:
        return loads(text)
    except PlanIntegrityError as exc:
        for problem in exc.problems:
            click.echo(f"refused: {planfile}: {problem}", err=True)
        click.echo(
            f"refused: {consequence}; make a new plan with `reconcile plan --out FILE`",
            err=True,
        )
        sys.exit(EXIT_REFUSED)
    except PlanFileError as exc:
        fail(f"{planfile} is not a valid plan file: {exc}")


def stop_sending_on_sigterm() -> None:
    """SIGTERM (systemd stopping the unit, a timeout) stops a one-shot cycle gracefully, as it
    stops the daemon: no further order is sent, working orders get the shutdown grace
    (RECONCILER_SHUTDOWN_GRACE_SECONDS, default 10) for their acknowledgements, and the cycle
    records what is unresolved for the next run's recovery, finishes its report and exits
    with its outcome's code, instead of dying with the cycle left open."""
    import signal

    # Light modules only: this runs before apply connects (the scheduler and the executor
    # are loaded by the cycle, after the handshake left).
    from reconciler.app.resilience import Resilience, SchedulerError
    from reconciler.apply.shutdown import SHUTDOWN
    from reconciler.model.settings import read_dotenv
    from reconciler.util.logs import get_logger

    try:  # the daemon's rule and precedence: environment over `.env`, a bad value refused
        grace = Resilience.from_env({**read_dotenv(), **os.environ}).shutdown_grace_seconds
    except SchedulerError as exc:
        fail(str(exc))

    def request_stop(signum: int, _frame: object = None) -> None:
        name = signal.Signals(signum).name
        SHUTDOWN.request(name, grace)
        get_logger("reconciler.app").warning(
            "stopping: no further orders are sent", signal=name, grace_seconds=grace
        )

    signal.signal(signal.SIGTERM, request_stop)


def parse_duration_or_fail(text: str, option: str) -> float:
    """`30s`, `5m`, `1h` or plain seconds."""
    from reconciler.desired.units import parse_duration

    try:
        return parse_duration(text.strip() if text.strip()[-1:].isalpha() else text.strip() + "s")
    except (ValueError, TypeError, IndexError):
        fail(f"{option} {text!r} is not a duration (e.g. 0, 30s, 5m, 1h)")


def echo_settings_warnings(settings) -> None:
    from reconciler.model.settings import settings_warnings

    for warning in settings_warnings(settings):
        click.echo(f"warning: {warning}", err=True)


def load_desired_or_fail(directory: str):
    """The desired state, or every diagnostic on stderr and exit 1."""
    from reconciler.desired import load_desired_state
    from reconciler.model.diagnostics import DiagnosticsError, render_text

    try:
        return load_desired_state(directory)
    except DiagnosticsError as exc:
        click.echo(render_text(exc.diagnostics), err=True)
        fail(f"desired state in {directory} is invalid; nothing was planned or sent")


def open_store_or_fail(settings, clock=None):
    from reconciler.store import StoreUnavailable, open_store

    try:
        return open_store(settings.effective_db_url, clock=clock)
    except StoreUnavailable as exc:
        fail(f"cannot open the store {exc.database}: {exc.cause}")
    except Exception as exc:  # a bad URL or unreachable database is an environment problem
        fail(f"cannot open the store at {redact(settings.effective_db_url)}: {exc}")


def redact(url: str) -> str:
    """Hide a password in a database URL before showing it."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


def _remember_client_id(ctx: click.Context, _param: click.Parameter, value: int | None):
    if value is not None:
        ctx.meta.setdefault("settings_flags", {})["client_id"] = value
    return value


def gateway_option(
    func=None,
    *,
    client_id_help: str = "API client id for this connection. Default: IB_CLIENT_ID, else 17.",

):
    if func is None:
        return lambda f: gateway_option(f, client_id_help=client_id_help)
    # Read as a flag by load_settings_or_fail, which prefers it to any default.
    func = click.option(
        "--client-id",
        type=click.IntRange(0, 2**31 - 1),
        default=None,
        expose_value=False,
        callback=_remember_client_id,
        help=client_id_help.strip(),
    )(func)
    return click.option(
        "--gateway",
        "gateway",
        metavar="SPEC",
        default=None,
        help="Where to connect: sim (embedded simulator), sim:STATEFILE (embedded simulator "
        "persisted to STATEFILE) or HOST:PORT. Default: IB_GATEWAY_HOST/IB_GATEWAY_PORT.",
    )(func)


def account_option(func):
    return click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="ACCOUNT",
        help="Only this account (repeatable). Default: every Portfolio in the desired state.",
    )(func)


READONLY_CLIENT_ID_HELP = (
    "API client id for this read-only connection. Default: IB_READONLY_CLIENT_ID, else 18 "
    "(never the daemon's or apply's IB_CLIENT_ID, so it can run during a cycle)."
)
