"""CLI commands: desired family (`reconcile validate`, `reconcile schema`). Parse, call,
render, exit; no logic.

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
        "git_problem": state.git_problem,
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
    elif state.git_problem:
        git = f"git: {state.git_problem}"
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
    type=click.Choice(["text", "json", "github", "sarif"]),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for workflow annotations, sarif for "
    "code scanning.",
)
def validate_command(directory: str, output_format: str) -> None:
    """Check the desired state in DIRECTORY (default: desired_state/) without connecting.

    Reports every problem at once, each with file, line, column, field (JSON pointer) and a
    stable code; files are named relative to the current directory. Exit 0 valid (warnings
    allowed), 1 invalid.
    """
    from reconciler.desired import validate_directory
    from reconciler.model.diagnostics import render_json, render_text

    state, diagnostics = validate_directory(directory)
    if output_format == "json":
        extra = _summary(state) if state is not None else {"directory": directory}
        click.echo(render_json(diagnostics, valid=state is not None, extra=extra))
    elif output_format == "sarif":
        import os

        from reconciler import __version__
        from reconciler.desired.formats import render_sarif

        click.echo(render_sarif(diagnostics, version=__version__, working_directory=os.getcwd()))
    else:
        if output_format == "github":
            from reconciler.desired.formats import render_github

            if diagnostics:
                click.echo(render_github(diagnostics))
        elif diagnostics:
            click.echo(render_text(diagnostics))
        if state is not None:
            click.echo(_summary_line(state))
        else:
            click.echo(
                f"{directory}: invalid; fix the problems above "
                "(paths are relative to the current directory)"
            )
    sys.exit(EXIT_OK if state is not None else EXIT_ERROR)


@click.command("schema")
@click.option(
    "--write",
    "destination",
    type=click.Path(file_okay=False),
    help="Write every JSON schema into this folder of your repository (e.g. schemas/) and "
    "print the modeline that points YAML files at it.",
)
@click.option(
    "--desired",
    "desired_directory",
    default=DEFAULT_DIRECTORY,
    show_default=True,
    type=click.Path(file_okay=False),
    help="With --write: the desired-state folder the modelines are for.",
)
def schema_command(destination: str | None, desired_directory: str) -> None:
    """Print the combined desired-state JSON schema, or write every schema with --write.

    Editors that use yaml-language-server (VS Code's YAML extension, Neovim, Helix, ...)
    complete and check a YAML file whose first line is the printed modeline. The schemas
    change with the reconciler: run this again after upgrading.
    """
    from pathlib import Path

    from reconciler.desired.schema import schema_directory
    from reconciler.desired.schema_bundle import COMBINED_FILE, modelines, write_schemas

    if destination is None:
        click.echo((schema_directory() / COMBINED_FILE).read_text(encoding="utf-8"), nl=False)
        return
    target = Path(destination)
    try:
        outcomes = write_schemas(target)
    except OSError as exc:
        click.echo(f"error: cannot write schemas to {destination}: {exc.strerror}", err=True)
        sys.exit(EXIT_ERROR)
    for name, outcome in outcomes:
        click.echo(f"{outcome}: {(target / name).as_posix()}", err=True)
    combined = target / COMBINED_FILE
    desired = Path(desired_directory)
    click.echo(
        "Start each YAML file with the line for its folder (and repeat it after each --- in a "
        "file with several documents):"
    )
    for line, folders in modelines(desired, combined).items():
        click.echo(f"  {', '.join(f'{f.as_posix()}/*.yaml' for f in folders)}:\n    {line}")
    click.echo("Or map the folder once in your editor's settings (VS Code settings.json):")
    pattern = f"{desired.as_posix()}/**/*.yaml"
    click.echo(f'  "yaml.schemas": {{"./{combined.as_posix()}": "{pattern}"}}')


def register(cli: click.Group) -> None:
    """Attach this family's commands to the top-level group."""
    cli.add_command(validate_command)
    cli.add_command(schema_command)
