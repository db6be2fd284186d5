"""Counters of this process's gateway sessions, for the metrics the app publishes.

Responsible for counting what every session did at the boundary (connections tried and
failed, messages sent, waits of the session's pacer) and for remembering
whether the last connection succeeded and whether the gateway's link to IBKR was up when the
last session ended. One process-wide `STATS`, like the Prometheus counters it feeds; the app
reads it with `snapshot()` after each cycle. Must not decide anything or talk to the gateway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GatewayCounts:
    """What the sessions of this process did so far (monotonic counters) and last saw."""

    connects: int = 0
    connect_failures: int = 0
    messages_sent: int = 0
    pacing_waits: int = 0
    last_connect_ok: bool | None = None  # None: no connection attempted yet
    last_link_ok: bool | None = None  # the gateway's link to IBKR when the last session ended


class GatewayStats:
    """Thread-safe counters; sessions of the daemon's cycles may overlap (one per schedule)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = GatewayCounts()

    def _update(self, **changes: Any) -> None:
        with self._lock:
            values = {**self._counts.__dict__}
            for name, value in changes.items():
                values[name] = values[name] + value if isinstance(value, _Add) else value
            self._counts = GatewayCounts(**values)

    def connected(self) -> None:
        """A session opened."""
        self._update(connects=_Add(1), last_connect_ok=True)

    def connect_failed(self) -> None:
        self._update(connects=_Add(1), connect_failures=_Add(1), last_connect_ok=False)

    def closing(self, *, messages_sent: int, pacing_waits: int, link_ok: bool) -> None:
        """A session is about to close: add what its pacer sent and how often it held a
        message back (the pacer counts both; the client library's throttle is off)."""
        self._update(
            messages_sent=_Add(messages_sent), pacing_waits=_Add(pacing_waits), last_link_ok=link_ok
        )

    def snapshot(self) -> GatewayCounts:
        with self._lock:
            return self._counts


class _Add(int):
    """An increment, as opposed to a value to set."""


STATS = GatewayStats()
