"""Value builders for tests: broker snapshots, portfolios, policies and limits in one line.

Responsible for making the frozen values of `reconciler.model.actual` and `reconciler.model.desired`
with sensible defaults, so a test states only what it is about. Must not do I/O or mock
anything: these are plain values, the same types the broker adapter and loader produce.

    book = Book(cash=10_000).hold("VTI", 100, price=250).quote_only("BND", price=72)
    plan = plan_account(portfolio(target("VTI", weight=0.5)), limits(), book.account_state(),
                        book.actual(), book.resolved(), now=NOW)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.decide.risk import EffectiveLimits, effective_limits
from reconciler.decide.sizing import estimate_commission
from reconciler.model.actual import (
    AccountState,
    ActualState,
    ContractInfo,
    Execution,
    OpenOrder,
    Position,
    Quote,
)
from reconciler.model.desired import (
    Band,
    DesiredState,
    Instrument,
    Portfolio,
    RiskPolicy,
    Target,
)
from reconciler.model.desired import ExecutionPolicy as ExecutionSettings
from reconciler.model.plan import PlannedOrder

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
ACCOUNT = "DU0000001"


def con_id_for(symbol: str, currency: str = "USD") -> int:
    """A stable, readable-enough conId per symbol (tests never depend on its value)."""
    return 100_000 + zlib.crc32(f"{symbol}:{currency}".encode()) % 900_000


def contract(
    symbol: str,
    *,
    currency: str = "USD",
    sec_type: str = "STK",
    min_tick: float = 0.01,
    size_increment: float = 1.0,
    con_id: int | None = None,
) -> ContractInfo:
    return ContractInfo(
        con_id=con_id if con_id is not None else con_id_for(symbol, currency),
        symbol=symbol,
        sec_type=sec_type,
        exchange="SMART",
        primary_exchange="ARCA" if currency == "USD" else "IBIS",
        currency=currency,
        min_tick=min_tick,
        size_increment=size_increment,
    )


def quote(
    info: ContractInfo,
    price: float,
    *,
    spread_bps: float = 2.0,
    time: dt.datetime | None = NOW,
    bid: float | None = None,
    ask: float | None = None,
    last: float | None = None,
    close: float | None = None,
    market_data_type: int = 1,
    two_sided: bool = True,
) -> Quote:
    """A quote around `price` (its mid) with a spread in basis points."""
    half = price * spread_bps / 20_000.0
    return Quote(
        con_id=info.con_id,
        symbol=info.symbol,
        bid=bid if bid is not None else (price - half if two_sided else None),
        ask=ask if ask is not None else (price + half if two_sided else None),
        last=last if last is not None else price,
        close=close if close is not None else price,
        time=time,
        market_data_type=market_data_type,
    )


def target(
    symbol: str, weight: float | None = None, quantity: float | None = None, currency: str = "USD"
) -> Target:
    return Target(Instrument(symbol, currency=currency), weight=weight, quantity=quantity)


def portfolio(*targets: Target, **changes: Any) -> Portfolio:
    """A portfolio for ACCOUNT with no band slack unless told (`band=Band(...)`)."""
    fields: dict[str, Any] = {
        "name": "core",
        "account": ACCOUNT,
        "targets": tuple(targets),
        "band": Band(absolute=0.01, relative=None),
    }
    if "execution" in changes and isinstance(changes["execution"], Mapping):
        changes["execution"] = ExecutionSettings(**changes["execution"])
    fields.update(changes)
    return Portfolio(**fields)


def policy(**changes: Any) -> RiskPolicy:
    return RiskPolicy(name=changes.pop("name", "default"), **changes)


def limits(env: Mapping[str, str] | None = None, halt: str | None = None, **changes: Any
           ) -> EffectiveLimits:
    return effective_limits(policy(**changes), env or {}, halt=halt)


class Book:
    """One account's broker picture, built fluently; `actual()` freezes it."""

    def __init__(
        self,
        account: str = ACCOUNT,
        *,
        cash: float = 100_000.0,
        base: str = "USD",
        fx: Mapping[str, float] | None = None,
        now: dt.datetime = NOW,
        nav: float | None = None,
        gross: float | None = None,
    ) -> None:
        self.account = account
        self.cash = cash
        self.base = base
        self.fx = dict(fx or {})
        self.now = now
        self.nav_override = nav
        self.gross_override = gross
        self.contracts: dict[str, ContractInfo] = {}
        self.quotes: dict[int, Quote] = {}
        self.positions: dict[int, float] = {}
        self.open_orders: list[OpenOrder] = []
        self.executions: list[Execution] = []

    # -- instruments
    def instrument(
        self,
        symbol: str,
        price: float | None,
        *,
        held: float = 0.0,
        currency: str = "USD",
        size_increment: float = 1.0,
        min_tick: float = 0.01,
        **quote_fields: Any,
    ) -> Book:
        info = contract(
            symbol, currency=currency, size_increment=size_increment, min_tick=min_tick
        )
        self.contracts[info.key] = info
        if price is not None:
            self.quotes[info.con_id] = quote(info, price, **quote_fields)
        if held:
            self.positions[info.con_id] = held
        return self

    def hold(self, symbol: str, quantity: float, price: float | None, **fields: Any) -> Book:
        return self.instrument(symbol, price, held=quantity, **fields)

    def quote_only(self, symbol: str, price: float | None, **fields: Any) -> Book:
        return self.instrument(symbol, price, **fields)

    def open_order(
        self, symbol: str, side: str, remaining: float, *, limit_price: float | None = None,
        order_ref: str = "",
    ) -> Book:
        info = self.contract_of(symbol)
        self.open_orders.append(
            OpenOrder(
                account=self.account, order_id=len(self.open_orders) + 1,
                perm_id=9_000 + len(self.open_orders), client_id=17, con_id=info.con_id,
                symbol=symbol, side=side, quantity=remaining, filled=0.0, remaining=remaining,
                order_type="LMT" if limit_price else "MKT", limit_price=limit_price,
                time_in_force="DAY", order_ref=order_ref, status="Submitted",
            )
        )
        return self

    def executed(self, symbol: str, side: str, shares: float, price: float) -> Book:
        info = self.contract_of(symbol)
        self.executions.append(
            Execution(
                exec_id=f"0001.{len(self.executions)}", account=self.account,
                con_id=info.con_id, symbol=symbol, side=side, shares=shares, price=price,
                time=self.now - dt.timedelta(hours=1), order_id=1, perm_id=1, order_ref="",
            )
        )
        return self

    # -- freezing
    def contract_of(self, symbol: str) -> ContractInfo:
        return next(c for c in self.contracts.values() if c.symbol == symbol)

    def _rate(self, currency: str) -> float:
        # The broker's NAV includes holdings whose rate our snapshot lacks: value them at par.
        return 1.0 if currency == self.base else self.fx.get(currency, 1.0)

    def _marks(self) -> Iterable[tuple[ContractInfo, float, float]]:
        by_con = {c.con_id: c for c in self.contracts.values()}
        for con_id, quantity in self.positions.items():
            info = by_con[con_id]
            q = self.quotes.get(con_id)
            price = q.reference_price if q and q.reference_price else 0.0
            yield info, quantity, price * self._rate(info.currency)

    def account_state(self) -> AccountState:
        marks = list(self._marks())
        nav = self.cash + sum(q * p for _, q, p in marks)
        gross = sum(abs(q) * p for _, q, p in marks)
        positions = tuple(
            Position(self.account, info.con_id, info.symbol, info.sec_type, info.currency,
                     quantity, avg_cost=0.0)
            for info, quantity, _ in marks
        )
        return AccountState(
            account=self.account,
            base_currency=self.base,
            net_liquidation=self.nav_override if self.nav_override is not None else nav,
            total_cash=self.cash,
            cash={self.base: self.cash},
            fx_rates={self.base: 1.0, **self.fx},
            gross_position_value=self.gross_override if self.gross_override is not None
            else gross,
            buying_power=max(self.cash, 0.0),
            available_funds=max(self.cash, 0.0),
            positions=positions,
        )

    def actual(self) -> ActualState:
        return actual_of(self)

    def resolved(self) -> dict[str, ContractInfo]:
        return dict(self.contracts)

    def ctx_parts(self) -> dict[str, Any]:
        """Keyword arguments for `RiskContext(...)` over this book."""
        return {
            "now": self.now,
            "account": self.account_state(),
            "quotes": dict(self.quotes),
            "contracts": {c.con_id: c for c in self.contracts.values()},
            "open_orders": tuple(self.open_orders),
            "executions": tuple(self.executions),
        }


def actual_of(*books: Book) -> ActualState:
    quotes: dict[int, Quote] = {}
    contracts: dict[int, ContractInfo] = {}
    for b in books:
        quotes.update(b.quotes)
        contracts.update({c.con_id: c for c in b.contracts.values()})
    return ActualState(
        snapshot_time=books[0].now,
        server_time=books[0].now,
        managed_accounts=tuple(b.account for b in books),
        accounts={b.account: b.account_state() for b in books},
        quotes=quotes,
        contracts=contracts,
        open_orders=tuple(o for b in books for o in b.open_orders),
        executions=tuple(e for b in books for e in b.executions),
        gateway="test",
    )


def desired_of(*portfolios: Portfolio, policies: Iterable[RiskPolicy] = ()) -> DesiredState:
    known = {p.name: p for p in policies}
    for p in portfolios:
        known.setdefault(p.risk_policy, policy(name=p.risk_policy))
    return DesiredState(
        portfolios=tuple(portfolios),
        risk_policies=known,
        schedules=(),
        content_hash="0" * 64,
        directory="desired_state",
        git_commit="abc1234",
        git_dirty=False,
    )


def with_quote(book: Book, symbol: str, **changes: Any) -> Book:
    """Replace fields of one instrument's quote (e.g. time=None, bid=None)."""
    info = book.contract_of(symbol)
    book.quotes[info.con_id] = dataclasses.replace(book.quotes[info.con_id], **changes)
    return book


def planned(
    book: Book,
    symbol: str,
    side: str,
    quantity: float,
    *,
    limit_price: float | None = None,
    leg: int = 1,
) -> PlannedOrder:
    """A planned order on `book`'s instrument, valued at its limit (else reference) price."""
    info = book.contract_of(symbol)
    q = book.quotes.get(info.con_id)
    price = limit_price or (q.reference_price if q and q.reference_price else 1.0)
    rate = 1.0 if info.currency == book.base else book.fx.get(info.currency, 1.0)
    notional = round(quantity * price * rate, 2)
    return PlannedOrder(
        leg=leg, account=book.account, key=info.key, symbol=symbol, con_id=info.con_id,
        sec_type=info.sec_type, exchange=info.exchange, primary_exchange=info.primary_exchange,
        currency=info.currency, side=side, quantity=quantity,
        order_type="LMT" if limit_price else "MKT", limit_price=limit_price,
        time_in_force="DAY", ttl_seconds=120.0, outside_rth=False,
        arrival_price=q.reference_price if q and q.reference_price else price,
        est_notional=notional, est_commission=estimate_commission(quantity, notional),
        reason=f"{symbol}: test",
    )
