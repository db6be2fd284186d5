"""Structural validation of desired-state documents against the JSON Schemas in `schemas/`.

Responsible for finding the schema files, compiling one Draft 2020-12 validator per kind
(cached for the process), running it with `iter_errors` so every error is reported, and
turning each jsonschema error into a `SchemaProblem`: a JSON pointer, a stable code and a
plain message. Codes come from the schema where it says so (`x-errorCode`, either one code
for every keyword of that subschema or a keyword -> code mapping), else from the failing
keyword. A misspelled field is a cause, not one problem among several: when renaming it to
the suggested field makes another problem of the same object go away (a target's "missing
weight" after `weigth: 30%`), only the misspelling is reported. `jsonschema` is imported only
when a validator is first needed, so importing this package stays cheap. Must not read
desired-state files or know about source positions.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.desired.yaml_strict import escape_pointer_token

SCHEMA_FILES = {
    "Portfolio": "portfolio.schema.json",
    "RiskPolicy": "riskpolicy.schema.json",
    "Schedule": "schedule.schema.json",
    "InstrumentLock": "lock.schema.json",
}

_KEYWORD_CODES = {
    "additionalProperties": "E_UNKNOWN_FIELD",
    "required": "E_MISSING_FIELD",
    "type": "E_TYPE",
    "enum": "E_ENUM_VALUE",
    "const": "E_ENUM_VALUE",
    "pattern": "E_PATTERN",
    "minimum": "E_OUT_OF_RANGE",
    "maximum": "E_OUT_OF_RANGE",
    "exclusiveMinimum": "E_OUT_OF_RANGE",
    "exclusiveMaximum": "E_OUT_OF_RANGE",
    "minItems": "E_TOO_FEW_ITEMS",
    "minLength": "E_EMPTY_VALUE",
    "uniqueItems": "E_DUPLICATE_ITEM",
    "minProperties": "E_TOO_FEW_FIELDS",
}
_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}
_FIXED_MESSAGES = {
    "E_TARGET_INSTRUMENT": (
        "a target names its instrument exactly once: either symbol: VTI or "
        "instrument: {symbol: VTI, ...}"
    ),
    "E_TARGET_AMOUNT": "a target needs exactly one of weight (55% or 0.55) or quantity",
    "E_BAND_EMPTY": "band needs at least one of absolute or relative",
    "E_SCHEDULE_TRIGGER": "a schedule needs exactly one of interval (e.g. 15m) or cron",
}


_BOTH_FIELDS = {
    "E_TARGET_INSTRUMENT": ("symbol", "instrument"),
    "E_TARGET_AMOUNT": ("weight", "quantity"),
}


@dataclass(frozen=True)
class SchemaProblem:
    pointer: str
    code: str
    message: str
    at_key: bool = False  # the position to report is the field's key, not its value
    # An unknown field with a close known name: the known name, and the path of the mapping
    # holding both, so the consequences of the misspelling can be told apart.
    suggestion: str | None = field(default=None, compare=False)
    parent_path: tuple = field(default=(), compare=False)


def schema_directory() -> Path:
    """`schemas/` at the project root (editable install or checkout), else package data."""
    package_root = Path(__file__).resolve().parents[1]
    for candidate in (package_root.parent / "schemas", package_root / "schemas"):
        if (candidate / SCHEMA_FILES["Portfolio"]).is_file():
            return candidate
    raise FileNotFoundError(
        f"JSON schemas not found next to the package ({package_root.parent / 'schemas'})"
    )


@functools.cache
def load_schema(kind: str) -> dict[str, Any]:
    with open(schema_directory() / SCHEMA_FILES[kind], encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def validator_for(kind: str):
    from jsonschema import Draft202012Validator

    # check_schema (meta-validation) costs ~0.1 s per run; the unit tests do it instead.
    return Draft202012Validator(load_schema(kind))


@functools.cache
def fast_validator_for(kind: str) -> Any:
    """A compiled (Rust) validator of `kind`, or None when `jsonschema_rs` is unavailable.

    It only answers "valid or not": a valid document (the common case: `reconcile validate`
    in CI, every cycle's load) then needs neither `jsonschema` (~0.1 s to import) nor its
    slower walk. Any invalid document goes through `jsonschema`, whose errors carry what the
    diagnostics need (pointer, keyword, schema path), so diagnostics are unchanged. A unit
    test holds both validators to the same verdict on every example and corpus document.
    """
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - an optional accelerator
        return None
    return jsonschema_rs.Draft202012Validator(load_schema(kind))


def is_valid(kind: str, instance: Any) -> bool | None:
    """The compiled validator's verdict; None when it cannot tell (not installed, or the
    document holds a value it cannot read)."""
    validator = fast_validator_for(kind)
    if validator is None:
        return None
    try:
        return bool(validator.is_valid(instance))
    except (ValueError, TypeError):
        return None


def schema_problems(kind: str, instance: Any) -> list[SchemaProblem]:
    """Every structural problem of one document of `kind`, in a stable order, without the
    consequences of a misspelled field."""
    if is_valid(kind, instance):
        return []
    problems = _all_problems(kind, instance)
    if any(p.suggestion for p in problems):
        problems = _without_consequences(kind, instance, problems)
    return problems


def _all_problems(kind: str, instance: Any) -> list[SchemaProblem]:
    problems: list[SchemaProblem] = []
    for error in validator_for(kind).iter_errors(instance):
        problems.extend(_problems_from_error(error))
    unique = {(p.pointer, p.code, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.pointer, p.code, p.message))


def _without_consequences(
    kind: str, instance: Any, problems: list[SchemaProblem]
) -> list[SchemaProblem]:
    """Drop problems of a mapping (or its ancestors) that a suggested rename would fix.

    The document is validated again with every misspelled field renamed to its suggestion;
    a problem that then disappears was caused by a misspelling. Only the mapping holding the
    misspelling and the mappings above it are considered: nothing else can depend on it.
    """
    corrected = copy.deepcopy(instance)
    affected: set[str] = set()
    for problem in problems:
        if not problem.suggestion:
            continue
        holder = _at(corrected, problem.parent_path)
        misspelled = problem.pointer.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
        if not isinstance(holder, dict) or misspelled not in holder or problem.suggestion in holder:
            continue
        holder[problem.suggestion] = holder.pop(misspelled)
        parent = _pointer(problem.parent_path)
        affected.update(_ancestors(parent))
    remaining = {(p.pointer, p.code) for p in _all_problems(kind, corrected)}
    return [
        p
        for p in problems
        if p.suggestion or p.pointer not in affected or (p.pointer, p.code) in remaining
    ]


def _at(instance: Any, path: tuple) -> Any:
    for token in path:
        try:
            instance = instance[token]
        except (KeyError, IndexError, TypeError):
            return None
    return instance


def _ancestors(pointer: str) -> list[str]:
    """`/spec/targets/1` -> [`/spec/targets/1`, `/spec/targets`, `/spec`, ``]."""
    found = [pointer]
    while pointer:
        pointer = pointer.rsplit("/", 1)[0]
        found.append(pointer)
    return found


def _pointer(path: Any) -> str:
    return "".join(f"/{escape_pointer_token(token)}" for token in path)


def _declared_code(error: Any) -> str | None:
    declared = error.schema.get("x-errorCode") if isinstance(error.schema, dict) else None
    if isinstance(declared, dict):
        return declared.get(error.validator)
    return declared


def _pick_branch(error: Any) -> Any | None:
    """For anyOf/oneOf: the branch error the author most likely meant (type matched)."""
    candidates = [e for e in error.context if e.validator != "type"]
    if not candidates:
        return None
    deepest = max(len(e.absolute_path) for e in candidates)
    return next(e for e in candidates if len(e.absolute_path) == deepest)


def _problems_from_error(error: Any) -> list[SchemaProblem]:
    pointer = _pointer(error.absolute_path)
    code = _declared_code(error)
    if code is None and error.validator in ("anyOf", "oneOf") and error.context:
        branch = _pick_branch(error)
        if branch is not None:
            return _problems_from_error(branch)
        expected = sorted({t for e in error.context for t in _as_list(e.validator_value)})
        return [SchemaProblem(pointer, "E_TYPE", _type_message(expected, error.instance))]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_fields(error, pointer, code)
    if error.validator == "required":
        missing = [f for f in error.validator_value if f not in error.instance]
        return [
            SchemaProblem(
                pointer,
                code or "E_MISSING_FIELD",
                _FIXED_MESSAGES.get(code or "", f"missing required field {name!r}"),
            )
            for name in missing
        ]
    code = code or _KEYWORD_CODES.get(error.validator, "E_SCHEMA")
    return [SchemaProblem(pointer, code, _message(code, error))]


def _unknown_fields(error: Any, pointer: str, code: str | None) -> list[SchemaProblem]:
    import difflib

    allowed = sorted(error.schema.get("properties", {}))
    problems = []
    for name in sorted(set(error.instance) - set(allowed)):
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown field {name!r}{hint} (allowed here: {', '.join(allowed)})"
        problems.append(
            SchemaProblem(
                f"{pointer}/{escape_pointer_token(name)}",
                code or "E_UNKNOWN_FIELD",
                message,
                at_key=True,
                suggestion=close[0] if close else None,
                parent_path=tuple(error.absolute_path),
            )
        )
    return problems


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if isinstance(value, str) else []


def _type_message(expected: list[str], instance: Any) -> str:
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected) or "another type"
    return f"expected {words}, got {_describe(instance)}"


def _describe(instance: Any) -> str:
    if instance is None:
        return "nothing (null)"
    if isinstance(instance, bool):
        return f"boolean {str(instance).lower()}"
    if isinstance(instance, dict):
        return "a mapping"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, str):
        return f"text {instance!r}"
    return f"number {instance}"


def _message(code: str, error: Any) -> str:
    value = error.instance
    if code in _BOTH_FIELDS and isinstance(value, dict):
        first, second = _BOTH_FIELDS[code]
        if first in value and second in value:
            return f"a target has both {first} and {second}; keep exactly one"
    if code in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[code]
    if code == "E_BAD_PERCENT":
        if isinstance(value, str) and value.endswith("%") and error.validator == "pattern":
            return f"{value!r} must be a percentage from 0% to 100%"
        return f"expected a percentage like 5% or 12.5%, got {_describe(value)}"
    if code == "E_BAD_DURATION":
        return f"expected a duration with a unit like 30s, 5m, 2h or 1h30m, got {_describe(value)}"
    if code == "E_BAD_SPREAD":
        return f"expected a spread like 1% or 50bps, got {_describe(value)}"
    if code == "E_BAD_SYMBOL":
        return f"expected an upper-case IB symbol like VTI or BRK B, got {_describe(value)}"
    if code == "E_BAD_NAME":
        return (
            f"expected a name of lower-case letters, digits and dashes (like us-core), "
            f"got {_describe(value)}"
        )
    if code == "E_BAD_ACCOUNT_ID":
        return f"expected an IB account id like DU0000001 (paper) or a U-prefixed live id, got {_describe(value)}"
    if code == "E_WEIGHT_NOT_FRACTION":
        return (
            f"weight {value} is a bare number above 1, but a bare weight is a fraction of "
            f"capital (0.55 = 55%); did you mean {value}%?"
        )
    if code == "E_TYPE":
        return _type_message(_as_list(error.validator_value), value)
    if code == "E_ENUM_VALUE":
        allowed = error.validator_value
        options = allowed if isinstance(allowed, list) else [allowed]
        import difflib

        by_lower = {str(o).lower(): str(o) for o in options}
        close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1)
        hint = f"; did you mean {by_lower[close[0]]!r}?" if close else ""
        return (
            f"{_describe(value)} is not allowed here{hint} "
            f"(allowed: {', '.join(str(o) for o in options)})"
        )
    if code == "E_OUT_OF_RANGE":
        relation = {
            "minimum": ">=",
            "maximum": "<=",
            "exclusiveMinimum": ">",
            "exclusiveMaximum": "<",
        }[error.validator]
        return f"must be {relation} {error.validator_value}, got {value}"
    if code == "E_DUPLICATE_ITEM" and isinstance(value, list):
        repeated = sorted({str(v) for i, v in enumerate(value) if v in value[:i]})
        return f"the list holds {', '.join(repeated)} more than once; list each entry once"
    if code == "E_TOO_FEW_ITEMS":
        return "the list must not be empty"
    if code == "E_EMPTY_VALUE":
        return "must not be empty"
    return str(error.message)
