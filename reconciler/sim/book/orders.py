"""Order intake and reporting rules of the simulated book: what an order request must look
like to be accepted, and which executions a reqExecutions filter selects.

Responsible for the checks that need only the request and its instrument (action, order
type, time in force, algo, size and increment, limit price and tick), the rejections for
missing buying power or shares with the figures the caller computed, and the
ExecutionFilter semantics. Must not look at accounts, funds or the order book itself:
``Book`` computes those figures (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import datetime as dt
import math

from reconciler.sim.book.records import UTC, BookError, SimExecution
from reconciler.sim.market import Instrument, round_to_tick

SUPPORTED_ORDER_TYPES = ("MKT", "LMT", "MIDPRICE")
SUPPORTED_TIFS = ("DAY", "IOC", "GTC")
NO_SECURITY = "No security definition has been found for the request"
AMBIGUOUS = "The contract description specified is ambiguous"


def validate_request(request, inst: Instrument) -> None:
    """Refuse (BookError 201/110) an order request the simulated exchange would not take."""
    if request.action not in ("BUY", "SELL"):
        raise BookError(201, f"Order rejected - reason:invalid action {request.action!r}")
    if request.order_type not in SUPPORTED_ORDER_TYPES:
        raise BookError(
            201,
            f"Order rejected - reason:order type {request.order_type} "
            "is not supported by the simulator",
        )
    if request.tif not in SUPPORTED_TIFS:
        raise BookError(
            201,
            f"Order rejected - reason:time in force {request.tif} is "
            "not supported by the simulator",
        )
    if request.algo_strategy and request.algo_strategy != "Adaptive":
        raise BookError(
            201,
            f"Order rejected - reason:algo {request.algo_strategy} is "
            "not supported by the simulator",
        )
    qty = request.total_quantity
    if not qty or qty <= 0 or not math.isfinite(qty):
        raise BookError(201, "Order rejected - reason:The order size must be positive")
    steps = qty / inst.size_increment
    if abs(steps - round(steps)) > 1e-6:
        raise BookError(
            201,
            f"Order rejected - reason:The order size {qty:g} is not a "
            f"multiple of the size increment {inst.size_increment:g}",
        )
    if request.order_type == "LMT":
        if request.lmt_price is None or request.lmt_price <= 0:
            raise BookError(201, "Order rejected - reason:A limit price is required")
        if abs(round_to_tick(request.lmt_price, inst.min_tick) - request.lmt_price) > 1e-9:
            raise BookError(
                110,
                "The price does not conform to the minimum price "
                f"variation for this contract ({inst.min_tick:g}).",
            )


def require_buying_power(cost: float, available: float, currency: str) -> None:
    """Refuse (201) a buy whose cost, commission included, exceeds the buying power left."""
    if cost > available + 1e-6:
        raise BookError(
            201,
            "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN "
            f"THE DESIRED POSITION YOUR BUYING POWER [{available:.2f} "
            f"{currency}] MUST EXCEED THE ORDER COST [{cost:.2f} "
            f"{currency}]",
        )


def require_shares(order, inst: Instrument, available: float) -> None:
    """Refuse (201) a sale in a cash account beyond the shares held and not already offered."""
    if order.total_quantity > available + 1e-9:
        raise BookError(
            201,
            "Order rejected - reason:SHORT SALES ARE NOT PERMITTED IN A CASH ACCOUNT: "
            f"selling {order.total_quantity:g} {inst.symbol} with {available:g} "
            "available",
        )


def execution_selected(execution: SimExecution, inst: Instrument, flt) -> bool:
    """Whether an ExecutionFilter (account, symbol, secType, side, time) keeps this fill."""
    if flt.account and execution.account != flt.account:
        return False
    if flt.symbol and inst.symbol != flt.symbol.upper():
        return False
    if flt.sec_type and inst.sec_type != flt.sec_type.upper():
        return False
    if flt.side and execution.side != {"BUY": "BOT", "SELL": "SLD"}.get(
        flt.side.upper(), flt.side.upper()
    ):
        return False
    return not (flt.time and not _after(execution.at, flt.time))


def _after(at: dt.datetime, text: str) -> bool:
    """ExecutionFilter.time is 'yyyymmdd hh:mm:ss' (optionally with a zone); UTC assumed."""
    try:
        parts = text.split()
        stamp = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        return True
    return at >= stamp.replace(tzinfo=UTC)
