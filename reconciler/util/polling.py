"""Waiting for a condition another process or the gateway will make true, with a deadline.

Used where there is no event to await (another process's commit, the gateway's list of open
orders). Must not be used to wait for something this process could be notified of.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_INTERVAL_SECONDS = 0.1


def poll_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `probe` until it returns something truthy or `timeout` seconds pass; return the
    last value either way (falsy means the deadline passed). `probe` runs at least once."""
    deadline = monotonic() + timeout
    while True:
        value = probe()
        if value or monotonic() >= deadline:
            return value
        sleep(min(interval, max(0.0, deadline - monotonic())))


async def poll_until_async(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """`poll_until` for an async probe (e.g. asking the gateway for its open orders)."""
    deadline = monotonic() + timeout
    while True:
        value = await probe()
        if value or monotonic() >= deadline:
            return value
        await asyncio.sleep(min(interval, max(0.0, deadline - monotonic())))
