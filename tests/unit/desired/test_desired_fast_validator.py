"""The compiled validator (`jsonschema_rs`) and `jsonschema` give the same verdict.

`schema_problems` trusts the compiled validator's "valid" and asks `jsonschema` only about
invalid documents, so the two must agree on every document we know: the examples, the
desired state of this repository and every corpus case (valid and broken), under every kind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.schema import SCHEMA_FILES, is_valid, schema_problems, validator_for
from reconciler.desired.yaml_strict import parse_yaml

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted(
    p
    for folder in ("tests/corpus", "reconciler/example", "desired_state")
    for p in (ROOT / folder).rglob("*.y*ml")
)


def _documents():
    for path in FILES:
        for doc in parse_yaml(path.read_bytes()).documents:
            yield path, doc.value


def test_the_corpus_holds_documents_to_compare():
    assert len(list(_documents())) > 50


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_fast_validator_when_given_every_known_document_then_agrees_with_jsonschema(kind):
    disagreements = []
    answered = 0
    for path, value in _documents():
        slow = not any(True for _ in validator_for(kind).iter_errors(value))
        fast = is_valid(kind, value)
        answered += fast is not None
        if fast is not None and fast != slow:
            disagreements.append(f"{path.relative_to(ROOT)}: compiled {fast}, jsonschema {slow}")
    assert disagreements == []
    assert answered > 50  # the compiled validator really ran


def test_schema_problems_when_the_document_is_invalid_then_still_names_pointer_and_code():
    problems = schema_problems("Portfolio", {"kind": "Portfolio", "bogus": 1})
    assert problems
    assert all(p.pointer.startswith("/") or p.pointer == "" for p in problems)
    assert any(p.code == "E_UNKNOWN_FIELD" for p in problems)
