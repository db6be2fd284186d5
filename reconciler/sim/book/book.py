"""The simulated broker's book of record: accounts, the order book, fills and executions.

Responsible for state and its changes: adding accounts and positions, accepting, modifying,
cancelling and finishing orders (account, funds, short-sale and trading-hours checks on top
of ``orders.validate_request``), acknowledging them and marking their fill latency elapsed,
filling working orders when ``matching`` says they trade, unique permIds and execIds, DAY
expiry, and the version counter persistence watches. Must not do I/O, sleep or know the
wire protocol: the gateway turns what this returns into messages (see ARCHITECTURE.md at
the repository root).
"""

from __future__ import annotations

import datetime as dt

from reconciler.sim.book import accounts as valuation
from reconciler.sim.book.accounts import Valuation
from reconciler.sim.book.matching import (
    DEFAULT_COMMISSIONS,
    CommissionSchedule,
    fill_quantity,
    marketable_price,
    settle_fill,
)
from reconciler.sim.book.orders import (
    AMBIGUOUS,
    NO_SECURITY,
    execution_selected,
    require_buying_power,
    require_shares,
    validate_request,
)
from reconciler.sim.book.persistence import BookState, dump_state, read_state
from reconciler.sim.book.records import (
    Account,
    BookError,
    Fill,
    Holding,
    SimExecution,
    SimOrder,
    ib_time,
)
from reconciler.sim.hours import MarketHours
from reconciler.sim.market import Instrument, Universe
from reconciler.sim.prices import PriceModel


class Book:
    """Accounts and the order book. Methods mutate state and return what happened."""

    def __init__(
        self,
        universe: Universe,
        prices: PriceModel,
        hours: MarketHours | None = None,
        fx: dict[str, float] | None = None,
        default_liquidity: float | None = None,
        commissions: dict[str, CommissionSchedule] | None = None,
    ) -> None:
        self.universe = universe
        self.prices = prices
        self.hours = hours or MarketHours()
        self.valuation = Valuation(universe, prices, fx)
        self.default_liquidity = default_liquidity
        self.commissions = {**DEFAULT_COMMISSIONS, **(commissions or {})}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, SimOrder] = {}
        self.executions: list[SimExecution] = []
        self.next_perm_id = 1_000_000_001
        self.exec_seq = 1
        self.client_next_ids: dict[int, int] = {}
        self._by_client: dict[tuple[int, int], int] = {}
        self._working: dict[int, SimOrder] = {}  # perm_id -> order, for O(working) scans
        self.version = 0  # bumps on every change (persistence flushes when it moved)

    def touch(self) -> None:
        self.version += 1

    # ----- accounts -------------------------------------------------------------------
    def add_account(
        self,
        account_id: str,
        cash: dict[str, float] | None = None,
        base_currency: str = "USD",
        account_type: str = "cash",
    ) -> Account:
        account = Account(account_id, base_currency, account_type, dict(cash or {}))
        account.cash.setdefault(base_currency, 0.0)
        self.accounts[account_id] = account
        self.touch()
        return account

    def set_position(
        self, account_id: str, con_id: int, quantity: float, avg_cost: float | None = None
    ) -> None:
        inst = self._instrument(con_id)
        if avg_cost is None:
            avg_cost = self.mark(inst)
        account = self.accounts[account_id]
        if quantity == 0:
            account.holdings.pop(con_id, None)
        else:
            account.holdings[con_id] = Holding(con_id, float(quantity), float(avg_cost))
        self.touch()

    def fx_rate(self, currency: str, base: str = "USD") -> float:
        """Units of `base` per unit of `currency`."""
        return self.valuation.fx_rate(currency, base)

    def mark(self, inst: Instrument) -> float:
        return self.valuation.mark(inst)

    def account_summary_values(self, account_id: str) -> dict[str, float]:
        return valuation.summary_values(
            self.accounts[account_id], self.valuation, self.reserved_for_buys(account_id)
        )

    def account_values(self, account_id: str) -> list[tuple[str, str, str]]:
        return valuation.account_value_rows(
            self.accounts[account_id], self.valuation, self.account_summary_values(account_id)
        )

    def portfolio(self, account_id: str):
        return valuation.portfolio_rows(self.accounts[account_id], self.valuation)

    def positions(self, account_id: str) -> list[tuple[Instrument, float, float]]:
        return valuation.position_rows(self.accounts[account_id], self.valuation)

    # ----- order ids and lookups --------------------------------------------------------
    def next_order_id(self, client_id: int) -> int:
        return self.client_next_ids.get(client_id, 1)

    def reserve_order_ids(self, client_id: int, at_least: int) -> None:
        if at_least > self.client_next_ids.get(client_id, 1):
            self.client_next_ids[client_id] = at_least
            self.touch()

    def find(self, client_id: int, order_id: int) -> SimOrder | None:
        perm_id = self._by_client.get((client_id, order_id))
        return self.orders.get(perm_id) if perm_id else None

    def working_orders(self) -> list[SimOrder]:
        return [o for o in self._working.values() if o.is_working]

    def reserved_for_buys(self, account_id: str, exclude: int | None = None) -> float:
        account = self.accounts[account_id]
        total = 0.0
        for order in self._working.values():
            if order.account != account_id or not order.is_working or not order.is_buy:
                continue
            if order.perm_id == exclude:
                continue
            inst = self._instrument(order.con_id)
            total += (
                order.remaining
                * self._estimate_price(order, inst)
                * self.fx_rate(inst.currency, account.base_currency)
            )
        return total

    def _estimate_price(self, order: SimOrder, inst: Instrument) -> float:
        quote = self.prices.quote(inst)
        if order.order_type in ("LMT", "MIDPRICE") and order.lmt_price:
            return order.lmt_price
        return quote.ask or quote.mark or inst.price

    # ----- order life cycle -------------------------------------------------------------
    def place(
        self,
        client_id: int,
        request,
        now: dt.datetime,
        managed: list[str],
        rejected_symbols: frozenset[str] = frozenset(),
    ) -> tuple[SimOrder, bool]:
        """Accept (or modify) an order; returns (order, is_modification). Raises BookError."""
        existing = self.find(client_id, request.order_id)
        if existing is not None:
            if not existing.is_working:
                raise BookError(103, f"Duplicate order id {request.order_id}")
            return self._modify(existing, request), True
        contract = request.contract
        matches = self.universe.resolve(
            contract.con_id,
            contract.symbol,
            contract.sec_type,
            contract.exchange,
            contract.primary_exchange,
            contract.currency,
        )
        if len(matches) != 1:
            why = NO_SECURITY if not matches else AMBIGUOUS
            raise BookError(201, f"Order rejected - reason:{why}")
        inst = matches[0]
        account_id = request.account or (managed[0] if len(managed) == 1 else "")
        if not account_id:
            raise BookError(201, "Order rejected - reason:An account must be specified")
        if account_id not in self.accounts or account_id not in managed:
            raise BookError(
                201, f"Order rejected - reason:Account {account_id} is not managed by this gateway"
            )
        validate_request(request, inst)
        if inst.symbol in rejected_symbols or inst.key in rejected_symbols:
            raise BookError(
                201,
                f"Order rejected - reason:Trading in {inst.symbol} is "
                "restricted (simulated rejection)",
            )
        if (
            self.hours.enabled
            and self.hours.outside_hours == "reject"
            and not self.hours.is_open(inst, now, request.outside_rth)
        ):
            raise BookError(
                201,
                "Order rejected - reason:The order cannot be placed "
                "outside of regular trading hours",
            )
        order = SimOrder(
            perm_id=self.next_perm_id,
            client_id=client_id,
            order_id=request.order_id,
            account=account_id,
            con_id=inst.con_id,
            action=request.action,
            total_quantity=request.total_quantity,
            order_type=request.order_type,
            lmt_price=request.lmt_price,
            aux_price=request.aux_price,
            tif=request.tif,
            outside_rth=request.outside_rth,
            order_ref=request.order_ref,
            created_at=now.isoformat(),
            algo_strategy=request.algo_strategy,
            algo_params=list(request.algo_params),
            good_till_date=request.good_till_date,
        )
        self._check_funds(order, inst)
        close = self.hours.session_close(inst, now) if order.tif == "DAY" else None
        order.expires_at = close.isoformat() if close else ""
        self.next_perm_id += 1
        self.orders[order.perm_id] = order
        self._working[order.perm_id] = order
        self._by_client[(client_id, order.order_id)] = order.perm_id
        self.reserve_order_ids(client_id, order.order_id + 1)
        self.touch()
        return order, False

    def _check_funds(self, order: SimOrder, inst: Instrument) -> None:
        account = self.accounts[order.account]
        if order.is_buy:
            value = order.total_quantity * self._estimate_price(order, inst)
            commission = self._commission(inst, order.total_quantity, value)
            cost = (value + commission) * self.fx_rate(inst.currency, account.base_currency)
            summary = self.account_summary_values(order.account)
            available = summary["BuyingPower"] - self.reserved_for_buys(order.account)
            require_buying_power(cost, available, account.base_currency)
        elif account.account_type == "cash":
            held = account.holdings.get(inst.con_id)
            pending = sum(
                o.remaining
                for o in self._working.values()
                if o.account == order.account
                and o.con_id == inst.con_id
                and o.is_working
                and not o.is_buy
            )
            require_shares(order, inst, (held.quantity if held else 0.0) - pending)

    def _modify(self, order: SimOrder, request) -> SimOrder:
        if request.total_quantity < order.filled:
            raise BookError(201, "Order rejected - reason:quantity below filled quantity")
        order.total_quantity = request.total_quantity
        order.lmt_price = request.lmt_price
        order.tif = request.tif
        order.order_ref = request.order_ref or order.order_ref
        self.touch()
        return order

    def cancel(self, client_id: int, order_id: int, now: dt.datetime) -> SimOrder:
        order = self.find(client_id, order_id)
        if order is None:
            raise BookError(10147, f"OrderId {order_id} that needs to be cancelled is not found.")
        if not order.is_working:
            raise BookError(
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot "
                f"be cancelled, state: {order.status}.",
            )
        self.finish(order, "Cancelled", now, "Cancelled by Trader")
        return order

    def finish(self, order: SimOrder, status: str, now: dt.datetime, text: str) -> None:
        order.status = status
        self._working.pop(order.perm_id, None)
        order.completed_time = ib_time(now)
        order.completed_status = text
        self.touch()

    def mark_submitted(self, order: SimOrder, open_now: bool) -> None:
        if order.is_working:
            order.status = "Submitted" if open_now else "PreSubmitted"
            self.touch()

    def acknowledge(self, order: SimOrder, open_now: bool) -> None:
        """The exchange has the order: Submitted, or PreSubmitted until the market opens."""
        order.acknowledged = True
        self.mark_submitted(order, open_now)
        self.touch()

    def make_eligible(self, order: SimOrder) -> None:
        """The order's fill latency has elapsed: from now on it fills when marketable."""
        if not order.eligible:
            order.eligible = True
            self.touch()

    def is_open_for(self, order: SimOrder, now: dt.datetime) -> bool:
        return self.hours.is_open(self._instrument(order.con_id), now, order.outside_rth)

    def expire_day_orders(self, now: dt.datetime) -> list[SimOrder]:
        expired = []
        for order in list(self._working.values()):
            if (
                order.is_working
                and order.expires_at
                and dt.datetime.fromisoformat(order.expires_at) <= now
            ):
                self.finish(order, "Cancelled", now, "Cancelled: DAY order expired")
                expired.append(order)
        return expired

    # ----- fills ------------------------------------------------------------------------
    def try_fill(self, order: SimOrder, now: dt.datetime) -> Fill | None:
        """One fill for a working order if it is marketable now (size capped by liquidity)."""
        if not order.is_working or not self.is_open_for(order, now):
            return None
        inst = self._instrument(order.con_id)
        price = marketable_price(order, self.prices.quote(inst), inst)
        if price is None:
            return None
        liquidity = inst.liquidity if inst.liquidity is not None else self.default_liquidity
        qty = fill_quantity(order.remaining, liquidity, inst.size_increment)
        if qty <= 0:
            return None
        return Fill(order, self._execute(order, inst, qty, price, now))

    def late_fill(self, order: SimOrder, now: dt.datetime) -> Fill | None:
        """One fill of a just-cancelled order at the current quote (the fillAfterCancel
        fault: an execution that was on its way when the cancel was confirmed)."""
        if order.is_working or order.remaining <= 0:
            return None
        inst = self._instrument(order.con_id)
        quote = self.prices.quote(inst)
        price = (quote.ask if order.is_buy else quote.bid) or quote.mark or inst.price
        liquidity = inst.liquidity if inst.liquidity is not None else self.default_liquidity
        qty = fill_quantity(order.remaining, liquidity, inst.size_increment)
        if qty <= 0:
            return None
        return Fill(order, self._execute(order, inst, qty, price, now))

    def _commission(self, inst: Instrument, shares: float, value: float) -> float:
        schedule = self.commissions.get(inst.currency, self.commissions["*"])
        return schedule.for_quantity(shares, abs(value))

    def _execute(
        self, order: SimOrder, inst: Instrument, qty: float, price: float, now: dt.datetime
    ) -> SimExecution:
        schedule = self.commissions.get(inst.currency, self.commissions["*"])
        exec_id = f"{order.perm_id:08x}.{self.exec_seq:08x}.01.01"
        self.exec_seq += 1
        execution = settle_fill(
            order, self.accounts[order.account], inst, qty, price, now, schedule, exec_id
        )
        self.prices.record_trade(inst.con_id, qty)
        self.executions.append(execution)
        if order.remaining <= 0:
            self.finish(order, "Filled", now, "Filled")
        self.touch()
        return execution

    def executions_for(self, client_id: int, flt, now: dt.datetime) -> list[SimExecution]:
        """Executions of the last 24 hours visible to this client (its own unless the filter
        names another client id), filtered as ExecutionFilter says."""
        since = now - dt.timedelta(hours=24)
        wanted_client = flt.client_id or client_id
        return [
            execution
            for execution in self.executions
            if execution.client_id == wanted_client
            and execution.at >= since
            and execution_selected(execution, self._instrument(execution.con_id), flt)
        ]

    def _instrument(self, con_id: int) -> Instrument:
        return self.valuation.instrument(con_id)

    # ----- persistence ------------------------------------------------------------------
    def to_state(self) -> dict:
        return dump_state(
            BookState(
                next_perm_id=self.next_perm_id,
                exec_seq=self.exec_seq,
                client_next_ids=self.client_next_ids,
                accounts=self.accounts,
                orders=list(self.orders.values()),
                executions=self.executions,
                prices=self.prices.snapshot(),
            )
        )

    def load_state(self, data: dict) -> None:
        state = read_state(data)
        self.next_perm_id = state.next_perm_id
        self.exec_seq = state.exec_seq
        self.client_next_ids = state.client_next_ids
        self.accounts = state.accounts
        self.orders = {order.perm_id: order for order in state.orders}
        self._by_client = {(o.client_id, o.order_id): o.perm_id for o in state.orders}
        self._working = {p: o for p, o in self.orders.items() if o.is_working}
        self.executions = state.executions
        self.prices.restore(state.prices)
        self.touch()
