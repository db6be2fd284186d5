"""`python -m reconciler ...` with the time spent in the store measured (for run_all.py).

Wraps every public method of `reconciler.store.Store` with a timer (outermost call only, made
on the main thread, which runs the event loop: the time the loop was held by the store) and
adds the background writer's CPU time (and, for information, its wall time including fsync
waits) when the store closes; at exit writes {"loop_store_s", "writer_cpu_s",
"writer_busy_s", "store_s" = loop + writer CPU} as JSON to the file named by
BENCH_STORE_TIMES. INTENT commits awaited on a worker thread overlap the pacing wait and are
not counted on the loop. The timers are installed when the CLI first imports the store
(an import hook), so that the start-up to the first message is the CLI's own. Benchmark
code: no effect on the reconciler itself.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import json
import os
import runpy
import sys
import threading
import time

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


STORES: list = []


def _count_writer(store) -> None:
    writer = store.writer
    if writer is not None:
        # The store's own exit hook (registered after ours, so run first) may have closed
        # and drained the writer already: its counters are final then.
        if not writer._closing:
            writer.flush()
        TIMES["writer_busy_s"] += writer.busy_seconds
        TIMES["writer_cpu_s"] += writer.cpu_seconds


class _WhenStoreImported(importlib.abc.MetaPathFinder):
    """Runs `_install` right after `reconciler.store.api` is executed, whichever thread
    imports it first."""

    def find_spec(self, name, path, target=None):
        if name != "reconciler.store.api":
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            _install(module)

        spec.loader.exec_module = exec_module
        return spec


def _install(api) -> None:
    original_close = api.Store.close
    original_init = api.Store.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        STORES.append(self)

    def close(self):
        _count_writer(self)
        STORES.remove(self)
        return original_close(self)

    api.Store.__init__ = init

    for name, value in list(vars(api.Store).items()):
        if not name.startswith("_") and callable(value) and name != "close":
            setattr(api.Store, name, _timed(value))
    api.Store.close = _timed(close)


def _write() -> None:
    for store in list(STORES):  # the CLI exits without closing its store
        _count_writer(store)
    path = os.environ.get("BENCH_STORE_TIMES")
    if path:
        TIMES["store_s"] = TIMES["loop_store_s"] + TIMES["writer_cpu_s"]
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(TIMES, handle)


if __name__ == "__main__":
    sys.meta_path.insert(0, _WhenStoreImported())
    atexit.register(_write)
    sys.argv = ["reconcile", *sys.argv[1:]]
    runpy.run_module("reconciler", run_name="__main__", alter_sys=True)
