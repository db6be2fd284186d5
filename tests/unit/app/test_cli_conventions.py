"""CLI conventions: the desired-state directory is positional wherever it is taken (--dir
kept as an alias), saved plans re-render and are refused when edited, colour only for a
terminal without NO_COLOR, read-only commands use their own client id."""

from __future__ import annotations

import io
import json

import click
import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target
from click.testing import CliRunner

from reconciler.app.cli import cli
from reconciler.app.cli.commands_trade import _directory_and_plan
from reconciler.app.cli.common import use_color
from reconciler.decide.planner import build_plan
from reconciler.model.plan import dumps


def walk(group, prefix=()):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from walk(command, path)


COMMANDS = [(" ".join(p), c) for p, c in walk(cli) if not isinstance(c, click.Group)]


def test_every_command_that_takes_a_directory_accepts_it_positionally():
    taking = {
        name: command
        for name, command in COMMANDS
        if any(
            "--dir" in getattr(p, "opts", ()) or p.name in ("directory", "dir_alias")
            for p in command.params
        )
    }
    assert {"validate", "plan", "apply", "lock", "run", "demo", "show risk"} <= set(taking)
    for name, command in taking.items():
        positional = [p for p in command.params if isinstance(p, click.Argument)]
        assert positional, f"{name} takes the directory only as an option"
        assert positional[0].name in ("directory", "paths"), name
        if name != "validate":
            assert any("--dir" in getattr(p, "opts", ()) for p in command.params), name


def test_the_directory_given_twice_differently_is_an_error(tmp_path):
    result = CliRunner().invoke(cli, ["show", "risk", str(tmp_path), "--dir", "elsewhere"])
    assert result.exit_code == 1
    assert "disagree" in result.output


def test_apply_tells_the_directory_from_the_plan_file_in_either_order(tmp_path):
    folder = tmp_path / "desired_state"
    folder.mkdir()
    plan = str(tmp_path / "plan.json")
    assert _directory_and_plan((str(folder),), None) == (str(folder), None)
    assert _directory_and_plan((plan, str(folder)), None) == (str(folder), plan)
    assert _directory_and_plan((plan,), str(folder)) == (str(folder), plan)
    assert _directory_and_plan((), None) == ("desired_state", None)


def _plan_file(tmp_path):
    book = Book(cash=50_000.0).instrument("VTI", 290.0)
    plan = build_plan(
        desired_of(portfolio(target("VTI", weight=0.5))),
        actual_of(book),
        book.resolved(),
        {"default": limits()},
        now=NOW,
        plan_id="p1",
    )
    path = tmp_path / "plan.json"
    path.write_text(dumps(plan) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fmt", "start"), [("markdown", "### ib-reconciler plan"), ("text", "Plan p1:")]
)
def test_show_plan_renders_a_saved_plan_again(tmp_path, fmt, start):
    path = _plan_file(tmp_path)
    result = CliRunner().invoke(cli, ["show", "plan", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(start)


def test_show_plan_as_json_is_the_same_document(tmp_path):
    path = _plan_file(tmp_path)
    result = CliRunner().invoke(cli, ["show", "plan", str(path), "--format", "json"])
    assert json.loads(result.output) == json.loads(path.read_text())


def test_show_plan_refuses_an_edited_plan_like_apply(tmp_path):
    path = _plan_file(tmp_path)
    path.write_text(path.read_text().replace('"BUY"', '"SELL"'), encoding="utf-8")
    result = CliRunner().invoke(cli, ["show", "plan", str(path)])
    assert result.exit_code == 3
    assert "edited" in result.output and "the plan is not shown" in result.output


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_is_for_terminals_only_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_color(_Terminal()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(_Terminal()) is False


@pytest.mark.parametrize("command", ["plan", "lock", "health"])
def test_read_only_commands_document_their_own_client_id(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert "IB_READONLY_CLIENT_ID" in " ".join(result.output.split())


def test_number_columns_are_found_for_right_alignment():
    from reconciler.app.cli.commands_ops import _numeric_columns

    columns = ["order_ref", "quantity", "price", "symbol"]
    cells = [["rc-p1-001", "1,200", "290.15", "VTI"], ["rc-p1-002", "-", "0.4500", "BND"]]
    assert _numeric_columns(columns, cells) == {"quantity", "price"}
