"""The JSON Schemas are the contract: well-formed, documented, closed, and mapped to codes."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from reconciler.desired.schema import SCHEMA_FILES, schema_directory, schema_problems

KINDS = sorted(SCHEMA_FILES)


def load(kind: str) -> dict:
    return json.loads((schema_directory() / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))


def object_schemas(node, path="#"):
    """Every subschema that declares `type: object`, with where it is."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, child in node.items():
            yield from object_schemas(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from object_schemas(child, f"{path}/{index}")


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12_with_an_id(kind):
    schema = load(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://ib-reconciler.invalid/schemas/v1/{SCHEMA_FILES[kind]}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_object_is_closed_with_additional_properties_false(kind):
    for path, node in object_schemas(load(kind)):
        if "properties" in node:
            assert node.get("additionalProperties") is False, path


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_description_directly_or_through_its_ref(kind):
    schema = load(kind)
    for path, node in object_schemas(schema):
        for name, field in node.get("properties", {}).items():
            target = field
            if "description" not in field and "$ref" in field:
                target = schema["$defs"][field["$ref"].removeprefix("#/$defs/")]
            assert "description" in target, f"{path}/properties/{name}"


def test_shared_definitions_are_identical_in_every_schema():
    schemas = {kind: load(kind)["$defs"] for kind in KINDS}
    names = {name for defs in schemas.values() for name in defs}
    for name in names:
        copies = [
            json.dumps(defs[name], sort_keys=True) for defs in schemas.values() if name in defs
        ]
        assert len(set(copies)) == 1, f"$defs/{name} differs between schemas"


def portfolio(**spec):
    base = {"account": "DU0000001", "targets": [{"symbol": "VTI", "weight": "55%"}]}
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Portfolio",
        "metadata": {"name": "core"},
        "spec": {**base, **spec},
    }


def test_valid_document_has_no_problems():
    assert schema_problems("Portfolio", portfolio(cashReserve="5%")) == []


def test_every_error_of_a_document_is_reported_not_only_the_first():
    problems = schema_problems(
        "Portfolio", portfolio(account="X", unmanaged="keep", sells="sometimes", extra=1)
    )
    assert sorted(p.code for p in problems) == [
        "E_BAD_ACCOUNT_ID",
        "E_ENUM_VALUE",
        "E_ENUM_VALUE",
        "E_UNKNOWN_FIELD",
    ]


def test_unknown_field_suggests_the_closest_known_field_and_points_at_the_key():
    (problem,) = schema_problems("Portfolio", portfolio(cashReserv="5%"))
    assert problem.code == "E_UNKNOWN_FIELD"
    assert problem.pointer == "/spec/cashReserv"
    assert problem.at_key
    assert "did you mean 'cashReserve'?" in problem.message


def test_bare_weight_above_one_gets_its_own_code_and_a_percent_hint():
    (problem,) = schema_problems("Portfolio", portfolio(targets=[{"symbol": "VTI", "weight": 55}]))
    assert (problem.code, problem.pointer) == ("E_WEIGHT_NOT_FRACTION", "/spec/targets/0/weight")
    assert "did you mean 55%?" in problem.message


def test_target_with_both_weight_and_quantity_says_so():
    (problem,) = schema_problems(
        "Portfolio", portfolio(targets=[{"symbol": "VTI", "weight": "5%", "quantity": 3}])
    )
    assert problem.code == "E_TARGET_AMOUNT"
    assert "both weight and quantity" in problem.message


def test_enum_mistake_in_the_wrong_case_suggests_the_right_spelling():
    doc = portfolio()
    doc["spec"]["execution"] = {"timeInForce": "day"}
    (problem,) = schema_problems("Portfolio", doc)
    assert problem.code == "E_ENUM_VALUE"
    assert "did you mean 'DAY'?" in problem.message


def test_percent_over_100_names_the_range():
    (problem,) = schema_problems("Portfolio", portfolio(cashReserve="120%"))
    assert problem.code == "E_BAD_PERCENT"
    assert "from 0% to 100%" in problem.message


def test_wrong_type_names_what_was_expected_in_plain_words():
    doc = portfolio()
    doc["spec"]["execution"] = {"outsideRth": "maybe"}
    (problem,) = schema_problems("Portfolio", doc)
    assert (problem.code, problem.message) == ("E_TYPE", "expected true or false, got text 'maybe'")
