"""Pausing Python's cyclic garbage collector around bulk construction of acyclic values.

Responsible for `collector_paused()`: a context manager that switches the cyclic collector
off for its block and back on afterwards (if it was on). Building 10^5 small values (a large
plan, a plan file read back) makes the collector rescan the whole growing heap again and
again although none of those values can form a cycle; that costs about a quarter of the time
of a 100-account plan. Reference counting still frees everything as usual; only cycles wait
for the next collection. Must not be held across I/O or awaits (the switch is process-wide).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
