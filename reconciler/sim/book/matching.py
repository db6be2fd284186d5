"""Matching and settlement rules of the simulated book: when and at what price an order
trades, how much of it, what it costs in commission, and what a fill does to a holding.

Responsible for the rules on values: the marketable price of MKT, LMT and MIDPRICE orders
against a quote, fill size from liquidity and size increments, IBKR fixed-rate commissions,
and settling one fill into the order, the account's cash and holding (average cost,
realized P&L). Must not keep state of its own, choose ids, or do I/O (see ARCHITECTURE.md
at the repository root).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from reconciler.sim.book.records import UTC, Account, Holding, SimExecution, SimOrder
from reconciler.sim.market import Instrument
from reconciler.sim.prices import Quote


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


def marketable_price(order: SimOrder, quote: Quote, inst: Instrument | None) -> float | None:
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


def settle_fill(
    order: SimOrder,
    account: Account,
    inst: Instrument,
    qty: float,
    price: float,
    now: dt.datetime,
    schedule: CommissionSchedule,
    exec_id: str,
) -> SimExecution:
    """Book one fill: the order's progress and commission (charged on the cumulative fill,
    so partial fills pay the minimum once), cash, holding; returns the execution record."""
    prior_value = order.avg_fill_price * order.filled
    cum_qty = round(order.filled + qty, 8)
    cum_value = prior_value + qty * price
    total_commission = schedule.for_quantity(cum_qty, abs(cum_value))
    commission = round(total_commission - order.commission_paid, 4)
    order.commission_paid = round(order.commission_paid + commission, 4)
    order.filled = cum_qty
    order.avg_fill_price = round(cum_value / cum_qty, 6)
    order.last_fill_price = price
    signed = qty if order.is_buy else -qty
    cash_delta = -signed * price - commission
    account.cash[inst.currency] = round(account.cash.get(inst.currency, 0.0) + cash_delta, 4)
    realized = apply_to_holding(account, inst, signed, price, commission)
    return SimExecution(
        exec_id=exec_id,
        perm_id=order.perm_id,
        order_id=order.order_id,
        client_id=order.client_id,
        account=order.account,
        con_id=inst.con_id,
        side="BOT" if order.is_buy else "SLD",
        shares=qty,
        price=price,
        time=now.astimezone(UTC).isoformat(),
        exchange=inst.primary_exchange,
        cum_qty=cum_qty,
        avg_price=order.avg_fill_price,
        order_ref=order.order_ref,
        commission=commission,
        commission_currency=inst.currency,
        realized_pnl=realized,
    )


def apply_to_holding(
    account: Account, inst: Instrument, signed: float, price: float, commission: float
) -> float | None:
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
