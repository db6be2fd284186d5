"""The `reconcile` CLI of apply_helpers with a chosen IB client library and the simulator as
the configured gateway (for commands without --gateway, e.g. `halt --cancel-open`), and an
IB client that stays connected in a background thread (another program on the gateway).

Must not sleep as synchronisation: callers poll with deadlines (tests/waiting.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from apply_helpers import Cli


@dataclass
class LibraryCli(Cli):
    """The CLI with a chosen IB client library; every command reaches the simulator."""

    library: str = "ib_async"

    def env(self, client_id: int | None = None) -> dict[str, str]:
        host, _, port = self.gateway.rpartition(":")
        return {
            **super().env(client_id),
            "RECONCILER_IB_LIBRARY": self.library,
            "IB_GATEWAY_HOST": host,
            "IB_GATEWAY_PORT": port,
        }


class BackgroundClient:
    """An ib_async client on its own event loop in a thread (e.g. another program, or an old
    reconciler that does not watch the halt): `call(coro_fn)` runs on that loop."""

    def __init__(self, ib, loop: asyncio.AbstractEventLoop) -> None:
        self.ib = ib
        self._loop = loop

    def call(self, fn, timeout: float = 20.0):
        async def runner():
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(runner(), self._loop).result(timeout)


@contextlib.contextmanager
def background_client(host: str, port: int, client_id: int) -> Iterator[BackgroundClient]:
    import ib_async

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"client-{client_id}", daemon=True)
    thread.start()
    ib = ib_async.IB()
    client = BackgroundClient(ib, loop)
    try:
        client.call(lambda: ib.connectAsync(host, port, clientId=client_id, timeout=10))
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.call(ib.disconnect)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
