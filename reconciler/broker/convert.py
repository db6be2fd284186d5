"""Pure conversions from IB client objects to the reconciler's own value types.

Responsible for turning `ib_async`/`ib_insync` objects (contract details, positions, tickers,
trades, fills, account values) into `reconciler.model.actual` values: unset sentinels become None,
BOT/SLD become BUY/SELL, every time becomes timezone-aware UTC, and account values are
checked for completeness. Works by attribute access, so both libraries' objects (and plain
stand-ins in tests) are accepted. Must not import a client library, send requests or read
the clock.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from reconciler.broker.errors import Candidate
from reconciler.model.actual import (
    AccountState,
    CompletedOrder,
    ContractInfo,
    Execution,
    OpenOrder,
    Position,
    Quote,
)

UNSET_DOUBLE = sys.float_info.max
UNSET_INTEGER = 2**31 - 1
BASE = "BASE"
# Account value of holdings (base currency) above which an empty positions report is a gap.
HELD_VALUE_TOLERANCE = 1.0

FINAL_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
WORKING_STATUSES = frozenset(
    {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}
)


# ---------------------------------------------------------------- scalars


def number(value: Any) -> float | None:
    """A float, or None for IB's 'no value' sentinels (unset max double, NaN, inf, '')."""
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(result) or result >= UNSET_DOUBLE:
        return None
    return result


def price(value: Any) -> float | None:
    """A quote price, or None: IB reports 'no price' as -1, 0, NaN or the unset sentinel."""
    result = number(value)
    if result is None or result <= 0:
        return None
    return result


def side(action: str) -> str:
    """BUY/SELL from an order action or an execution side (BOT/SLD)."""
    word = (action or "").strip().upper()
    if word in ("BUY", "BOT"):
        return "BUY"
    if word in ("SELL", "SLD", "SSHORT"):
        return "SELL"
    raise ValueError(f"unknown order side {action!r}")


def to_utc(value: dt.datetime | None, naive_zone: str = "UTC") -> dt.datetime | None:
    """UTC from an aware datetime, or from a naive one read in `naive_zone` (the gateway's)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(naive_zone))
    return value.astimezone(dt.UTC)


# ---------------------------------------------------------------- contracts


def contract_info(details: Any, requested_exchange: str | None = None) -> ContractInfo:
    """ContractInfo from ContractDetails; SMART stays SMART when it was asked for.

    sizeIncrement 0/unset (older gateways) means whole units.
    """
    c = details.contract
    exchange = c.exchange or ""
    if requested_exchange == "SMART" or not exchange:
        exchange = requested_exchange or exchange or "SMART"
    min_tick = number(getattr(details, "minTick", None))
    increment = number(getattr(details, "sizeIncrement", None))
    return ContractInfo(
        con_id=int(c.conId),
        symbol=c.symbol,
        sec_type=c.secType,
        exchange=exchange,
        primary_exchange=c.primaryExchange or "",
        currency=c.currency,
        min_tick=min_tick if min_tick and min_tick > 0 else 0.01,
        size_increment=increment if increment and increment > 0 else 1.0,
        long_name=getattr(details, "longName", "") or "",
        time_zone_id=getattr(details, "timeZoneId", "") or "",
        trading_hours=getattr(details, "tradingHours", "") or "",
        liquid_hours=getattr(details, "liquidHours", "") or "",
    )


def candidate(details: Any) -> Candidate:
    c = details.contract
    return Candidate(
        con_id=int(c.conId),
        symbol=c.symbol,
        sec_type=c.secType,
        exchange=c.exchange or "",
        primary_exchange=c.primaryExchange or "",
        currency=c.currency,
        long_name=getattr(details, "longName", "") or "",
    )


# ---------------------------------------------------------------- positions, quotes


def position(ib_position: Any) -> Position:
    """Position from the client's (account, contract, position, avgCost) tuple."""
    c = ib_position.contract
    return Position(
        account=ib_position.account,
        con_id=int(c.conId),
        symbol=c.symbol,
        sec_type=c.secType,
        currency=c.currency,
        quantity=float(ib_position.position),
        avg_cost=number(ib_position.avgCost) or 0.0,
    )


def quote(ticker: Any, con_id: int, symbol: str, market_data_type: int | None = None) -> Quote:
    """Quote from a ticker; a ticker that never received a price has None prices and time."""
    bid, ask = price(ticker.bid), price(ticker.ask)
    last, close = price(ticker.last), price(ticker.close)
    priced = any(v is not None for v in (bid, ask, last, close))
    mdt = market_data_type or int(getattr(ticker, "marketDataType", 1) or 1)
    return Quote(
        con_id=con_id,
        symbol=symbol,
        bid=bid,
        ask=ask,
        last=last,
        close=close,
        time=to_utc(ticker.time) if priced else None,
        market_data_type=mdt,
    )


# ---------------------------------------------------------------- orders and fills


def _order_filled(order: Any, status: Any) -> float:
    filled = number(getattr(status, "filled", None)) or 0.0
    from_order = number(getattr(order, "filledQuantity", None)) or 0.0
    return max(filled, from_order)


def open_order(trade: Any) -> OpenOrder:
    """OpenOrder from a Trade; remaining falls back to quantity - filled while working.

    A working order whose status message has not arrived would otherwise look fully
    done (remaining 0), hiding an order in flight.
    """
    order, status, contract = trade.order, trade.orderStatus, trade.contract
    quantity = float(number(order.totalQuantity) or 0.0)
    filled = _order_filled(order, status)
    remaining = number(status.remaining) or 0.0
    state = status.status or ""
    if state not in FINAL_STATUSES and remaining <= 0:
        remaining = max(quantity - filled, 0.0)
    return OpenOrder(
        account=order.account,
        order_id=int(order.orderId or status.orderId or 0),
        perm_id=int(order.permId or getattr(status, "permId", 0) or 0),
        client_id=int(order.clientId or getattr(status, "clientId", 0) or 0),
        con_id=int(contract.conId),
        symbol=contract.symbol,
        side=side(order.action),
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        order_type=order.orderType,
        limit_price=price(order.lmtPrice),
        time_in_force=order.tif or "",
        order_ref=order.orderRef or "",
        status=state,
    )


def completed_order(trade: Any) -> CompletedOrder:
    order, contract = trade.order, trade.contract
    state = getattr(trade, "orderState", None)
    completed_time = getattr(state, "completedTime", "") if state is not None else ""
    status = trade.orderStatus.status or (getattr(state, "completedStatus", "") if state else "")
    return CompletedOrder(
        account=order.account,
        perm_id=int(order.permId or 0),
        con_id=int(contract.conId),
        symbol=contract.symbol,
        side=side(order.action),
        quantity=float(number(order.totalQuantity) or 0.0),
        filled=_order_filled(order, trade.orderStatus),
        order_ref=order.orderRef or "",
        status=status,
        completed_time=completed_time or "",
    )


def has_commission(report: Any) -> bool:
    return report is not None and bool(getattr(report, "execId", ""))


def execution(fill: Any, report: Any = None, naive_zone: str = "UTC") -> Execution:
    """Execution from a Fill; `report` overrides the fill's own commission report.

    Commission stays None until the gateway's commissionReport for this execId arrived.
    """
    ex, contract = fill.execution, fill.contract
    report = report if has_commission(report) else fill.commissionReport
    commission = number(report.commission) if has_commission(report) else None
    time = to_utc(ex.time, naive_zone) or to_utc(fill.time, naive_zone)
    return Execution(
        exec_id=ex.execId,
        account=ex.acctNumber,
        con_id=int(contract.conId),
        symbol=contract.symbol,
        side=side(ex.side),
        shares=float(ex.shares),
        price=float(ex.price),
        time=time,
        order_id=int(ex.orderId or 0),
        perm_id=int(ex.permId or 0),
        order_ref=ex.orderRef or "",
        commission=commission,
        commission_currency=(report.currency or None) if commission is not None else None,
    )


# ---------------------------------------------------------------- account values


def account_state(
    account: str, values: Iterable[Any], positions: Iterable[Position]
) -> AccountState:
    """AccountState from account values (tag, value, currency) and this account's positions.

    Raises SnapshotError naming each value that is missing: an unknown NAV, cash balance or
    exchange rate must stop the cycle, never be read as zero.
    """
    from reconciler.broker.errors import SnapshotError

    by_tag: dict[str, dict[str, float]] = defaultdict(dict)
    real_currency = ""
    for v in values:
        if v.account != account or getattr(v, "modelCode", "") not in ("", None):
            continue
        if v.tag == "RealCurrency":
            real_currency = (v.value or "").strip().upper()
        amount = number(v.value)
        if amount is not None:
            by_tag[v.tag][v.currency or ""] = amount
    held = tuple(p for p in positions if p.account == account and p.quantity != 0)
    problems: list[str] = []

    nav = {c: x for c, x in by_tag.get("NetLiquidation", {}).items() if c not in ("", BASE)}
    base = _base_currency(by_tag, nav, real_currency)
    if base is None:
        problems.append(f"{account}: NetLiquidation (net liquidation value) not reported")
        raise SnapshotError(problems)

    def base_value(tag: str) -> float | None:
        found = by_tag.get(tag, {})
        return found.get(base, found.get(BASE))

    cash = _cash_by_currency(by_tag)
    if cash is None:
        problems.append(f"{account}: cash balances (TotalCashBalance/CashBalance) not reported")
        cash = {}
    fx = {c: x for c, x in by_tag.get("ExchangeRate", {}).items() if c not in ("", BASE) and x > 0}
    fx[base] = 1.0
    needed = {c for c, amount in cash.items() if amount != 0} | {p.currency for p in held}
    for currency in sorted(needed - set(fx)):
        problems.append(f"{account}: exchange rate {currency}->{base} not reported")

    fields: dict[str, float] = {}
    for name, tags in (
        ("gross_position_value", ("GrossPositionValue",)),
        ("buying_power", ("BuyingPower",)),
        ("available_funds", ("AvailableFunds", "FullAvailableFunds")),
    ):
        found = next((base_value(t) for t in tags if base_value(t) is not None), None)
        if found is None:
            problems.append(f"{account}: {tags[0]} not reported")
        else:
            fields[name] = found

    gross = fields.get("gross_position_value", 0.0)
    if not held and abs(gross) >= HELD_VALUE_TOLERANCE:
        # Gateways answer reqPositions with nothing at all while their position feed is
        # still loading or after a reset; the account values still count the holdings.
        problems.append(
            f"{account}: the positions report is empty but GrossPositionValue is "
            f"{gross:,.2f} {base}: positions are missing, never read as flat"
        )

    total_cash = base_value("TotalCashValue")
    if total_cash is None:
        total_cash = by_tag.get("TotalCashBalance", {}).get(BASE)
    if total_cash is None and not problems:
        total_cash = sum(amount * fx[c] for c, amount in cash.items())
    if problems:
        raise SnapshotError(problems)
    return AccountState(
        account=account,
        base_currency=base,
        net_liquidation=nav[base],
        total_cash=float(total_cash or 0.0),
        cash=dict(sorted(cash.items())),
        fx_rates=dict(sorted(fx.items())),
        gross_position_value=fields["gross_position_value"],
        buying_power=fields["buying_power"],
        available_funds=fields["available_funds"],
        positions=tuple(sorted(held, key=lambda p: (p.symbol, p.con_id))),
    )


def _base_currency(
    by_tag: Mapping[str, Mapping[str, float]], nav: Mapping[str, float], real_currency: str
) -> str | None:
    """The currency NetLiquidation is reported in; with several, RealCurrency or rate 1."""
    if len(nav) == 1:
        return next(iter(nav))
    if real_currency in nav:
        return real_currency
    rates = by_tag.get("ExchangeRate", {})
    ones = [c for c in nav if rates.get(c) == 1.0]
    return ones[0] if len(ones) == 1 else None


def _cash_by_currency(by_tag: Mapping[str, Mapping[str, float]]) -> dict[str, float] | None:
    for tag in ("TotalCashBalance", "CashBalance"):
        found = {c: x for c, x in by_tag.get(tag, {}).items() if c not in ("", BASE)}
        if found:
            return found
    return None
