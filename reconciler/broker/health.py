"""Gateway health checks: the read-only handshake check and the paper order round-trip.

Responsible for `health` (connect read-only, measure connect latency, read server time and
managed accounts; never raises for gateway problems, it reports them) and `check_orders`
(the seeds' sanity-cancel: on a paper account only, place a 1-share BUY limit far below the
market, see it acknowledged, cancel it, see it cancelled). Must not touch the store or any
account other than the one named, and must never run against a live (non-DU) account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconciler.broker import library as client_library
from reconciler.broker.adapter import Broker
from reconciler.broker.errors import BrokerError
from reconciler.broker.order_check import OrderCheckReport, refuse_unless_paper
from reconciler.model.clock import Clock, SystemClock
from reconciler.model.settings import Settings


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    host: str
    port: int
    client_id: int
    library: str
    handshake_ok: bool
    connect_latency: float | None  # seconds
    server_time: dt.datetime | None
    clock_skew: float | None  # server time minus local time, seconds
    server_version: int | None
    managed_accounts: tuple[str, ...]
    error: str | None = None


async def health(
    settings: Settings,
    *,
    client_id: int | None = None,
    library: str | None = None,
    clock: Clock | None = None,
    timeout: float | None = None,
) -> HealthReport:
    """Handshake, server time and managed accounts over a read-only connection."""
    clock = clock or SystemClock()
    cid = settings.client_id if client_id is None else client_id
    base = dict(host=settings.gateway_host, port=settings.gateway_port, client_id=cid)
    try:
        broker = await Broker.connect(
            settings, readonly=True, client_id=cid, clock=clock, library=library, timeout=timeout
        )
    except BrokerError as error:
        return HealthReport(
            ok=False,
            library=client_library.choose(library),
            handshake_ok=False,
            connect_latency=None,
            server_time=None,
            clock_skew=None,
            server_version=None,
            managed_accounts=(),
            error=str(error),
            **base,
        )
    async with broker:
        error: str | None = None
        server_time = None
        try:
            server_time = await broker.server_time()
        except BrokerError as failure:
            error = str(failure)
        skew = (server_time - clock.now()).total_seconds() if server_time else None
        return HealthReport(
            ok=error is None and bool(broker.managed_accounts),
            library=broker.library,
            handshake_ok=True,
            connect_latency=broker.connect_latency,
            server_time=server_time,
            clock_skew=skew,
            server_version=broker.server_version,
            managed_accounts=broker.managed_accounts,
            error=error or (None if broker.managed_accounts else "gateway reports no accounts"),
            **base,
        )


async def check_orders(
    settings: Settings,
    account: str,
    *,
    symbol: str = "SPY",
    client_id: int | None = None,
    library: str | None = None,
    clock: Clock | None = None,
    timeout: float | None = None,
) -> OrderCheckReport:
    """Connect (trading), then `Broker.check_orders`: the paper sanity-cancel round-trip."""
    refuse_unless_paper(account)
    async with await Broker.connect(
        settings,
        readonly=False,
        client_id=client_id,
        clock=clock,
        library=library,
        timeout=timeout,
    ) as broker:
        return await broker.check_orders(account, symbol=symbol)
