"""Hypothesis settings of the fuzz tests: bounded in CI, longer on demand.

Responsible for the two profiles and the found-examples database. `fuzz-ci` (default) runs
each fuzz test with a bounded example count so the whole folder stays well under 30 s;
`HYPOTHESIS_PROFILE=fuzz-long` runs many more. Every example that ever failed is kept in
`.hypothesis/fuzz/` (git-ignored) and replayed first on the next run on this machine; a
failure worth keeping forever becomes an `@example` next to its test. Each example has a
deadline, so an input that makes a parser hang or go super-linear fails the test instead of
stalling the suite; it is generous (wall time on a loaded CI machine is several times the
CPU time: the slowest example, 5000 nested brackets, takes about 1 s of CPU).
Must not change the settings of other tests (nothing here calls `settings.load_profile`).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

DATABASE = DirectoryBasedExampleDatabase(
    str(Path(__file__).resolve().parents[2] / ".hypothesis" / "fuzz")
)
_COMMON = dict(
    database=DATABASE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
PROFILES = {
    "fuzz-ci": settings(max_examples=60, deadline=dt.timedelta(seconds=15), **_COMMON),
    "fuzz-long": settings(max_examples=3000, deadline=dt.timedelta(seconds=30), **_COMMON),
}


def fuzz_settings(scale: float = 1.0) -> settings:
    """The active profile (HYPOTHESIS_PROFILE, default fuzz-ci); `scale` < 1 for tests whose
    examples are expensive (a subprocess, a socket)."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz-ci")
    chosen = PROFILES.get(name, PROFILES["fuzz-ci"])
    return settings(chosen, max_examples=max(5, int(chosen.max_examples * scale)))
