"""The one way tests wait: poll a condition with a deadline, fail naming what was awaited.

Responsible for `wait_until` (from a test's own thread: another process's commit, a
simulator in a background thread) and `wait_until_async` (on the test's event loop, where a
sleep would block the simulator or client running on the same loop). Both are built on
`reconciler.util.polling`, so tests and product wait the same way. Must not be used to let
time pass (a sleep in disguise): the condition is the state the test needs next, and when
something can be awaited directly (an event, a message, a process exit), await that instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from reconciler.util.polling import poll_until, poll_until_async

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
DEFAULT_INTERVAL = 0.01

Abort = Callable[[], str | None]


class _Aborted:
    """Stops the polling at once (truthy) and says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def wait_until(
    condition: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "the condition",
    *,
    abort: Abort | None = None,
    interval: float = DEFAULT_INTERVAL,
) -> T:
    """Poll `condition()` until it returns something truthy and return that; fail with an
    AssertionError after `timeout` seconds, or at once when `abort()` returns a reason (e.g.
    a subprocess the condition depends on has exited)."""

    def probe() -> T | _Aborted:
        value = condition()
        if value:
            return value
        reason = abort() if abort is not None else None
        return _Aborted(reason) if reason else value

    return _verdict(poll_until(probe, timeout=timeout, interval=interval), timeout, what)


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "the condition",
    *,
    abort: Abort | None = None,
    interval: float = DEFAULT_INTERVAL,
) -> T:
    """`wait_until` on the running event loop: between polls the loop runs other tasks (the
    simulator, the client library). `condition` may be a coroutine function."""

    async def probe() -> T | _Aborted:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        reason = abort() if abort is not None else None
        return _Aborted(reason) if reason else value

    return _verdict(
        await poll_until_async(probe, timeout=timeout, interval=interval), timeout, what
    )


def _verdict(value, timeout: float, what: str):
    if isinstance(value, _Aborted):
        raise AssertionError(f"while waiting for {what}: {value.reason}")
    if not value:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
    return value
