"""CLI commands: sim family. Parse, call the library, render, exit; no logic here."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Attach this family's commands to the top-level group."""
