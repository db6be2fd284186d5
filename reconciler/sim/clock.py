"""The simulator's clock: real time by default, settable and acceleratable for tests.

Responsible for "now" inside the simulator (quote times, execution times, trading hours).
Must not sleep or schedule anything: latency is real wall time, handled by the gateway.
"""

from __future__ import annotations

import datetime as dt
import time

UTC = dt.UTC


class SimClock:
    """now() = anchor + (monotonic elapsed since anchor) x speed; set() and advance() jump."""

    def __init__(self, start: dt.datetime | None = None, speed: float = 1.0) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        self._anchor_time = (start or dt.datetime.now(UTC)).astimezone(UTC)
        self._anchor_mono = time.monotonic()
        self._speed = float(speed)

    def now(self) -> dt.datetime:
        elapsed = (time.monotonic() - self._anchor_mono) * self._speed
        return self._anchor_time + dt.timedelta(seconds=elapsed)

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Change how fast simulated time runs (0 freezes it) without a jump."""
        self._rebase(self.now())
        self._speed = float(speed)

    def set(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("SimClock.set needs a timezone-aware datetime")
        self._rebase(at.astimezone(UTC))

    def advance(self, seconds: float) -> None:
        self._rebase(self.now() + dt.timedelta(seconds=seconds))

    def _rebase(self, at: dt.datetime) -> None:
        self._anchor_time = at
        self._anchor_mono = time.monotonic()
