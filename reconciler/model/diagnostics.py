"""Diagnostics: problems collected during a run and rendered once (Terraform style).

Responsible for the `Diagnostic` value (file, line, column, JSON pointer, stable code,
message, severity), a `Diagnostics` collector, the `DiagnosticsError` that carries them out
of a failed step, and their text/JSON rendering. Must not print: the CLI decides where the
rendered text goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem a user can fix. `code` is stable (E_... for errors, W_... for warnings)."""

    file: str
    line: int | None
    column: int | None
    pointer: str
    code: str
    message: str
    severity: str = "error"

    def render(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field_part = f" at {self.pointer}" if self.pointer else ""
        return f"{where}: {self.severity} {self.code}{field_part}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Diagnostics:
    """A collector: checks append, the caller decides whether anything was fatal."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        code: str,
        message: str,
        *,
        file: str = "",
        line: int | None = None,
        column: int | None = None,
        pointer: str = "",
        severity: str = "error",
    ) -> None:
        self.items.append(Diagnostic(file, line, column, pointer, code, message, severity))

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.file, d.line or 0, d.column or 0, d.code))


class DiagnosticsError(Exception):
    """A step failed for reasons the user can fix; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0].render() if self.diagnostics else "no diagnostics"
        super().__init__(f"{len(self.diagnostics)} problem(s); first: {first}")


def render_text(diagnostics: Iterable[Diagnostic]) -> str:
    items = list(diagnostics)
    lines = [d.render() for d in items]
    errors = sum(1 for d in items if d.severity == "error")
    warnings = len(items) - errors
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)


def render_json(
    diagnostics: Iterable[Diagnostic], *, valid: bool, extra: Mapping[str, Any] | None = None
) -> str:
    """`{"valid": ..., "diagnostics": [...]}` plus any `extra` top-level fields (a summary)."""
    items = list(diagnostics)
    document: dict[str, Any] = {**(extra or {}), "valid": valid}
    document["diagnostics"] = [d.to_dict() for d in items]
    return json.dumps(document, indent=2, sort_keys=True)
