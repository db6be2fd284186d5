"""`reconcile validate`: exit codes, text and JSON output, and staying light (no IB library)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from reconciler.app.cli import cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "desired_state"
CORPUS = ROOT / "tests" / "corpus"


def run(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def test_valid_example_exits_0_with_a_summary():
    result = run(str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "valid. 2 portfolio(s)" in result.output
    assert "DU0000001" in result.output and "DU0000002" in result.output


def test_invalid_directory_exits_1_naming_file_line_column_and_field():
    result = run(str(CORPUS / "weight-bare-55"))
    assert result.exit_code == 1
    assert (
        "portfolio.yaml:8:29: error E_WEIGHT_NOT_FRACTION at /spec/targets/0/weight:"
        in result.output
    )
    assert "did you mean 55%?" in result.output
    assert "1 error(s), 0 warning(s)" in result.output


def test_every_problem_is_printed_in_one_run():
    result = run(str(CORPUS / "yaml-anchor-alias"))
    assert result.exit_code == 1
    assert "E_YAML_ANCHOR" in result.output and "E_YAML_ALIAS" in result.output


def test_json_output_for_a_valid_directory():
    result = run("--format", "json", str(EXAMPLE))
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["valid"] is True
    assert document["diagnostics"] == []
    assert len(document["content_hash"]) == 64
    assert [p["account"] for p in document["portfolios"]] == ["DU0000002", "DU0000001"]


def test_json_output_for_an_invalid_directory_has_every_diagnostic_field(monkeypatch):
    monkeypatch.chdir(ROOT)  # files are named relative to where the command runs
    result = run(str(CORPUS / "duplicate-account"), "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["valid"] is False
    assert document["diagnostics"] == [
        {
            "code": "E_DUPLICATE_ACCOUNT",
            "column": 12,
            "file": "tests/corpus/duplicate-account/b.yaml",
            "line": 6,
            "message": "account DU0000001 is already driven by Portfolio 'first' "
            "(tests/corpus/duplicate-account/a.yaml); one portfolio per account",
            "pointer": "/spec/account",
            "severity": "error",
        }
    ]


def test_missing_directory_exits_1_with_a_message_and_no_traceback(tmp_path):
    result = run(str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "E_DIRECTORY_NOT_FOUND" in result.output
    assert "Traceback" not in result.output


def test_default_directory_is_desired_state_in_the_working_directory(tmp_path, monkeypatch):
    shutil.copytree(EXAMPLE, tmp_path / "desired_state")
    monkeypatch.chdir(tmp_path)
    assert run().exit_code == 0
    shutil.rmtree(tmp_path / "desired_state")
    result = run()
    assert result.exit_code == 1
    assert "'desired_state' does not exist" in result.output


def test_warnings_alone_do_not_fail_validation(tmp_path):
    (tmp_path / "risk.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: RiskPolicy\nmetadata: {name: default}\nspec: {}\n",
        encoding="utf-8",
    )
    result = run(str(tmp_path))
    assert result.exit_code == 0
    assert "warning W_NO_ORDER_LIMIT" in result.output
    assert "0 error(s), 2 warning(s)" in result.output


def test_validate_in_a_fresh_process_imports_no_ib_client_database_logging_or_other_command():
    script = textwrap.dedent(
        f"""
        import json, sys
        from reconciler.app.cli import cli
        try:
            cli.main(["validate", {str(EXAMPLE)!r}], standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        heavy = ["ib_async", "ib_insync", "sqlalchemy", "alembic", "eventkit", "deepdiff",
                 "structlog", "reconciler.app.cli.commands_trade",
                 "reconciler.app.cli.commands_ops", "reconciler.app.cli.commands_serve",
                 "reconciler.app.cli.commands_sim"]
        print(json.dumps({{"code": code, "loaded": [m for m in heavy if m in sys.modules]}}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}


def test_python_dash_m_reconciler_validate_gives_the_same_exit_codes():
    def exit_code(directory: Path) -> int:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", "validate", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        ).returncode

    assert exit_code(EXAMPLE) == 0
    assert exit_code(CORPUS / "yaml-tab-indent") == 1


def test_text_output_names_files_relative_to_the_working_directory(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("tests/corpus/weight-bare-55")
    assert result.output.startswith("tests/corpus/weight-bare-55/portfolio.yaml:8:29: error")
    assert result.output.rstrip().endswith(
        "invalid; fix the problems above (paths are relative to the current directory)"
    )


def test_github_format_prints_one_workflow_annotation_per_problem(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("--format", "github", "tests/corpus/target-weight-misspelled")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == (
        "::error file=tests/corpus/target-weight-misspelled/portfolio.yaml,line=9,col=21,"
        "title=E_UNKNOWN_FIELD::at /spec/targets/1/weigth: unknown field 'weigth'; did you "
        "mean 'weight'? (allowed here: instrument, quantity, symbol, weight)"
    )
    assert lines[1:] == [
        "tests/corpus/target-weight-misspelled: invalid; fix the problems above "
        "(paths are relative to the current directory)"
    ]


def test_github_format_for_a_valid_directory_prints_only_the_summary():
    result = run("--format", "github", str(EXAMPLE))
    assert result.exit_code == 0
    assert "::" not in result.output
    assert "valid. 2 portfolio(s)" in result.output


def test_github_format_reports_warnings_as_warnings(tmp_path, monkeypatch):
    (tmp_path / "risk.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: RiskPolicy\nmetadata: {name: default}\nspec: {}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    result = run("--format", "github", ".")
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [
        "::warning file=.,title=W_NO_PORTFOLIOS::no Portfolio documents: nothing will be reconciled",
        "::warning file=risk.yaml,line=4,col=1,title=W_NO_ORDER_LIMIT::at /spec: no "
        "maxOrderNotional: single orders are limited only by environment overrides",
    ]


def test_sarif_format_is_one_sarif_log_with_every_problem(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("--format", "sarif", "tests/corpus/yaml-anchor-alias")
    assert result.exit_code == 1
    log = json.loads(result.output)
    (run_,) = log["runs"]
    assert run_["tool"]["driver"]["name"] == "reconcile validate"
    assert [r["ruleId"] for r in run_["results"]] == ["E_YAML_ANCHOR", "E_YAML_ALIAS"]
    location = run_["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "tests/corpus/yaml-anchor-alias/portfolio.yaml"
    assert location["region"] == {"startLine": 11, "startColumn": 9}
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == ROOT.as_uri() + "/"


def test_sarif_format_for_a_valid_directory_has_no_results():
    result = run("--format", "sarif", str(EXAMPLE))
    assert result.exit_code == 0
    assert json.loads(result.output)["runs"][0]["results"] == []


def test_ci_formats_in_a_fresh_process_import_no_ib_client_or_database_library():
    script = textwrap.dedent(
        f"""
        import json, sys
        from reconciler.app.cli import cli
        codes = []
        for args in (["validate", "--format", "github", {str(CORPUS / "weight-bare-55")!r}],
                     ["validate", "--format", "sarif", {str(EXAMPLE)!r}],
                     ["schema"]):
            try:
                cli.main(args, standalone_mode=False)
            except SystemExit as exc:
                codes.append(exc.code)
            else:
                codes.append(0)
        heavy = ["ib_async", "ib_insync", "sqlalchemy", "alembic", "eventkit", "deepdiff"]
        print(json.dumps({{"codes": codes, "loaded": [m for m in heavy if m in sys.modules]}}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {"codes": [1, 0, 0], "loaded": []}
