"""The schemas as a user's repository gets them: the combined schema, copies, modelines.

Responsible for building `desired-state.schema.json` (any kind, selected by `kind`) from the
per-kind schemas, for writing every schema into a folder of the user's repository (`reconcile
schema --write DIR`), and for the `# yaml-language-server: $schema=...` modeline that points
a YAML file at it. Each written file is self-contained (references stay inside the file), so
a modeline pointing at a local copy works offline and the `$id`s need not resolve. Must not
validate desired state or print; `python -m reconciler.desired.schema_bundle` regenerates the
combined schema in `schemas/` after a per-kind schema changed.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.desired.schema import SCHEMA_FILES, schema_directory

COMBINED_FILE = "desired-state.schema.json"
ID_BASE = "https://ib-reconciler.invalid/schemas/v1/"
MODELINE_PREFIX = "# yaml-language-server: $schema="
_DOCUMENT_FIELDS = ("apiVersion", "kind")


def build_combined(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One schema for a document of any kind: `kind` selects the per-kind schema (if/then).

    Each per-kind schema is embedded under `$defs/<Kind>`; their shared `$defs` (metadata,
    name, ...) are merged and must be identical wherever they appear.
    """
    definitions: dict[str, Any] = {}
    branches = []
    for kind, schema in schemas.items():
        body = copy.deepcopy(schema)
        for keyword in ("$schema", "$id"):
            body.pop(keyword, None)
        for name, definition in body.pop("$defs", {}).items():
            if name in definitions and definitions[name] != definition:
                raise ValueError(f"$defs/{name} differs between schemas; make them identical")
            definitions[name] = definition
        if kind in definitions:
            raise ValueError(f"$defs/{kind} is both a kind and a definition")
        definitions[kind] = body
        branches.append(
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{kind}"},
            }
        )
    kinds = list(schemas)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ID_BASE + COMBINED_FILE,
        "title": "ib-reconciler desired state",
        "description": (
            "Any desired-state document (" + ", ".join(kinds) + "); `kind` selects which "
            "fields apply. Point a YAML file at this schema when it holds several kinds."
        ),
        "type": "object",
        "required": list(_DOCUMENT_FIELDS),
        "properties": {
            "apiVersion": {
                "description": "Version of the desired-state language. Always reconciler/v1.",
                "const": "reconciler/v1",
            },
            "kind": {
                "description": "Document kind: " + ", ".join(kinds) + ".",
                "enum": kinds,
            },
        },
        "allOf": branches,
        "$defs": definitions,
    }


def load_kind_schemas(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    directory = directory or schema_directory()
    return {
        kind: json.loads((directory / name).read_text(encoding="utf-8"))
        for kind, name in SCHEMA_FILES.items()
    }


def render(schema: dict[str, Any]) -> str:
    """The file text a schema is stored as (stable, so regeneration shows no diff)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_files(directory: Path | None = None) -> list[Path]:
    """Every schema the package ships: per kind, combined, and the simulator's scenario."""
    directory = directory or schema_directory()
    return sorted(directory.glob("*.schema.json"))


def write_schemas(destination: Path) -> list[tuple[str, str]]:
    """Copy every schema into `destination` (created if needed).

    Returns (file name, "created" | "updated" | "unchanged") per file.
    """
    destination.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for source in schema_files():
        text = source.read_text(encoding="utf-8")
        target = destination / source.name
        if not target.exists():
            outcome = "created"
        elif target.read_text(encoding="utf-8") != text:
            outcome = "updated"
        else:
            outcome = "unchanged"
        if outcome != "unchanged":
            target.write_text(text, encoding="utf-8")
        outcomes.append((source.name, outcome))
    return outcomes


def modeline(yaml_directory: Path, schema_file: Path) -> str:
    """The first line of a YAML file in `yaml_directory` that points editors at `schema_file`."""
    relative = os.path.relpath(os.path.abspath(schema_file), os.path.abspath(yaml_directory))
    return MODELINE_PREFIX + Path(relative).as_posix()


def yaml_folders(desired_directory: Path) -> list[Path]:
    """`desired_directory` and each folder below it that holds YAML files (hidden ones skipped)."""
    folders = {desired_directory}
    if desired_directory.is_dir():
        for directory, subdirectories, filenames in os.walk(desired_directory):
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            if any(name.endswith((".yaml", ".yml")) for name in filenames):
                folders.add(Path(directory))
    return sorted(folders)


def modelines(desired_directory: Path, schema_file: Path) -> dict[str, list[Path]]:
    """Each distinct modeline for the YAML folders under `desired_directory`, with its folders
    (files at the same depth share one line)."""
    lines: dict[str, list[Path]] = {}
    for folder in yaml_folders(desired_directory):
        lines.setdefault(modeline(folder, schema_file), []).append(folder)
    return lines


def regenerate(directory: Path) -> bool:
    """Rebuild the combined schema in `directory` from its per-kind schemas; True if changed."""
    combined = directory / COMBINED_FILE
    text = render(build_combined(load_kind_schemas(directory)))
    if combined.exists() and combined.read_text(encoding="utf-8") == text:
        return False
    combined.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":  # maintainers: after editing a schema in schemas/
    # reconciler/schemas is a link to schemas/, so one folder holds what the package ships.
    directory = Path(__file__).resolve().parents[2] / "schemas"
    if regenerate(directory):
        sys.stderr.write(f"rewrote {directory / COMBINED_FILE}\n")
