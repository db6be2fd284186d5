"""`reconcile schema`: the combined schema on stdout, or every schema written into a user's
repository with the modeline that points the example files at it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from reconciler.app.cli import cli
from reconciler.desired import validate_directory
from reconciler.desired.schema_bundle import MODELINE_PREFIX, modeline, yaml_folders

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "desired_state"
SCHEMAS = ROOT / "schemas"


def run(*args: str):
    return CliRunner().invoke(cli, ["schema", *args])


def user_repository(tmp_path: Path, monkeypatch) -> Path:
    """A fresh repository holding a copy of the example desired state, as a user starts."""
    shutil.copytree(EXAMPLE, tmp_path / "desired_state")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_schema_without_write_prints_the_combined_schema():
    result = run()
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json.loads((SCHEMAS / "desired-state.schema.json").read_text())
    assert printed["properties"]["kind"]["enum"] == [
        "Portfolio",
        "RiskPolicy",
        "Schedule",
        "InstrumentLock",
    ]


def test_write_copies_every_schema_and_prints_the_modelines(tmp_path, monkeypatch):
    repository = user_repository(tmp_path, monkeypatch)
    result = run("--write", "schemas")
    assert result.exit_code == 0, result.output
    written = {p.name: p.read_bytes() for p in (repository / "schemas").iterdir()}
    assert written == {p.name: p.read_bytes() for p in SCHEMAS.glob("*.schema.json")}
    assert result.stdout.splitlines() == [
        "Start each YAML file with the line for its folder (and repeat it after each --- in a "
        "file with several documents):",
        "  desired_state/*.yaml:",
        "    # yaml-language-server: $schema=../schemas/desired-state.schema.json",
        "  desired_state/portfolios/*.yaml, desired_state/risk/*.yaml:",
        "    # yaml-language-server: $schema=../../schemas/desired-state.schema.json",
        "Or map the folder once in your editor's settings (VS Code settings.json):",
        '  "yaml.schemas": {"./schemas/desired-state.schema.json": "desired_state/**/*.yaml"}',
    ]
    assert "created: schemas/desired-state.schema.json" in result.stderr


def test_the_example_modelines_work_in_a_users_repository_after_write(tmp_path, monkeypatch):
    repository = user_repository(tmp_path, monkeypatch)
    printed = run("--write", "schemas").stdout
    for path in sorted((repository / "desired_state").rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first in printed, path
        assert first.startswith(MODELINE_PREFIX)
        target = (path.parent / first.removeprefix(MODELINE_PREFIX)).resolve()
        assert target == (repository / "schemas" / "desired-state.schema.json").resolve()
    state, _ = validate_directory("desired_state")
    assert state is not None


def test_writing_again_changes_nothing_and_says_so(tmp_path, monkeypatch):
    repository = user_repository(tmp_path, monkeypatch)
    run("--write", "schemas")
    (repository / "schemas" / "portfolio.schema.json").write_text("{}", encoding="utf-8")
    result = run("--write", "schemas")
    assert "updated: schemas/portfolio.schema.json" in result.stderr
    assert "unchanged: schemas/riskpolicy.schema.json" in result.stderr
    assert (repository / "schemas" / "portfolio.schema.json").read_bytes() == (
        SCHEMAS / "portfolio.schema.json"
    ).read_bytes()


def test_modelines_for_a_desired_state_folder_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "ops" / "state" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "ops" / "state" / "deep" / "er" / "p.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    result = run("--write", "tools/schemas", "--desired", "ops/state")
    assert result.exit_code == 0
    assert "  ops/state/deep/er/*.yaml:" in result.stdout
    assert (
        "    # yaml-language-server: $schema=../../../../tools/schemas/desired-state.schema.json"
        in result.stdout
    )
    assert yaml_folders(Path("ops/state")) == [Path("ops/state"), Path("ops/state/deep/er")]
    assert modeline(Path("a"), Path("a/s.json")) == MODELINE_PREFIX + "s.json"


def test_write_into_a_file_fails_with_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("schemas").write_text("not a folder")
    result = run("--write", "schemas")
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "schemas" in result.output
