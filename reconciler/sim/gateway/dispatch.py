"""Request dispatch of the simulated gateway: handshake, startApi, pacing, request faults and
routing each API message to the handler of its request family.

Responsible for what happens to a request before a handler sees it: version negotiation,
the startApi reply (managedAccounts, nextValidId, farm notices; error 326 for a client id in
use), the pacing limit (error 100 and a disconnect), the ignoreRequests and
dropAfterMessages faults, the journal entry, and turning a handler's ``ProtocolError`` or
``BookError`` into an error message. Must not answer requests itself: that is
``handlers.*`` (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from reconciler.sim import messages as m
from reconciler.sim.book import BookError
from reconciler.sim.faults import CONNECTIVITY_LOST
from reconciler.sim.protocol import (
    ProtocolError,
    negotiate_version,
    parse_version_range,
    to_int,
)

if TYPE_CHECKING:
    from reconciler.sim.gateway.server import SimGateway
    from reconciler.sim.gateway.session import Handler, Session

log = logging.getLogger("reconciler.sim")
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


class Dispatcher:
    """Routes every message of every session; one per gateway."""

    def __init__(self, gateway: SimGateway, routes: dict[int, Handler]) -> None:
        self.gateway = gateway
        self.routes = routes

    def handle(self, session: Session, fields: list[str]) -> None:
        gateway = self.gateway
        now = gateway.stamp()
        if session.version == 0:
            gateway.journal.record("in", None, fields, now)
            self._handshake(session, fields)
            return
        gateway.journal.record("in", session.client_id, fields, now)
        try:
            msg_id = to_int(fields[0]) if fields else 0
        except ProtocolError as exc:
            session.error(-1, 320, f"Error reading request: message id: {exc}")
            return
        if not session.api_started:
            if msg_id == m.IN_START_API:
                try:
                    self._start_api(session, fields)
                except ProtocolError as exc:  # no usable client id: as IB Gateway, drop it
                    log.warning("client %s: startApi: %s; closing", session.peer, exc)
                    session.abort()
            return
        faults = gateway.faults
        limit = faults.pacing_limit
        if limit is not None and session.rate.add(time.monotonic()) > limit:
            session.error(
                -1,
                100,
                f"Max rate of messages per second has been exceeded:max="
                f"{limit} rec={limit + 1} (1)",
            )
            session.close()
            return
        handler = self.routes.get(msg_id)
        if msg_id in faults.ignore_requests:
            handler = None  # fault: this request is never answered
        elif handler is None:
            log.debug("client %s: message %s not simulated; ignored", session.client_id, msg_id)
        else:
            try:
                handler(session, fields)
            except ProtocolError as exc:
                session.error(-1, 320, f"Error reading request: {exc}")
            except IndexError:  # handlers read fields by position: a field is missing
                session.error(-1, 320, f"Error reading request: message {msg_id} is too short")
            except BookError as exc:
                session.error(-1, exc.code, exc.message)
        session.messages_seen += 1
        drop_after = faults.drop_after_messages
        if drop_after is not None and session.messages_seen >= drop_after:
            log.info(
                "fault: dropping client %s after %s messages",
                session.client_id,
                session.messages_seen,
            )
            session.flush()
            session.abort()

    def _handshake(self, session: Session, fields: list[str]) -> None:
        try:
            low, high, _options = parse_version_range(fields[0] if fields else "")
            session.version = negotiate_version(low, high)
        except ProtocolError as exc:
            log.warning("client %s: %s", session.peer, exc)
            session.abort()
            return
        stamp = self.gateway.clock.now().strftime("%Y%m%d %H:%M:%S UTC")
        session.send([str(session.version), stamp])

    def _start_api(self, session: Session, fields: list[str]) -> None:
        gateway = self.gateway
        client_id = to_int(fields[2]) if len(fields) > 2 else 0
        session.client_id = client_id
        if any(
            s is not session and s.client_id == client_id and s.api_started
            for s in gateway.sessions
        ):
            session.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            session.client_id = None
            session.close()
            return
        session.api_started = True
        session.send(m.managed_accounts(gateway.managed_accounts))
        session.send(m.next_valid_id(gateway.book.next_order_id(client_id)))
        for code, text in FARM_NOTICES:
            session.error(-1, code, text)
        if gateway.faults.link_down:
            # A client connecting while the gateway has no link to IBKR is told so at once.
            session.error(-1, 1100, CONNECTIVITY_LOST)
