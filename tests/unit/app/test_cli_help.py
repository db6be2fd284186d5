"""Every command and group has help text, and --help works without a gateway or a store."""

import click
from click.testing import CliRunner

from reconciler.app.cli import COMMANDS as TABLE
from reconciler.app.cli import cli


def walk(group, prefix=()):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from walk(command, path)


COMMANDS = list(walk(cli))


def test_the_contract_commands_exist():
    names = {" ".join(p) for p, _ in COMMANDS}
    for expected in (
        "validate",
        "lock",
        "plan",
        "apply",
        "run",
        "status",
        "show orders",
        "show fills",
        "show cycles",
        "show positions",
        "show risk",
        "health",
        "halt",
        "resume",
        "unlock",
        "audit verify",
        "sim",
        "demo",
    ):
        assert expected in names


def test_every_command_has_help_text():
    missing = [" ".join(p) for p, c in COMMANDS if not (c.help or "").strip()]
    assert missing == []


def test_every_option_has_help_text():
    missing = [
        f"{' '.join(p)} {param.opts[0]}"
        for p, c in COMMANDS
        for param in c.params
        if isinstance(param, click.Option)
        and not (param.help or "").strip()
        and "--help" not in param.opts
    ]
    assert missing == []


def test_help_of_every_command_exits_zero():
    runner = CliRunner()
    for path, _ in COMMANDS:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_the_lazy_table_lists_every_command_with_its_own_short_help():
    loaded = {p[0]: c for p, c in COMMANDS if len(p) == 1}
    assert set(TABLE) == set(loaded)
    wrong = {
        name: (help_line, loaded[name].get_short_help_str(limit=300))
        for name, (_, help_line) in TABLE.items()
        if loaded[name].get_short_help_str(limit=300) != help_line
    }
    assert wrong == {}
