"""Counters of this process's gateway sessions, for the metrics the app publishes.

Responsible for counting what every session did at the boundary (connections tried and
failed, messages sent, waits of the client library's request throttle) and for remembering
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

    def connected(self, ib: Any) -> None:
        """A session opened: count it and the client library's throttle waits from now on."""
        self._update(connects=_Add(1), last_connect_ok=True)
        throttle = getattr(getattr(ib, "client", None), "throttleStart", None)
        if throttle is not None:
            throttle += self._pacing_wait

    def connect_failed(self) -> None:
        self._update(connects=_Add(1), connect_failures=_Add(1), last_connect_ok=False)

    def closing(self, ib: Any, *, link_ok: bool) -> None:
        """A session is about to close: add the messages it sent (the client counts them)."""
        client = getattr(ib, "client", None)
        conn = getattr(client, "conn", None)
        sent = int(getattr(conn, "numMsgSent", 0) or 0)
        throttle = getattr(client, "throttleStart", None)
        if throttle is not None:
            throttle -= self._pacing_wait
        self._update(messages_sent=_Add(sent), last_link_ok=link_ok)

    def pacing_wait(self) -> None:
        """One wait of a request pacer (the client library's throttle, or ours)."""
        self._update(pacing_waits=_Add(1))

    def _pacing_wait(self, *_: Any) -> None:
        self.pacing_wait()

    def snapshot(self) -> GatewayCounts:
        with self._lock:
            return self._counts


class _Add(int):
    """An increment, as opposed to a value to set."""


STATS = GatewayStats()
