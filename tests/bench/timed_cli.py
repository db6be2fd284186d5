"""`python -m reconciler ...` with the time spent in the store measured (for run_all.py).

Wraps every public method of `reconciler.store.Store` with a timer (outermost call only, made
on the main thread, which runs the event loop: the time the loop was held by the store) and
adds the background writer's CPU time (and, for information, its wall time including fsync
waits) when the store closes; at exit writes {"loop_store_s", "writer_cpu_s",
"writer_busy_s", "store_s" = loop + writer CPU} as JSON to the file named by
BENCH_STORE_TIMES. INTENT commits awaited on a worker thread overlap the pacing wait and are
not counted on the loop. The store is imported before the
CLI starts, as the CLI imports it before connecting anyway. Benchmark code: no effect on the
reconciler itself.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import runpy
import sys
import threading
import time

from reconciler.store import api

TIMES = {"loop_store_s": 0.0, "writer_cpu_s": 0.0, "writer_busy_s": 0.0}
_depth = threading.local()
MAIN = threading.main_thread()


def _timed(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        outer = not getattr(_depth, "n", 0) and threading.current_thread() is MAIN
        _depth.n = getattr(_depth, "n", 0) + 1
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _depth.n -= 1
            if outer:
                TIMES["loop_store_s"] += time.perf_counter() - started

    return wrapper


def _install() -> None:
    original_close = api.Store.close

    def close(self):
        if self.writer is not None:
            self.writer.flush()
            TIMES["writer_busy_s"] += self.writer.busy_seconds
            TIMES["writer_cpu_s"] += self.writer.cpu_seconds
        return original_close(self)

    for name, value in list(vars(api.Store).items()):
        if not name.startswith("_") and callable(value) and name != "close":
            setattr(api.Store, name, _timed(value))
    api.Store.close = _timed(close)


def _write() -> None:
    path = os.environ.get("BENCH_STORE_TIMES")
    if path:
        TIMES["store_s"] = TIMES["loop_store_s"] + TIMES["writer_cpu_s"]
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(TIMES, handle)


if __name__ == "__main__":
    _install()
    atexit.register(_write)
    sys.argv = ["reconcile", *sys.argv[1:]]
    runpy.run_module("reconciler", run_name="__main__", alter_sys=True)
