"""The bad-input corpus: every directory under tests/corpus/ is one mistake an operator makes.

Each case must be refused with exactly the listed errors: the stable code, the file and the
line. The table names files within the case directory; diagnostics name them relative to the
working directory (the repository root here), as CI annotations need. Extra errors would be
noise an operator has to read; a missing one is a mistake that slipped through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired import load_desired_state, validate_directory
from reconciler.model.diagnostics import DiagnosticsError

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "corpus"

P, R, S, L = "portfolio.yaml", "risk.yaml", "schedule.yaml", "instruments.lock.yaml"

# case directory -> every error expected, as (code, file, line)
EXPECTED: dict[str, list[tuple[str, str, int | None]]] = {
    # YAML traps
    "yaml-duplicate-key": [("E_DUPLICATE_KEY", P, 11)],
    "yaml-boolean-no-as-symbol": [("E_YAML_BOOLEAN", P, 9)],
    "yaml-boolean-on-for-bool": [("E_YAML_BOOLEAN", P, 12)],
    "yaml-boolean-yes-selfheal": [("E_YAML_BOOLEAN", S, 7)],
    "yaml-boolean-key": [("E_YAML_BOOLEAN", S, 7)],
    "yaml-exponent-number": [("E_YAML_EXPONENT", P, 11)],
    "yaml-octal-number": [("E_YAML_OCTAL", R, 6)],
    "yaml-sexagesimal": [("E_YAML_SEXAGESIMAL", P, 9)],
    "yaml-tab-indent": [("E_YAML_TAB", P, 12)],
    "yaml-not-utf8": [("E_NOT_UTF8", P, 11)],
    "yaml-empty-file": [("E_EMPTY_FILE", P, 1)],
    "yaml-only-comments": [("E_EMPTY_FILE", P, 1)],
    "yaml-empty-document": [("E_EMPTY_DOCUMENT", P, 12)],
    "yaml-syntax-error": [("E_YAML_SYNTAX", P, 9)],
    "yaml-not-yaml-text": [("E_NOT_A_MAPPING", "notes.yaml", 1)],
    "yaml-list-document": [("E_NOT_A_MAPPING", P, 1)],
    "yaml-python-tag": [("E_YAML_TAG", P, 11)],
    "yaml-custom-tag": [("E_YAML_TAG", P, 11)],
    "yaml-anchor-alias": [("E_YAML_ANCHOR", P, 11), ("E_YAML_ALIAS", P, 12)],
    "yaml-merge-key": [("E_YAML_MERGE_KEY", P, 12)],
    "yaml-infinity": [("E_NUMBER_NOT_FINITE", R, 5)],
    "yaml-hex-number": [("E_YAML_NUMBER_FORMAT", P, 11)],
    "yaml-control-character": [("E_YAML_SYNTAX", P, 11)],
    # dispatch on apiVersion / kind
    "unknown-api-version": [("E_UNKNOWN_API_VERSION", P, 1)],
    "missing-api-version": [("E_MISSING_FIELD", P, 1)],
    "unknown-kind": [("E_UNKNOWN_KIND", P, 2)],
    "lock-kind-in-wrong-file": [("E_UNKNOWN_KIND", "lock.yaml", 2)],
    # schema
    "unknown-field-typo": [("E_UNKNOWN_FIELD", P, 11)],
    "unknown-field-nested": [("E_UNKNOWN_FIELD", P, 13)],
    # a misspelling is reported, not what it causes ("missing weight", "missing targets")
    "target-weight-misspelled": [("E_UNKNOWN_FIELD", P, 9)],
    "targets-misspelled": [("E_UNKNOWN_FIELD", P, 7)],
    "missing-name": [("E_MISSING_FIELD", P, 3)],
    "bad-name": [("E_BAD_NAME", P, 4)],
    "bad-account-id": [("E_BAD_ACCOUNT_ID", P, 6)],
    "missing-targets": [("E_MISSING_FIELD", P, 5)],
    "weight-bare-55": [("E_WEIGHT_NOT_FRACTION", P, 8)],
    "weight-quoted-number": [("E_BAD_PERCENT", P, 8)],
    "weight-over-100-percent": [("E_BAD_PERCENT", P, 8)],
    "weight-and-quantity": [("E_TARGET_AMOUNT", P, 9)],
    "neither-weight-nor-quantity": [("E_TARGET_AMOUNT", P, 9)],
    "symbol-and-instrument": [("E_TARGET_INSTRUMENT", P, 9)],
    "lowercase-symbol": [("E_BAD_SYMBOL", P, 8)],
    "negative-quantity": [("E_OUT_OF_RANGE", P, 9)],
    "bad-order-type": [("E_ENUM_VALUE", P, 12)],
    "ttl-without-unit": [("E_BAD_DURATION", P, 12)],
    "ttl-in-words": [("E_BAD_DURATION", P, 12)],
    "band-empty": [("E_BAND_EMPTY", P, 11)],
    "cash-reserve-bare-number": [("E_BAD_PERCENT", P, 10)],
    "instrument-bad-currency": [("E_PATTERN", P, 8)],
    "spread-bare-number": [("E_BAD_SPREAD", R, 6)],
    "orders-per-cycle-fraction": [("E_TYPE", R, 6)],
    "trading-state-lowercase": [("E_ENUM_VALUE", R, 5)],
    "restricted-duplicate": [("E_DUPLICATE_ITEM", R, 6)],
    "zero-order-notional": [("E_OUT_OF_RANGE", R, 5)],
    "schedule-interval-and-cron": [("E_SCHEDULE_TRIGGER", S, 5)],
    "label-not-text": [("E_TYPE", P, 6)],
    # semantic, within and across documents
    "weights-exceed-100": [("E_WEIGHTS_EXCEED_100", P, 7)],
    "duplicate-instrument": [("E_DUPLICATE_INSTRUMENT", P, 10)],
    "duplicate-instrument-two-spellings": [("E_DUPLICATE_INSTRUMENT", P, 9)],
    "duplicate-account": [("E_DUPLICATE_ACCOUNT", "b.yaml", 6)],
    "duplicate-name": [("E_DUPLICATE_NAME", R, 3)],
    "unknown-risk-policy": [("E_UNKNOWN_RISK_POLICY", P, 11)],
    "default-risk-policy-missing": [("E_UNKNOWN_RISK_POLICY", P, 5)],
    "restricted-target": [("E_RESTRICTED_TARGET", P, 9)],
    "weight-zero": [("E_OUT_OF_RANGE", P, 9)],
    "ttl-zero": [("E_OUT_OF_RANGE", P, 12)],
    "cron-six-fields": [("E_BAD_CRON", S, 6)],
    "cron-minute-out-of-range": [("E_BAD_CRON", S, 6)],
    "bad-timezone": [("E_BAD_TIMEZONE", S, 7)],
    "schedule-unknown-account": [("E_UNKNOWN_ACCOUNT", S, 7)],
    "schedule-overlap": [("E_SCHEDULE_OVERLAP", S, 12)],
    # the lockfile
    "lock-unknown-field": [("E_UNKNOWN_FIELD", L, 13)],
    "lock-key-mismatch": [("E_LOCK_KEY_MISMATCH", L, 4)],
    "lock-conid-conflict": [("E_LOCK_CONID_MISMATCH", P, 8)],
    # the directory
    "no-yaml-files": [("E_NO_DOCUMENTS", ".", None)],
}


def test_corpus_has_at_least_forty_cases_and_every_case_is_in_the_table():
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert len(on_disk) >= 40
    assert on_disk == set(EXPECTED)


def from_working_directory(case: str, file: str) -> str:
    """A file of the table as diagnostics name it when validation runs at the repository root."""
    return f"tests/corpus/{case}" if file == "." else f"tests/corpus/{case}/{file}"


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input_is_refused_with_exact_code_file_and_line(case, monkeypatch):
    monkeypatch.chdir(ROOT)
    state, diagnostics = validate_directory(CORPUS / case)
    assert state is None, f"{case} was accepted"
    errors = sorted((d.code, d.file, d.line) for d in diagnostics if d.severity == "error")
    expected = [
        (code, from_working_directory(case, file), line) for code, file, line in EXPECTED[case]
    ]
    assert errors == sorted(expected)
    for diagnostic in diagnostics:  # and each one reads as a plain sentence with a location
        assert diagnostic.message and "Traceback" not in diagnostic.message
        assert diagnostic.pointer == "" or diagnostic.pointer.startswith("/")
        if diagnostic.line is not None:
            assert diagnostic.column is not None and diagnostic.column >= 1


def test_load_desired_state_raises_with_every_error_of_a_bad_case():
    with pytest.raises(DiagnosticsError) as raised:
        load_desired_state(CORPUS / "yaml-anchor-alias")
    assert sorted(d.code for d in raised.value.diagnostics) == ["E_YAML_ALIAS", "E_YAML_ANCHOR"]
