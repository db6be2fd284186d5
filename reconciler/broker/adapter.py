"""`Broker`: the reconciler's one door to IB Gateway.

Responsible for the public, async API the rest of the reconciler calls: connect (read-only
for commands that never trade), server time, instrument resolution against the lock file,
complete snapshots, placing/waiting/cancelling orders, and the recovery reads (open orders,
completed orders, executions). Converts every client object to our own types before
returning. Must not plan, apply risk or gates, or write to the store; and nothing outside
`reconciler.broker` may import the client library.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.broker import contracts as rules
from reconciler.broker import convert
from reconciler.broker import library as client_library
from reconciler.broker.connection import Connectivity, GatewaySession, open_ib
from reconciler.broker.errors import (
    AccountNotManaged,
    BrokerError,
    ConnectionLost,
    LockMismatch,
    OrderError,
    ReadOnlyConnection,
    ResolutionError,
    ResolutionProblem,
)
from reconciler.broker.orders import OrderHandle, build_order
from reconciler.broker.snapshot import LIVE, gather_checked, snapshot_quotes, take_snapshot
from reconciler.broker.stats import STATS
from reconciler.model.actual import (
    ActualState,
    CompletedOrder,
    ContractInfo,
    Execution,
    OpenOrder,
    OrderTrail,
    Position,
    Quote,
)
from reconciler.model.clock import Clock, SystemClock

if TYPE_CHECKING:
    from reconciler.broker.order_check import OrderCheckReport
from reconciler.model.desired import Instrument, LockedInstrument
from reconciler.model.plan import PlannedOrder
from reconciler.model.settings import Settings


class Broker:
    """A connected gateway session. Use `await Broker.connect(...)`, or `async with` it."""

    def __init__(
        self,
        session: GatewaySession,
        *,
        settings: Settings,
        library_name: str,
        readonly: bool,
        client_id: int,
        clock: Clock,
        connect_latency: float,
    ) -> None:
        self._session = session
        self._ib = session.ib
        self._lib = session.lib
        self.settings = settings
        self.library = library_name
        self.readonly = readonly
        self.client_id = client_id
        self.clock = clock
        self.connect_latency = connect_latency
        self.market_data_type = LIVE
        self.naive_zone = client_library.gateway_timezone()
        self.managed_accounts: tuple[str, ...] = tuple(self._ib.managedAccounts())
        self.server_version = int(self._ib.client.serverVersion())
        self._handles: dict[str, OrderHandle] = {}

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def connect(
        cls,
        settings: Settings,
        *,
        readonly: bool,
        client_id: int | None = None,
        clock: Clock | None = None,
        library: str | None = None,
        timeout: float | None = None,
        handshake_sent: Callable[[], None] | None = None,
    ) -> Broker:
        lib = client_library.load(library)
        limit = timeout if timeout is not None else settings.connect_timeout
        cid = settings.client_id if client_id is None else client_id
        link = Connectivity()
        try:
            ib, latency, sender = await open_ib(
                lib,
                connectivity=link,
                host=settings.gateway_host,
                port=settings.gateway_port,
                client_id=cid,
                timeout=limit,
                readonly=readonly,
                message_rate=settings.max_msg_rate,
                handshake_sent=handshake_sent,
            )
        except BrokerError:
            STATS.connect_failed()
            raise
        STATS.connected()
        session = GatewaySession(
            ib,
            lib,
            timeout=limit,
            connectivity=link,
            sender=sender,
            positions_synced=lib.__name__ == "ib_async",
        )
        return cls(
            session,
            settings=settings,
            library_name=lib.__name__,
            readonly=readonly,
            client_id=cid,
            clock=clock or SystemClock(),
            connect_latency=latency,
        )

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.disconnect()

    async def disconnect(self) -> None:
        for handle in self._handles.values():
            handle.detach()
        self._handles.clear()
        STATS.closing(
            messages_sent=sum(self._session.message_counts.values()),
            pacing_waits=self._session.pacing_waits,
            link_ok=not self._session.connectivity.lost,
        )
        self._session.close()

    @property
    def session(self) -> GatewaySession:
        """The gateway session (its `message_counts` and `pacing_waits` count what was sent)."""
        return self._session

    @property
    def message_counts(self) -> dict[str, int]:
        return self._session.message_counts

    @property
    def pacing_waits(self) -> int:
        return self._session.pacing_waits

    async def send_slots(self) -> int:
        """Wait until an order may leave without queueing behind the pacing window; returns
        how many messages may leave now (the executor commits that many INTENTs at once)."""
        return await self._session.send_slots()

    @property
    def request_timeout(self) -> float:
        """Seconds each request may take before it counts as failed."""
        return self._session.timeout

    @property
    def connected(self) -> bool:
        return self._session.connected

    def link_problem(self) -> str | None:
        """Why no order may be sent over this session now, or None.

        Once the gateway reported 1100 (its link to IBKR lost) during this session, nothing
        more is sent over it: after 1102 the data was kept, after 1101 it was lost, and either
        way the plan came from a snapshot taken before the gap; the next cycle's fresh
        snapshot decides again.
        """
        link = self._session.connectivity
        if link.lost:
            return "the gateway lost connectivity to IBKR (1100); waiting for 1101/1102"
        if link.lost_count:
            return (
                "the gateway lost connectivity to IBKR (1100) during this cycle; "
                "the next cycle re-plans from a fresh snapshot"
            )
        return None

    @property
    def gateway(self) -> str:
        return (
            f"{self.settings.gateway_host}:{self.settings.gateway_port} "
            f"(server v{self.server_version}, {self.library} "
            f"{client_library.version(self._lib)}, client id {self.client_id})"
        )

    def require_accounts(self, accounts: Iterable[str]) -> None:
        """Raise AccountNotManaged naming every account this gateway does not manage."""
        unknown = [a for a in dict.fromkeys(accounts) if a not in self.managed_accounts]
        if unknown:
            raise AccountNotManaged(unknown, self.managed_accounts)

    # ------------------------------------------------------------ reads

    async def server_time(self) -> dt.datetime:
        answer = await self._session.request("server time", self._ib.reqCurrentTimeAsync)
        result = convert.to_utc(answer)
        assert result is not None
        return result

    async def resolve(
        self,
        instruments: Sequence[Instrument],
        lock: Mapping[str, LockedInstrument] | None = None,
        *,
        trust_lock: bool = False,
    ) -> dict[str, ContractInfo]:
        """ContractInfo by Instrument.key; lock entries are looked up by conId and checked,
        or with `trust_lock` taken as committed without a request (see
        `contracts.trusted_lock_entry` for where they are verified instead).

        Raises ResolutionError listing every unknown, ambiguous or conflicting instrument
        (LockMismatch when the only problems are lock entries that no longer match).
        """
        unique: dict[str, Instrument] = {}
        problems: list[ResolutionProblem] = []
        for instrument in instruments:
            seen = unique.setdefault(instrument.key, instrument)
            if seen != instrument:
                problems.append(
                    ResolutionProblem(
                        instrument.key,
                        "error",
                        f"named two ways in the desired state ({seen} vs {instrument})",
                    )
                )
        lock = lock or {}
        results: dict[str, Any] = {}
        if trust_lock:
            results = {
                key: rules.trusted_lock_entry(inst, lock[key])
                for key, inst in unique.items()
                if key in lock
            }
        fetched, failures = await gather_checked(
            {
                key: self._resolve_one(inst, lock.get(key))
                for key, inst in unique.items()
                if key not in results
            }
        )
        results.update(fetched)
        if failures:
            raise BrokerError("; ".join(failures))
        resolved: dict[str, ContractInfo] = {}
        for key in unique:
            answer = results[key]
            if isinstance(answer, ContractInfo):
                resolved[key] = answer
            else:
                problems.extend(answer)
        if problems:
            if all(p.kind == "lock" for p in problems):
                raise LockMismatch(problems)
            raise ResolutionError(problems)
        return resolved

    async def _resolve_one(
        self, instrument: Instrument, locked: LockedInstrument | None
    ) -> ContractInfo | list[ResolutionProblem]:
        key = instrument.key
        if locked is not None:
            request = rules.request_for_locked(self._lib, locked)
            details, errors = await self._session.contract_details(request, f"contract {key}")
            answer = rules.judge(key, locked.exchange, details, errors, by_con_id=True)
            if isinstance(answer, ResolutionProblem):
                if answer.kind == "unknown":
                    return [rules.lock_missing(key, locked.con_id)]
                return [answer]
            return rules.lock_differences(instrument, locked, answer) or answer
        request = rules.request_for_instrument(self._lib, instrument)
        details, errors = await self._session.contract_details(request, f"contract {key}")
        answer = rules.judge(
            key, instrument.exchange, details, errors, by_con_id=bool(instrument.con_id)
        )
        if isinstance(answer, ResolutionProblem):
            return [answer]
        if instrument.con_id and (
            answer.symbol != instrument.symbol or answer.currency != instrument.currency
        ):
            return [
                ResolutionProblem(
                    key,
                    "error",
                    f"conId {instrument.con_id} is {answer.symbol} in {answer.currency}, "
                    f"not {instrument.symbol} in {instrument.currency}",
                )
            ]
        return answer

    async def snapshot(
        self,
        accounts: Sequence[str],
        contracts: Mapping[str, ContractInfo] | Iterable[ContractInfo],
        *,
        quotes: bool = True,
    ) -> ActualState:
        """Everything a cycle needs for `accounts`; complete or SnapshotError. With
        `quotes=False` no quote is requested and positions carry their portfolio market
        price instead (steady state: the cycle asks `quotes` for the candidates)."""
        wanted = tuple(dict.fromkeys(accounts)) or self.managed_accounts
        self.require_accounts(wanted)
        infos = list(contracts.values()) if isinstance(contracts, Mapping) else list(contracts)
        return await take_snapshot(
            self._session,
            accounts=wanted,
            targets=infos,
            clock=self.clock,
            naive_zone=self.naive_zone,
            gateway=self.gateway,
            managed=self.managed_accounts,
            market_data_type=self.market_data_type,
            quotes=quotes,
        )

    async def positions(self, accounts: Sequence[str]) -> dict[str, tuple[Position, ...]]:
        """Every position of `accounts` (non-zero), from one positions request."""
        wanted = tuple(dict.fromkeys(accounts))
        self.require_accounts(wanted)
        answer = await self._session.request("positions", self._ib.reqPositionsAsync)
        found: dict[str, list[Position]] = {a: [] for a in wanted}
        for p in answer:
            if p.account in found and float(p.position) != 0:
                found[p.account].append(convert.position(p))
        return {a: tuple(found[a]) for a in wanted}

    async def quotes(self, infos: Iterable[ContractInfo]) -> dict[int, Quote]:
        """One fresh quote per contract (by conId); prices None when none arrived."""
        found, _missing = await snapshot_quotes(
            self._session, list(infos), self.market_data_type, self._session.timeout
        )
        return found

    async def open_orders(self) -> tuple[OpenOrder, ...]:
        """Working orders of every client id on this gateway (for recovery by orderRef)."""
        trades = await self._session.request(
            "open orders (all clients)", self._ib.reqAllOpenOrdersAsync
        )
        return tuple(
            convert.open_order(t)
            for t in trades
            if t.orderStatus.status not in convert.FINAL_STATUSES
        )

    async def completed_orders(self) -> tuple[CompletedOrder, ...]:
        trades = await self._session.request(
            "completed orders", lambda: self._ib.reqCompletedOrdersAsync(False)
        )
        return tuple(convert.completed_order(t) for t in trades)

    async def executions(self, client_id: int | None = None) -> tuple[Execution, ...]:
        """Today's executions with commissions, de-duplicated by execId.

        The gateway answers with this connection's executions; `client_id` asks for another
        client id's (e.g. a killed apply that connected with a different IB_CLIENT_ID).
        """
        if client_id is None or client_id == self.client_id:
            request = self._ib.reqExecutionsAsync
        else:
            exec_filter = self._lib.ExecutionFilter(clientId=client_id)

            def request():
                return self._ib.reqExecutionsAsync(exec_filter)

        fills = await self._session.request("today's executions", request)
        reports = {f.execution.execId: f.commissionReport for f in self._ib.fills()}
        unique = {
            f.execution.execId: convert.execution(
                f, reports.get(f.execution.execId), self.naive_zone
            )
            for f in fills
        }
        return tuple(sorted(unique.values(), key=lambda e: (e.time, e.exec_id)))

    async def order_trails(
        self, refs: Iterable[str], *, client_ids: Iterable[int] = ()
    ) -> dict[str, OrderTrail]:
        """What the broker knows about each orderRef: working (open orders of every client
        id), completed, and executed (executions of this client id and of `client_ids`, one
        per execId). Every ref asked for has an entry; an empty one means the broker has no
        record of it."""
        wanted = {r for r in refs if r}
        if not wanted:
            return {}
        working = {o.order_ref: o for o in await self.open_orders() if o.order_ref in wanted}
        completed = {c.order_ref: c for c in await self.completed_orders() if c.order_ref in wanted}
        executions: dict[str, Execution] = {}
        for client_id in sorted({self.client_id, *client_ids}):
            for e in await self.executions(client_id=client_id):
                if e.order_ref in wanted:
                    executions.setdefault(e.exec_id, e)
        by_ref: dict[str, list[Execution]] = {}
        for e in executions.values():
            by_ref.setdefault(e.order_ref, []).append(e)
        return {
            ref: OrderTrail(
                order_ref=ref,
                working=working.get(ref),
                completed=completed.get(ref),
                executions=tuple(sorted(by_ref.get(ref, ()), key=lambda e: (e.time, e.exec_id))),
            )
            for ref in sorted(wanted)
        }

    # ------------------------------------------------------------ orders

    def _require_trading(self) -> None:
        if self.readonly:
            raise ReadOnlyConnection(
                "this gateway connection is read-only; orders need Broker.connect(readonly=False)"
            )
        self._session.require_connected()

    async def place_order(self, order: PlannedOrder, *, order_ref: str) -> OrderHandle:
        """Send one order; returns at once with a handle that follows it."""
        self._require_trading()
        self.require_accounts([order.account])
        ib_order = build_order(self._lib, order, order_ref)
        contract = self._session.contract_for(
            order.con_id,
            lambda: self._lib.Contract(
                conId=order.con_id,
                symbol=order.symbol,
                secType=order.sec_type,
                exchange=order.exchange or "SMART",
                primaryExchange=order.primary_exchange,
                currency=order.currency,
            ),
        )
        try:
            trade = self._ib.placeOrder(contract, ib_order)
        except ConnectionError as error:
            raise ConnectionLost(
                f"order {order_ref}: not sent, connection lost ({error})"
            ) from None
        return self._track(trade)

    def _track(self, trade: Any) -> OrderHandle:
        handle = OrderHandle(trade, now=self.clock.now, naive_zone=self.naive_zone)
        self._session.listen_order(int(trade.order.orderId), handle.record_error, handle.wake)
        self._handles[handle.order_ref or f"#{handle.order_id}"] = handle
        return handle

    async def attach(self, order_ref: str) -> OrderHandle | None:
        """A handle on an earlier, still working order of this client id (after reconnect)."""
        await self.open_orders()
        for trade in self._ib.openTrades():
            if trade.order.orderRef == order_ref and trade.order.clientId == self.client_id:
                return self._handles.get(order_ref) or self._track(trade)
        return None

    async def wait_ack(self, handle: OrderHandle, *, timeout: float) -> OrderHandle:
        """Until the gateway acknowledged the order (working or done), or it is final, or
        `timeout` passes; `handle.acknowledged` / `handle.rejected` tell which."""
        await self._wait(handle, lambda: handle.acknowledged or handle.is_final, timeout)
        return handle

    async def wait_order(self, handle: OrderHandle, *, timeout: float) -> OrderHandle:
        """Until the order is final (and its commissions are in) or `timeout` passes.

        Returns the handle either way; `handle.is_final` tells which. Raises ConnectionLost
        when the connection closes first: the outcome is then unknown and must be resolved
        by orderRef after reconnecting, never by sending the order again.
        """
        await self._wait(handle, lambda: handle.is_final and handle.commissions_complete, timeout)
        return handle

    async def _wait(self, handle: OrderHandle, done: Callable[[], bool], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            if not self._session.connected:
                raise ConnectionLost(
                    f"order {handle.order_ref}: connection lost while waiting (status "
                    f"{handle.status}, filled {handle.filled:g}); resolve it by orderRef after "
                    "reconnecting, do not resend"
                )
            left = deadline - loop.time()
            if left <= 0:
                break
            await handle.wait_changed(left)

    async def cancel_open_order(self, order: OpenOrder, *, as_master: bool = False) -> None:
        """Cancel a working order found by `open_orders()` (e.g. for `halt --cancel-open`).

        Only orders placed with this connection's client id can be cancelled by it: an order
        id means a different order under another client id, so those are refused, not sent.
        `as_master=True` (this connection uses the gateway's configured master client id,
        which may act on every client's orders) sends the cancel for another client's order
        anyway; whether it took effect is read back from the open orders.
        """
        self._require_trading()
        if order.client_id != self.client_id and not as_master:
            raise BrokerError(
                f"order {order.order_ref or order.perm_id} was placed by client id "
                f"{order.client_id}; connect with IB_CLIENT_ID={order.client_id} to cancel it"
            )
        trade = next((t for t in self._ib.trades() if t.order.permId == order.perm_id), None)
        if trade is None:
            await self.open_orders()
            trade = next((t for t in self._ib.trades() if t.order.permId == order.perm_id), None)
        if trade is None:
            raise BrokerError(f"order {order.order_ref or order.perm_id} is no longer open")
        if order.client_id != self.client_id:
            # Not ours to follow: its order id belongs to another client's id space.
            try:
                self._ib.cancelOrder(trade.order)
            except ConnectionError as error:
                raise ConnectionLost(
                    f"order {order.order_ref}: cancel not sent, connection lost ({error})"
                ) from None
            return
        await self.cancel_order(self._handles.get(order.order_ref) or self._track(trade))

    async def global_cancel(self) -> None:
        """reqGlobalCancel: the gateway cancels EVERY open order of its accounts, placed by
        any client id or by hand in TWS, not only the reconciler's."""
        self._require_trading()
        try:
            self._ib.reqGlobalCancel()
        except ConnectionError as error:
            raise ConnectionLost(f"global cancel not sent, connection lost ({error})") from None

    async def check_orders(self, account: str, *, symbol: str = "SPY") -> OrderCheckReport:
        """The seeds' sanity-cancel: on a paper account, a 1-share BUY limit at half the bid
        (rounded down to the tick, orderRef rc-health-<time>) is placed, acknowledged and
        cancelled. Refuses non-DU accounts before anything is sent."""
        from reconciler.broker.order_check import (
            OrderCheckReport,
            far_limit_price,
            refuse_unless_paper,
        )

        refuse_unless_paper(account)
        self._require_trading()
        self.require_accounts([account])
        instrument = Instrument(symbol=symbol)
        info = (await self.resolve([instrument]))[instrument.key]
        quote = (await self.quotes([info]))[info.con_id]
        reference = quote.bid or quote.last or quote.close
        if reference is None:
            raise OrderError(
                f"no price for {symbol}: cannot place a far-from-market test order safely"
            )
        limit = far_limit_price(reference, info.min_tick)
        order_ref = f"rc-health-{self.clock.now():%Y%m%dT%H%M%S}"
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
        wait = self.request_timeout
        handle = await self.place_order(planned, order_ref=order_ref)
        await self.wait_ack(handle, timeout=wait)
        acknowledged, ack_status = handle.acknowledged, handle.status
        if not handle.is_final:
            await self.cancel_order(handle)
        await self.wait_order(handle, timeout=wait)
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

    async def cancel_order(self, handle: OrderHandle) -> None:
        """Ask the gateway to cancel; the answer arrives as status/error events."""
        self._require_trading()
        if handle.is_final:
            return
        try:
            self._ib.cancelOrder(handle.trade.order)
        except ConnectionError as error:
            raise ConnectionLost(
                f"order {handle.order_ref}: cancel not sent, connection lost ({error})"
            ) from None
