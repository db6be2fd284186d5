"""A click group whose subcommands are imported only when one of them is run.

Responsible for loading a command family's module on demand (`reconcile validate` must not pay
for importing the trading, operations and server commands) while `reconcile --help` still lists
every command with its one-line help, taken from a static table kept next to the group. Must not
hold command logic; the table's help lines are checked against the commands by a unit test.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click


class LazyGroup(click.Group):
    """`lazy` maps a command name to (module, one-line help). The module's `register(group)`
    attaches its family's commands; it runs once per module, on first use of one of them."""

    def __init__(self, *args, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})
        self._loaded: set[str] = set()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self._load(self.lazy[cmd_name][0])
        return self.commands.get(cmd_name)

    def load_all(self) -> None:
        for module, _ in self.lazy.values():
            self._load(module)

    def _load(self, module: str) -> None:
        if module not in self._loaded:
            self._loaded.add(module)
            importlib.import_module(module).register(self)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not yet loaded shows the table's help line (shortened
        the same way): listing the commands imports none of them."""
        rows = []
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            if loaded is None or not loaded.hidden:
                rows.append((name, loaded))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        lines = [
            (name, command.get_short_help_str(limit) if command is not None
             else click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit))
            for name, command in rows
        ]
        with formatter.section("Commands"):
            formatter.write_dl(lines)
