"""Command line: parse -> call -> render -> exit code. No logic lives here.

Responsible for the `reconcile` command group and for the table of its commands: each family
lives in its own module (one module per family keeps them small), imported only when one of its
commands runs (`LazyGroup`), so that `reconcile validate` starts fast. Must not compute plans, talk to the
broker directly, or import the IB client library at module level: commands that never
connect (validate, status, show, audit) must stay fast. Submodules import heavy libraries
inside their command functions.
"""

from __future__ import annotations

import click

from reconciler import __version__
from reconciler.app.cli.lazy_group import LazyGroup

_DESIRED = "reconciler.app.cli.commands_desired"
_SIM = "reconciler.app.cli.commands_sim"
_TRADE = "reconciler.app.cli.commands_trade"
_OPS = "reconciler.app.cli.commands_ops"
_SERVE = "reconciler.app.cli.commands_serve"
# Every command: its family's module (imported only when the command runs) and its one-line
# help for `reconcile --help` (tests/unit/app/test_cli_help.py checks it against the command).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (_DESIRED, "Check the desired state in DIRECTORY (default: desired_state/) "
                 "without connecting."),
    "schema": (_DESIRED, "Print the combined desired-state JSON schema, or write every schema "
               "with --write."),
    "sim": (_SIM, "Run the offline IB Gateway simulator (TWS API over TCP) until interrupted."),
    "plan": (_TRADE, "Snapshot the broker, diff against DIRECTORY, plan orders within the risk "
             "limits."),
    "apply": (_TRADE, "Apply PLANFILE (refused if edited or stale), or plan DIRECTORY and apply "
              "after confirmation."),
    "lock": (_TRADE, "Resolve every target instrument through the gateway and write "
             "instruments.lock.yaml."),
    "demo": (_TRADE, "Run the built-in simulator with the example desired state: plan, apply, "
             "plan again."),
    "run": (_TRADE, "Long-running scheduler: cycles on the Schedule's interval or cron "
            "(APScheduler)."),
    "status": (_OPS, "Last cycle per account, its drift, the lock holder and the halt switch."),
    "show": (_OPS, "Read the store (orders, fills, cycles, positions), the effective risk "
             "limits, or a saved plan."),
    "health": (_OPS, "Handshake, server time, managed accounts, mode and gates."),
    "halt": (_OPS, "Out-of-band kill switch: stop all trading now, without waiting for a pull "
             "request."),
    "resume": (_OPS, "Lift the out-of-band halt (git's RiskPolicy tradingState still applies)."),
    "notify": (_OPS, "Send one notification to RECONCILER_NOTIFY_URLS (apprise), e.g. from "
               "systemd's OnFailure= unit."),
    "unlock": (_OPS, "Release a stale account lease (the one-writer-per-account lock) by its "
               "id."),
    "audit": (_OPS, "The append-only ledger."),
    "serve": (_SERVE, "Read-only status API and web dashboard (http://HOST:PORT/)."),
    "mcp": (_SERVE, "MCP server for LLM assistants: read-only tools and resources."),
    "export": (_SERVE, "Export KIND from the store as CSV, JSON or Parquet (read-only)."),
}

# Set by `main` (the real process): the CLI then owns the process's logging. Tests that
# invoke `cli` in-process (click's CliRunner) leave the test runner's logging alone.
_OWNS_LOGGING = False


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="reconcile")
@click.pass_context
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default=None,
    help="Log lines on stderr as human text or JSON lines (default: RECONCILER_LOG_FORMAT, "
    "else JSON under systemd when stderr is not a terminal, else human).",
)
def cli(ctx: click.Context, log_format: str | None) -> None:
    """Declarative reconciler for Interactive Brokers portfolios.

    Commit what each account should hold in desired_state/, then `reconcile plan` shows the
    orders that would get there and `reconcile apply` sends them (paper and orders-disabled
    by default).
    """
    if _OWNS_LOGGING:
        try:
            configure_logging(log_format, command=ctx.invoked_subcommand)
        except ValueError as exc:  # LogConfigError: RECONCILER_LOG_LEVEL/FORMAT
            raise click.UsageError(str(exc)) from None


_ECHOED = ("timed out", "API connection failed", "Make sure API port", "Peer closed connection")
# Whole Trade(...) reprs, kilobytes each, that the client libraries log when the gateway
# cancels or rejects an order: the executor reports one line per order event instead.
_TRADE_DUMPS = ("Canceled order: Trade(", "IBKR API validation warning: Trade(")


class _HandledGatewayErrors:
    """Drops the client libraries' echo of gateway error messages ("Error 202, reqId 7: ..."),
    their Trade(...) dumps on cancels and rejections, and "request timed out" notices: the
    broker adapter and the executor report those themselves. Anything else they log, decode
    failures ("Error handling fields") above all, still reaches stderr."""

    @staticmethod
    def filter(record) -> bool:
        message = record.getMessage()
        if message.startswith(("Error ", "Warning ")) and ", reqId " in message:
            return False
        if message.startswith(_TRADE_DUMPS):
            return False
        return not any(text in message for text in _ECHOED)


def configure_logging(log_format: str | None = None, command: str | None = None) -> str:
    """Structured log lines on stderr (`reconciler.observe.logs`): the format from
    `--log-format`, RECONCILER_LOG_FORMAT or the systemd rule; the level from
    RECONCILER_LOG_LEVEL (default INFO for `run` and JSON logs, else WARNING). Below DEBUG
    the client libraries' echoes of what we report ourselves are dropped. Returns the format
    chosen."""
    import logging

    from reconciler.observe.logs import choose_format, choose_level, configure, default_level

    fmt = choose_format(log_format)
    level = choose_level(default=default_level(fmt, command))
    configure(fmt, level, filters=() if level <= logging.DEBUG else (_HandledGatewayErrors(),))
    return fmt


def log_format() -> str:
    """The format the process logs in ("human" or "json"): progress lines for people are
    printed in human format only, so that JSON logs stay one JSON document per line."""
    import logging

    for handler in logging.getLogger().handlers:
        if getattr(handler, "reconciler_format", None):
            return handler.reconciler_format
    return "human"


def main() -> None:
    global _OWNS_LOGGING
    from reconciler.observe.logs import LogConfigError

    try:
        configure_logging()
    except LogConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    _OWNS_LOGGING = True
    try:
        cli(prog_name="reconcile")
    except Exception as exc:
        # A store that became unusable after it was opened (read-only file, server gone):
        # one line naming the database and the cause, never a driver traceback.
        from reconciler.store.engine import StoreUnavailable

        if not isinstance(exc, StoreUnavailable):
            raise
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
