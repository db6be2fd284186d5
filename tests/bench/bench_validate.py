"""Benchmark: `reconcile validate` on the example desired state against `python -c pass`.

Runs each as a fresh process (what CI and a pre-commit hook pay), best of 5, and the
validate / bare-interpreter ratio measured in the same run, so a loaded machine shows in
both. Never fails on speed. `measure()` returns the figures as rows for run_all.py.

Usage: python tests/bench/bench_validate.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "reconciler" / "example"


def _best(command: list[str], repeat: int = 5) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def measure() -> list[dict]:
    bare = _best([sys.executable, "-c", "pass"])
    validate = _best([sys.executable, "-m", "reconciler", "validate", str(EXAMPLE)])
    return [
        {"figure": "reconcile validate (example)", "value": f"{validate:.3f} s",
         "target": "< 0.2 s", "ok": validate < 0.2},
        {"figure": "validate / python -c pass", "value": f"{validate / bare:.1f}x "
         f"({bare:.3f} s)", "target": "(ratio)", "ok": None},
    ]


def main() -> None:
    for row in measure():
        print(f"  {row['figure']:<32} {row['value']:<20} target {row['target']}")


if __name__ == "__main__":
    main()
