"""Injected clocks: all time inside the reconciler is timezone-aware UTC.

Responsible for the `Clock` protocol and its two implementations (system time and a fixed,
manually advanced clock for tests). Must not read the time anywhere else: code that needs
"now" takes a clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move; for tests and replays."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = at.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

    def set(self, at: dt.datetime) -> None:
        self._now = at.astimezone(UTC)


def utc(value: dt.datetime) -> dt.datetime:
    """Return `value` in UTC; a naive datetime is refused rather than guessed."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: all times must carry a timezone")
    return value.astimezone(UTC)
