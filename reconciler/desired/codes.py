"""The catalogue of validation codes: what each stable E_/W_ code means, in one sentence.

Responsible for the short description of every code `reconcile validate` can report, used
as the rule list of SARIF output (and checked by a test against every code in the source).
Codes are part of the public contract: never rename one, add new ones here. Must not decide
whether something is a problem; the loader, schema and semantic checks do that.
"""

from __future__ import annotations

CODES: dict[str, str] = {
    # reading files and YAML
    "E_READ_FAILED": "The file cannot be read.",
    "E_NOT_UTF8": "The file is not valid UTF-8.",
    "E_EMPTY_FILE": "The file holds no YAML document.",
    "E_EMPTY_DOCUMENT": "A `---` document is empty.",
    "E_YAML_SYNTAX": "The file is not valid YAML.",
    "E_YAML_TAB": "A tab character in YAML; indentation must use spaces.",
    "E_DUPLICATE_KEY": "A key appears twice in one mapping; YAML would keep only the last.",
    "E_YAML_BOOLEAN": "A YAML 1.1 boolean (yes, no, on, off, y, n) where text or a flag is meant.",
    "E_YAML_EXPONENT": "Exponent notation (1e3) that YAML 1.1 reads as text.",
    "E_YAML_OCTAL": "A number with a leading zero that YAML 1.1 reads as octal.",
    "E_YAML_SEXAGESIMAL": "A time-like value (12:30) that YAML 1.1 reads as a base-60 number.",
    "E_YAML_NUMBER_FORMAT": "A hex, binary or underscore-separated number.",
    "E_NUMBER_NOT_FINITE": "An infinite or not-a-number value.",
    "E_NUMBER_TOO_LARGE": "A number too large to be represented exactly.",
    "E_YAML_TAG": "A YAML tag (!!python/..., !custom); only plain values are accepted.",
    "E_YAML_ANCHOR": "A YAML anchor; every value is written out where it applies.",
    "E_YAML_ALIAS": "A YAML alias; every value is written out where it applies.",
    "E_YAML_MERGE_KEY": "A YAML merge key (<<); every field is written out.",
    "E_YAML_COMPLEX_KEY": "A mapping key that is not plain text.",
    "E_YAML_TOO_DEEP": "Nesting far deeper than any desired-state document.",
    # dispatch on apiVersion and kind
    "E_NOT_A_MAPPING": "A document is not a mapping with apiVersion, kind, metadata and spec.",
    "E_UNKNOWN_API_VERSION": "The apiVersion is not supported.",
    "E_UNKNOWN_KIND": "The kind is not known.",
    # schema
    "E_MISSING_FIELD": "A required field is missing.",
    "E_UNKNOWN_FIELD": "A field the schema does not know (often a misspelling).",
    "E_TYPE": "A value of the wrong type.",
    "E_ENUM_VALUE": "A value that is not one of the allowed values.",
    "E_PATTERN": "A value that does not have the expected form.",
    "E_OUT_OF_RANGE": "A number outside its allowed range.",
    "E_EMPTY_VALUE": "A value that must not be empty.",
    "E_TOO_FEW_ITEMS": "A list that must not be empty.",
    "E_TOO_FEW_FIELDS": "A mapping that needs at least one field.",
    "E_DUPLICATE_ITEM": "A list that holds the same entry twice.",
    "E_SCHEMA": "A value the schema refuses.",
    "E_BAD_PERCENT": "Not a percentage such as 5% or 12.5% (within range).",
    "E_BAD_WEIGHT": "Not a weight: a percentage such as 55% or a fraction such as 0.55.",
    "E_WEIGHT_NOT_FRACTION": "A bare weight above 1; a bare weight is a fraction (did you mean %?).",
    "E_BAD_DURATION": "Not a duration with a unit such as 30s, 5m or 1h30m.",
    "E_BAD_SPREAD": "Not a spread such as 1% or 50bps.",
    "E_BAD_SYMBOL": "Not an upper-case IB symbol such as VTI or BRK B.",
    "E_BAD_NAME": "Not a name of lower-case letters, digits and dashes.",
    "E_BAD_ACCOUNT_ID": "Not an IB account id such as DU0000001.",
    "E_TARGET_AMOUNT": "A target needs exactly one of weight or quantity.",
    "E_TARGET_INSTRUMENT": "A target names its instrument once: symbol or instrument.",
    "E_BAND_EMPTY": "A band needs at least one of absolute or relative.",
    "E_SCHEDULE_TRIGGER": "A schedule needs exactly one of interval or cron.",
    # checks across fields and documents
    "E_WEIGHTS_EXCEED_100": "Target weights plus cash reserve exceed 100%.",
    "E_DUPLICATE_INSTRUMENT": "An instrument is targeted twice in one portfolio.",
    "E_DUPLICATE_ACCOUNT": "Two portfolios drive the same account.",
    "E_DUPLICATE_NAME": "Two documents of one kind share a name.",
    "E_UNKNOWN_RISK_POLICY": "A portfolio refers to a RiskPolicy that does not exist.",
    "E_RESTRICTED_TARGET": "A target is restricted by its RiskPolicy.",
    "E_BAD_CRON": "Not a valid five-field cron expression.",
    "E_BAD_TIMEZONE": "Not an IANA time zone.",
    "E_UNKNOWN_ACCOUNT": "A schedule names an account no portfolio drives.",
    "E_SCHEDULE_OVERLAP": "An account is driven by two schedules.",
    # the lockfile
    "E_LOCK_MALFORMED": "The lockfile is not what `reconcile lock` writes.",
    "E_LOCK_KEY_MISMATCH": "A lockfile entry is filed under the wrong instrument key.",
    "E_LOCK_CONID_MISMATCH": "A pinned conId disagrees with the lockfile.",
    # the directory
    "E_DIRECTORY_NOT_FOUND": "The desired-state directory does not exist.",
    "E_NOT_A_DIRECTORY": "A file was given where the desired-state directory was expected.",
    "E_NO_DOCUMENTS": "The directory holds no YAML files.",
    "E_SCHEMAS_NOT_FOUND": "The JSON schemas are missing from the installation.",
    # warnings
    "W_NO_ORDER_LIMIT": "A RiskPolicy without maxOrderNotional.",
    "W_SHORT_INTERVAL": "A schedule interval short enough to hit IB pacing limits.",
    "W_NO_PORTFOLIOS": "No Portfolio documents: nothing will be reconciled.",
    "W_LOCKFILE_IGNORED": "A lockfile below the top of the directory is not read.",
}


def describe(code: str) -> str:
    """The one-sentence meaning of `code` (the code itself when it is not catalogued)."""
    return CODES.get(code, code)


def rule_name(code: str) -> str:
    """`E_UNKNOWN_FIELD` -> `UnknownField`: SARIF's readable rule name."""
    return "".join(part.capitalize() for part in code.split("_")[1:])
