"""Gateway health checks: the read-only handshake check and the paper order round-trip.

Responsible for `health` (connect read-only, measure connect latency, read server time and
managed accounts; never raises for gateway problems, it reports them) and `check_orders`
(the seeds' sanity-cancel: on a paper account only, place a 1-share BUY limit far below the
market, see it acknowledged, cancel it, see it cancelled). Must not touch the store or any
account other than the one named, and must never run against a live (non-DU) account.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from reconciler.broker.adapter import Broker
from reconciler.broker.errors import BrokerError, OrderError
from reconciler.clock import Clock, SystemClock
from reconciler.desired.model import Instrument
from reconciler.plan import PlannedOrder
from reconciler.settings import Settings

PAPER_ACCOUNT_PREFIX = "DU"
FAR_FROM_MARKET = 0.5  # the test order's limit is this fraction of the bid


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
            library=library or "",
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


@dataclass(frozen=True)
class OrderCheckReport:
    ok: bool
    account: str
    symbol: str
    order_ref: str
    limit_price: float
    order_id: int | None
    perm_id: int | None
    acknowledged: bool
    ack_status: str
    cancelled: bool
    final_status: str
    filled: float
    errors: tuple[str, ...] = ()


def far_limit_price(reference: float, min_tick: float) -> float:
    """FAR_FROM_MARKET of the reference, rounded down to the tick (at least one tick)."""
    tick = min_tick if min_tick > 0 else 0.01
    ticks = max(math.floor(reference * FAR_FROM_MARKET / tick + 1e-9), 1)
    return round(ticks * tick, 10)


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
    """Place a far-from-market 1-share BUY limit on a paper account, then cancel it."""
    if not account.startswith(PAPER_ACCOUNT_PREFIX):
        raise OrderError(
            f"refusing the order check on {account}: only paper accounts "
            f"({PAPER_ACCOUNT_PREFIX}...) may receive test orders"
        )
    clock = clock or SystemClock()
    async with await Broker.connect(
        settings,
        readonly=False,
        client_id=client_id,
        clock=clock,
        library=library,
        timeout=timeout,
    ) as broker:
        broker.require_accounts([account])
        instrument = Instrument(symbol=symbol)
        info = (await broker.resolve([instrument]))[instrument.key]
        quote = (await broker.quotes([info]))[info.con_id]
        reference = quote.bid or quote.last or quote.close
        if reference is None:
            raise OrderError(
                f"no price for {symbol}: cannot place a far-from-market test order safely"
            )
        limit = far_limit_price(reference, info.min_tick)
        order_ref = f"rc-health-{clock.now():%Y%m%dT%H%M%S}"
        planned = PlannedOrder(
            leg=0,
            account=account,
            key=info.key,
            symbol=info.symbol,
            con_id=info.con_id,
            sec_type=info.sec_type,
            exchange=info.exchange,
            primary_exchange=info.primary_exchange,
            currency=info.currency,
            side="BUY",
            quantity=1,
            order_type="LMT",
            limit_price=limit,
            time_in_force="DAY",
            ttl_seconds=0,
            outside_rth=False,
            arrival_price=reference,
            est_notional=limit,
            est_commission=0.0,
            reason="health check: far-from-market order, cancelled at once",
        )
        wait = broker.request_timeout
        handle = await broker.place_order(planned, order_ref=order_ref)
        await broker.wait_ack(handle, timeout=wait)
        acknowledged, ack_status = handle.acknowledged, handle.status
        if not handle.is_final:
            await broker.cancel_order(handle)
        await broker.wait_order(handle, timeout=wait)
        cancelled = handle.status in ("Cancelled", "ApiCancelled")
        return OrderCheckReport(
            ok=acknowledged and cancelled and handle.filled == 0,
            account=account,
            symbol=symbol,
            order_ref=order_ref,
            limit_price=limit,
            order_id=handle.order_id,
            perm_id=handle.perm_id,
            acknowledged=acknowledged,
            ack_status=ack_status,
            cancelled=cancelled,
            final_status=handle.status,
            filled=handle.filled,
            errors=tuple(f"error {c}: {m}" for c, m in handle.errors if c != 202),
        )
