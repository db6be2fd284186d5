"""The process-wide request to stop sending orders (`SHUTDOWN`), set on SIGTERM.

Responsible for holding the request and its grace: the executor reads it before every send and
while it follows orders already sent (`reconciler.apply.executor`); the daemon and the one-shot
commands set it from their SIGTERM handler, installed before anything else is loaded (so this
module imports nothing of the reconciler's). Must not send, cancel or record anything.
"""

from __future__ import annotations

import threading
import time


class Shutdown:
    """A process-wide request to stop sending (the daemon sets it on SIGTERM).

    Thread-safe: the signal arrives on the main thread while a cycle runs on a worker.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self._deadline = 0.0

    def request(self, reason: str, grace_seconds: float) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._deadline = time.monotonic() + max(0.0, grace_seconds)
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def grace_left(self) -> float:
        """Seconds still allowed for in-flight acknowledgements (0 when not requested)."""
        return max(0.0, self._deadline - time.monotonic()) if self.requested else 0.0

    def clear(self) -> None:
        self._event.clear()
        self.reason = ""


SHUTDOWN = Shutdown()
