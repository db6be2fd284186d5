"""CLI commands: desired family (`reconcile validate`). Parse, call, render, exit; no logic.

Must stay fast and never connect: it imports only the desired-state package (which loads
jsonschema lazily) and never the IB client library.
"""

from __future__ import annotations

import sys

import click

from reconciler.app.cli.common import EXIT_ERROR, EXIT_OK

DEFAULT_DIRECTORY = "desired_state"


def _summary(state) -> dict:
    return {
        "directory": state.directory,
        "content_hash": state.content_hash,
        "git_commit": state.git_commit,
        "git_dirty": state.git_dirty,
        "portfolios": [
            {"name": p.name, "account": p.account, "targets": len(p.targets)}
            for p in state.portfolios
        ],
        "risk_policies": sorted(state.risk_policies),
        "schedules": [s.name for s in state.schedules],
        "locked_instruments": len(state.lock),
    }


def _summary_line(state) -> str:
    accounts = ", ".join(p.account for p in state.portfolios) or "none"
    git = "not in git"
    if state.git_commit:
        git = f"git {state.git_commit[:10]}" + (" (uncommitted changes)" if state.git_dirty else "")
    elif state.git_dirty is not None:
        git = "git: no commit yet"
    return (
        f"{state.directory}: valid. {len(state.portfolios)} portfolio(s) (accounts: {accounts}), "
        f"{len(state.risk_policies)} risk policy(ies), {len(state.schedules)} schedule(s), "
        f"{len(state.lock)} locked instrument(s); content hash {state.content_hash[:16]}; {git}"
    )


@click.command("validate")
@click.argument("directory", default=DEFAULT_DIRECTORY, required=False, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for tools.",
)
def validate_command(directory: str, output_format: str) -> None:
    """Check the desired state in DIRECTORY (default: desired_state/) without connecting.

    Reports every problem at once, each with file, line, column, field (JSON pointer) and a
    stable code. Exit 0 valid (warnings allowed), 1 invalid.
    """
    from reconciler.desired import validate_directory
    from reconciler.model.diagnostics import render_json, render_text

    state, diagnostics = validate_directory(directory)
    if output_format == "json":
        extra = _summary(state) if state is not None else {"directory": directory}
        click.echo(render_json(diagnostics, valid=state is not None, extra=extra))
    else:
        if diagnostics:
            click.echo(render_text(diagnostics))
        if state is not None:
            click.echo(_summary_line(state))
        else:
            click.echo(f"{directory}: invalid; fix the problems above (paths are relative to it)")
    sys.exit(EXIT_OK if state is not None else EXIT_ERROR)


def register(cli: click.Group) -> None:
    """Attach this family's commands to the top-level group."""
    cli.add_command(validate_command)
