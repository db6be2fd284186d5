"""Shared CLI plumbing: exit codes, error rendering, settings and store from env + flags.

Must not hold command logic; only what several command modules need to turn results into
output and exit codes.
"""

from __future__ import annotations

import sys
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


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print a one-line error for a user mistake or an environment problem and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_settings_or_fail(**overrides):
    """Settings from the environment and `.env`, with this command's flags on top; every
    configuration warning (unknown variable, risk override not applied) on stderr."""
    from reconciler.model.settings import SettingsError, load_settings

    ctx = click.get_current_context(silent=True)
    flags = dict(ctx.meta.get("settings_flags", {})) if ctx is not None else {}
    try:
        settings = load_settings().with_overrides(**{**flags, **overrides})
    except SettingsError as exc:
        fail(str(exc))
    echo_settings_warnings(settings)
    return settings


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
    func = click.option(
        "--client-id",
        type=click.IntRange(0, 2**31 - 1),
        default=None,
        expose_value=False,
        callback=_remember_client_id,
        help=client_id_help,
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
