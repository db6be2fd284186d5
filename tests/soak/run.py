"""Stand-alone runner of the randomised soak (the same engine as `pytest tests/soak`).

    python tests/soak/run.py --minutes 30 --seed 1234 [--workdir DIR] [--db-url URL] [--verbose]

Prints one line per cycle with --verbose, then the summary: cycles run, faults injected by
kind, exit codes, invariant violations and, when there are any, the command that replays the
seed. Exits 0 when no invariant was violated, 1 otherwise. Must not be imported by the suite
(it is the operator's entry point, not a test).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent, HERE.parents[1]):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from soak.engine import Soak  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Randomised soak of reconcile against the "
                                     "simulator, with invariants checked after every cycle.")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall time to run (5)")
    parser.add_argument("--seed", type=int, default=None, help="seed (random when omitted)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the run's files here (default: a temporary directory)")
    parser.add_argument("--db-url", default=None,
                        help="the store (an empty database, e.g. PostgreSQL; default: SQLite "
                        "in the work directory)")
    parser.add_argument("--verbose", action="store_true", help="one line per cycle")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)

    def log(line: str) -> None:
        if args.verbose or line.startswith("VIOLATION"):
            print(line, flush=True)

    # SIGTERM (also what `kill` sends to a background run) stops the soak like Ctrl-C: its
    # simulator is stopped and its temporary directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"soak: seed {seed}, {args.minutes:g} minute(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"soak-{seed}-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = Soak(seed, args.minutes * 60, workdir, log=log, db_url=args.db_url).run()
        replay = f"python tests/soak/run.py --seed {seed} --minutes {args.minutes:g} --verbose"
        print(result.summary(replay), flush=True)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
