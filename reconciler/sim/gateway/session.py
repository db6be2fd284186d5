"""One client connection of the simulated gateway.

Responsible for the socket side of a client: framing bytes into requests, buffering replies
so that everything produced while handling a batch leaves in one write, closing (queued
replies first) or aborting (queued replies dropped), and the per-client subscriptions that
handlers record on it (positions, account updates, market data). Must not decide how to
answer a request: every request goes to its ``SessionHost``, the gateway (see
ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from reconciler.sim import messages as m
from reconciler.sim.faults import RateWindow
from reconciler.sim.protocol import FrameReader, ProtocolError, encode_frame

log = logging.getLogger("reconciler.sim")
Handler = Callable[["Session", list[str]], None]  # answers one request of a session


class SessionHost(Protocol):
    """What a session needs from the gateway it belongs to."""

    def session_opened(self, session: Session) -> None: ...

    def session_closed(self, session: Session) -> None: ...

    def handle(self, session: Session, fields: list[str]) -> None: ...

    def batch_handled(self) -> None: ...

    def record_sent(self, client_id: int | None, fields: list[str]) -> None: ...

    def before_write(self) -> None: ...


@dataclass
class MarketSub:
    """A streaming market-data subscription and the prices last sent on it."""

    con_id: int
    delayed: bool
    last_sent: dict[int, float] = field(default_factory=dict)


class Session(asyncio.Protocol):
    """One client connection."""

    def __init__(self, host: SessionHost) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader()
        self.version = 0
        self.client_id: int | None = None
        self.api_started = False
        self.closed = False
        self._buffer: list[bytes] = []
        self._flush_scheduled = False
        self.positions_sub = False
        self.account_sub: str | None = None
        self.multi_subs: dict[int, list[str]] = {}
        self.market_subs: dict[int, MarketSub] = {}
        self.md_type = 1
        self.messages_seen = 0
        self.rate = RateWindow()
        self.sent_values: dict[tuple, str] = {}
        self.peer = ""

    # ----- transport --------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.host.session_opened(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.host.session_closed(self)

    def data_received(self, data: bytes) -> None:
        try:
            batches = self.reader.feed(data)
        except ProtocolError as exc:
            log.warning("client %s: %s; closing", self.peer, exc)
            self.abort()
            return
        for fields in batches:
            if self.closed:
                return
            self.host.handle(self, fields)
        self.host.batch_handled()

    def send(self, fields: list[str]) -> None:
        if self.closed or self.transport is None:
            return
        self.host.record_sent(self.client_id, fields)
        self._buffer.append(encode_frame(fields))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        # account values changed by fills ride in the same write as the fills themselves
        self.host.before_write()
        self._flush_scheduled = False
        if self._buffer and not self.closed and self.transport is not None:
            self.transport.write(b"".join(self._buffer))
        self._buffer.clear()

    def close(self) -> None:
        """Flush what is queued, then close (e.g. after error 326 or 100)."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        self.host.session_closed(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection without sending what is queued (fault injection)."""
        if self.closed:
            return
        self._buffer.clear()
        self.closed = True
        self.host.session_closed(self)
        if self.transport is not None:
            self.transport.abort()

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(m.error(self.version, req_id, code, message))
