"""Desired state: the YAML operators commit, validated into a frozen `DesiredState`.

Public entry points: `load_desired_state(directory)` (raises `DiagnosticsError` with every
problem), `validate_directory(directory)` (state or None, plus diagnostics including
warnings) and `snapshot_of(portfolio, policy)` (plain data for deepdiff). The lockfile API
lives in `reconciler.desired.lockfile`. This package must stay import-light: it never
imports the IB client library, and `jsonschema`/`apscheduler` only when validation runs.
The entry points are imported on first use, so that a light submodule (`units`, read by
`apply` for its flags before it connects) does not pull in the loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.util.lazy import lazy_attributes

if TYPE_CHECKING:
    from reconciler.desired.loader import load_desired_state, validate_directory
    from reconciler.desired.snapshot import snapshot_of

__all__ = ["load_desired_state", "snapshot_of", "validate_directory"]

_ENTRY_POINTS = {
    "load_desired_state": "reconciler.desired.loader",
    "validate_directory": "reconciler.desired.loader",
    "snapshot_of": "reconciler.desired.snapshot",
}


__getattr__ = lazy_attributes(__name__, _ENTRY_POINTS, globals())
