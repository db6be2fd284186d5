"""Fixtures for end-to-end tests of the `reconcile` command against an in-process simulator.

The simulator runs in a background thread of the test process (so tests can move quotes and
read its journal); the CLI runs as a real subprocess reaching it over TCP.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from e2e import EXAMPLE, Cli, base_env

from reconciler.sim import run_in_thread


@pytest.fixture
def desired_dir(tmp_path) -> Path:
    """A private copy of the example desired state (not in git: paper allows that)."""
    target = tmp_path / "desired_state"
    shutil.copytree(EXAMPLE, target)
    return target


@pytest.fixture
def sim():
    with run_in_thread() as gateway:
        yield gateway


@pytest.fixture
def cli(tmp_path, sim, desired_dir) -> Cli:
    return Cli(tmp_path, f"{sim.host}:{sim.port}", base_env(tmp_path))
