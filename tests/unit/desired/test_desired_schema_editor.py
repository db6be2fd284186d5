"""The schemas as editors see them: defaults, examples, explanations, ids, the combined schema.

Defaults must say what the reconciler really does when a field is unset, examples must be
accepted, and every pattern explains itself (what the CLI says in a diagnostic, the editor
says on hover and in its error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.desired import validate_directory
from reconciler.desired.schema import SCHEMA_FILES, schema_directory
from reconciler.desired.schema_bundle import (
    COMBINED_FILE,
    ID_BASE,
    build_combined,
    load_kind_schemas,
    render,
)
from reconciler.desired.yaml_strict import parse_yaml

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "corpus"
EXAMPLE = ROOT / "desired_state"
SCHEMAS = ROOT / "schemas"
KINDS = sorted(SCHEMA_FILES)


def load(kind: str) -> dict:
    return json.loads((SCHEMAS / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))


def resolve(schema: dict, node: dict) -> dict:
    """`node` with the definition its `$ref` names merged underneath its own keywords."""
    if "$ref" in node:
        target = resolve(schema, schema["$defs"][node["$ref"].removeprefix("#/$defs/")])
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def properties(schema: dict, node: dict, path: tuple = ()):
    """(path, property subschema) for every property reachable from `node`."""
    node = resolve(schema, node)
    for name, child in node.get("properties", {}).items():
        yield (*path, name), child
        yield from properties(schema, child, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from properties(schema, node["items"], (*path, 0))
    for branch in node.get("anyOf", []):
        yield from properties(schema, branch, path)
    if isinstance(node.get("additionalProperties"), dict):
        yield from properties(schema, node["additionalProperties"], (*path, "*"))


def subschema_validator(schema: dict, node: dict) -> Draft202012Validator:
    return Draft202012Validator({"$defs": schema.get("$defs", {}), "allOf": [node]})


# --- examples and defaults -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_examples_unless_its_values_are_listed(kind):
    schema = load(kind)
    for path, node in properties(schema, schema):
        effective = resolve(schema, node)
        if "const" in effective or "enum" in effective or effective.get("type") == "boolean":
            continue  # editors complete these from the values themselves
        assert effective.get("examples"), f"{kind} {'/'.join(map(str, path))}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_example_and_default_is_accepted_by_its_own_schema(kind):
    schema = load(kind)
    checked = 0
    for path, node in properties(schema, schema):
        effective = resolve(schema, node)
        validator = subschema_validator(schema, node)
        for value in [
            *effective.get("examples", []),
            *([effective["default"]] if "default" in effective else []),
        ]:
            errors = [e.message for e in validator.iter_errors(value)]
            assert errors == [], f"{kind} {'/'.join(map(str, path))}: {value!r}"
            checked += 1
    assert checked >= 8


RISK = {
    "apiVersion": "reconciler/v1",
    "kind": "RiskPolicy",
    "metadata": {"name": "default"},
    "spec": {"maxOrderNotional": 10000},
}
PORTFOLIO = {
    "apiVersion": "reconciler/v1",
    "kind": "Portfolio",
    "metadata": {"name": "core"},
    "spec": {
        "account": "DU0000001",
        "targets": [{"instrument": {"symbol": "VTI"}, "weight": "50%"}],
    },
}
SCHEDULE = {
    "apiVersion": "reconciler/v1",
    "kind": "Schedule",
    "metadata": {"name": "every-15m"},
    "spec": {"interval": "15m"},
}
BASES = {"Portfolio": PORTFOLIO, "RiskPolicy": RISK, "Schedule": SCHEDULE}


def defaults_of(kind: str) -> list[tuple[tuple, Any]]:
    schema = load(kind)
    return [
        (path, resolve(schema, node)["default"])
        for path, node in properties(schema, schema)
        if "default" in resolve(schema, node)
    ]


def set_path(document: dict, path: tuple, value: Any) -> dict:
    document = json.loads(json.dumps(document))
    node = document
    for token in path[:-1]:
        node = node.setdefault(token, {}) if isinstance(token, str) else node[token]
    node[path[-1]] = value
    return document


def model_of(tmp_path: Path, kind: str, document: dict):
    directory = tmp_path / "state"
    directory.mkdir(exist_ok=True)
    files = {"portfolio.yaml": PORTFOLIO, "risk.yaml": RISK, "schedule.yaml": SCHEDULE}
    files[
        {"Portfolio": "portfolio.yaml", "RiskPolicy": "risk.yaml", "Schedule": "schedule.yaml"}[
            kind
        ]
    ] = document
    for name, content in files.items():
        (directory / name).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    state, diagnostics = validate_directory(directory)
    assert state is not None, [d.render() for d in diagnostics]
    return {
        "Portfolio": state.portfolios[0],
        "RiskPolicy": state.risk_policies["default"],
        "Schedule": state.schedules[0],
    }[kind]


@pytest.mark.parametrize("kind", ["Portfolio", "RiskPolicy", "Schedule"])
def test_every_default_is_what_the_reconciler_does_when_the_field_is_unset(kind, tmp_path):
    found = defaults_of(kind)
    assert len(found) >= 3
    unset = model_of(tmp_path, kind, BASES[kind])
    for path, default in found:
        explicit = model_of(tmp_path, kind, set_path(BASES[kind], path, default))
        assert explicit == unset, f"{kind} {'/'.join(map(str, path))}: default {default!r}"


def test_defaults_cover_the_fields_people_ask_about():
    paths = {("/".join(map(str, p))) for kind in BASES for p, _ in defaults_of(kind)}
    assert {
        "spec/cashReserve",
        "spec/band",
        "spec/unmanaged",
        "spec/sells",
        "spec/execution/orderType",
        "spec/execution/ttl",
        "spec/riskPolicy",
        "spec/targets/0/instrument/currency",
        "spec/tradingState",
        "spec/onBreach",
        "spec/timezone",
        "spec/selfHeal",
    } <= paths


# --- explanations ----------------------------------------------------------------------


def every_subschema(node: Any, path: str = "#"):
    if isinstance(node, dict):
        yield path, node
        for key, child in node.items():
            yield from every_subschema(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from every_subschema(child, f"{path}/{index}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_pattern_explains_itself_in_the_editor(kind):
    schema = load(kind)
    for path, node in every_subschema(schema):
        if "pattern" not in node or path.startswith("#/properties"):
            continue
        # yaml-language-server shows errorMessage for a wrong type and patternErrorMessage
        # for a wrong form; hover shows markdownDescription, other editors description.
        assert node.get("patternErrorMessage"), path
        assert node.get("errorMessage"), path
    for name, definition in schema.get("$defs", {}).items():
        if "pattern" in definition:
            assert definition.get("markdownDescription"), f"$defs/{name}"


def test_weight_explains_both_spellings_the_cli_accepts_and_why_55_is_refused():
    weight = load("Portfolio")["$defs"]["target"]["properties"]["weight"]
    texts = [
        weight["description"],
        weight["markdownDescription"],
        *(branch["errorMessage"] for branch in weight["anyOf"]),
    ]
    for text in texts:
        assert "55%" in text and "0.55" in text and "5500%" in text


@pytest.mark.parametrize(
    ("weight", "code"),
    [
        ("55%", None),
        ("12.5%", None),
        (0.55, None),
        ("100%", None),
        (1, None),
        (55, "E_WEIGHT_NOT_FRACTION"),
        ("0%", "E_OUT_OF_RANGE"),
        (0, "E_OUT_OF_RANGE"),
        ("101%", "E_BAD_PERCENT"),
        ("55", "E_BAD_PERCENT"),
    ],
)
def test_what_the_weight_text_promises_is_what_validation_does(weight, code, tmp_path):
    document = set_path(PORTFOLIO, ("spec", "targets", 0, "weight"), weight)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RISK), encoding="utf-8")
    _, diagnostics = validate_directory(tmp_path)
    assert [d.code for d in diagnostics] == ([code] if code else [])


# --- ids, copies and the combined schema -----------------------------------------------


def test_every_schema_has_a_stable_https_id_named_after_its_file():
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$id"] == ID_BASE + path.name
        # a reserved top-level domain: the id claims no one's real domain (RFC 2606)
        assert ID_BASE.startswith("https://ib-reconciler.invalid/")


def test_the_package_ships_the_same_schema_files_as_the_repository():
    shipped = ROOT / "reconciler" / "schemas"
    repository = {p.name: p.read_bytes() for p in SCHEMAS.glob("*.json")}
    package = {p.name: p.read_bytes() for p in shipped.glob("*.json")}
    assert package == repository
    assert schema_directory().resolve() == SCHEMAS.resolve()


def test_the_combined_schema_file_is_generated_from_the_per_kind_schemas():
    stored = (SCHEMAS / COMBINED_FILE).read_text(encoding="utf-8")
    assert stored == render(build_combined(load_kind_schemas(SCHEMAS))), (
        "run: python -m reconciler.desired.schema_bundle"
    )
    Draft202012Validator.check_schema(json.loads(stored))


def test_combining_refuses_definitions_that_differ():
    first = {"$defs": {"name": {"type": "string"}}, "type": "object"}
    second = {"$defs": {"name": {"type": "integer"}}, "type": "object"}
    with pytest.raises(ValueError, match="name"):
        build_combined({"A": first, "B": second})


def documents(directory: Path):
    for path in sorted(directory.rglob("*.y*ml")):
        for document in parse_yaml(path.read_bytes()).documents:
            value = document.value
            if isinstance(value, dict) and value.get("kind") in SCHEMA_FILES:
                yield path, value


def test_the_combined_schema_agrees_with_the_per_kind_schema_on_every_document():
    combined = Draft202012Validator(json.loads((SCHEMAS / COMBINED_FILE).read_text()))
    per_kind = {kind: Draft202012Validator(load(kind)) for kind in KINDS}
    checked = invalid = 0
    for path, value in [*documents(EXAMPLE), *documents(CORPUS)]:
        expected = per_kind[value["kind"]].is_valid(value)
        assert combined.is_valid(value) == expected, path
        checked += 1
        invalid += not expected
    assert checked > 60 and invalid > 20


def test_the_combined_schema_refuses_an_unknown_kind_and_lists_the_known_ones():
    combined = Draft202012Validator(json.loads((SCHEMAS / COMBINED_FILE).read_text()))
    errors = list(combined.iter_errors({"apiVersion": "reconciler/v1", "kind": "Portfolo"}))
    assert [e.validator for e in errors] == ["enum"]
    assert errors[0].validator_value == ["Portfolio", "RiskPolicy", "Schedule", "InstrumentLock"]
