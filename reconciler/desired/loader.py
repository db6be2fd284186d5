"""Loading a desired-state directory: find files, read strictly, validate, build the model.

Responsible for the whole `validate` pipeline over one directory: discover `*.yaml`/`*.yml`
files at any depth (hidden files and directories skipped, the lockfile read separately),
strict YAML reading, dispatch on apiVersion/kind, JSON Schema validation, semantic checks,
the content hash and git provenance. Every problem in every file is collected before the
result is decided. Diagnostics name files relative to the working directory (where the
command ran), so a CI annotation or an editor jumps to the right file; they are ordered by
file, line, then cause before consequence. Must not talk to a broker, print, or raise for a
user's mistake: problems become diagnostics (`validate_directory`) or one `DiagnosticsError`
(`load_desired_state`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from reconciler.desired.gitinfo import git_revision
from reconciler.desired.lockfile import LOCK_FILENAME, parse_lock
from reconciler.desired.schema import schema_directory
from reconciler.desired.semantic import SourceDocument, build_state
from reconciler.desired.snapshot import content_hash
from reconciler.desired.yaml_strict import ParsedDocument, parse_yaml
from reconciler.model.desired import DesiredState, LockedInstrument
from reconciler.model.diagnostics import Diagnostic, DiagnosticsError

API_VERSION = "reconciler/v1"
KINDS = ("Portfolio", "RiskPolicy", "Schedule")
YAML_SUFFIXES = (".yaml", ".yml")


def display_path(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> str:
    """`path` as diagnostics show it: relative to `base` (default: the working directory)
    when it lies inside it, else absolute. POSIX separators either way."""
    base_absolute = Path(os.path.abspath(base if base is not None else os.getcwd()))
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(base_absolute).as_posix()
    except ValueError:
        return absolute.as_posix()


# Within one line, what a user must fix first comes first: a file that cannot be read
# explains everything after it, an unknown field often explains a missing one, a wrong value
# explains a check across fields, and checks across documents come last.
_READING = (
    "E_YAML_",
    "E_NOT_UTF8",
    "E_DUPLICATE_KEY",
    "E_NUMBER_",
    "E_EMPTY_FILE",
    "E_EMPTY_DOCUMENT",
    "E_READ_FAILED",
)
_DISPATCH = ("E_NOT_A_MAPPING", "E_UNKNOWN_API_VERSION", "E_UNKNOWN_KIND", "E_UNKNOWN_FIELD")
_COMBINATION = (
    "E_MISSING_FIELD",
    "E_TARGET_AMOUNT",
    "E_TARGET_INSTRUMENT",
    "E_BAND_EMPTY",
    "E_SCHEDULE_TRIGGER",
    "E_TOO_FEW_FIELDS",
)
_SEMANTIC_CODES = frozenset(
    {
        "E_WEIGHTS_EXCEED_100",
        "E_DUPLICATE_INSTRUMENT",
        "E_DUPLICATE_ACCOUNT",
        "E_DUPLICATE_NAME",
        "E_UNKNOWN_RISK_POLICY",
        "E_RESTRICTED_TARGET",
        "E_UNKNOWN_ACCOUNT",
        "E_SCHEDULE_OVERLAP",
        "E_LOCK_CONID_MISMATCH",
    }
)


def cause_rank(diagnostic: Diagnostic) -> int:
    """0 reading, 1 unknown field or kind, 2 a value, 3 a combination of fields, 4 checks
    across fields or documents, 5 warnings."""
    code = diagnostic.code
    if diagnostic.severity != "error":
        return 5
    if code.startswith(_READING):
        return 0
    if code in _DISPATCH:
        return 1
    if code in _COMBINATION:
        return 3
    if code in _SEMANTIC_CODES:
        return 4
    return 2


def diagnostic_order(diagnostic: Diagnostic) -> tuple:
    """Sort key: file, line, cause before consequence, column, then code and message."""
    d = diagnostic
    return (d.file, d.line or 0, cause_rank(d), d.column or 0, d.code, d.message)


def discover_files(root: Path) -> list[str]:
    """Relative POSIX paths of desired-state files under `root`, sorted; lockfiles excluded."""
    found: list[str] = []
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for filename in filenames:
            if filename.startswith(".") or not filename.endswith(YAML_SUFFIXES):
                continue
            if filename == LOCK_FILENAME:
                continue
            found.append(Path(directory, filename).relative_to(root).as_posix())
    return sorted(found)


def _nested_lockfiles(root: Path) -> list[str]:
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob(LOCK_FILENAME)
        if path.parent != root
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _dispatch(file: str, doc: ParsedDocument) -> tuple[str | None, list[Diagnostic]]:
    """The document's kind, or None with the reason it cannot be validated."""

    def problem(pointer: str, code: str, message: str) -> list[Diagnostic]:
        at = doc.position_of(pointer)
        return [Diagnostic(file, at.line, at.column, pointer, code, message)]

    value = doc.value
    if value is None:
        return None, problem("", "E_EMPTY_DOCUMENT", "this document is empty; remove the `---`")
    if not isinstance(value, dict):
        shape = "a list" if isinstance(value, list) else f"the value {value!r}"
        return None, problem(
            "",
            "E_NOT_A_MAPPING",
            f"expected a mapping with apiVersion, kind, metadata and spec, got {shape}",
        )
    if "apiVersion" not in value:
        return None, problem(
            "",
            "E_MISSING_FIELD",
            f"missing apiVersion: every document starts with apiVersion: {API_VERSION}",
        )
    if value["apiVersion"] != API_VERSION:
        return None, problem(
            "/apiVersion",
            "E_UNKNOWN_API_VERSION",
            f"apiVersion {value['apiVersion']!r} is not supported; use {API_VERSION}",
        )
    if "kind" not in value:
        return None, problem("", "E_MISSING_FIELD", f"missing kind: one of {', '.join(KINDS)}")
    kind = value["kind"]
    if kind not in KINDS:
        if kind == "InstrumentLock":
            hint = f"; the lockfile must be named {LOCK_FILENAME} at the top of the directory"
        else:
            import difflib

            close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        return None, problem(
            "/kind",
            "E_UNKNOWN_KIND",
            f"kind {kind!r} is not known{hint} (known kinds: {', '.join(KINDS)})",
        )
    return kind, []


def _within(pointer: str, prefixes: set[str]) -> bool:
    return any(pointer == p or pointer.startswith(p + "/") for p in prefixes)


def _schema_diagnostics(file: str, doc: ParsedDocument, kind: str) -> list[Diagnostic]:
    from reconciler.desired.schema import schema_problems

    # A value already reported as a YAML trap would only repeat as a type error.
    trapped = {p.pointer for p in doc.problems}
    diagnostics = []
    for problem in schema_problems(kind, doc.value):
        if _within(problem.pointer, trapped):
            continue
        at = doc.position_of(problem.pointer, key=problem.at_key)
        diagnostics.append(
            Diagnostic(file, at.line, at.column, problem.pointer, problem.code, problem.message)
        )
    return diagnostics


def _read_documents(
    root: Path, files: list[str], shown: Callable[[str], str]
) -> tuple[list[SourceDocument], list[Diagnostic], bool]:
    documents: list[SourceDocument] = []
    diagnostics: list[Diagnostic] = []
    complete = True
    for file in files:
        try:
            data = (root / file).read_bytes()
        except OSError as exc:
            diagnostics.append(
                Diagnostic(file, None, None, "", "E_READ_FAILED", f"cannot read: {exc.strerror}")
            )
            complete = False
            continue
        parsed = parse_yaml(data)
        for problem in parsed.problems:
            diagnostics.append(
                Diagnostic(file, problem.line, problem.column, "", problem.code, problem.message)
            )
            complete = complete and problem.code == "E_EMPTY_FILE"
        for doc in parsed.documents:
            diagnostics.extend(
                Diagnostic(file, p.line, p.column, p.pointer, p.code, p.message)
                for p in doc.problems
            )
            kind, dispatch_problems = _dispatch(file, doc)
            diagnostics.extend(dispatch_problems)
            if kind is None:
                complete = complete and dispatch_problems[0].code == "E_EMPTY_DOCUMENT"
                continue
            schema_diagnostics = _schema_diagnostics(file, doc, kind)
            diagnostics.extend(schema_diagnostics)
            valid = not doc.problems and not schema_diagnostics
            documents.append(SourceDocument(file, doc, kind, valid, shown(file)))
    return documents, diagnostics, complete


def _read_lock(root: Path) -> tuple[dict[str, LockedInstrument], list[Diagnostic]]:
    path = root / LOCK_FILENAME
    if not path.is_file():
        return {}, []
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {}, [
            Diagnostic(LOCK_FILENAME, None, None, "", "E_READ_FAILED", f"cannot read: {exc}")
        ]
    return parse_lock(data, LOCK_FILENAME)


def validate_directory(
    directory: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
) -> tuple[DesiredState | None, list[Diagnostic]]:
    """Validate everything under `directory`; the state is None when any error was found.

    Diagnostic paths are relative to `base` (default: the working directory), absolute when
    outside it. Diagnostics are sorted by file, line, cause before consequence, column;
    warnings may accompany a valid state. The model's `SourceRef`s stay relative to
    `directory`, so a plan does not depend on where it was made.
    """
    root = Path(directory)
    shown_root = display_path(root, base)

    def shown(file: str) -> str:
        return shown_root if file == "." else Path(shown_root, file).as_posix()

    if not root.exists():
        return None, [
            Diagnostic(
                shown_root,
                None,
                None,
                "",
                "E_DIRECTORY_NOT_FOUND",
                f"desired-state directory {str(directory)!r} does not exist",
            )
        ]
    if not root.is_dir():
        return None, [
            Diagnostic(
                shown_root,
                None,
                None,
                "",
                "E_NOT_A_DIRECTORY",
                f"{str(directory)!r} is a file; pass the directory that holds the "
                "desired-state files",
            )
        ]
    try:
        schema_directory()
    except FileNotFoundError as exc:  # a broken installation, not the operator's YAML
        return None, [Diagnostic(shown_root, None, None, "", "E_SCHEMAS_NOT_FOUND", str(exc))]
    files = discover_files(root)
    diagnostics: list[Diagnostic] = []
    if not files:
        diagnostics.append(
            Diagnostic(
                ".",
                None,
                None,
                "",
                "E_NO_DOCUMENTS",
                f"no *.yaml or *.yml files under {str(directory)!r}",
            )
        )
    documents, read_diagnostics, complete = _read_documents(root, files, shown)
    diagnostics.extend(read_diagnostics)
    lock, lock_diagnostics = _read_lock(root)
    diagnostics.extend(lock_diagnostics)
    diagnostics.extend(
        Diagnostic(
            path,
            None,
            None,
            "",
            "W_LOCKFILE_IGNORED",
            f"only the lockfile at the top of the directory is read ({LOCK_FILENAME})",
            "warning",
        )
        for path in _nested_lockfiles(root)
    )
    built, semantic_diagnostics = build_state(documents, lock, complete=complete)
    diagnostics.extend(semantic_diagnostics)
    if documents and complete and not any(d.kind == "Portfolio" for d in documents):
        diagnostics.append(
            Diagnostic(
                ".",
                None,
                None,
                "",
                "W_NO_PORTFOLIOS",
                "no Portfolio documents: nothing will be reconciled",
                "warning",
            )
        )
    diagnostics = sorted(
        {dataclasses.replace(d, file=shown(d.file)) for d in diagnostics}, key=diagnostic_order
    )
    if any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    revision = git_revision(root)
    state = DesiredState(
        portfolios=built.portfolios,
        risk_policies=built.risk_policies,
        schedules=built.schedules,
        content_hash=content_hash(built.portfolios, built.risk_policies, built.schedules, lock),
        directory=str(root),
        git_commit=revision.commit,
        git_dirty=revision.dirty,
        git_problem=revision.problem,
        lock=lock,
    )
    return state, diagnostics


def load_desired_state(directory: str | os.PathLike[str]) -> DesiredState:
    """The validated desired state; raises DiagnosticsError carrying every problem found."""
    state, diagnostics = validate_directory(directory)
    if state is None:
        raise DiagnosticsError([d for d in diagnostics if d.severity == "error"] or diagnostics)
    return state
