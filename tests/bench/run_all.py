"""Run every benchmark under tests/bench/ and print their figures.

Benchmarks are scripts, not tests: they print wall times and ratios and never fail on speed.
Usage: python tests/bench/run_all.py [NAME ...]   (NAME: bench_sim, bench_planner, ...)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not names or p.stem in names)
    failed = 0
    for script in scripts:
        print(f"=== {script.stem} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"--- {script.stem}: exit {code}, {time.perf_counter() - started:.1f}s\n", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
