"""Sizing: how big an order is, what it is estimated to cost, and fitting buys to cash (pure).

Responsible for the one copy of every rule that turns money into quantities and back:
a contract's size increment, rounding a quantity down to it, rounding a limit price to the
tick grid, IBKR's commission estimate, resizing a planned order (notional and commission
follow), and fitting buys to the cash they may spend. The planner sizes a plan with it, risk
clips with it and the executor shrinks buys with it when sells raised less cash than planned,
so plan time and apply time cannot disagree. Must not do I/O, read the clock, judge risk
limits or print. See ARCHITECTURE.md.

Arithmetic is decimal: a float is read as the shortest decimal that reads back as the same
float (`0.1` is one tenth, not 0.1000000000000000055...), so 0.3 is exactly three increments
of 0.1 and a cent amount stays a cent amount.

Rules (decided here, documented for reviewers):
- Quantities round toward zero to the size increment (whole shares when the contract has
  none): buys never overshoot, sells never oversell. A quantity less than 1e-9 of a step below
  the next step counts as on it, because targets are computed in floats: 54.99999999999999
  shares of a 55-share target are 55.
- Limit prices round to the tick, conservatively: buys down (never pay more than intended),
  sells up (never receive less); never below one tick.
- Commission: IBKR's fixed US schedule, 0.005 per share, at least 1.00, at most 1% of the
  trade value, to 4 decimals; applied in base-currency units (an estimate outside USD).
- Notional is rounded to the cent conservatively: a half cent up for a buy (a cost), down for
  a sell (proceeds). A resized order keeps its unit value, notional = old notional × new /
  old quantity; its commission is estimated afresh for the new size.
- Cash fitting: when buys' notional + commission exceeds the budget, every buy is scaled by
  one factor, (budget − their commission) / their notional, rounded down, and its quantity
  rounded down to its increment (no float slack here: this is what may be spent). Commission
  only shrinks with size, so reserving today's estimate keeps the total inside. A scaled buy
  below its order's `min_trade_notional` is dropped. If rounding the new notionals to the cent
  still leaves the total above the budget, the largest buy gives up one increment at a time
  until it fits. The budget is read to the nearest 0.0001, the finest unit any cost is
  estimated in; below that is float noise from adding cash figures. A budget that is not a
  finite number buys nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Decimal,
    localcontext,
)

from reconciler.model.plan import PlannedOrder, evolve

# Float noise in computed quantities and prices: this close below a step counts as on it.
STEP_SLACK = Decimal("1e-9")
CENT = Decimal("0.01")
MONEY_UNIT = Decimal("0.0001")  # commission is estimated to 4 decimals, notional to cents

COMMISSION_PER_SHARE = Decimal("0.005")
COMMISSION_MINIMUM = Decimal("1")
COMMISSION_MAX_SHARE_OF_VALUE = Decimal("0.01")

_ZERO = Decimal(0)

# Float fast paths: amounts below this are exact enough in a float, and a float fraction this
# far from a rounding boundary cannot be on the other side of it. Quantities and tick ratios
# below 2**24 carry float noise under 1e-8 (the margin kept from a step, beyond STEP_SLACK);
# amounts below 2**40 carry noise far below their margin.
# Money (`estimate_notional`, `estimate_commission`): an amount scaled to whole units (cents,
# or 1/10,000 for commission) is rounded in floats when float noise cannot change the answer,
# else in decimals. The float product is within a few ulps of the exact decimal one; when its
# fraction is further than that from the half (the only place HALF_UP, HALF_DOWN and
# HALF_EVEN differ or float noise could tip it), rounding to nearest gives the decimal
# answer, and `n / 100` of a whole n is the float nearest the decimal n/100, as
# `float(Decimal)` gives. For commission, where the decimal rule's max/min could pick
# differently from floats (per-share fee, minimum and cap within noise), decimals decide.
_FAST_LIMIT = 2.0**40
_FAST_QUANTITY = 2.0**24
_FAST_FRACTION = 1 - 1e-8
_FAST_MARGIN = 1e-8


def to_decimal(value: float | Decimal) -> Decimal:
    """The shortest decimal that reads back as `value`: what was meant, not its binary error."""
    if isinstance(value, Decimal):
        return value
    return _decimal_of(float(value))


@functools.lru_cache(maxsize=4096)
def _decimal_of(value: float) -> Decimal:
    # Cached: ticks, increments, FX rates and prices repeat across a plan's orders.
    return Decimal(repr(value))


def size_increment(increment: float | None) -> float:
    """A contract's size increment, or 1 (whole shares, the conservative default) if it has
    none that can be used."""
    if increment is None or not math.isfinite(increment) or increment <= 0:
        return 1.0
    return float(increment)


def floor_to_increment(quantity: float, increment: float) -> float:
    """Largest multiple of `increment` not above `quantity` (0 for anything below one)."""
    if not quantity > 0 or not increment > 0:
        return 0.0
    if not math.isfinite(quantity) or not math.isfinite(increment):
        raise ValueError(f"cannot size {quantity!r} in increments of {increment!r}")
    if increment == 1.0 and quantity < _FAST_QUANTITY:
        # Whole shares, the common case: the float's fraction decides unless it lies within
        # float noise of the slack boundary; there the decimal rule below decides.
        whole = math.floor(quantity)
        if quantity - whole < _FAST_FRACTION:
            return float(whole)
    step = to_decimal(increment)
    steps = (to_decimal(quantity) / step + STEP_SLACK).to_integral_value(rounding=ROUND_FLOOR)
    return float(steps * step)


def round_to_tick(price: float, tick: float | None, *, down: bool) -> float:
    """Round to the tick grid: down for buy limits, up for sell limits; at least one tick."""
    if tick is None or not tick > 0:
        return price
    grid = to_decimal(tick)
    ratio = price / tick
    if 0 < ratio < _FAST_QUANTITY:
        # The float ratio is within a few ulps of the decimal one: away from a step (by more
        # than the slack and that noise) its floor or ceiling is the decimal rule's answer.
        whole = math.floor(ratio)
        fraction = ratio - whole
        if _FAST_MARGIN < fraction < 1 - _FAST_MARGIN:
            chosen = whole if down else whole + 1
            return float(max(chosen, 1) * grid)
    steps = to_decimal(price) / grid
    if down:
        steps = (steps + STEP_SLACK).to_integral_value(rounding=ROUND_FLOOR)
    else:
        steps = (steps - STEP_SLACK).to_integral_value(rounding=ROUND_CEILING)
    return float(max(steps, Decimal(1)) * grid)


def estimate_commission(quantity: float, notional: float) -> float:
    """IBKR fixed schedule: 0.005 per share, at least 1.00, at most 1% of trade value."""
    if not quantity > 0:
        return 0.0
    # `_fast_commission`, inlined: the planner asks once per order of a large plan.
    per_share = 0.005 * quantity
    cap = 0.01 * abs(notional)
    margin = (per_share + cap) * 1e-13 + 1e-12
    if not (
        abs(per_share - 1.0) <= margin or abs(per_share - cap) <= margin
        or abs(cap - 1.0) <= margin
    ):
        scaled = min(max(per_share, 1.0), cap) * 10_000.0
        if -_FAST_LIMIT < scaled < _FAST_LIMIT:
            whole = math.floor(scaled)
            fraction = scaled - whole
            if abs(fraction - 0.5) > abs(scaled) * 1e-13 + 1e-9:
                return (whole + 1 if fraction > 0.5 else whole) / 10_000
    per_share = max(COMMISSION_PER_SHARE * to_decimal(quantity), COMMISSION_MINIMUM)
    fee = min(per_share, COMMISSION_MAX_SHARE_OF_VALUE * abs(to_decimal(notional)))
    return float(fee.quantize(MONEY_UNIT, rounding=ROUND_HALF_EVEN))


def estimate_notional(quantity: float, price: float, fx: float, side: str) -> float:
    """Estimated notional in base currency, to the cent: a half cent up for a buy (a cost),
    down for a sell (proceeds)."""
    # `_fast_units`, inlined: the planner asks once per order of a large plan.
    scaled = quantity * price * fx * 100.0
    if -_FAST_LIMIT < scaled < _FAST_LIMIT:
        whole = math.floor(scaled)
        fraction = scaled - whole
        if abs(fraction - 0.5) > abs(scaled) * 1e-13 + 1e-9:
            return (whole + 1 if fraction > 0.5 else whole) / 100
    exact = to_decimal(quantity) * to_decimal(price) * to_decimal(fx)
    return float(_to_cent(exact, side))


def _to_cent(amount: Decimal, side: str) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP if side == "BUY" else ROUND_HALF_DOWN)


def resize(order: PlannedOrder, quantity: float) -> PlannedOrder:
    """The same order with another quantity; notional keeps its unit value, commission is
    estimated afresh."""
    if quantity == order.quantity:
        return order
    notional = float(_notional_at(order, to_decimal(quantity)))
    return evolve(
        order,
        quantity=quantity,
        est_notional=notional,
        est_commission=estimate_commission(quantity, notional),
    )


def _notional_at(order: PlannedOrder, quantity: Decimal) -> Decimal:
    if not order.quantity:
        return _ZERO
    exact = to_decimal(order.est_notional) * quantity / to_decimal(order.quantity)
    return _to_cent(exact, order.side)


def _cost(order: PlannedOrder) -> Decimal:
    return to_decimal(order.est_notional) + to_decimal(order.est_commission)


def _money(amount: float | Decimal) -> Decimal:
    if isinstance(amount, float) and not math.isfinite(amount):
        return _ZERO
    return to_decimal(amount).quantize(MONEY_UNIT, rounding=ROUND_HALF_EVEN)


# ---------------------------------------------------------------- cash fitting


@dataclass(frozen=True)
class CashFit:
    """Buys fitted to a budget: what to send, what was dropped, and by which factor."""

    orders: tuple[PlannedOrder, ...]  # in the order given, possibly smaller
    dropped: tuple[PlannedOrder, ...]  # as given: scaled to nothing or below minTradeNotional
    scaled: bool  # False when the buys fitted as they were
    scale: float  # the common factor (1.0 when not scaled)
    wanted: float  # notional + commission of the buys as given
    budget: float  # the budget as read (to 0.0001)

    @property
    def cost(self) -> float:
        """Notional + commission of the fitted buys."""
        return float(sum((_cost(o) for o in self.orders), _ZERO))


def fit_buys_to_cash(
    buys: Sequence[PlannedOrder],
    budget: float | Decimal,
    increments: Mapping[int, float],
) -> CashFit:
    """Buys that cost at most `budget` (notional + commission), by the rules above.

    `increments` maps conId to size increment (missing: whole shares). Each order's own
    `min_trade_notional` is the smallest notional it may be scaled to.
    """
    given = tuple(buys)
    cash = _money(budget)
    wanted = sum((_cost(o) for o in given), _ZERO)
    if wanted <= cash or not given:
        return CashFit(given, (), False, 1.0, float(wanted), float(cash))
    notional = sum((to_decimal(o.est_notional) for o in given), _ZERO)
    commission = sum((to_decimal(o.est_commission) for o in given), _ZERO)
    with localcontext() as exact_down:
        exact_down.rounding = ROUND_FLOOR  # a rounded factor or quantity never grows
        scale = max(_ZERO, (cash - commission) / notional) if notional > 0 else _ZERO
        steps = [
            (to_decimal(o.quantity) * scale / _step(o, increments)).to_integral_value()
            for o in given
        ]
    kept: dict[int, PlannedOrder] = {}  # by position in `given`
    for index, order in enumerate(given):
        fitted = _sized(order, steps[index] * _step(order, increments))
        if fitted is not None:
            kept[index] = fitted
    _trim_to(cash, kept, given, increments)
    return CashFit(
        orders=tuple(kept[i] for i in sorted(kept)),
        dropped=tuple(o for i, o in enumerate(given) if i not in kept),
        scaled=True,
        scale=float(scale),
        wanted=float(wanted),
        budget=float(cash),
    )


def fit_after_shortfall(
    buys: Sequence[PlannedOrder],
    shortfall: float,
    increments: Mapping[int, float],
    *,
    cash_for_buys: float | None = None,
) -> CashFit:
    """Apply time: sells raised `shortfall` less cash than planned.

    The plan fitted its buys inside `cash_for_buys` (its budget); less the shortfall, that is
    what they may still spend, and they are fitted to it by `fit_buys_to_cash`, the planner's
    own rule. Buys that still fit are left alone: a shortfall only bites when it eats into
    what the buys need. Without a known budget the buys are assumed to have used all of it.
    """
    given = tuple(buys)
    wanted = sum((_cost(o) for o in given), _ZERO)
    if not shortfall > 0:
        return CashFit(given, (), False, 1.0, float(wanted), float(wanted))
    if not math.isfinite(shortfall):
        return fit_buys_to_cash(given, _ZERO, increments)
    budget = wanted if cash_for_buys is None else to_decimal(cash_for_buys)
    left = budget - to_decimal(shortfall)
    if left >= wanted:
        return CashFit(given, (), False, 1.0, float(wanted), float(left))
    return fit_buys_to_cash(given, left, increments)


def _step(order: PlannedOrder, increments: Mapping[int, float]) -> Decimal:
    return to_decimal(size_increment(increments.get(order.con_id)))


def _sized(order: PlannedOrder, quantity: Decimal) -> PlannedOrder | None:
    """`order` resized to `quantity`, or None when that is nothing or below its min trade."""
    if quantity <= 0:
        return None
    resized = resize(order, float(quantity))
    if to_decimal(resized.est_notional) < to_decimal(order.min_trade_notional):
        return None
    return resized


def _trim_to(
    cash: Decimal,
    kept: dict[int, PlannedOrder],
    given: Sequence[PlannedOrder],
    increments: Mapping[int, float],
) -> None:
    """Cent rounding can leave the scaled total a little above the budget: take one increment
    at a time from the largest buy (the later one on a tie) until it fits."""
    while kept and sum((_cost(o) for o in kept.values()), _ZERO) > cash:
        index = max(kept, key=lambda i: (to_decimal(kept[i].est_notional), i))
        original = given[index]
        smaller = to_decimal(kept[index].quantity) - _step(original, increments)
        fitted = _sized(original, smaller)
        if fitted is None:
            del kept[index]
        else:
            kept[index] = fitted
