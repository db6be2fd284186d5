"""Running a simulated gateway on its own event loop in a background thread.

Responsible for ``run_in_thread`` (start, hand back a handle once listening, stop with the
state flushed on exit) and ``ThreadedSim``, whose calls run on the simulator's loop so that
synchronous code (CLI commands, tests) can drive it safely. Must not add behaviour of its
own to the gateway (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator

from reconciler.sim.gateway.server import SimGateway


class ThreadedSim:
    """A SimGateway running on its own event loop in a background thread."""

    def __init__(
        self, gateway: SimGateway, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.gateway = gateway
        self._loop = loop
        self._thread = thread

    host = property(lambda self: self.gateway.host)
    port = property(lambda self: self.gateway.port)
    book = property(lambda self: self.gateway.book)
    broker = property(lambda self: self.gateway.book)  # the name used before ``book``
    faults = property(lambda self: self.gateway.faults)
    journal = property(lambda self: self.gateway.journal)
    clock = property(lambda self: self.gateway.clock)
    managed_accounts = property(lambda self: self.gateway.managed_accounts)

    def call(self, fn: Callable, *args, **kwargs):
        """Run fn on the simulator's loop and return its result (thread-safe)."""

        async def runner():
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(runner(), self._loop).result(10)

    def set_quote(self, symbol: str, **kwargs) -> None:
        self.call(self.gateway.set_quote, symbol, **kwargs)

    def quote(self, symbol: str, currency: str = ""):
        return self.call(self.gateway.quote, symbol, currency)


@contextlib.contextmanager
def run_in_thread(scenario=None, **kwargs) -> Iterator[ThreadedSim]:
    """Start a SimGateway in a background thread; stop it (state flushed) on exit."""
    ready = threading.Event()
    stop_requested: dict = {}
    box: dict = {}

    async def main() -> None:
        try:
            gateway = SimGateway(scenario, **kwargs)
            await gateway.start()
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            return
        box["gateway"] = gateway
        box["loop"] = asyncio.get_running_loop()
        stop_event = asyncio.Event()
        stop_requested["event"] = stop_event
        ready.set()
        try:
            await stop_event.wait()
        finally:
            await gateway.stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="reconcile-sim", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:
        thread.join()
        raise box["error"]
    handle = ThreadedSim(box["gateway"], box["loop"], thread)
    try:
        yield handle
    finally:
        box["loop"].call_soon_threadsafe(stop_requested["event"].set)
        thread.join(10)
