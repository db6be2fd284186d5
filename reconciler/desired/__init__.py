"""Desired state: the YAML operators commit, validated into a frozen `DesiredState`.

Public entry points: `load_desired_state(directory)` (raises `DiagnosticsError` with every
problem), `validate_directory(directory)` (state or None, plus diagnostics including
warnings) and `snapshot_of(portfolio, policy)` (plain data for deepdiff). The lockfile API
lives in `reconciler.desired.lockfile`. This package must stay import-light: it never
imports the IB client library, and `jsonschema`/`apscheduler` only when validation runs.
"""

from reconciler.desired.loader import load_desired_state, validate_directory
from reconciler.desired.snapshot import snapshot_of

__all__ = ["load_desired_state", "snapshot_of", "validate_directory"]
