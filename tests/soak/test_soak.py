"""The randomised soak in the suite: a short run (30 s of cycles by default) of the engine in
`engine.py` at a fixed seed; `--soak-seed` and `--soak-minutes` run it longer or elsewhere.
A failure prints every violated invariant and the command that replays the seed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from soak.engine import Soak

pytestmark = pytest.mark.integration


def test_soak_when_faults_are_injected_at_random_then_every_invariant_holds(
    soak_seed, soak_minutes
):
    # A directory of its own, not pytest's tmp_path: other pytest sessions on the machine
    # prune old basetemps, which would pull the store from under a long soak.
    with tempfile.TemporaryDirectory(prefix=f"soak-{soak_seed}-") as tmp:
        result = Soak(soak_seed, soak_minutes * 60, Path(tmp)).run()
    replay = (f"python -m pytest tests/soak --soak-seed {soak_seed} "
              f"--soak-minutes {soak_minutes:g}")
    summary = result.summary(replay)
    print(summary)
    assert len(result.cycles) >= 2, summary
    assert sum(result.faults.values()) > 0, f"no fault was injected\n{summary}"
    assert not result.violations, summary
