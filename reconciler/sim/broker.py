"""The simulated broker: accounts, cash by currency, positions, orders, matching, fills.

Responsible for the book of record inside the simulator: accepting or rejecting orders
(buying power, no shorting in cash accounts, unknown contracts, trading hours), matching
working orders against quotes (MKT, LMT, MIDPRICE; Adaptive rides on its order type), partial
fills from per-instrument liquidity, IBKR fixed-rate commissions, unique permIds and execIds,
account values, and the JSON-able state that persistence writes. Must not do I/O, sleep or
know the wire protocol: the gateway turns what this returns into messages.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field

from reconciler.sim.market import (
    DEFAULT_FX,
    Instrument,
    MarketHours,
    PriceModel,
    Quote,
    Universe,
    round_to_tick,
)

UTC = dt.UTC
WORKING = ("PreSubmitted", "Submitted")
DONE = ("Filled", "Cancelled", "Inactive")
SUPPORTED_ORDER_TYPES = ("MKT", "LMT", "MIDPRICE")
SUPPORTED_TIFS = ("DAY", "IOC", "GTC")
STATE_VERSION = 1


class BrokerError(Exception):
    """A request the broker refuses; `code` is the IB error code to send back."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CommissionSchedule:
    """IBKR fixed pricing: per share, floored at a minimum, capped at a percentage of value."""

    per_share: float = 0.005
    pct_of_value: float = 0.0
    minimum: float = 1.0
    max_pct: float | None = 0.01

    def for_quantity(self, shares: float, value: float) -> float:
        if shares <= 0:
            return 0.0
        fee = shares * self.per_share + value * self.pct_of_value
        fee = max(fee, self.minimum)
        if self.max_pct is not None:
            fee = min(fee, value * self.max_pct)
        return round(fee, 4)


DEFAULT_COMMISSIONS = {
    "USD": CommissionSchedule(),
    "*": CommissionSchedule(per_share=0.0, pct_of_value=0.0005, minimum=1.25, max_pct=None),
}


@dataclass
class Holding:
    con_id: int
    quantity: float
    avg_cost: float
    realized_pnl: float = 0.0


@dataclass
class Account:
    account_id: str
    base_currency: str = "USD"
    account_type: str = "cash"  # cash | margin
    cash: dict[str, float] = field(default_factory=dict)
    holdings: dict[int, Holding] = field(default_factory=dict)


@dataclass
class SimOrder:
    perm_id: int
    client_id: int
    order_id: int
    account: str
    con_id: int
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    outside_rth: bool
    order_ref: str
    created_at: str
    aux_price: float | None = None
    algo_strategy: str = ""
    algo_params: list[tuple[str, str]] = field(default_factory=list)
    exchange: str = "SMART"
    good_till_date: str = ""
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission_paid: float = 0.0
    completed_time: str = ""
    completed_status: str = ""
    expires_at: str = ""
    # Latency state is part of the book so it survives a restart from the state file: an
    # order the exchange acknowledged keeps working, one whose fill latency elapsed may fill.
    acknowledged: bool = False
    eligible: bool = False

    @property
    def remaining(self) -> float:
        return max(0.0, round(self.total_quantity - self.filled, 8))

    @property
    def is_working(self) -> bool:
        return self.status in WORKING

    @property
    def is_buy(self) -> bool:
        return self.action == "BUY"


@dataclass
class SimExecution:
    exec_id: str
    perm_id: int
    order_id: int
    client_id: int
    account: str
    con_id: int
    side: str  # BOT | SLD
    shares: float
    price: float
    time: str  # ISO 8601 UTC
    exchange: str
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    commission_currency: str
    realized_pnl: float | None

    @property
    def time_text(self) -> str:
        return dt.datetime.fromisoformat(self.time).strftime("%Y%m%d %H:%M:%S UTC")

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.time)


@dataclass
class Fill:
    order: SimOrder
    execution: SimExecution


def ib_time(at: dt.datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")


def marketable_price(order: SimOrder, quote: Quote, inst: Instrument) -> float | None:
    """The price this order would trade at now, or None when it must keep resting."""
    bid, ask = quote.bid, quote.ask
    if not bid or not ask:
        return None
    if order.order_type == "MKT":
        return ask if order.is_buy else bid
    if order.order_type == "LMT":
        if order.lmt_price is None:
            return None
        if order.is_buy:
            return ask if ask <= order.lmt_price + 1e-9 else None
        return bid if bid >= order.lmt_price - 1e-9 else None
    if order.order_type == "MIDPRICE":
        mid = round((bid + ask) / 2, 4)
        cap = order.lmt_price
        if cap is not None and cap > 0:
            if order.is_buy and mid > cap + 1e-9:
                return None
            if not order.is_buy and mid < cap - 1e-9:
                return None
        return mid
    return None


def fill_quantity(remaining: float, liquidity: float | None, increment: float) -> float:
    """Shares that can trade in one fill: all, or what liquidity allows, in whole increments."""
    qty = remaining if not liquidity or liquidity <= 0 else min(remaining, liquidity)
    if increment and increment > 0:
        qty = math.floor(qty / increment + 1e-9) * increment
    return round(qty, 8)


class Broker:
    """Accounts and the order book. Methods mutate state and return what happened."""

    def __init__(self, universe: Universe, prices: PriceModel, hours: MarketHours | None = None,
                 fx: dict[str, float] | None = None, default_liquidity: float | None = None,
                 commissions: dict[str, CommissionSchedule] | None = None) -> None:
        self.universe = universe
        self.prices = prices
        self.hours = hours or MarketHours()
        self.fx = {**DEFAULT_FX, **(fx or {})}
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

    # ----- accounts -------------------------------------------------------------------
    def add_account(self, account_id: str, cash: dict[str, float] | None = None,
                    base_currency: str = "USD", account_type: str = "cash") -> Account:
        account = Account(account_id, base_currency, account_type, dict(cash or {}))
        account.cash.setdefault(base_currency, 0.0)
        self.accounts[account_id] = account
        self.touch()
        return account

    def set_position(self, account_id: str, con_id: int, quantity: float,
                     avg_cost: float | None = None) -> None:
        inst = self._instrument(con_id)
        if avg_cost is None:
            avg_cost = self.prices.quote(inst).mark or inst.price
        account = self.accounts[account_id]
        if quantity == 0:
            account.holdings.pop(con_id, None)
        else:
            account.holdings[con_id] = Holding(con_id, float(quantity), float(avg_cost))
        self.touch()

    def touch(self) -> None:
        self.version += 1

    def fx_rate(self, currency: str, base: str = "USD") -> float:
        """Units of `base` per unit of `currency`."""
        if currency == base:
            return 1.0
        if currency not in self.fx or base not in self.fx:
            raise BrokerError(200, f"no exchange rate for {currency}/{base}")
        return self.fx[currency] / self.fx[base]

    def mark(self, inst: Instrument) -> float:
        return self.prices.quote(inst).mark or inst.price

    def account_summary_values(self, account_id: str) -> dict[str, float]:
        """The headline numbers in base currency."""
        account = self.accounts[account_id]
        base = account.base_currency
        cash = sum(amount * self.fx_rate(cur, base) for cur, amount in account.cash.items())
        long_value = short_value = unrealized = realized = 0.0
        for holding in account.holdings.values():
            inst = self._instrument(holding.con_id)
            value = holding.quantity * self.mark(inst) * self.fx_rate(inst.currency, base)
            if value >= 0:
                long_value += value
            else:
                short_value += value
            unrealized += (self.mark(inst) - holding.avg_cost) * holding.quantity * \
                self.fx_rate(inst.currency, base)
            realized += holding.realized_pnl * self.fx_rate(inst.currency, base)
        gross = long_value - short_value
        nlv = cash + long_value + short_value
        reserved = self.reserved_for_buys(account_id)
        if account.account_type == "margin":
            buying_power = max(0.0, 2 * nlv - gross)
        else:
            buying_power = max(0.0, cash)
        available = max(0.0, buying_power - reserved) if account.account_type == "cash" else \
            max(0.0, nlv - 0.5 * gross)
        return {
            "NetLiquidation": nlv,
            "TotalCashValue": cash,
            "SettledCash": cash,
            "GrossPositionValue": gross,
            "StockMarketValue": long_value + short_value,
            "EquityWithLoanValue": nlv,
            "BuyingPower": buying_power,
            "AvailableFunds": available,
            "ExcessLiquidity": available,
            "InitMarginReq": 0.5 * gross if account.account_type == "margin" else 0.0,
            "MaintMarginReq": 0.25 * gross if account.account_type == "margin" else 0.0,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": realized,
            "Leverage-S": gross / nlv if nlv > 0 else 0.0,
        }

    def account_values(self, account_id: str) -> list[tuple[str, str, str]]:
        """(key, value, currency) rows as updateAccountValue carries them."""
        account = self.accounts[account_id]
        base = account.base_currency
        summary = self.account_summary_values(account_id)
        rows: list[tuple[str, str, str]] = [
            ("AccountCode", account_id, ""),
            ("AccountType", "INDIVIDUAL" if account.account_type == "cash" else "MARGIN", ""),
            ("AccountOrGroup", account_id, base),
            ("Currency", base, base),
            ("RealCurrency", base, base),
            ("TradingType-S", "STKCASH" if account.account_type == "cash" else "STKMRGN", ""),
        ]
        for key, value in summary.items():
            rows.append((key, _money(value), base))
        currencies = sorted(set(account.cash) | {
            self._instrument(h.con_id).currency for h in account.holdings.values()
        } | {base})
        total_cash_base = 0.0
        for cur in currencies:
            amount = account.cash.get(cur, 0.0)
            stock_value = sum(
                h.quantity * self.mark(inst)
                for h in account.holdings.values()
                if (inst := self._instrument(h.con_id)).currency == cur
            )
            total_cash_base += amount * self.fx_rate(cur, base)
            rows += [
                ("CashBalance", _money(amount), cur),
                ("TotalCashBalance", _money(amount), cur),
                ("ExchangeRate", _rate(self.fx_rate(cur, base)), cur),
                ("StockMarketValue", _money(stock_value), cur),
                ("NetLiquidationByCurrency", _money(amount + stock_value), cur),
            ]
        rows += [
            ("CashBalance", _money(total_cash_base), "BASE"),
            ("TotalCashBalance", _money(total_cash_base), "BASE"),
            ("ExchangeRate", "1.00", "BASE"),
            ("NetLiquidationByCurrency", _money(summary["NetLiquidation"]), "BASE"),
            ("StockMarketValue", _money(summary["StockMarketValue"]), "BASE"),
        ]
        return rows

    def portfolio(self, account_id: str) -> list[tuple[Instrument, float, float, float, float,
                                                       float, float]]:
        """(instrument, quantity, market price, market value, avg cost, unrealized, realized)."""
        rows = []
        for holding in self.accounts[account_id].holdings.values():
            inst = self._instrument(holding.con_id)
            price = self.mark(inst)
            value = holding.quantity * price
            rows.append((inst, holding.quantity, price, value, holding.avg_cost,
                         value - holding.quantity * holding.avg_cost, holding.realized_pnl))
        return rows

    def positions(self, account_id: str) -> list[tuple[Instrument, float, float]]:
        return [
            (self._instrument(h.con_id), h.quantity, h.avg_cost)
            for h in self.accounts[account_id].holdings.values()
        ]

    # ----- orders ---------------------------------------------------------------------
    def next_order_id(self, client_id: int) -> int:
        return self.client_next_ids.get(client_id, 1)

    def reserve_order_ids(self, client_id: int, at_least: int) -> None:
        if at_least > self.client_next_ids.get(client_id, 1):
            self.client_next_ids[client_id] = at_least
            self.touch()

    def find(self, client_id: int, order_id: int) -> SimOrder | None:
        perm_id = self._by_client.get((client_id, order_id))
        return self.orders.get(perm_id) if perm_id else None

    def reserved_for_buys(self, account_id: str, exclude: int | None = None) -> float:
        account = self.accounts[account_id]
        total = 0.0
        for order in self._working.values():
            if order.account != account_id or not order.is_working or not order.is_buy:
                continue
            if order.perm_id == exclude:
                continue
            inst = self._instrument(order.con_id)
            total += order.remaining * self._estimate_price(order, inst) * \
                self.fx_rate(inst.currency, account.base_currency)
        return total

    def _estimate_price(self, order: SimOrder, inst: Instrument) -> float:
        quote = self.prices.quote(inst)
        if order.order_type in ("LMT", "MIDPRICE") and order.lmt_price:
            return order.lmt_price
        return quote.ask or quote.mark or inst.price

    def place(self, client_id: int, request, now: dt.datetime, managed: list[str],
              rejected_symbols: frozenset[str] = frozenset()) -> tuple[SimOrder, bool]:
        """Accept (or modify) an order; returns (order, is_modification). Raises BrokerError."""
        existing = self.find(client_id, request.order_id)
        if existing is not None:
            if not existing.is_working:
                raise BrokerError(103, f"Duplicate order id {request.order_id}")
            return self._modify(existing, request), True
        matches = self.universe.resolve(
            request.contract.con_id, request.contract.symbol, request.contract.sec_type,
            request.contract.exchange, request.contract.primary_exchange,
            request.contract.currency,
        )
        if len(matches) != 1:
            why = "No security definition has been found for the request" if not matches else \
                "The contract description specified is ambiguous"
            raise BrokerError(201, f"Order rejected - reason:{why}")
        inst = matches[0]
        account_id = request.account or (managed[0] if len(managed) == 1 else "")
        if not account_id:
            raise BrokerError(201, "Order rejected - reason:An account must be specified")
        if account_id not in self.accounts or account_id not in managed:
            raise BrokerError(201, f"Order rejected - reason:Account {account_id} is not "
                                   "managed by this gateway")
        self._validate(request, inst)
        if inst.symbol in rejected_symbols or inst.key in rejected_symbols:
            raise BrokerError(201, f"Order rejected - reason:Trading in {inst.symbol} is "
                                   "restricted (simulated rejection)")
        if self.hours.enabled and self.hours.outside_hours == "reject" and \
                not self.hours.is_open(inst, now, request.outside_rth):
            raise BrokerError(201, "Order rejected - reason:The order cannot be placed "
                                   "outside of regular trading hours")
        order = SimOrder(
            perm_id=self.next_perm_id, client_id=client_id, order_id=request.order_id,
            account=account_id, con_id=inst.con_id, action=request.action,
            total_quantity=request.total_quantity, order_type=request.order_type,
            lmt_price=request.lmt_price, aux_price=request.aux_price, tif=request.tif,
            outside_rth=request.outside_rth, order_ref=request.order_ref,
            created_at=now.isoformat(), algo_strategy=request.algo_strategy,
            algo_params=list(request.algo_params), good_till_date=request.good_till_date,
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

    def _validate(self, request, inst: Instrument) -> None:
        if request.action not in ("BUY", "SELL"):
            raise BrokerError(201, f"Order rejected - reason:invalid action {request.action!r}")
        if request.order_type not in SUPPORTED_ORDER_TYPES:
            raise BrokerError(201, f"Order rejected - reason:order type {request.order_type} "
                                   "is not supported by the simulator")
        if request.tif not in SUPPORTED_TIFS:
            raise BrokerError(201, f"Order rejected - reason:time in force {request.tif} is "
                                   "not supported by the simulator")
        if request.algo_strategy and request.algo_strategy != "Adaptive":
            raise BrokerError(201, f"Order rejected - reason:algo {request.algo_strategy} is "
                                   "not supported by the simulator")
        qty = request.total_quantity
        if not qty or qty <= 0 or not math.isfinite(qty):
            raise BrokerError(201, "Order rejected - reason:The order size must be positive")
        steps = qty / inst.size_increment
        if abs(steps - round(steps)) > 1e-6:
            raise BrokerError(201, f"Order rejected - reason:The order size {qty:g} is not a "
                                   f"multiple of the size increment {inst.size_increment:g}")
        if request.order_type == "LMT":
            if request.lmt_price is None or request.lmt_price <= 0:
                raise BrokerError(201, "Order rejected - reason:A limit price is required")
            if abs(round_to_tick(request.lmt_price, inst.min_tick) - request.lmt_price) > 1e-9:
                raise BrokerError(110, "The price does not conform to the minimum price "
                                       f"variation for this contract ({inst.min_tick:g}).")

    def _check_funds(self, order: SimOrder, inst: Instrument) -> None:
        account = self.accounts[order.account]
        rate = self.fx_rate(inst.currency, account.base_currency)
        if order.is_buy:
            price = self._estimate_price(order, inst)
            value = order.total_quantity * price
            cost = (value + self._commission(inst, order.total_quantity, value)) * rate
            summary = self.account_summary_values(order.account)
            available = summary["BuyingPower"] - self.reserved_for_buys(order.account)
            if cost > available + 1e-6:
                raise BrokerError(201, (
                    "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN "
                    f"THE DESIRED POSITION YOUR BUYING POWER [{available:.2f} "
                    f"{account.base_currency}] MUST EXCEED THE ORDER COST [{cost:.2f} "
                    f"{account.base_currency}]"
                ))
        elif account.account_type == "cash":
            held = account.holdings.get(inst.con_id)
            pending = sum(
                o.remaining for o in self._working.values()
                if o.account == order.account and o.con_id == inst.con_id and o.is_working
                and not o.is_buy
            )
            available = (held.quantity if held else 0.0) - pending
            if order.total_quantity > available + 1e-9:
                raise BrokerError(201, (
                    "Order rejected - reason:SHORT SALES ARE NOT PERMITTED IN A CASH ACCOUNT: "
                    f"selling {order.total_quantity:g} {inst.symbol} with {available:g} "
                    "available"
                ))

    def _modify(self, order: SimOrder, request) -> SimOrder:
        if request.total_quantity < order.filled:
            raise BrokerError(201, "Order rejected - reason:quantity below filled quantity")
        order.total_quantity = request.total_quantity
        order.lmt_price = request.lmt_price
        order.tif = request.tif
        order.order_ref = request.order_ref or order.order_ref
        self.touch()
        return order

    def cancel(self, client_id: int, order_id: int, now: dt.datetime) -> SimOrder:
        order = self.find(client_id, order_id)
        if order is None:
            raise BrokerError(10147, f"OrderId {order_id} that needs to be cancelled is not "
                                     "found.")
        if not order.is_working:
            raise BrokerError(10148, f"OrderId {order_id} that needs to be cancelled cannot "
                                     f"be cancelled, state: {order.status}.")
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

    def _commission(self, inst: Instrument, shares: float, value: float) -> float:
        schedule = self.commissions.get(inst.currency, self.commissions["*"])
        return schedule.for_quantity(shares, abs(value))

    def _execute(self, order: SimOrder, inst: Instrument, qty: float, price: float,
                 now: dt.datetime) -> SimExecution:
        account = self.accounts[order.account]
        prior_value = order.avg_fill_price * order.filled
        cum_qty = round(order.filled + qty, 8)
        cum_value = prior_value + qty * price
        commission = round(self._commission(inst, cum_qty, cum_value) - order.commission_paid, 4)
        order.commission_paid = round(order.commission_paid + commission, 4)
        order.filled = cum_qty
        order.avg_fill_price = round(cum_value / cum_qty, 6)
        order.last_fill_price = price
        signed = qty if order.is_buy else -qty
        cash_delta = -signed * price - commission
        account.cash[inst.currency] = round(account.cash.get(inst.currency, 0.0) + cash_delta, 4)
        realized = self._apply_to_holding(account, inst, signed, price, commission)
        self.prices.record_trade(inst.con_id, qty)
        exec_id = f"{order.perm_id:08x}.{self.exec_seq:08x}.01.01"
        self.exec_seq += 1
        execution = SimExecution(
            exec_id=exec_id, perm_id=order.perm_id, order_id=order.order_id,
            client_id=order.client_id, account=order.account, con_id=inst.con_id,
            side="BOT" if order.is_buy else "SLD", shares=qty, price=price,
            time=now.astimezone(UTC).isoformat(), exchange=inst.primary_exchange,
            cum_qty=cum_qty, avg_price=order.avg_fill_price, order_ref=order.order_ref,
            commission=commission, commission_currency=inst.currency, realized_pnl=realized,
        )
        self.executions.append(execution)
        if order.remaining <= 0:
            self.finish(order, "Filled", now, "Filled")
        self.touch()
        return execution

    def _apply_to_holding(self, account: Account, inst: Instrument, signed: float, price: float,
                          commission: float) -> float | None:
        """Update quantity and average cost (commission included, as IB does); realized P&L
        for the part that reduces the position."""
        holding = account.holdings.get(inst.con_id)
        if holding is None:
            holding = Holding(inst.con_id, 0.0, 0.0)
        qty = holding.quantity
        realized: float | None = None
        if qty == 0 or (qty > 0) == (signed > 0):
            new_qty = qty + signed
            cost = qty * holding.avg_cost + signed * price + commission * (1 if signed > 0 else -1)
            holding.avg_cost = cost / new_qty if new_qty else 0.0
            holding.quantity = round(new_qty, 8)
        else:
            closing = min(abs(signed), abs(qty))
            direction = 1 if qty > 0 else -1
            realized = round((price - holding.avg_cost) * closing * direction - commission, 4)
            holding.realized_pnl = round(holding.realized_pnl + realized, 4)
            new_qty = round(qty + signed, 8)
            if new_qty != 0 and (new_qty > 0) != (qty > 0):
                holding.avg_cost = price  # flipped through zero
            holding.quantity = new_qty
        if holding.quantity == 0:
            account.holdings.pop(inst.con_id, None)
        else:
            account.holdings[inst.con_id] = holding
        return realized

    def expire_day_orders(self, now: dt.datetime) -> list[SimOrder]:
        expired = []
        for order in list(self._working.values()):
            if order.is_working and order.expires_at and \
                    dt.datetime.fromisoformat(order.expires_at) <= now:
                self.finish(order, "Cancelled", now, "Cancelled: DAY order expired")
                expired.append(order)
        return expired

    def working_orders(self) -> list[SimOrder]:
        return [o for o in self._working.values() if o.is_working]

    def executions_for(self, client_id: int, flt, now: dt.datetime) -> list[SimExecution]:
        """Executions of the last 24 hours visible to this client (its own unless the filter
        names another client id), filtered as ExecutionFilter says."""
        since = now - dt.timedelta(hours=24)
        wanted_client = flt.client_id or client_id
        rows = []
        for execution in self.executions:
            if execution.client_id != wanted_client or execution.at < since:
                continue
            inst = self._instrument(execution.con_id)
            if flt.account and execution.account != flt.account:
                continue
            if flt.symbol and inst.symbol != flt.symbol.upper():
                continue
            if flt.sec_type and inst.sec_type != flt.sec_type.upper():
                continue
            if flt.side and execution.side != {"BUY": "BOT", "SELL": "SLD"}.get(
                    flt.side.upper(), flt.side.upper()):
                continue
            if flt.time and not _after(execution.at, flt.time):
                continue
            rows.append(execution)
        return rows

    def _instrument(self, con_id: int) -> Instrument:
        inst = self.universe.get(con_id)
        if inst is None:
            raise BrokerError(200, f"unknown conId {con_id}")
        return inst

    # ----- persistence ----------------------------------------------------------------
    def to_state(self) -> dict:
        return {
            "version": STATE_VERSION,
            "next_perm_id": self.next_perm_id,
            "exec_seq": self.exec_seq,
            "client_next_ids": {str(k): v for k, v in self.client_next_ids.items()},
            "accounts": {
                acc.account_id: {
                    "base_currency": acc.base_currency,
                    "account_type": acc.account_type,
                    "cash": acc.cash,
                    "holdings": [asdict(h) for h in acc.holdings.values()],
                }
                for acc in self.accounts.values()
            },
            "orders": [asdict(o) for o in self.orders.values()],
            "executions": [asdict(e) for e in self.executions],
            "prices": self.prices.snapshot(),
        }

    def load_state(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported simulator state version {state.get('version')!r}")
        self.next_perm_id = int(state["next_perm_id"])
        self.exec_seq = int(state["exec_seq"])
        self.client_next_ids = {int(k): int(v) for k, v in state["client_next_ids"].items()}
        self.accounts = {}
        for account_id, data in state["accounts"].items():
            account = Account(account_id, data["base_currency"], data["account_type"],
                              {k: float(v) for k, v in data["cash"].items()})
            for h in data["holdings"]:
                account.holdings[int(h["con_id"])] = Holding(**h)
            self.accounts[account_id] = account
        self.orders = {}
        self._by_client = {}
        for data in state["orders"]:
            data = dict(data)
            data["algo_params"] = [tuple(p) for p in data.get("algo_params", [])]
            order = SimOrder(**data)
            self.orders[order.perm_id] = order
            self._by_client[(order.client_id, order.order_id)] = order.perm_id
        self._working = {p: o for p, o in self.orders.items() if o.is_working}
        self.executions = [SimExecution(**e) for e in state["executions"]]
        self.prices.restore(state.get("prices", {}))
        self.touch()


def _money(value: float) -> str:
    return f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != 1.0 else "1.00"


def _after(at: dt.datetime, text: str) -> bool:
    """ExecutionFilter.time is 'yyyymmdd hh:mm:ss' (optionally with a zone); UTC assumed."""
    try:
        parts = text.split()
        stamp = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        return True
    return at >= stamp.replace(tzinfo=UTC)
