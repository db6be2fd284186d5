"""CLI commands of the read-only operator surfaces: serve (status API and dashboard), mcp
(server for LLM assistants) and export (CSV, JSON, Parquet).

Parse, call, exit. All three open the store read-only and never run migrations; none of them
imports an IB client library (`serve --health-gateway` connects read-only, lazily, through
app/health, and the MCP `plan` tool through cycle/plan). Heavy libraries (FastAPI, uvicorn,
mcp, pyarrow) are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import click

from reconciler.app.cli.common import directory_argument, fail, load_settings_or_fail, redact

TOKEN_ENV = "RECONCILER_SERVE_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def open_readonly_store_or_fail(settings):
    """The store opened read-only, or a one-line error and exit 1."""
    from reconciler.store import SchemaError, StoreUnavailable, open_store_readonly

    try:
        return open_store_readonly(settings.effective_db_url)
    except StoreUnavailable as exc:
        fail(f"cannot open the store {exc.database} read-only: {exc.cause}")
    except SchemaError as exc:
        fail(f"store {redact(settings.effective_db_url)}: {exc}")
    except Exception as exc:  # a bad URL or unreachable database is an environment problem
        fail(f"cannot open the store at {redact(settings.effective_db_url)}: {exc}")


def parse_when(flag: str, raw: str | None) -> dt.datetime | None:
    """An ISO 8601 date or date-time (UTC when it names no zone) from a flag."""
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        fail(f"{flag} {raw!r} is not an ISO 8601 date or date-time (e.g. 2026-01-07T17:00Z)")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def serve_token_or_fail(host: str) -> str | None:
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if token is None and host not in LOOPBACK_HOSTS:
        fail(
            f"serve on {host} needs a bearer token: set {TOKEN_ENV} (clients send "
            "`Authorization: Bearer <token>`), or bind to 127.0.0.1"
        )
    return token


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--health-gateway/--no-health-gateway",
    default=False,
    show_default=True,
    help="Let /health also connect to the gateway (read-only handshake) to report it reachable.",
)
def serve_command(host, port, health_gateway):
    """Read-only status API and web dashboard (http://HOST:PORT/).

    Opens the store read-only; no route places, modifies or cancels anything. Bound to
    127.0.0.1 by default; any other address needs RECONCILER_SERVE_TOKEN, which every request
    then sends as `Authorization: Bearer <token>`. Exit 1 when the store cannot be opened.
    """
    settings = load_settings_or_fail()
    token = serve_token_or_fail(host)
    store = open_readonly_store_or_fail(settings)
    import uvicorn

    from reconciler.app.serve.api import create_app

    app = create_app(store, settings=settings, token=token, health_gateway=health_gateway)
    click.echo(f"Serving the status API and dashboard on http://{host}:{port}/", err=True)
    _exit_zero_on_stop_signals()
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _exit_zero_on_stop_signals() -> None:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    handler it found: this one makes that a clean exit 0 instead of a death by signal."""
    import signal

    def stop(_signum, _frame):
        raise SystemExit(0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


@click.command("mcp")
@directory_argument(what="Desired-state directory the tools read")
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio (for a local assistant) or streamable HTTP.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address (http only).")
@click.option(
    "--port",
    default=8766,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (http only).",
)
def mcp_command(transport, host, port, directory):
    """MCP server for LLM assistants: read-only tools and resources.

    Tools: validate, plan (read-only, never applies), status, show_orders, show_fills,
    explain_drift, explain_denial. It cannot apply, halt or cancel. Every call is logged to
    stderr. HTTP on another address than 127.0.0.1 is refused.
    """
    if transport == "http" and host not in LOOPBACK_HOSTS:
        fail(f"mcp over HTTP binds to 127.0.0.1 only (it has no authentication); got {host}")
    settings = load_settings_or_fail()
    store = open_readonly_store_or_fail(settings)
    from reconciler.app.mcp_server import build_server, configure_call_log

    configure_call_log()
    server = build_server(store, settings=settings, directory=directory)
    if transport == "stdio":
        server.run("stdio")
    else:
        click.echo(f"MCP over streamable HTTP on http://{host}:{port}/mcp", err=True)
        _exit_zero_on_stop_signals()
        server.run("streamable-http", host=host, port=port)


@click.command("export")
@click.argument("kind", type=click.Choice(["orders", "fills", "events", "cycles", "positions"]))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "parquet"]),
    default="csv",
    show_default=True,
    help="Output format (columns documented in README, Parquet schema included).",
)
@click.option("--since", default=None, metavar="WHEN", help="From this UTC time (inclusive).")
@click.option("--until", default=None, metavar="WHEN", help="Up to this UTC time (exclusive).")
@click.option("--account", default=None, help="Only this account.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file (default stdout; Parquet needs --out unless stdout is a pipe).",
)
def export_command(kind, fmt, since, until, account, out):
    """Export KIND from the store as CSV, JSON or Parquet (read-only).

    WHEN is an ISO 8601 date or date-time, UTC unless it names a zone. Times filtered on:
    order created, fill executed, event appended, cycle started, snapshot taken. Exit 0
    written (also when no row matched), 1 error.
    """
    since_at = parse_when("--since", since)
    until_at = parse_when("--until", until)
    if fmt == "parquet" and out is None and sys.stdout.isatty():
        fail("Parquet is binary: give --out FILE or redirect stdout")
    settings = load_settings_or_fail()
    store = open_readonly_store_or_fail(settings)
    from reconciler.app.export import export

    data, count = export(store, kind, fmt, account=account, since=since_at, until=until_at)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        from pathlib import Path

        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
        click.echo(f"Exported {count} {kind} row(s) to {out}", err=True)


def register(cli: click.Group) -> None:
    for command in (serve_command, mcp_command, export_command):
        cli.add_command(command)
