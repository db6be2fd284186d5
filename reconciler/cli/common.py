"""Shared CLI plumbing: exit codes, error rendering, settings from env + flags.

Must not hold command logic; only what several command modules need to turn results into
output and exit codes.
"""

from __future__ import annotations

import sys

import click

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # plan --detailed-exitcode: there are changes
EXIT_REFUSED = 3  # apply refused: gate, stale plan, lock held


def fail(message: str, code: int = EXIT_ERROR) -> None:
    """Print a one-line error for a user mistake or an environment problem and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_settings_or_fail():
    from reconciler.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))
