"""The connection to the gateway and the low-level requests made over it.

Responsible for opening the client connection (read-only or not, explicit timeouts,
`raiseSyncErrors` where the library has it) and mapping each way it can fail to a clear
`BrokerError`; and for `GatewaySession`, which sends individual requests with a timeout each,
captures the gateway's errors per request id, bounds concurrency so the gateway's limits are
never exceeded (market-data lines, contract-detail requests; the client library itself
throttles every message to 45/s), and tracks connectivity (1100/1101/1102, socket loss).
Must not interpret the answers beyond their shape (that is `convert`, `contracts`,
`snapshot`) and must not be imported by code that never talks to the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from reconciler.broker import library
from reconciler.broker.errors import (
    BrokerError,
    ClientIdInUse,
    ConnectionLost,
    GatewayUnreachable,
    NotAnApiEndpoint,
    NotConnected,
    RequestTimeout,
    StartupSyncIncomplete,
)
from reconciler.broker.pacing import DEFAULT_MESSAGE_RATE, PacedSender, SlidingWindowPacer

T = TypeVar("T")
log = logging.getLogger(__name__)

# The gateway allows 100 market-data lines by default; keep headroom for other tools.
MAX_MARKET_DATA_LINES = 90
# Contract details are cheap for the gateway but each is a message: bound the burst so a
# large lock/plan never queues hundreds of requests ahead of everything else.
MAX_CONTRACT_DETAIL_REQUESTS = 40

# The gateway disconnects a client that sends more than 50 messages in any second (error 100).
# The client library's own throttle lets MaxRequests messages out back to back, then waits
# for the window to pass: bursts that a gateway reading one burst late counts together with
# the next. `reconciler.broker.pacing` replaces it with a sliding window of the configured
# budget (RECONCILER_MAX_MSG_RATE, default 45/s) that also caps each eighth of a second.

CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102
NO_MARKET_DATA_PERMISSION = 354
DELAYED_DATA_NOTICE = 10167


@dataclass
class Connectivity:
    """What the gateway told us about its link to IBKR during this session."""

    lost: bool = False  # 1100 received and not yet restored
    lost_count: int = 0
    data_lost_count: int = 0  # 1101: restored, but subscriptions were lost
    socket_closed: bool = False
    recent_errors: list[tuple[int, int, str]] = field(default_factory=list)

    def note(self, code: int) -> None:
        """Follow the gateway's link to IBKR from one error code."""
        if code == CONNECTIVITY_LOST:
            self.lost = True
            self.lost_count += 1
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            self.lost = False
            if code == RESTORED_DATA_LOST:
                self.data_lost_count += 1

    def mark(self) -> tuple[int, int]:
        return self.lost_count, self.data_lost_count

    def problems_since(self, mark: tuple[int, int]) -> list[str]:
        problems = []
        if self.socket_closed:
            problems.append("the connection to the gateway closed")
        if self.lost or self.lost_count > mark[0]:
            problems.append("the gateway lost connectivity to IBKR during the request (1100)")
        if self.data_lost_count > mark[1]:
            problems.append("connectivity was restored with data lost (1101)")
        return problems


def _tell_when_first_sent(client: Any, told: Callable[[], None]) -> None:
    """Call `told` right after the client's socket writes its first message (the API
    handshake, written straight to the socket by both libraries' `connectAsync`)."""
    conn = getattr(client, "conn", None)
    if conn is None or not callable(getattr(conn, "sendMsg", None)):
        told()  # a library that does not say when: at once, as if sent
        return
    write = conn.sendMsg

    def write_then_tell(msg: Any) -> None:
        write(msg)
        del conn.sendMsg  # the library's own method again, for every later message
        told()

    conn.sendMsg = write_then_tell


async def open_ib(
    lib: ModuleType,
    *,
    host: str,
    port: int,
    client_id: int,
    timeout: float,
    readonly: bool,
    connectivity: Connectivity | None = None,
    message_rate: float = DEFAULT_MESSAGE_RATE,
    handshake_sent: Callable[[], None] | None = None,
) -> tuple[Any, float, PacedSender]:
    """Connect a new client; returns (IB, seconds it took). Raises a BrokerError.

    A gateway without its link to IBKR says 1100 during the handshake, before any session
    listens: `connectivity` hears it so the session starts out knowing. `handshake_sent` is
    called once the socket is open and the handshake's first bytes were written (a caller
    that has other work to do starts it then, not before: it would delay them).
    """
    ib = lib.IB()
    if handshake_sent is not None:
        _tell_when_first_sent(ib.client, handshake_sent)
    ib.TimezoneTWS = library.gateway_timezone()
    loop = asyncio.get_running_loop()
    sender = PacedSender(
        ib.client, SlidingWindowPacer(message_rate), now=loop.time, call_later=loop.call_later
    )
    # Any data from the gateway is its sign of life for the sender's stall guard.
    ib.client.conn.hasData += sender.received
    clash = asyncio.Event()
    seen: list[tuple[int, str]] = []
    api_started = False
    closed_early: list[str] = []

    def on_error(req_id: int, code: int, message: str, *_: Any) -> None:
        seen.append((code, message))
        if connectivity is not None:
            connectivity.note(code)
        if code == CLIENT_ID_IN_USE:
            clash.set()

    def on_api_start() -> None:
        nonlocal api_started
        api_started = True

    def on_api_error(message: str) -> None:
        if "Peer closed connection" in str(message) and not api_started:
            closed_early.append(str(message))
            clash.set()

    ib.errorEvent += on_error
    ib.client.apiStart += on_api_start
    ib.client.apiError += on_api_error
    kwargs: dict[str, Any] = dict(
        host=host, port=port, clientId=client_id, timeout=timeout, readonly=readonly
    )
    if lib.__name__ == "ib_async":
        kwargs["raiseSyncErrors"] = True
        # Only positions at start-up (and the account stream, which the portfolio prices
        # come from): every cycle's snapshot asks for open orders of all clients, today's
        # executions, completed orders and account values itself, once.
        startup = lib.StartupFetch
        kwargs["fetchFields"] = startup.POSITIONS | startup.ACCOUNT_UPDATES
    started = time.perf_counter()
    connecting = asyncio.ensure_future(ib.connectAsync(**kwargs))
    clashed = asyncio.ensure_future(clash.wait())
    try:
        await asyncio.wait({connecting, clashed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        clashed.cancel()
        ib.errorEvent -= on_error
        ib.client.apiStart -= on_api_start
        ib.client.apiError -= on_api_error
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        ib.disconnect()
        if any(code == CLIENT_ID_IN_USE for code, _ in seen) or closed_early:
            if any(code == CLIENT_ID_IN_USE for code, _ in seen):
                raise ClientIdInUse(client_id, host, port)
            raise BrokerError(
                f"{host}:{port} closed the connection during the API handshake: is client id "
                f"{client_id} already in use, or is this host not in the gateway's trusted IPs?"
            )
    error = connecting.exception()
    if error is None:
        return ib, time.perf_counter() - started, sender
    ib.disconnect()
    if any(code == CLIENT_ID_IN_USE for code, _ in seen):
        raise ClientIdInUse(client_id, host, port) from None
    if isinstance(error, TimeoutError):
        if api_started:
            raise StartupSyncIncomplete(host, port, ["a start-up request timed out"]) from None
        raise NotAnApiEndpoint(host, port, timeout) from None
    if isinstance(error, ConnectionRefusedError):
        raise GatewayUnreachable(host, port, "connection refused") from None
    if isinstance(error, ConnectionError):
        missing = error.args[0] if error.args and isinstance(error.args[0], list) else []
        raise StartupSyncIncomplete(host, port, [str(m) for m in missing] or [str(error)]) from None
    if isinstance(error, OSError):
        raise GatewayUnreachable(host, port, error.strerror or str(error)) from None
    raise BrokerError(f"connecting to {host}:{port} failed: {error!r}") from None


class GatewaySession:
    """Requests over one connected client, each with a timeout and its own error capture."""

    def __init__(
        self,
        ib: Any,
        lib: ModuleType,
        *,
        timeout: float,
        connectivity: Connectivity | None = None,
        sender: PacedSender | None = None,
        positions_synced: bool = False,
    ) -> None:
        self.ib = ib
        self.lib = lib
        self.timeout = timeout
        self.connectivity = connectivity or Connectivity()
        self.sender = sender
        # The start-up sync fetched every position and the subscription keeps them current
        # (ib_async with raiseSyncErrors: an incomplete sync fails the connect).
        self.positions_synced = positions_synced
        self._req_errors: dict[int, list[tuple[int, str]]] = {}
        self._order_listeners: dict[int, Callable[[int, str], None]] = {}
        self._close_listeners: dict[int, Callable[[], None]] = {}
        self._lines = asyncio.Semaphore(MAX_MARKET_DATA_LINES)
        self._detail_slots = asyncio.Semaphore(MAX_CONTRACT_DETAIL_REQUESTS)
        self._contracts: dict[int, Any] = {}
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected

    @property
    def message_counts(self) -> dict[str, int]:
        """API messages sent over this session, by kind (e.g. {"placeOrder": 200})."""
        return self.sender.message_counts if self.sender is not None else {}

    @property
    def pacing_waits(self) -> int:
        """How many times sending had to wait for the pacing window."""
        return self.sender.pacing_waits if self.sender is not None else 0

    async def send_slots(self) -> int:
        """Wait until at least one message may leave without queueing; how many may now."""
        if self.sender is None:
            return 1
        while True:
            slots = self.sender.capacity()
            if slots > 0:
                return slots
            await asyncio.sleep(self.sender.delay())

    # ------------------------------------------------------------ events

    def _on_error(self, req_id: int, code: int, message: str, *_: Any) -> None:
        recent = self.connectivity.recent_errors
        recent.append((req_id, code, message))
        del recent[:-50]
        if req_id in self._req_errors:
            self._req_errors[req_id].append((code, message))
        listener = self._order_listeners.get(req_id)
        if listener is not None:
            listener(code, message)
        self.connectivity.note(code)

    def _on_disconnected(self) -> None:
        self.connectivity.socket_closed = True
        for on_closed in list(self._close_listeners.values()):
            on_closed()

    def listen_order(
        self,
        order_id: int,
        on_error: Callable[[int, str], None],
        on_closed: Callable[[], None],
    ) -> None:
        """Route gateway errors for this order id, and the connection's loss, to a handle."""
        self._order_listeners[order_id] = on_error
        self._close_listeners[order_id] = on_closed

    def forget_order(self, order_id: int) -> None:
        self._order_listeners.pop(order_id, None)
        self._close_listeners.pop(order_id, None)

    @property
    def connected(self) -> bool:
        return bool(self.ib.isConnected()) and not self.connectivity.socket_closed

    def require_connected(self) -> None:
        if not self.connected:
            raise NotConnected("not connected to the gateway (the connection closed); reconnect")

    # ------------------------------------------------------------ requests

    async def request(
        self, what: str, send: Callable[[], Awaitable[T]], timeout: float | None = None
    ) -> T:
        """Send one request and wait for its complete answer; timeouts and loss are errors."""
        limit = self.timeout if timeout is None else timeout
        self.require_connected()
        try:
            return await asyncio.wait_for(send(), limit)
        except TimeoutError:
            raise RequestTimeout(f"{what}: no complete answer within {limit:g}s") from None
        except ConnectionError as error:
            raise ConnectionLost(f"{what}: connection to the gateway lost ({error})") from None

    async def _tracked(
        self, what: str, start: Callable[[int], Any], send: Callable[[int], None]
    ) -> tuple[Any, list[tuple[int, str]]]:
        """A request whose errors we capture by request id: (answer, errors)."""
        self.require_connected()
        req_id = self.ib.client.getReqId()
        self._req_errors[req_id] = []
        try:
            future = start(req_id)
            send(req_id)
            try:
                answer = await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                raise RequestTimeout(
                    f"{what}: no complete answer within {self.timeout:g}s"
                ) from None
            except ConnectionError as error:
                raise ConnectionLost(f"{what}: connection to the gateway lost ({error})") from None
            return answer, self._req_errors[req_id]
        finally:
            self._req_errors.pop(req_id, None)

    async def contract_details(self, contract: Any, what: str) -> tuple[list[Any], list]:
        """All contract details matching `contract`, and the gateway's errors for it."""
        wrapper, client = self.ib.wrapper, self.ib.client
        async with self._detail_slots:
            answer, errors = await self._tracked(
                what,
                lambda req_id: wrapper.startReq(req_id, contract),
                lambda req_id: client.reqContractDetails(req_id, contract),
            )
        return list(answer or []), errors

    def contract_for(self, key: int, build: Callable[[], Any]) -> Any:
        """One IB contract object per conId, so the client reuses its ticker for it."""
        found = self._contracts.get(key)
        if found is None:
            found = self._contracts[key] = build()
        return found

    async def market_snapshot(self, contract: Any, timeout: float) -> tuple[Any, list, bool]:
        """A one-shot quote: (ticker, errors, ended). Holds one market-data line meanwhile.

        `ended` is False when the gateway did not finish the snapshot within `timeout`;
        whatever arrived until then is kept. Prices left from an earlier snapshot of the
        same contract are cleared first: a price we did not receive now is not a price.
        """
        wrapper, client = self.ib.wrapper, self.ib.client
        async with self._lines:
            self.require_connected()
            req_id = client.getReqId()
            self._req_errors[req_id] = []
            future = wrapper.startReq(req_id, contract)
            ticker = wrapper.startTicker(req_id, contract, "snapshot")
            for name in ("bid", "ask", "last", "close"):
                setattr(ticker, name, float("nan"))
            ticker.time = None
            ticker.marketDataType = 1
            ended = True
            try:
                client.reqMktData(req_id, contract, "", True, False, [])
                try:
                    await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    ended = False
                    with contextlib.suppress(ConnectionError):
                        client.cancelMktData(req_id)
                except ConnectionError as error:
                    raise ConnectionLost(
                        f"quote for {contract.symbol or contract.conId}: connection lost ({error})"
                    ) from None
            finally:
                wrapper.endTicker(ticker, "snapshot")
                wrapper.reqId2Ticker.pop(req_id, None)
                errors = self._req_errors.pop(req_id, [])
            return ticker, errors, ended

    def set_market_data_type(self, kind: int) -> None:
        self.require_connected()
        self.ib.reqMarketDataType(kind)

    async def account_values(self, account: str) -> list[Any]:
        """A fresh, complete download of one account's values (then unsubscribed)."""
        collected: list[Any] = []

        def on_value(value: Any) -> None:
            if value.account == account:
                collected.append(value)

        wrapper, client = self.ib.wrapper, self.ib.client
        self.ib.accountValueEvent += on_value
        req_id = None
        try:

            def start(rid: int) -> Any:
                nonlocal req_id
                req_id = rid
                return wrapper.startReq(rid)

            await self._tracked(
                f"account values for {account}",
                start,
                lambda rid: client.reqAccountUpdatesMulti(rid, account, "", False),
            )
        finally:
            self.ib.accountValueEvent -= on_value
            if req_id is not None and self.connected:
                with contextlib.suppress(ConnectionError):
                    client.cancelAccountUpdatesMulti(req_id)
        return collected

    def close(self) -> None:
        self.ib.errorEvent -= self._on_error
        self.ib.disconnectedEvent -= self._on_disconnected
        if self.ib.isConnected():
            self.ib.disconnect()
