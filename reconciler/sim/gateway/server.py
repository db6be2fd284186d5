"""The simulated IB Gateway: an asyncio TCP server speaking the TWS API socket protocol.

Responsible for the gateway's life cycle (listen, stop, load and persist the book through
the state file, the journal), wiring sessions to the dispatcher and the request handlers,
the background market loop (price steps, market open, fills, DAY expiry), latency timers,
and the public API tests use (``set_quote``, ``quote``, ``instrument``, ``faults``,
``book``, ``journal``, ``clock``). Must not import an IB client library: the simulator is
what the clients are tested against, never built from them (see ARCHITECTURE.md at the
repository root).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.sim import messages as m
from reconciler.sim.book import Book
from reconciler.sim.clock import SimClock
from reconciler.sim.faults import Faults
from reconciler.sim.gateway.dispatch import Dispatcher
from reconciler.sim.gateway.handlers.accounts import AccountHandlers
from reconciler.sim.gateway.handlers.contracts import ContractHandlers
from reconciler.sim.gateway.handlers.market_data import MarketDataHandlers
from reconciler.sim.gateway.handlers.orders import OrderHandlers
from reconciler.sim.gateway.session import Session
from reconciler.sim.hours import MarketHours
from reconciler.sim.journal import Journal
from reconciler.sim.market import Instrument
from reconciler.sim.prices import PriceModel
from reconciler.sim.scenario import Scenario, ScenarioError, account_only, load_scenario
from reconciler.sim.state import StateFile

log = logging.getLogger("reconciler.sim")
UTC = dt.UTC


class SimGateway:
    """An IB Gateway stand-in. Use ``async with SimGateway(...) as sim``."""

    def __init__(
        self,
        scenario: Scenario | str | Path | dict | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        accounts=(),
        seed: int | None = None,
        journal_path: str | Path | None = None,
        clock=None,
    ) -> None:
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
        self.hours = MarketHours(
            enabled=scenario.hours == "regular",
            outside_hours=scenario.outside_hours,
            holidays=scenario.holidays,
            early_closes=dict(scenario.early_closes),
        )
        self.book = Book(self.universe, self.prices, self.hours, scenario.fx, scenario.liquidity)
        self.faults = Faults(notify_clients=self._notify_clients)
        self.faults.update(scenario.faults)
        self.journal = Journal(journal_path)
        self.ack_delay = scenario.ack_delay
        self.fill_delay = scenario.fill_delay
        self.fill_interval = scenario.fill_interval
        self.tick_interval = scenario.tick_interval
        self.sessions: set[Session] = set()
        self._extra_accounts = accounts
        self._state = StateFile(state_file) if state_file else None
        self._persisted_version = -1
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._last_step = time.monotonic()
        self._stamp_cache: tuple[float, dt.datetime] = (0.0, dt.datetime.now(UTC))
        self._accounts = AccountHandlers(self)
        self._market_data = MarketDataHandlers(self)
        self._orders = OrderHandlers(self, self._accounts)
        self._dispatcher = Dispatcher(
            self,
            {
                **self._accounts.routes(),
                **ContractHandlers(self).routes(),
                **self._market_data.routes(),
                **self._orders.routes(),
                m.IN_REQ_CURRENT_TIME: lambda s, f: s.send(
                    m.current_time(int(self.clock.now().timestamp()))
                ),
            },
        )

    @property
    def broker(self) -> Book:
        """The simulated broker's book (the name tests and docs used before ``book``)."""
        return self.book

    @property
    def managed_accounts(self) -> list[str]:
        return list(self.book.accounts)

    # ----- lifecycle --------------------------------------------------------------------
    async def __aenter__(self) -> SimGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._state is not None:
            self._state.acquire()
        try:
            self._load_accounts()
            self.persist(force=True)
            self._server = await loop.create_server(
                lambda: Session(self), self.requested_host, self.requested_port
            )
        except BaseException:
            if self._state is not None:
                self._state.release()
            raise
        sock = self._server.sockets[0].getsockname()
        self.host, self.port = sock[0], sock[1]
        self._tasks.append(asyncio.create_task(self._run_market(), name="sim-market"))
        log.info(
            "simulator listening on %s:%s, accounts %s",
            self.host,
            self.port,
            ",".join(self.managed_accounts),
        )

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
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        self.persist(force=True)
        if self._state is not None:
            self._state.release()
        self.journal.flush()
        self.journal.close()

    def _load_accounts(self) -> None:
        state = self._state.load() if self._state is not None else None
        if state is not None:
            self.book.load_state(state)
            self._orders.resume_restored()
        else:
            for spec in self.scenario.accounts:
                self._add_account_spec(spec)
        for spec in account_only(self._extra_accounts):
            if spec.account_id not in self.book.accounts:
                self._add_account_spec(spec)
        if not self.book.accounts:
            raise ScenarioError(
                f"{self.scenario.source}: no accounts (give --accounts or "
                "accounts: in the scenario)"
            )

    def _add_account_spec(self, spec) -> None:
        self.book.add_account(spec.account_id, spec.cash, spec.base_currency, spec.account_type)
        for pos in spec.positions:
            matches = self.universe.resolve(
                pos.con_id, pos.symbol, "STK", "SMART", pos.primary_exchange, pos.currency
            )
            if len(matches) != 1:
                problem = (
                    "unknown symbol"
                    if not matches
                    else (
                        "ambiguous symbol ("
                        + ", ".join(f"{i.primary_exchange}/{i.currency}" for i in matches)
                        + "); add currency, primaryExchange or conId"
                    )
                )
                raise ScenarioError(
                    f"{self.scenario.source}: account {spec.account_id}: "
                    f"position {pos.symbol}: {problem}"
                )
            self.book.set_position(spec.account_id, matches[0].con_id, pos.quantity, pos.avg_cost)

    def persist(self, force: bool = False) -> None:
        """Write the state file if the book changed since the last write (or if forced)."""
        if self._state is None:
            return
        if not force and self.book.version == self._persisted_version:
            return
        self._state.write(self.book.to_state())
        self._persisted_version = self.book.version

    def after_change(self) -> None:
        self.persist()
        self.journal.flush()

    def stamp(self) -> dt.datetime:
        """The simulated time for journal entries, re-read at most once per millisecond."""
        mono = time.monotonic()
        if mono - self._stamp_cache[0] > 0.001:
            self._stamp_cache = (mono, self.clock.now())
        return self._stamp_cache[1]

    def later(self, delay: float, callback: Callable, *args) -> None:
        """Run callback after delay (seconds) unless the gateway stops first."""

        def fire() -> None:
            self._timers.discard(handle)
            callback(*args)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    # ----- sessions (SessionHost) -------------------------------------------------------
    def session_opened(self, session: Session) -> None:
        self.sessions.add(session)

    def session_closed(self, session: Session) -> None:
        self.sessions.discard(session)

    def handle(self, session: Session, fields: list[str]) -> None:
        self._dispatcher.handle(session, fields)

    def batch_handled(self) -> None:
        self.after_change()

    def record_sent(self, client_id: int | None, fields: list[str]) -> None:
        self.journal.record("out", client_id, fields, self.stamp())

    def before_write(self) -> None:
        self._accounts.push_dirty_values()

    def _notify_clients(self, code: int, text: str) -> None:
        for session in list(self.sessions):
            if session.api_started:
                session.error(-1, code, text)

    # ----- public test API --------------------------------------------------------------
    def instrument(self, symbol: str, currency: str = "", primary_exchange: str = "") -> Instrument:
        matches = self.universe.by_symbol(symbol, currency, primary_exchange)
        if len(matches) != 1 and not currency:
            matches = [i for i in matches if i.currency == "USD"] or matches
        if len(matches) != 1:
            raise KeyError(f"{symbol}: {'unknown' if not matches else 'ambiguous'} symbol")
        return matches[0]

    def set_quote(
        self,
        symbol: str,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        close: float | None = None,
        currency: str = "",
        primary_exchange: str = "",
    ) -> None:
        """Move a price; resting orders that become marketable fill, streams see new ticks."""
        inst = self.instrument(symbol, currency, primary_exchange)
        self.prices.set_quote(inst, bid=bid, ask=ask, last=last, close=close, now=self.clock.now())
        self.book.touch()
        self._market_data.quotes_changed([inst.con_id])
        self._orders.fill_marketable(inst.con_id)
        self.after_change()

    def quote(self, symbol: str, currency: str = ""):
        return self.prices.quote(self.instrument(symbol, currency))

    def session_client_ids(self) -> list[int]:
        return sorted(s.client_id for s in self.sessions if s.client_id is not None)

    def disconnect_client(self, client_id: int) -> None:
        for session in list(self.sessions):
            if session.client_id == client_id:
                session.abort()

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
            self._market_data.step_prices(sim_seconds, now)
        self._orders.work_orders(now)
        self.after_change()
