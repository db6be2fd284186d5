"""The simulated IB Gateway: an asyncio TCP server speaking the TWS API socket protocol.

Responsible for connections (handshake, version negotiation, startApi, duplicate client ids),
dispatching every request to the broker and market model, pushing live updates (order
status, fills, positions, account values, streaming ticks), the latency model, fault
injection, the journal and persisting state after changes. Must not import an IB client
library: the simulator is what the clients are tested against, never built from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from reconciler.sim import messages as m
from reconciler.sim.broker import Broker, BrokerError, Fill, SimOrder
from reconciler.sim.clock import SimClock
from reconciler.sim.faults import Faults, RateWindow
from reconciler.sim.journal import Journal
from reconciler.sim.market import Instrument, MarketHours, PriceModel
from reconciler.sim.protocol import (
    FrameReader,
    ProtocolError,
    encode_frame,
    negotiate_version,
    parse_version_range,
    to_bool,
    to_int,
)
from reconciler.sim.requests import (
    ContractSpec,
    contract12,
    parse_exec_filter,
    parse_historical,
    parse_market_data,
    parse_place_order,
)
from reconciler.sim.scenario import Scenario, ScenarioError, account_only, load_scenario
from reconciler.sim.state import StateFile

log = logging.getLogger("reconciler.sim")
UTC = dt.UTC
EASTERN = ZoneInfo("US/Eastern")
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
NO_SECURITY = "No security definition has been found for the request"
NO_MARKET_DATA = ("Requested market data is not subscribed. Check API status by selecting the "
                  "Account menu then under Management choose Market Data Subscription Manager "
                  "and/or check that the correct data feed is in use.")
SUMMARY_TEXT_TAGS = ("AccountType",)


@dataclass
class _MarketSub:
    con_id: int
    delayed: bool
    last_sent: dict[int, float] = field(default_factory=dict)


class Session(asyncio.Protocol):
    """One client connection."""

    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway
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
        self.market_subs: dict[int, _MarketSub] = {}
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
        self.gateway._sessions.add(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.gateway._sessions.discard(self)

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
            self.gateway._handle(self, fields)
        self.gateway._after_change()

    def send(self, fields: list[str]) -> None:
        if self.closed or self.transport is None:
            return
        self.gateway.journal.record("out", self.client_id, fields, self.gateway._stamp())
        self._buffer.append(encode_frame(fields))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def send_raw_handshake(self, fields: list[str]) -> None:
        self.send(fields)

    def flush(self) -> None:
        # account values changed by fills ride in the same write as the fills themselves
        self.gateway._push_dirty_account_values()
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
        self.gateway._sessions.discard(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection without sending what is queued (fault injection)."""
        if self.closed:
            return
        self._buffer.clear()
        self.closed = True
        self.gateway._sessions.discard(self)
        if self.transport is not None:
            self.transport.abort()

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(m.error(self.version, req_id, code, message))


class SimGateway:
    """An IB Gateway stand-in. Use ``async with SimGateway(...) as sim``."""

    def __init__(self, scenario: Scenario | str | Path | dict | None = None, *,
                 host: str = "127.0.0.1", port: int = 0,
                 state_file: str | Path | None = None, accounts=(), seed: int | None = None,
                 journal_path: str | Path | None = None, clock=None) -> None:
        accounts = tuple(a for a in (accounts or ()) if a)
        if scenario is None:
            scenario = Scenario(name="accounts") if accounts else load_scenario(None)
        elif not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        self.requested_host = host
        self.requested_port = port
        self.host = host
        self.port = port
        self.seed = scenario.seed if seed is None else seed
        self.clock = clock or SimClock(scenario.clock_start, scenario.clock_speed)
        self.universe = scenario.build_universe()
        self.prices = PriceModel(self.universe, self.seed, scenario.volatility)
        self.hours = MarketHours(enabled=scenario.hours == "regular",
                                 outside_hours=scenario.outside_hours,
                                 holidays=scenario.holidays,
                                 early_closes=dict(scenario.early_closes))
        self.broker = Broker(self.universe, self.prices, self.hours, scenario.fx,
                             scenario.liquidity)
        self.faults = Faults()
        self.faults.update(scenario.faults)
        self.faults._gateway = self
        self.journal = Journal(journal_path)
        self.ack_delay = scenario.ack_delay
        self.fill_delay = scenario.fill_delay
        self.fill_interval = scenario.fill_interval
        self.tick_interval = scenario.tick_interval
        self._extra_accounts = accounts
        self._state = StateFile(state_file) if state_file else None
        self._persisted_version = -1
        self._sessions: set[Session] = set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._silent: set[int] = set()
        self._last_step = time.monotonic()
        self._dirty_accounts: set[str] = set()
        self._stamp_cache: tuple[float, dt.datetime] = (0.0, dt.datetime.now(UTC))
        self._handlers = self._build_handlers()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----- lifecycle --------------------------------------------------------------------
    async def __aenter__(self) -> SimGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def managed_accounts(self) -> list[str]:
        return list(self.broker.accounts)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._state is not None:
            self._state.acquire()
        try:
            self._load_accounts()
            self._persist(force=True)
            self._server = await self._loop.create_server(
                lambda: Session(self), self.requested_host, self.requested_port)
        except BaseException:
            if self._state is not None:
                self._state.release()
            raise
        sock = self._server.sockets[0].getsockname()
        self.host, self.port = sock[0], sock[1]
        self._tasks.append(asyncio.create_task(self._run_market(), name="sim-market"))
        log.info("simulator listening on %s:%s, accounts %s", self.host, self.port,
                 ",".join(self.managed_accounts))

    async def stop(self) -> None:
        for timer in self._timers:  # a stopped gateway must not fill or persist later
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        self._persist(force=True)
        if self._state is not None:
            self._state.release()
        self.journal.flush()
        self.journal.close()

    def _load_accounts(self) -> None:
        state = self._state.load() if self._state is not None else None
        if state is not None:
            self.broker.load_state(state)
            self._resume_restored_orders()
        else:
            for spec in self.scenario.accounts:
                self._add_account_spec(spec)
        for spec in account_only(self._extra_accounts):
            if spec.account_id not in self.broker.accounts:
                self._add_account_spec(spec)
        if not self.broker.accounts:
            raise ScenarioError(f"{self.scenario.source}: no accounts (give --accounts or "
                                "accounts: in the scenario)")

    def _add_account_spec(self, spec) -> None:
        self.broker.add_account(spec.account_id, spec.cash, spec.base_currency,
                                spec.account_type)
        for pos in spec.positions:
            matches = self.universe.resolve(pos.con_id, pos.symbol, "STK", "SMART",
                                            pos.primary_exchange, pos.currency)
            if len(matches) != 1:
                problem = "unknown symbol" if not matches else (
                    "ambiguous symbol (" + ", ".join(
                        f"{i.primary_exchange}/{i.currency}" for i in matches) +
                    "); add currency, primaryExchange or conId")
                raise ScenarioError(f"{self.scenario.source}: account {spec.account_id}: "
                                    f"position {pos.symbol}: {problem}")
            self.broker.set_position(spec.account_id, matches[0].con_id, pos.quantity,
                                     pos.avg_cost)

    def _persist(self, force: bool = False) -> None:
        if self._state is None:
            return
        if not force and self.broker.version == self._persisted_version:
            return
        self._state.write(self.broker.to_state())
        self._persisted_version = self.broker.version

    def _stamp(self) -> dt.datetime:
        """The simulated time for journal entries, re-read at most once per millisecond."""
        mono = time.monotonic()
        if mono - self._stamp_cache[0] > 0.001:
            self._stamp_cache = (mono, self.clock.now())
        return self._stamp_cache[1]

    def _after_change(self) -> None:
        self._persist()
        self.journal.flush()

    # ----- public test API --------------------------------------------------------------
    def instrument(self, symbol: str, currency: str = "", primary_exchange: str = ""
                   ) -> Instrument:
        matches = self.universe.by_symbol(symbol, currency, primary_exchange)
        if len(matches) != 1 and not currency:
            matches = [i for i in matches if i.currency == "USD"] or matches
        if len(matches) != 1:
            raise KeyError(f"{symbol}: {'unknown' if not matches else 'ambiguous'} symbol")
        return matches[0]

    def set_quote(self, symbol: str, *, bid: float | None = None, ask: float | None = None,
                  last: float | None = None, close: float | None = None,
                  currency: str = "", primary_exchange: str = "") -> None:
        """Move a price; resting orders that become marketable fill, streams see new ticks."""
        inst = self.instrument(symbol, currency, primary_exchange)
        self.prices.set_quote(inst, bid=bid, ask=ask, last=last, close=close,
                              now=self.clock.now())
        self.broker.touch()
        self._quotes_changed([inst.con_id])
        for order in self.broker.working_orders():
            if order.con_id == inst.con_id and order.eligible:
                self._fill_once(order)
        self._after_change()

    def quote(self, symbol: str, currency: str = ""):
        return self.prices.quote(self.instrument(symbol, currency))

    def session_client_ids(self) -> list[int]:
        return sorted(s.client_id for s in self._sessions if s.client_id is not None)

    def disconnect_client(self, client_id: int) -> None:
        for session in list(self._sessions):
            if session.client_id == client_id:
                session.abort()

    # ----- dispatch ---------------------------------------------------------------------
    def _build_handlers(self) -> dict[int, Callable[[Session, list[str]], None]]:
        return {
            m.IN_REQ_MKT_DATA: self._req_mkt_data,
            m.IN_CANCEL_MKT_DATA: self._cancel_mkt_data,
            m.IN_PLACE_ORDER: self._place_order,
            m.IN_CANCEL_ORDER: self._cancel_order,
            m.IN_REQ_OPEN_ORDERS: self._req_open_orders,
            m.IN_REQ_ACCOUNT_UPDATES: self._req_account_updates,
            m.IN_REQ_EXECUTIONS: self._req_executions,
            m.IN_REQ_IDS: self._req_ids,
            m.IN_REQ_CONTRACT_DETAILS: self._req_contract_details,
            m.IN_REQ_AUTO_OPEN_ORDERS: lambda s, f: None,
            m.IN_REQ_ALL_OPEN_ORDERS: self._req_all_open_orders,
            m.IN_REQ_MANAGED_ACCTS: lambda s, f: s.send(m.managed_accounts(
                self.managed_accounts)),
            m.IN_REQ_HISTORICAL_DATA: self._req_historical,
            m.IN_CANCEL_HISTORICAL_DATA: lambda s, f: None,
            m.IN_REQ_CURRENT_TIME: lambda s, f: s.send(m.current_time(
                int(self.clock.now().timestamp()))),
            m.IN_REQ_GLOBAL_CANCEL: self._global_cancel,
            m.IN_REQ_MARKET_DATA_TYPE: self._req_market_data_type,
            m.IN_REQ_POSITIONS: self._req_positions,
            m.IN_REQ_ACCOUNT_SUMMARY: self._req_account_summary,
            m.IN_CANCEL_ACCOUNT_SUMMARY: lambda s, f: None,
            m.IN_CANCEL_POSITIONS: self._cancel_positions,
            m.IN_REQ_POSITIONS_MULTI: self._req_positions_multi,
            m.IN_CANCEL_POSITIONS_MULTI: lambda s, f: None,
            m.IN_REQ_ACCOUNT_UPDATES_MULTI: self._req_account_updates_multi,
            m.IN_CANCEL_ACCOUNT_UPDATES_MULTI: self._cancel_account_updates_multi,
            m.IN_REQ_COMPLETED_ORDERS: self._req_completed_orders,
        }

    def _handle(self, session: Session, fields: list[str]) -> None:
        now = self._stamp()
        if session.version == 0:
            self.journal.record("in", None, fields, now)
            self._handshake(session, fields)
            return
        self.journal.record("in", session.client_id, fields, now)
        msg_id = to_int(fields[0]) if fields else 0
        if not session.api_started:
            if msg_id == m.IN_START_API:
                self._start_api(session, fields)
            return
        limit = self.faults.pacing_limit
        if limit is not None and session.rate.add(time.monotonic()) > limit:
            session.error(-1, 100, f"Max rate of messages per second has been exceeded:max="
                                   f"{limit} rec={limit + 1} (1)")
            session.close()
            return
        handler = self._handlers.get(msg_id)
        if msg_id in self.faults.ignore_requests:
            handler = None  # fault: this request is never answered
        elif handler is None:
            log.debug("client %s: message %s not simulated; ignored", session.client_id, msg_id)
        else:
            try:
                handler(session, fields)
            except ProtocolError as exc:
                session.error(-1, 320, f"Error reading request: {exc}")
            except BrokerError as exc:
                session.error(-1, exc.code, exc.message)
        session.messages_seen += 1
        drop_after = self.faults.drop_after_messages
        if drop_after is not None and session.messages_seen >= drop_after:
            log.info("fault: dropping client %s after %s messages", session.client_id,
                     session.messages_seen)
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
        stamp = self.clock.now().strftime("%Y%m%d %H:%M:%S UTC")
        session.send([str(session.version), stamp])

    def _start_api(self, session: Session, fields: list[str]) -> None:
        client_id = to_int(fields[2]) if len(fields) > 2 else 0
        session.client_id = client_id
        if any(s is not session and s.client_id == client_id and s.api_started
               for s in self._sessions):
            session.error(-1, 326, "Unable to connect as the client id is already in use. "
                                   "Retry with a unique client id.")
            session.client_id = None
            session.close()
            return
        session.api_started = True
        session.send(m.managed_accounts(self.managed_accounts))
        session.send(m.next_valid_id(self.broker.next_order_id(client_id)))
        for code, text in FARM_NOTICES:
            session.error(-1, code, text)

    # ----- ids, accounts, positions -----------------------------------------------------
    def _req_ids(self, session: Session, fields: list[str]) -> None:
        session.send(m.next_valid_id(self.broker.next_order_id(session.client_id)))

    def _req_positions(self, session: Session, fields: list[str]) -> None:
        session.positions_sub = True
        for account in self.managed_accounts:
            for inst, qty, avg_cost in self.broker.positions(account):
                session.send(m.position(account, inst, qty, avg_cost))
        if not self.faults.withhold_position_end:
            session.send(m.position_end())

    def _cancel_positions(self, session: Session, fields: list[str]) -> None:
        session.positions_sub = False

    def _req_positions_multi(self, session: Session, fields: list[str]) -> None:
        req_id = to_int(fields[2])
        account = fields[3] if len(fields) > 3 else ""
        model = fields[4] if len(fields) > 4 else ""
        for acc in self._accounts_for(account):
            for inst, qty, avg_cost in self.broker.positions(acc):
                session.send(m.position_multi(req_id, acc, inst, qty, avg_cost, model))
        session.send(m.position_multi_end(req_id))

    def _accounts_for(self, account: str) -> list[str]:
        if account in ("", "All", "ALL"):
            return self.managed_accounts
        return [account] if account in self.broker.accounts else []

    def _req_account_updates(self, session: Session, fields: list[str]) -> None:
        subscribe = to_bool(fields[2]) if len(fields) > 2 else True
        account = fields[3] if len(fields) > 3 else ""
        if not subscribe:
            session.account_sub = None
            return
        if not account and len(self.managed_accounts) == 1:
            account = self.managed_accounts[0]
        if account not in self.broker.accounts:
            session.error(-1, 321, f"Error validating request:-'bB' : cause - account "
                                   f"{account!r} is not managed by this gateway")
            return
        session.account_sub = account
        self._send_account_values(session, account, changed_only=False)
        for row in self.broker.portfolio(account):
            session.send(m.portfolio_value(account, *row))
        session.send(m.account_time(self.clock.now().astimezone(EASTERN).strftime("%H:%M")))
        session.send(m.account_download_end(account))

    def _send_account_values(self, session: Session, account: str, changed_only: bool,
                             multi_req: int | None = None) -> None:
        for key, value, currency in self.broker.account_values(account):
            cache_key = (multi_req, account, key, currency)
            if changed_only and session.sent_values.get(cache_key) == value:
                continue
            session.sent_values[cache_key] = value
            if multi_req is None:
                session.send(m.account_value(key, value, currency, account))
            else:
                session.send(m.account_update_multi(multi_req, account, "", key, value,
                                                    currency))

    def _req_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        req_id = to_int(fields[2])
        account = fields[3] if len(fields) > 3 else ""
        accounts = self._accounts_for(account)
        session.multi_subs[req_id] = accounts
        for acc in accounts:
            self._send_account_values(session, acc, changed_only=False, multi_req=req_id)
        session.send(m.account_update_multi_end(req_id))

    def _cancel_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        session.multi_subs.pop(to_int(fields[2]), None)

    def _req_account_summary(self, session: Session, fields: list[str]) -> None:
        req_id = to_int(fields[2])
        tags = [t.strip() for t in (fields[4] if len(fields) > 4 else "").split(",") if t]
        for account in self.managed_accounts:
            acc = self.broker.accounts[account]
            summary = self.broker.account_summary_values(account)
            for tag in tags:
                if tag in summary:
                    session.send(m.account_summary(req_id, account, tag,
                                                   f"{summary[tag]:.2f}", acc.base_currency))
                elif tag == "AccountType":
                    session.send(m.account_summary(
                        req_id, account, tag,
                        "INDIVIDUAL" if acc.account_type == "cash" else "MARGIN", ""))
                elif tag.startswith("$LEDGER"):
                    wanted = tag.partition(":")[2] or acc.base_currency
                    for key, value, currency in self.broker.account_values(account):
                        if key in ("CashBalance", "TotalCashBalance", "NetLiquidationByCurrency",
                                   "StockMarketValue", "ExchangeRate") and \
                                (wanted == "ALL" or currency in (wanted, "BASE")):
                            session.send(m.account_summary(req_id, account, key, value,
                                                           currency))
        session.send(m.account_summary_end(req_id))

    # ----- contracts and market data ----------------------------------------------------
    def _resolve(self, spec: ContractSpec) -> list[Instrument]:
        return self.universe.resolve(spec.con_id, spec.symbol, spec.sec_type, spec.exchange,
                                     spec.primary_exchange, spec.currency)

    def _req_contract_details(self, session: Session, fields: list[str]) -> None:
        req_id = to_int(fields[2])
        matches = self._resolve(contract12(fields, 3))
        if not matches:
            session.error(req_id, 200, NO_SECURITY)
            return
        now = self.clock.now()
        for inst in matches:
            trading = self.hours.hours_text(inst, now, extended=True)
            liquid = self.hours.hours_text(inst, now, extended=False)
            session.send(m.contract_details(session.version, req_id, inst, trading, liquid))
        session.send(m.contract_details_end(req_id))

    def _req_market_data_type(self, session: Session, fields: list[str]) -> None:
        session.md_type = to_int(fields[2], 1) if len(fields) > 2 else 1

    def _req_mkt_data(self, session: Session, fields: list[str]) -> None:
        req = parse_market_data(fields)
        matches = self._resolve(req.contract)
        if len(matches) != 1:
            session.error(req.req_id, 200, NO_SECURITY if not matches else
                          "The contract description specified is ambiguous")
            return
        inst = matches[0]
        if self.faults.market_data_missing(inst.symbol):
            session.error(req.req_id, 354, NO_MARKET_DATA)
            return
        delayed = session.md_type in (3, 4)
        if self.faults.delayed_only and not delayed:
            session.error(req.req_id, 10167, "Requested market data is not subscribed. "
                                             "Displaying delayed market data.")
            delayed = True
        md_type = (4 if session.md_type == 4 else 3) if delayed else (
            2 if session.md_type == 2 else 1)
        session.send(m.market_data_type(req.req_id, md_type))
        sub = _MarketSub(inst.con_id, delayed)
        self._send_ticks(session, req.req_id, inst, sub, initial=True)
        if req.snapshot:
            session.send(m.tick_snapshot_end(req.req_id))
        else:
            session.market_subs[req.req_id] = sub

    def _cancel_mkt_data(self, session: Session, fields: list[str]) -> None:
        session.market_subs.pop(to_int(fields[2]), None)

    def _send_ticks(self, session: Session, req_id: int, inst: Instrument, sub: _MarketSub,
                    initial: bool) -> None:
        quote = self.prices.quote(inst)

        def tick(tick_type: int) -> int:
            return m.DELAYED_OFFSET[tick_type] if sub.delayed else tick_type

        if self.faults.is_stale(inst.symbol):
            if initial and quote.close:
                session.send(m.tick_price(req_id, tick(m.TICK_CLOSE), quote.close, 0))
            return
        prices = [(m.TICK_BID, quote.bid, quote.bid_size), (m.TICK_ASK, quote.ask, quote.ask_size),
                  (m.TICK_LAST, quote.last, quote.last_size)]
        if initial:
            prices += [(m.TICK_HIGH, quote.high, 0), (m.TICK_LOW, quote.low, 0),
                       (m.TICK_CLOSE, quote.close, 0), (m.TICK_OPEN, quote.open, 0)]
        for tick_type, price, size in prices:
            if price is None or (not initial and sub.last_sent.get(tick_type) == price):
                continue
            sub.last_sent[tick_type] = price
            session.send(m.tick_price(req_id, tick(tick_type), price, size))
        if initial:
            session.send(m.tick_size(req_id, tick(m.TICK_VOLUME), quote.volume))

    def _quotes_changed(self, con_ids: list[int]) -> None:
        wanted = set(con_ids)
        for session in list(self._sessions):
            for req_id, sub in session.market_subs.items():
                if sub.con_id in wanted:
                    self._send_ticks(session, req_id, self.universe.get(sub.con_id), sub,
                                     initial=False)

    def _req_historical(self, session: Session, fields: list[str]) -> None:
        req = parse_historical(fields)
        matches = self._resolve(req.contract)
        if len(matches) != 1:
            session.error(req.req_id, 200, NO_SECURITY if not matches else
                          "The contract description specified is ambiguous")
            return
        inst = matches[0]
        if req.bar_size.strip().lower() not in ("1 day", "1 days"):
            session.error(req.req_id, 162, "Historical Market Data Service error message:"
                          f"the simulator serves daily bars only, not {req.bar_size!r}")
            return
        days = _duration_days(req.duration)
        if days is None:
            session.error(req.req_id, 162, "Historical Market Data Service error message:"
                          f"invalid duration {req.duration!r}")
            return
        end = _parse_end(req.end) or self.clock.now()
        end_date = end.astimezone(ZoneInfo(inst.time_zone_id)).date()
        count = max(1, math.ceil(days * 5 / 7))
        bars = self.prices.daily_bars(inst, end_date, count)
        start_text = (end - dt.timedelta(days=days)).strftime("%Y%m%d %H:%M:%S")
        session.send(m.historical_data(req.req_id, start_text, end.strftime("%Y%m%d %H:%M:%S"),
                                       bars))

    # ----- orders -----------------------------------------------------------------------
    def _owner(self, order: SimOrder) -> Session | None:
        for session in self._sessions:
            if session.client_id == order.client_id and session.api_started:
                return session
        return None

    def _place_order(self, session: Session, fields: list[str]) -> None:
        request = parse_place_order(fields, session.version)
        if request.what_if:
            session.error(request.order_id, 201, "Order rejected - reason:what-if orders are "
                                                 "not supported by the simulator")
            return
        self.faults.orders_seen += 1
        drop = self.faults.drop_after_orders is not None and \
            self.faults.orders_seen == self.faults.drop_after_orders
        now = self.clock.now()
        try:
            order, modified = self.broker.place(
                session.client_id, request, now, self.managed_accounts,
                frozenset(self.faults.rejected_symbols))
        except BrokerError as exc:
            session.error(request.order_id, exc.code, exc.message)
            return
        if self.faults.withhold_acks and not modified:
            self._silent.add(order.perm_id)
        if drop:
            log.info("fault: dropping client %s after order %s", session.client_id,
                     self.faults.orders_seen)
            self._acknowledge(order)  # the order lives; the client never hears of it
            self._persist()
            session.abort()
            return
        if modified:
            self._send_order_state(order)
            self._fill_once(order)
            return
        if self.ack_delay > 0:
            self._later(self.ack_delay, self._acknowledge_later, order)
        else:
            self._acknowledge(order)

    def _acknowledge_later(self, order: SimOrder) -> None:
        self._acknowledge(order)
        self._after_change()

    def _later(self, delay: float, callback: Callable, *args) -> None:
        """Run callback after delay unless the gateway stops first."""
        def fire() -> None:
            self._timers.discard(handle)
            callback(*args)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    def _acknowledge(self, order: SimOrder) -> None:
        if not order.is_working or order.acknowledged:
            return
        self.broker.acknowledge(order, self.broker.is_open_for(order, self.clock.now()))
        self._send_order_state(order)
        self._schedule_eligible(order)

    def _schedule_eligible(self, order: SimOrder) -> None:
        remaining_delay = self.fill_delay - self.ack_delay
        if remaining_delay > 0:
            self._later(remaining_delay, self._make_eligible, order)
        else:
            self._make_eligible(order, persist=False)

    def _resume_restored_orders(self) -> None:
        """Working orders loaded from the state file keep working after a restart.

        The exchange holds them while the gateway is down: one whose acknowledgement was
        pending is acknowledged now (its client learns of it from reqOpenOrders on
        reconnect), one still inside its fill latency gets that latency again from now.
        """
        for order in self.broker.working_orders():
            if not order.acknowledged:
                self._acknowledge(order)
            elif not order.eligible:
                self._schedule_eligible(order)

    def _make_eligible(self, order: SimOrder, persist: bool = True) -> None:
        if not order.is_working:
            return
        self.broker.make_eligible(order)
        self._fill_once(order)
        if order.is_working and order.tif == "IOC":
            self._cancel_with_notice(order, "Cancelled: IOC remainder")
        if persist:
            self._after_change()

    def _send_order_state(self, order: SimOrder, to: Session | None = None) -> None:
        if to is None:
            if order.perm_id in self._silent:
                return
            to = self._owner(order)
        if to is None:
            return
        to.send(m.open_order(to.version, order, self.universe.get(order.con_id)))
        to.send(m.order_status(order))

    def _fill_once(self, order: SimOrder) -> Fill | None:
        if not order.eligible:
            return None
        fill = self.broker.try_fill(order, self.clock.now())
        if fill is not None:
            self._emit_fill(fill)
        return fill

    def _emit_fill(self, fill: Fill) -> None:
        order, execution = fill.order, fill.execution
        inst = self.universe.get(order.con_id)
        owner = None if order.perm_id in self._silent else self._owner(order)
        if owner is not None:
            copies = 2 if self.faults.duplicate_exec_details else 1
            for _ in range(copies):
                owner.send(m.exec_details(owner.version, -1, execution, inst))
                owner.send(m.commission_report(execution))
        self._push_account_changes(order.account, inst)
        if owner is not None:
            self._send_order_state(order, to=owner)

    def _push_account_changes(self, account: str, inst: Instrument) -> None:
        holding = self.broker.accounts[account].holdings.get(inst.con_id)
        qty = holding.quantity if holding else 0.0
        avg_cost = holding.avg_cost if holding else 0.0
        for session in list(self._sessions):
            if not session.api_started:
                continue
            if session.positions_sub:
                session.send(m.position(account, inst, qty, avg_cost))
            if session.account_sub == account:
                price = self.broker.mark(inst)
                session.send(m.portfolio_value(
                    account, inst, qty, price, qty * price, avg_cost,
                    qty * (price - avg_cost), holding.realized_pnl if holding else 0.0))
        self._dirty_accounts.add(account)

    def _push_dirty_account_values(self) -> None:
        """Account values of accounts changed since the last write, to every subscriber:
        only the values that changed (clients keep the rest), once per write."""
        if not self._dirty_accounts:
            return
        dirty, self._dirty_accounts = self._dirty_accounts, set()
        for session in list(self._sessions):
            if not session.api_started:
                continue
            for account in dirty:
                if session.account_sub == account:
                    self._send_account_values(session, account, changed_only=True)
                    session.send(m.account_time(
                        self.clock.now().astimezone(EASTERN).strftime("%H:%M")))
                for req_id, accounts in session.multi_subs.items():
                    if account in accounts:
                        self._send_account_values(session, account, changed_only=True,
                                                  multi_req=req_id)

    def _cancel_with_notice(self, order: SimOrder, text: str) -> None:
        self.broker.finish(order, "Cancelled", self.clock.now(), text)
        owner = None if order.perm_id in self._silent else self._owner(order)
        if owner is not None:
            owner.send(m.order_status(order))
            owner.error(order.order_id, 202, "Order Canceled - reason:")

    def _cancel_order(self, session: Session, fields: list[str]) -> None:
        order_id = to_int(fields[2])
        try:
            order = self.broker.cancel(session.client_id, order_id, self.clock.now())
        except BrokerError as exc:
            session.error(order_id, exc.code, exc.message)
            return
        session.send(m.order_status(order))
        session.error(order_id, 202, "Order Canceled - reason:")

    def _global_cancel(self, session: Session, fields: list[str]) -> None:
        for order in self.broker.working_orders():
            self._cancel_with_notice(order, "Cancelled: global cancel")

    def _req_open_orders(self, session: Session, fields: list[str]) -> None:
        for order in self.broker.working_orders():
            if order.client_id == session.client_id:
                self._send_order_state(order, to=session)
        session.send(m.open_order_end())

    def _req_all_open_orders(self, session: Session, fields: list[str]) -> None:
        for order in self.broker.working_orders():
            self._send_order_state(order, to=session)
        session.send(m.open_order_end())

    def _req_completed_orders(self, session: Session, fields: list[str]) -> None:
        managed = set(self.managed_accounts)
        for order in self.broker.orders.values():
            if not order.is_working and order.account in managed:
                session.send(m.completed_order(session.version, order,
                                               self.universe.get(order.con_id)))
        session.send(m.completed_orders_end())

    def _req_executions(self, session: Session, fields: list[str]) -> None:
        req_id, flt = parse_exec_filter(fields)
        for execution in self.broker.executions_for(session.client_id, flt, self.clock.now()):
            inst = self.universe.get(execution.con_id)
            session.send(m.exec_details(session.version, req_id, execution, inst))
            session.send(m.commission_report(execution))
        session.send(m.exec_details_end(req_id))

    # ----- background: price steps, partial fills, market open, DAY expiry -------------
    async def _run_market(self) -> None:
        while True:
            await asyncio.sleep(self.fill_interval)
            try:
                self._market_tick()
            except Exception:  # a bug here must not kill the market silently
                log.exception("simulator market tick failed")

    def _market_tick(self) -> None:
        now = self.clock.now()
        mono = time.monotonic()
        if mono - self._last_step >= self.tick_interval:
            sim_seconds = (mono - self._last_step) * getattr(self.clock, "speed", 1.0)
            self._last_step = mono
            changed = self.prices.step(sim_seconds, now)
            if changed:
                self._quotes_changed(changed)
        for order in self.broker.expire_day_orders(now):
            owner = None if order.perm_id in self._silent else self._owner(order)
            if owner is not None:
                owner.send(m.order_status(order))
                owner.error(order.order_id, 202, "Order Canceled - reason:DAY order expired")
        for order in self.broker.working_orders():
            if not order.acknowledged:
                continue
            if order.status == "PreSubmitted" and self.broker.is_open_for(order, now):
                self.broker.mark_submitted(order, True)
                self._send_order_state(order)
            self._fill_once(order)
        self._after_change()

    async def _connectivity_blip(self, restored: int, duration: float) -> None:
        for session in list(self._sessions):
            if session.api_started:
                session.error(-1, 1100, "Connectivity between IB and Trader Workstation has "
                                        "been lost.")
        await asyncio.sleep(duration)
        text = ("Connectivity between IB and Trader Workstation has been restored - data "
                "maintained.") if restored == 1102 else (
            "Connectivity between IB and Trader Workstation has been restored - data lost.")
        for session in list(self._sessions):
            if session.api_started:
                session.error(-1, restored, text)


_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)


def _duration_days(text: str) -> int | None:
    match = _DURATION.match(text or "")
    if not match:
        return None
    n, unit = int(match.group(1)), match.group(2).upper()
    if unit == "S":
        return max(1, math.ceil(n / 86400))
    return n * {"D": 1, "W": 7, "M": 30, "Y": 365}[unit]


def _parse_end(text: str) -> dt.datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    parts = text.replace("-", " ").split()
    try:
        stamp = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        try:
            stamp = dt.datetime.strptime(parts[0], "%Y%m%d")
        except ValueError:
            return None
    zone = parts[2] if len(parts) > 2 else "UTC"
    try:
        return stamp.replace(tzinfo=ZoneInfo(zone))
    except Exception:
        return stamp.replace(tzinfo=UTC)


class ThreadedSim:
    """A SimGateway running on its own event loop in a background thread."""

    def __init__(self, gateway: SimGateway, loop: asyncio.AbstractEventLoop,
                 thread: threading.Thread) -> None:
        self.gateway = gateway
        self._loop = loop
        self._thread = thread

    host = property(lambda self: self.gateway.host)
    port = property(lambda self: self.gateway.port)
    broker = property(lambda self: self.gateway.broker)
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

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="reconcile-sim",
                              daemon=True)
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
