"""Diagnostics for CI: GitHub workflow annotations and SARIF 2.1.0.

Responsible for rendering validation diagnostics as GitHub Actions workflow commands
(`::error file=...,line=...,col=...,title=CODE::message`, escaped the way the Actions runner
unescapes them) and as one SARIF 2.1.0 log (tool.driver with a rule per code used, results
with physical locations), which code-scanning tools and editors read. File paths are taken
as they are in the diagnostics (relative to the working directory, where CI checks out the
repository). Must not decide what is a problem, read files or print.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import quote

from reconciler.desired.codes import describe, rule_name
from reconciler.model.diagnostics import Diagnostic

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SARIF_VERSION = "2.1.0"
TOOL_NAME = "reconcile validate"
SOURCE_ROOT = "%SRCROOT%"


def escape_data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF are escaped (the runner's own rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as data, plus `:` and `,` that delimit it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(diagnostic: Diagnostic) -> str:
    """One `::error ...::` (or `::warning ...::`) line for a diagnostic."""
    command = "error" if diagnostic.severity == "error" else "warning"
    properties: list[tuple[str, str]] = []
    if diagnostic.file:
        properties.append(("file", diagnostic.file))
    if diagnostic.line is not None:
        properties.append(("line", str(diagnostic.line)))
        if diagnostic.column is not None:
            properties.append(("col", str(diagnostic.column)))
    properties.append(("title", diagnostic.code))
    message = diagnostic.message
    if diagnostic.pointer:
        message = f"at {diagnostic.pointer}: {message}"
    rendered = ",".join(f"{name}={escape_property(value)}" for name, value in properties)
    return f"::{command} {rendered}::{escape_data(message)}"


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """One annotation per line, in the order given (no trailing newline)."""
    return "\n".join(github_annotation(d) for d in diagnostics)


def _artifact_location(file: str) -> dict:
    path = PurePosixPath(file)
    if path.is_absolute():
        return {"uri": "file://" + quote(path.as_posix())}
    return {"uri": quote(path.as_posix()), "uriBaseId": SOURCE_ROOT}


def _rule(code: str, severity: str) -> dict:
    return {
        "id": code,
        "name": rule_name(code),
        "shortDescription": {"text": describe(code)},
        "defaultConfiguration": {"level": "error" if severity == "error" else "warning"},
    }


def _result(diagnostic: Diagnostic, rule_index: int) -> dict:
    text = diagnostic.message
    if diagnostic.pointer:
        text = f"{diagnostic.pointer}: {text}"
    location: dict = {"physicalLocation": {"artifactLocation": _artifact_location(diagnostic.file)}}
    if diagnostic.line is not None:
        region = {"startLine": diagnostic.line}
        if diagnostic.column is not None:
            region["startColumn"] = diagnostic.column
        location["physicalLocation"]["region"] = region
    if diagnostic.pointer:
        last = diagnostic.pointer.rsplit("/", 1)[1]
        location["logicalLocations"] = [
            {
                "fullyQualifiedName": diagnostic.pointer,
                "kind": "element" if last.isdigit() else "property",
            }
        ]
    return {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": "error" if diagnostic.severity == "error" else "warning",
        "message": {"text": text},
        "locations": [location],
    }


def sarif_log(
    diagnostics: Iterable[Diagnostic], *, version: str, working_directory: str | None = None
) -> dict:
    """The SARIF 2.1.0 log as plain data: one run, a rule per code used, a result each.

    `working_directory` (an absolute path) anchors the relative file URIs (%SRCROOT%).
    """
    items = list(diagnostics)
    rules: list[dict] = []
    index: dict[str, int] = {}
    for diagnostic in items:
        if diagnostic.code not in index:
            index[diagnostic.code] = len(rules)
            rules.append(_rule(diagnostic.code, diagnostic.severity))
    run: dict = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "fullName": "ib-reconciler desired-state validation",
                "version": version,
                "rules": rules,
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index[d.code]) for d in items],
    }
    if working_directory is not None:
        root = PurePosixPath(working_directory).as_posix().rstrip("/") + "/"
        run["originalUriBaseIds"] = {SOURCE_ROOT: {"uri": "file://" + quote(root)}}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(
    diagnostics: Iterable[Diagnostic], *, version: str, working_directory: str | None = None
) -> str:
    return json.dumps(
        sarif_log(diagnostics, version=version, working_directory=working_directory), indent=2
    )
