"""Strict YAML reading: values, positions and the traps refused."""

from __future__ import annotations

import pytest

from reconciler.desired.yaml_strict import Position, needs_quotes, parse_yaml


def one_value(text: str):
    parsed = parse_yaml(text.encode("utf-8"))
    assert parsed.problems == []
    (document,) = parsed.documents
    return document


def codes(text: str | bytes) -> list[str]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    parsed = parse_yaml(data)
    found = [p.code for p in parsed.problems]
    for document in parsed.documents:
        found.extend(p.code for p in document.problems)
    return found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 55%", "55%"),
        ("a: 0.55", 0.55),
        ("a: 5", 5),
        ("a: -5", -5),
        ("a: +5", 5),
        ("a: 0", 0),
        ("a: .5", 0.5),
        ("a: 120s", "120s"),
        ("a: true", True),
        ("a: False", False),
        ("a: ~", None),
        ("a:", None),
        ("a: null", None),
        ("a: 'NO'", "NO"),
        ('a: "012"', "012"),
        ("a: '12:30'", "12:30"),
        ("a: !!str 012", "012"),
        ("a: !!str yes", "yes"),
        ("a: '1e3'", "1e3"),
        ("a: BRK B", "BRK B"),
        ("a: America/New_York", "America/New_York"),
        ("a: 2024-01-02", "2024-01-02"),
        ("a: 30 9 * * mon-fri", "30 9 * * mon-fri"),
    ],
)
def test_plain_and_quoted_scalars_read_as_yaml_1_2_core_values(text, expected):
    value = one_value(text).value["a"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a: NO", "E_YAML_BOOLEAN"),
        ("a: no", "E_YAML_BOOLEAN"),
        ("a: on", "E_YAML_BOOLEAN"),
        ("a: Off", "E_YAML_BOOLEAN"),
        ("a: yes", "E_YAML_BOOLEAN"),
        ("a: Y", "E_YAML_BOOLEAN"),
        ("a: n", "E_YAML_BOOLEAN"),
        ("ON: 1", "E_YAML_BOOLEAN"),
        ("a: 1e3", "E_YAML_EXPONENT"),
        ("a: 1.5E+3", "E_YAML_EXPONENT"),
        ("a: -2e-4", "E_YAML_EXPONENT"),
        ("a: 012", "E_YAML_OCTAL"),
        ("a: 0o17", "E_YAML_OCTAL"),
        ("a: 012.5", "E_YAML_OCTAL"),
        ("a: 12:30", "E_YAML_SEXAGESIMAL"),
        ("a: 09:30", "E_YAML_SEXAGESIMAL"),
        ("a: 1:02:03.5", "E_YAML_SEXAGESIMAL"),
        ("a: 0x1F", "E_YAML_NUMBER_FORMAT"),
        ("a: 0b101", "E_YAML_NUMBER_FORMAT"),
        ("a: 1_000", "E_YAML_NUMBER_FORMAT"),
        ("a: .inf", "E_NUMBER_NOT_FINITE"),
        ("a: -.Inf", "E_NUMBER_NOT_FINITE"),
        ("a: .nan", "E_NUMBER_NOT_FINITE"),
        ("a: 1\na: 2", "E_DUPLICATE_KEY"),
        ("a: !!python/name:os.system", "E_YAML_TAG"),
        ("a: !!python/object/apply:os.system [ls]", "E_YAML_TAG"),
        ("a: !include other.yaml", "E_YAML_TAG"),
        ("a: !!set {x}", "E_YAML_TAG"),
        ("a: &x 1\nb: *x", "E_YAML_ANCHOR"),
        ("a: {<<: {b: 1}}", "E_YAML_MERGE_KEY"),
        ("? [a, b]\n: 1", "E_YAML_COMPLEX_KEY"),
        ("a:\n\tb: 1", "E_YAML_TAB"),
        ("a: 1 # a\tcomment", "E_YAML_TAB"),
        ("a: [1,", "E_YAML_SYNTAX"),
        ("a: b: c", "E_YAML_SYNTAX"),
        ("a: \x07", "E_YAML_SYNTAX"),
        ("a: 12345678901234567", "E_NUMBER_TOO_LARGE"),
        ("a: " + "9" * 400 + ".5", "E_NUMBER_TOO_LARGE"),
        ("a: " + "[" * 40 + "]" * 40, "E_YAML_TOO_DEEP"),
        ("a: " + "[" * 400 + "]" * 400, "E_YAML_TOO_DEEP"),
        ("", "E_EMPTY_FILE"),
        ("# only a comment\n", "E_EMPTY_FILE"),
    ],
)
def test_trap_is_reported_with_its_own_code(text, code):
    assert code in codes(text)


def test_alias_is_reported_where_it_is_used_and_not_expanded():
    parsed = parse_yaml(b"a: &x [1, 2]\nb: *x\n")
    (document,) = parsed.documents
    assert [(p.code, p.line, p.pointer) for p in document.problems] == [
        ("E_YAML_ANCHOR", 1, "/a"),
        ("E_YAML_ALIAS", 2, "/b"),
    ]
    assert document.value["b"] is None


def test_non_utf8_byte_is_reported_at_its_line_and_column():
    parsed = parse_yaml(b"a: 1\nb: caf\xe9\n")
    assert [(p.code, p.line, p.column) for p in parsed.problems] == [("E_NOT_UTF8", 2, 7)]
    assert parsed.documents == []


def test_byte_order_mark_is_accepted():
    assert one_value("\ufeffa: 1").value == {"a": 1}


def test_duplicate_key_names_the_first_occurrence_and_keeps_the_first_value():
    parsed = parse_yaml(b"spec:\n  a: 1\n  b: 2\n  a: 3\n")
    (document,) = parsed.documents
    (problem,) = document.problems
    assert (problem.code, problem.line, problem.column, problem.pointer) == (
        "E_DUPLICATE_KEY",
        4,
        3,
        "/spec/a",
    )
    assert "line 2" in problem.message
    assert document.value == {"spec": {"a": 1, "b": 2}}


def test_positions_are_one_based_and_mappings_are_reported_at_their_key():
    document = one_value("spec:\n  targets:\n    - {symbol: VTI, weight: 55%}\n")
    assert document.position_of("/spec/targets/0/weight") == Position(3, 29)
    assert document.position_of("/spec/targets") == Position(2, 3)
    assert document.position_of("/spec/targets/0") == Position(3, 7)
    assert document.position_of("/spec/targets/0/missing") == Position(3, 7)
    assert document.position_of("/spec/targets/0/symbol", key=True) == Position(3, 8)


def test_pointer_tokens_escape_slash_and_tilde():
    document = one_value("labels:\n  a/b: 1\n  c~d: 2\n")
    assert document.position_of("/labels/a~1b") == Position(2, 8)
    assert document.position_of("/labels/c~0d") == Position(3, 8)


def test_several_documents_keep_their_own_start_lines():
    parsed = parse_yaml(b"a: 1\n---\nb: 2\n---\n# nothing\n---\nc: 3\n")
    assert [d.value for d in parsed.documents] == [{"a": 1}, {"b": 2}, None, {"c": 3}]
    assert [d.start.line for d in parsed.documents] == [1, 3, 4, 7]


def test_documents_before_a_syntax_error_are_kept():
    parsed = parse_yaml(b"a: 1\n---\nb: [1,\n")
    assert [d.value for d in parsed.documents] == [{"a": 1}]
    assert [p.code for p in parsed.problems] == ["E_YAML_SYNTAX"]


@pytest.mark.parametrize(
    "text", ["ON", "Y", "n", "yes", "012", "12:30", "1e3", "5", "0.5", "null", "", "<<", ".inf"]
)
def test_needs_quotes_for_every_text_that_would_not_read_back_as_itself(text):
    assert needs_quotes(text)


@pytest.mark.parametrize("text", ["VTI", "BRK B", "SMART", "55%", "120s", "GME"])
def test_plain_text_needs_no_quotes(text):
    assert not needs_quotes(text)
