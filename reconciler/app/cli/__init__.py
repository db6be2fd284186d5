"""Command line: parse -> call -> render -> exit code. No logic lives here.

Responsible for the `reconcile` command group and for registering each command family from
its own module (one module per family keeps them small). Must not compute plans, talk to the
broker directly, or import the IB client library at module level: commands that never
connect (validate, status, show, audit) must stay fast. Submodules import heavy libraries
inside their command functions.
"""

from __future__ import annotations

import click

from reconciler import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconcile")
def cli() -> None:
    """Declarative reconciler for Interactive Brokers portfolios.

    Commit what each account should hold in desired_state/, then `reconcile plan` shows the
    orders that would get there and `reconcile apply` sends them (paper and orders-disabled
    by default).
    """


def _register() -> None:
    from reconciler.app.cli import (
        commands_desired,
        commands_ops,
        commands_serve,
        commands_sim,
        commands_trade,
    )

    for module in (commands_desired, commands_sim, commands_trade, commands_ops, commands_serve):
        module.register(cli)


_register()


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


def configure_logging() -> None:
    """Warnings and errors on stderr; RECONCILER_LOG_LEVEL=INFO/DEBUG asks for more."""
    import logging
    import os

    level = os.environ.get("RECONCILER_LOG_LEVEL", "").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING) if level else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level not in ("DEBUG", "INFO"):
        for handler in logging.getLogger().handlers:
            handler.addFilter(_HandledGatewayErrors())


def main() -> None:
    configure_logging()
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
