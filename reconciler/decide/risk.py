"""Risk: the effective limits and the ordered, named checks every planned order passes.

Responsible for
- `effective_limits`: the limits that bind one portfolio, from its git `RiskPolicy`, the
  `EXEC_RISK_*` environment overrides (which may only tighten git) and the store's
  out-of-band halt (which may only make trading stricter), each with the source it came from;
- `check_orders`: running a cycle's planned orders, in leg order, through the checks in the
  order of `CHECK_ORDER` (each gives nothing, a clip or a denial with a SCREAMING_SNAKE code
  and key=value detail) and returning the orders that may go out plus every decision taken.
  The checks that read only the quote run once per instrument (`_quote_denial`); the order
  and book checks are fused into one pass per order (`_Chain`), each limit read once per
  policy, because a plan of 10^5 orders runs them 10^5 times;
- `recheck_plan`: the same checks over a saved plan's orders at apply time, against the
  limits and broker picture of then (a saved plan is never trusted to be within limits).

Must not do I/O, talk to a broker, read the clock or print: everything it needs arrives in
`RiskContext` and `EffectiveLimits`, both immutable. Running totals (orders this cycle,
turnover, daily notional, gross exposure) live only inside one `check_orders` call.

Rules worth knowing (decided here, documented for reviewers):
- An order is valued for risk at the highest of its limit price, the ask and the reference
  price, converted to base currency: the most it could cost, never a flattering figure.
  Orders already working at the broker are valued the same way (`open_order_unit`, also what
  the planner reserves cash for open buys with); one without a quote uses its limit price.
  In gross exposure, what an open order would take off comes off at the reference price only.
- Position, leverage, REDUCING and restricted checks look at the *effective* position:
  held + signed remaining of open orders in flight + orders already accepted this cycle.
- Reducing risk is always allowed unless trading is HALTED: an order that moves the
  effective position towards zero without crossing it is never blocked by the position or
  leverage checks, by REDUCING, or by the restricted list (a restricted holding may be sold).
- A check that cannot be evaluated denies with its own code (PRICE_MISSING,
  QUOTE_DELAYED (delayed/frozen data: its true age is unknown; RiskPolicy allowDelayedData
  lifts it), PRICE_TIME_MISSING, QUOTE_NOT_TWO_SIDED, FX_RATE_MISSING, NAV_UNKNOWN,
  GROSS_EXPOSURE_UNKNOWN, DAILY_NOTIONAL_UNKNOWN).
- `on_breach: clip` shrinks an order to the largest size that fits, rounded down to the
  contract's size increment; a clip that leaves less than one increment, or less than the
  portfolio's minimum trade notional, is a denial. `on_breach: deny` drops the order.
  Checks only ever make an order smaller. State checks (HALTED) and unevaluable checks always
  deny. Limits are per account and per cycle (one `check_orders` call).
- Daily notional counts today's executions, the remaining notional of open orders (they may
  still fill today) and this cycle's accepted orders.
- A clip resizes with `reconciler.decide.sizing` (increments, notional, commission).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.decide.sizing import floor_to_increment, resize, size_increment
from reconciler.model.actual import (
    AccountState,
    ActualState,
    ContractInfo,
    Execution,
    OpenOrder,
    Quote,
    in_flight_by_con_id,
)
from reconciler.model.desired import RiskPolicy
from reconciler.model.plan import Plan, PlannedOrder, RiskDecision, constructor
from reconciler.model.settings import parse_bool, parse_float

# Codes, in the order the checks run.
TRADING_HALTED = "TRADING_HALTED"
TRADING_REDUCING_DENIES_INCREASE = "TRADING_REDUCING_DENIES_INCREASE"
INSTRUMENT_RESTRICTED = "INSTRUMENT_RESTRICTED"
PRICE_MISSING = "PRICE_MISSING"
QUOTE_NOT_LIVE = "QUOTE_NOT_LIVE"
PRICE_TIME_MISSING = "PRICE_TIME_MISSING"
QUOTE_DELAYED = "QUOTE_DELAYED"
PRICE_TOO_OLD = "PRICE_TOO_OLD"
QUOTE_NOT_TWO_SIDED = "QUOTE_NOT_TWO_SIDED"
SPREAD_TOO_WIDE = "SPREAD_TOO_WIDE"
FX_RATE_MISSING = "FX_RATE_MISSING"
NOTIONAL_EXCEEDS_MAX_PER_ORDER = "NOTIONAL_EXCEEDS_MAX_PER_ORDER"
POSITION_EXCEEDS_MAX_NOTIONAL = "POSITION_EXCEEDS_MAX_NOTIONAL"
NAV_UNKNOWN = "NAV_UNKNOWN"
GROSS_EXPOSURE_UNKNOWN = "GROSS_EXPOSURE_UNKNOWN"
LEVERAGE_EXCEEDS_MAX = "LEVERAGE_EXCEEDS_MAX"
ORDERS_PER_CYCLE_EXCEEDED = "ORDERS_PER_CYCLE_EXCEEDED"
CYCLE_TURNOVER_EXCEEDED = "CYCLE_TURNOVER_EXCEEDED"
DAILY_NOTIONAL_UNKNOWN = "DAILY_NOTIONAL_UNKNOWN"
DAILY_NOTIONAL_EXCEEDED = "DAILY_NOTIONAL_EXCEEDED"

# Float slack so that quantities sized exactly at a limit are not denied by rounding noise.
_EPS = 1e-9

ENV_MASTER_SWITCH = "EXEC_RISK_ENABLED"
ENV_OVERRIDES: Mapping[str, str] = {
    "max_order_notional": "EXEC_RISK_MAX_ORDER_NOTIONAL",
    "max_position_notional": "EXEC_RISK_MAX_POSITION_NOTIONAL",
    "max_leverage": "EXEC_RISK_MAX_LEVERAGE",
}


# ---------------------------------------------------------------- effective limits


@dataclass(frozen=True)
class Limit:
    """One effective limit: its value (None = not set) and where it came from.

    `source` is "git:RiskPolicy/<name>", "env:<VARIABLE>", "store:halt" or "unset"; `note`
    explains an override that was present but not applied (looser than git, switch off).
    """

    name: str
    value: Any
    source: str
    note: str = ""

    @property
    def is_set(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class EffectiveLimits:
    """Every limit binding one portfolio, after environment and store overrides."""

    policy: str
    trading_state: Limit
    max_order_notional: Limit
    max_position_notional: Limit
    max_leverage: Limit
    max_orders_per_cycle: Limit
    max_cycle_turnover: Limit
    max_daily_notional: Limit
    max_price_age_seconds: Limit
    max_spread: Limit
    restricted: Limit
    on_breach: Limit
    allow_delayed_data: Limit

    def rows(self) -> list[Limit]:
        """The limits in display order, for `reconcile show risk`."""
        return [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "policy"]

    @property
    def state(self) -> str:
        return str(self.trading_state.value)

    @property
    def clips(self) -> bool:
        return self.on_breach.value != "deny"

    def is_restricted(self, key: str, symbol: str) -> bool:
        names = self.restricted.value or ()
        return key in names or symbol in names


_GIT_LIMITS = (
    "max_order_notional",
    "max_position_notional",
    "max_leverage",
    "max_orders_per_cycle",
    "max_cycle_turnover",
    "max_daily_notional",
    "max_price_age_seconds",
    "max_spread",
)


def effective_limits(
    policy: RiskPolicy, risk_env: Mapping[str, str], halt: str | None = None
) -> EffectiveLimits:
    """Git limits always bind; `EXEC_RISK_*` may only tighten them; a halt forces HALTED.

    With `EXEC_RISK_ENABLED` true, each `EXEC_RISK_MAX_*` above 0 replaces the git value
    when it is tighter (or git sets none); 0 or empty means no override for that limit. The
    numbers are validated even when the switch is off, so a typo never hides: an invalid
    value raises `SettingsError` naming the variable.
    """
    git = f"git:RiskPolicy/{policy.name}"
    enabled = parse_bool(ENV_MASTER_SWITCH, risk_env.get(ENV_MASTER_SWITCH), False)

    limits: dict[str, Limit] = {}
    for name in _GIT_LIMITS:
        value = getattr(policy, name)
        limits[name] = Limit(name, value, git if value is not None else "unset")

    for name, variable in ENV_OVERRIDES.items():
        raw = risk_env.get(variable)
        env_value = parse_float(variable, raw)
        if env_value is None or env_value == 0:
            continue
        current = limits[name]
        if not enabled:
            limits[name] = dataclasses.replace(
                current, note=f"{variable}={raw.strip()} not applied: {ENV_MASTER_SWITCH} is off"
            )
        elif current.value is None or env_value < current.value:
            was = "unset" if current.value is None else f"{current.value:g}"
            limits[name] = Limit(name, env_value, f"env:{variable}", note=f"git: {was}")
        else:
            limits[name] = dataclasses.replace(
                current, note=f"{variable}={env_value:g} ignored: looser than git"
            )

    if halt is not None:
        trading_state = Limit(
            "trading_state", "HALTED", "store:halt", note=f"git: {policy.trading_state}; {halt}"
        )
    else:
        trading_state = Limit("trading_state", policy.trading_state, git)

    return EffectiveLimits(
        policy=policy.name,
        trading_state=trading_state,
        restricted=Limit("restricted", tuple(policy.restricted), git),
        on_breach=Limit("on_breach", policy.on_breach, git),
        allow_delayed_data=Limit(
            "allow_delayed_data",
            policy.allow_delayed_data,
            git if policy.allow_delayed_data else "default",
        ),
        **limits,
    )


# ---------------------------------------------------------------- context


@dataclass(frozen=True)
class RiskContext:
    """Everything the checks may look at for one account, frozen at planning time."""

    now: dt.datetime
    account: AccountState
    quotes: Mapping[int, Quote]
    contracts: Mapping[int, ContractInfo]
    open_orders: tuple[OpenOrder, ...] = ()
    executions: tuple[Execution, ...] = ()
    min_trade_notional: float = 0.0

    # Memo of `size_increment` (every order of a cycle asks several times); the accounts of one
    # snapshot may share it, as they share their contracts.
    increment_memo: dict[int, float] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_account(
        cls,
        actual: ActualState,
        account: str,
        *,
        now: dt.datetime,
        extra_contracts: Iterable[ContractInfo] = (),
        min_trade_notional: float = 0.0,
        contracts: Mapping[int, ContractInfo] | None = None,
        increment_memo: dict[int, float] | None = None,
    ) -> RiskContext:
        """The context of one account of a snapshot, as the planner and the apply-time
        re-check both build it (`extra_contracts`: resolved targets not yet held). The
        accounts of one plan pass what they share instead: `contracts` (made once by
        `merged_contracts`) and the `increment_memo`."""
        return cls(
            now=now,
            account=actual.accounts[account],
            quotes=actual.quotes,
            contracts=merged_contracts(actual, extra_contracts) if contracts is None else contracts,
            open_orders=actual.open_orders_for(account),
            executions=actual.executions_for(account),
            min_trade_notional=min_trade_notional,
            increment_memo={} if increment_memo is None else increment_memo,
        )

    def size_increment(self, con_id: int) -> float:
        found = self.increment_memo.get(con_id)
        if found is None:
            contract = self.contracts.get(con_id)
            found = size_increment(contract.size_increment if contract is not None else None)
            self.increment_memo[con_id] = found
        return found

    def fx_of(self, con_id: int) -> float | None:
        """Base-currency units per unit of the instrument's currency (its contract's, else its
        position's); None when neither is known or the account has no rate for it."""
        contract = self.contracts.get(con_id)
        currency = (
            contract.currency if contract is not None else self._position_currencies.get(con_id)
        )
        return self.account.fx_rate(currency) if currency is not None else None

    @functools.cached_property
    def _position_currencies(self) -> dict[int, str]:
        return {p.con_id: p.currency for p in self.account.positions}


def merged_contracts(
    actual: ActualState, extra_contracts: Iterable[ContractInfo]
) -> dict[int, ContractInfo]:
    """The snapshot's contracts, over the resolved targets' (`extra_contracts`) by conId."""
    return {**{c.con_id: c for c in extra_contracts}, **actual.contracts}


# ---------------------------------------------------------------- valuation


def _highest_usable(
    limit: float | None, ask: float | None, reference: float | None
) -> float | None:
    """The highest of the three that is usable: finite and positive (NaN fails both
    comparisons of `0 < p < inf`)."""
    best = limit if limit is not None and 0 < limit < math.inf else None
    if ask is not None and 0 < ask < math.inf and (best is None or ask > best):
        best = ask
    if reference is not None and 0 < reference < math.inf and (best is None or reference > best):
        best = reference
    return best


def risk_price(order: PlannedOrder, quote: Quote | None) -> float | None:
    """What risk values one unit at (order currency): the highest of limit, ask, reference."""
    if quote is None or quote.reference_price is None:
        return None
    return _highest_usable(order.limit_price, quote.ask, quote.reference_price)


def open_order_unit(ctx: RiskContext, order: OpenOrder) -> float | None:
    """Base-currency value of one unit of a working order, for every use (cash committed to
    open buys, gross exposure in flight, daily notional): the highest usable of its limit
    price, the ask and the reference price, like `risk_price`. None when it has no usable
    price, no known currency or no FX rate."""
    quote = ctx.quotes.get(order.con_id)
    price = _highest_usable(
        order.limit_price,
        quote.ask if quote is not None else None,
        quote.reference_price if quote is not None else None,
    )
    fx = ctx.fx_of(order.con_id)
    if price is None or fx is None:
        return None
    return price * fx


# ---------------------------------------------------------------- running book


class _Book:
    """Running state of one `check_orders` call; never escapes it. `copy` lets the planner
    run a common prefix of orders once and continue from it twice."""

    __slots__ = ("daily", "effective", "gross", "orders", "turnover")

    def __init__(
        self,
        effective: dict[int, float],
        gross: float | None,
        daily: float | None,
        orders: int = 0,
        turnover: float = 0.0,
    ) -> None:
        self.effective = effective
        self.gross = gross
        self.daily = daily
        self.orders = orders
        self.turnover = turnover

    def copy(self) -> _Book:
        return _Book(dict(self.effective), self.gross, self.daily, self.orders, self.turnover)

    def record(self, order: PlannedOrder, unit: float) -> None:
        """An accepted order joins the book (valued at its risk unit, as checked)."""
        effective = self.effective
        con_id = order.con_id
        quantity = order.quantity
        before = effective.get(con_id, 0.0)
        after = before + quantity if order.side == "BUY" else before - quantity
        effective[con_id] = after
        self.orders += 1
        notional = quantity * unit
        self.turnover += notional
        if self.daily is not None:
            self.daily += notional
        if self.gross is not None:
            self.gross += (abs(after) - abs(before)) * unit


# ---------------------------------------------------------------- the checks, in order

# Every code a check can give, in the order the checks run. The first check with a verdict
# on an order decides a denial; a clip shrinks the order and the chain goes on with it.
CHECK_ORDER = (
    TRADING_HALTED,
    TRADING_REDUCING_DENIES_INCREASE,
    INSTRUMENT_RESTRICTED,
    # the quote checks (`_quote_denial`): PRICE_MISSING, QUOTE_NOT_LIVE, PRICE_TIME_MISSING,
    # QUOTE_DELAYED, PRICE_TOO_OLD, QUOTE_NOT_TWO_SIDED, SPREAD_TOO_WIDE, FX_RATE_MISSING
    PRICE_MISSING,
    QUOTE_NOT_LIVE,
    QUOTE_DELAYED,
    PRICE_TIME_MISSING,
    PRICE_TOO_OLD,
    QUOTE_NOT_TWO_SIDED,
    SPREAD_TOO_WIDE,
    FX_RATE_MISSING,
    NOTIONAL_EXCEEDS_MAX_PER_ORDER,
    POSITION_EXCEEDS_MAX_NOTIONAL,
    NAV_UNKNOWN,
    GROSS_EXPOSURE_UNKNOWN,
    LEVERAGE_EXCEEDS_MAX,
    ORDERS_PER_CYCLE_EXCEEDED,
    CYCLE_TURNOVER_EXCEEDED,
    DAILY_NOTIONAL_UNKNOWN,
    DAILY_NOTIONAL_EXCEEDED,
)


def _reduces(effective: float, after: float) -> bool:
    """Moves the effective position towards zero without crossing it."""
    return abs(after) <= abs(effective) + _EPS and after * effective >= 0


def _quote_denial(
    order: PlannedOrder,
    quote: Quote | None,
    price: float | None,
    fx: float | None,
    limits: EffectiveLimits,
    ctx: RiskContext,
) -> tuple[str, dict[str, Any]] | None:
    """The checks that read only the quote, its risk price, the FX rate, the limits and the
    clock (never the book, the quantity or the position; they only deny), in order: the
    first failing one's code and detail, or None."""
    if quote is None or quote.reference_price is None or price is None:
        return PRICE_MISSING, {"con_id": order.con_id, "symbol": order.symbol}
    if quote.source != "live":
        # A portfolio market price may keep an instrument out of a plan (steady state), never
        # price an order that is sent.
        return QUOTE_NOT_LIVE, {"symbol": order.symbol, "source": quote.source}
    # Delayed or frozen quotes are stamped when received, so the age check cannot see that
    # they are minutes old: deny unless the policy allows delayed data.
    if quote.market_data_type != 1 and not limits.allow_delayed_data.value:
        return QUOTE_DELAYED, {"symbol": order.symbol, "market_data_type": quote.market_data_type}
    max_age = limits.max_price_age_seconds.value
    if max_age is not None:
        if quote.time is None:
            return PRICE_TIME_MISSING, {"symbol": order.symbol, "max_age": max_age}
        age = (ctx.now - quote.time).total_seconds()
        if age > max_age:
            return PRICE_TOO_OLD, {"max_age": max_age, "age": round(age, 1)}
    max_spread = limits.max_spread.value
    if max_spread is not None:
        spread = quote.spread
        if spread is None:
            return QUOTE_NOT_TWO_SIDED, {"bid": quote.bid, "ask": quote.ask, "max": max_spread}
        if spread > max_spread + _EPS:
            return SPREAD_TOO_WIDE, {"max": max_spread, "got": round(spread, 6)}
    if fx is None:
        return FX_RATE_MISSING, {"currency": order.currency, "base": ctx.account.base_currency}
    return None


class _Chain:
    """The checks of `CHECK_ORDER` for one account under one policy, fused into one pass per
    order: each limit is read and tested for being set once, here, so an unset limit costs
    a comparison per order and a check never builds a verdict object unless it fires.

    `run` takes an order with its risk price and FX rate (order currency, base per unit) and
    the effective position before it, and returns the order as it may go out (smaller after
    a clip) or None, appending every clip and denial to `decisions`. Reducing risk is never
    blocked by REDUCING, the restricted list, or the position and leverage caps.
    """

    __slots__ = (
        "clips", "ctx", "daily_cap", "halt_source", "halted", "leverage_cap", "limits",
        "nav", "nav_unknown", "order_cap", "orders_cap", "position_cap", "reducing",
        "restricted", "turnover_cap",
    )

    def __init__(self, ctx: RiskContext, limits: EffectiveLimits) -> None:
        self.ctx = ctx
        self.limits = limits
        self.halted = limits.state == "HALTED"
        self.halt_source = limits.trading_state.source
        self.reducing = limits.state == "REDUCING"
        self.restricted = frozenset(limits.restricted.value or ())
        self.order_cap = limits.max_order_notional.value
        self.position_cap = limits.max_position_notional.value
        self.leverage_cap = limits.max_leverage.value
        self.orders_cap = limits.max_orders_per_cycle.value
        self.turnover_cap = limits.max_cycle_turnover.value
        self.daily_cap = limits.max_daily_notional.value
        self.clips = limits.clips
        nav = ctx.account.net_liquidation
        self.nav = nav
        self.nav_unknown = (self.leverage_cap is not None or self.turnover_cap is not None) and (
            nav is None or not math.isfinite(nav) or nav <= 0
        )

    def run(
        self,
        order: PlannedOrder,
        quote: Quote | None,
        price: float | None,
        fx: float | None,
        effective: float,
        book: _Book,
        decisions: list[RiskDecision],
        *,
        quote_ok: bool,
    ) -> PlannedOrder | None:
        """`quote_ok`: `_quote_denial` is known to be None for this order (its instrument
        passed the quote checks under these limits and it has a price and a rate)."""
        quantity = order.quantity
        sign = 1 if order.side == "BUY" else -1
        unit = None if price is None or fx is None else price * fx
        if self.halted:
            detail = {"state": "HALTED", "source": self.halt_source}
            return _deny(TRADING_HALTED, order, quantity, detail, decisions)
        if self.reducing:
            after = effective + sign * quantity
            if not _reduces(effective, after):
                detail = {"state": "REDUCING", "position": effective, "after": after}
                most = abs(effective) if sign * effective < 0 else 0.0
                clipped = self._clip(
                    TRADING_REDUCING_DENIES_INCREASE, most, detail, order, quantity, unit,
                    decisions,
                )
                if clipped is None:
                    return None
                quantity = clipped
        restricted = self.restricted
        if restricted and (order.key in restricted or order.symbol in restricted):
            after = effective + sign * quantity
            if not _reduces(effective, after):
                detail = {"instrument": order.key, "position": effective, "after": after}
                most = abs(effective) if sign * effective < 0 else 0.0
                clipped = self._clip(
                    INSTRUMENT_RESTRICTED, most, detail, order, quantity, unit, decisions
                )
                if clipped is None:
                    return None
                quantity = clipped
        if not quote_ok:
            denial = _quote_denial(order, quote, price, fx, self.limits, self.ctx)
            if denial is not None:
                return _deny(denial[0], order, quantity, denial[1], decisions)
        assert unit is not None  # the quote checks passed: there is a price and a rate

        cap = self.order_cap
        if cap is not None and quantity * unit > cap + _EPS:
            detail = {"max": cap, "got": round(quantity * unit, 2)}
            clipped = self._clip(
                NOTIONAL_EXCEEDS_MAX_PER_ORDER, cap / unit, detail, order, quantity, unit,
                decisions,
            )
            if clipped is None:
                return None
            quantity = clipped
        cap = self.position_cap
        if cap is not None:
            after = effective + sign * quantity
            if not _reduces(effective, after) and abs(after) * unit > cap + _EPS:
                detail = {"max": cap, "got": round(abs(after) * unit, 2), "position": effective}
                clipped = self._clip(
                    POSITION_EXCEEDS_MAX_NOTIONAL, cap / unit - sign * effective, detail, order,
                    quantity, unit, decisions,
                )
                if clipped is None:
                    return None
                quantity = clipped
        if self.nav_unknown:
            return _deny(NAV_UNKNOWN, order, quantity, {"nav": self.nav}, decisions)
        cap = self.leverage_cap
        if cap is not None:
            after = effective + sign * quantity
            if not _reduces(effective, after):
                gross = book.gross
                if gross is None:
                    detail = {"reason": "open order without price or fx"}
                    return _deny(GROSS_EXPOSURE_UNKNOWN, order, quantity, detail, decisions)
                nav = self.nav
                leverage_after = (gross + (abs(after) - abs(effective)) * unit) / nav
                if leverage_after > cap + _EPS:
                    detail = {"max": cap, "got": round(leverage_after, 4), "nav": round(nav, 2)}
                    most = abs(effective) + (cap * nav - gross) / unit - sign * effective
                    clipped = self._clip(
                        LEVERAGE_EXCEEDS_MAX, most, detail, order, quantity, unit, decisions
                    )
                    if clipped is None:
                        return None
                    quantity = clipped
        cap = self.orders_cap
        if cap is not None and book.orders >= cap:
            detail = {"max": cap, "got": book.orders + 1}
            return _deny(ORDERS_PER_CYCLE_EXCEEDED, order, quantity, detail, decisions)
        cap = self.turnover_cap
        if cap is not None:
            nav = self.nav
            turnover_after = (book.turnover + quantity * unit) / nav
            if turnover_after > cap + _EPS:
                detail = {"max": cap, "got": round(turnover_after, 4), "nav": round(nav, 2)}
                clipped = self._clip(
                    CYCLE_TURNOVER_EXCEEDED, (cap * nav - book.turnover) / unit, detail, order,
                    quantity, unit, decisions,
                )
                if clipped is None:
                    return None
                quantity = clipped
        cap = self.daily_cap
        if cap is not None:
            daily = book.daily
            if daily is None:
                detail = {"reason": "execution or open order not valued"}
                return _deny(DAILY_NOTIONAL_UNKNOWN, order, quantity, detail, decisions)
            daily_after = daily + quantity * unit
            if daily_after > cap + _EPS:
                detail = {"max": cap, "got": round(daily_after, 2), "today": round(daily, 2)}
                clipped = self._clip(
                    DAILY_NOTIONAL_EXCEEDED, (cap - daily) / unit, detail, order, quantity, unit,
                    decisions,
                )
                if clipped is None:
                    return None
                quantity = clipped
        return resize(order, quantity)

    def _clip(
        self,
        code: str,
        most: float,
        detail: dict[str, Any],
        order: PlannedOrder,
        quantity: float,
        unit: float | None,
        decisions: list[RiskDecision],
    ) -> float | None:
        """A check's breach: the order shrunk to `most` (rounded down to its increment), or
        None when that is denied (policy says deny, less than one increment, or below the
        portfolio's minimum trade notional)."""
        ctx = self.ctx
        increment = ctx.size_increment(order.con_id)
        allowed = floor_to_increment(min(quantity, most), increment)
        if not self.clips:
            detail["on_breach"] = "deny"
            return _deny(code, order, quantity, detail, decisions)
        if allowed < increment - _EPS:
            detail["clipped_to"] = allowed
            detail["increment"] = increment
            return _deny(code, order, quantity, detail, decisions)
        if unit is not None and allowed * unit < ctx.min_trade_notional - _EPS:
            detail["clipped_notional"] = round(allowed * unit, 2)
            detail["min_trade"] = ctx.min_trade_notional
            return _deny(code, order, quantity, detail, decisions)
        detail["allowed"] = allowed
        decisions.append(
            _new_decision(code, "clip", order.account, order.key, order.side, quantity, allowed,
                          detail)
        )
        return allowed


_new_decision = constructor(RiskDecision)


def _deny(
    code: str,
    order: PlannedOrder,
    quantity: float,
    detail: dict[str, Any],
    decisions: list[RiskDecision],
) -> None:
    decisions.append(
        _new_decision(code, "deny", order.account, order.key, order.side, quantity, 0.0, detail)
    )


# ---------------------------------------------------------------- running the checks


def check_orders(
    orders: Sequence[PlannedOrder], ctx: RiskContext, limits: EffectiveLimits
) -> tuple[tuple[PlannedOrder, ...], tuple[RiskDecision, ...]]:
    """Run `orders` (in leg order) through every check; return survivors and decisions.

    Survivors keep their legs and may be smaller than planned (a clip); every clip and
    denial comes back as a `RiskDecision`. Deterministic and O(orders + open orders).
    """
    checker = Checker(ctx, limits)
    accepted, decisions = checker.run(orders, checker.open_book())
    return tuple(accepted), tuple(decisions)


class Checker:
    """`check_orders` in parts, for one account and policy: the chain of checks set up
    once, the running book opened once and copied where runs share a prefix of orders."""

    def __init__(
        self, ctx: RiskContext, limits: EffectiveLimits, quote_ok: set[int] | None = None
    ) -> None:
        self.ctx = ctx
        self.limits = limits
        self._chain = _Chain(ctx, limits)
        # Instruments that passed the quote checks (`_quote_denial`), which read only the
        # quote, its price, the FX rate, limits and the clock: every order of such an
        # instrument (with a price and a rate) skips them. `quote_ok` (con_ids) may be shared
        # by checkers with the same limits, quotes and now.
        self._quote_ok: set[int] = set() if quote_ok is None else quote_ok

    def open_book(self) -> _Book:
        return _open_book(self.ctx, self.limits)

    def run(
        self,
        orders: Iterable[PlannedOrder],
        book: _Book,
        *,
        known: frozenset[int] = frozenset(),
        accepted_before: frozenset[int] = frozenset(),
        clean: set[int] | None = None,
    ) -> tuple[list[PlannedOrder], list[RiskDecision]]:
        """`orders` through the chain, in order, updating `book`.

        `clean`, when given, collects the ids of the orders accepted as they were, with no
        decision. A later run over the orders an earlier run accepted (`accepted_before`,
        their ids), from a copy of the same starting book, may pass the clean ones as
        `known`. While the book is in step with the earlier run's (every order so far
        ended as the earlier run recorded it: denied orders never touched the book), a known
        order meets the book it was accepted from unchanged, so its verdict is known (the
        checks read only the order, limits, context and book) and it is recorded without
        running the chain. Any other order runs the chain; the book stays in step only when
        it was accepted before and is accepted unchanged again.
        """
        ctx, limits, chain = self.ctx, self.limits, self._chain
        quote_ok = self._quote_ok
        accepted: list[PlannedOrder] = []
        decisions: list[RiskDecision] = []
        quotes = ctx.quotes
        fx_rate = ctx.account.fx_rate
        effective = book.effective
        in_step = bool(known)
        record = book.record
        for order in orders:
            con_id = order.con_id
            quote = quotes.get(con_id)
            fx = fx_rate(order.currency)
            reference = None if quote is None else quote.reference_price
            price = (
                None if reference is None
                else _highest_usable(order.limit_price, quote.ask, reference)  # type: ignore[union-attr]
            )
            if in_step and id(order) in known:
                accepted.append(order)
                record(order, price * fx)  # type: ignore[operator]
                continue
            ok = False
            if price is not None and fx is not None:
                if con_id in quote_ok:
                    ok = True
                elif _quote_denial(order, quote, price, fx, limits, ctx) is None:
                    quote_ok.add(con_id)
                    ok = True
            taken = len(decisions)
            final = chain.run(
                order, quote, price, fx, effective.get(con_id, 0.0), book, decisions,
                quote_ok=ok,
            )
            if final is not None:
                accepted.append(final)
                record(final, price * fx)  # type: ignore[operator]
                if clean is not None and final is order and len(decisions) == taken:
                    clean.add(id(order))
            in_step = in_step and final is order and id(order) in accepted_before
        return accepted, decisions


def recheck_plan(
    plan: Plan,
    contexts: Mapping[str, RiskContext],
    limits: Mapping[str, EffectiveLimits],
) -> tuple[Plan, tuple[RiskDecision, ...]]:
    """A saved plan's orders through every check again, per account, in leg order.

    `contexts` and `limits` (by account) describe apply time: the fresh snapshot's
    positions, open orders, today's executions, quotes and NAV, and git + environment +
    halt limits. This is the planner's final pass over the same orders, so an unchanged
    world and unchanged limits give no new decision. Denied orders leave the plan, clipped
    ones keep their leg at the smaller size, and each new decision (detail `stage=apply`)
    joins its account's decisions. Returns the re-checked plan and the new decisions.
    """
    accounts = []
    taken: list[RiskDecision] = []
    for account in plan.accounts:
        if not account.orders:
            accounts.append(account)
            continue
        if account.account not in contexts or account.account not in limits:
            raise ValueError(f"no risk context or limits for account {account.account}")
        kept, decisions = check_orders(
            account.orders, contexts[account.account], limits[account.account]
        )
        decisions = tuple(
            dataclasses.replace(d, detail={**d.detail, "stage": "apply"}) for d in decisions
        )
        taken += decisions
        accounts.append(
            dataclasses.replace(account, orders=kept, decisions=account.decisions + decisions)
        )
    if not taken:
        return plan, ()
    return dataclasses.replace(plan, accounts=tuple(accounts)), tuple(taken)


def _open_book(ctx: RiskContext, limits: EffectiveLimits) -> _Book:
    held = ctx.account.held_by_con_id()
    effective = dict(held)
    for con_id, flying in in_flight_by_con_id(ctx.open_orders).items():
        effective[con_id] = effective.get(con_id, 0.0) + flying
    gross = _gross_with_in_flight(ctx, held, effective) if limits.max_leverage.is_set else 0.0
    daily = _daily_so_far(ctx) if limits.max_daily_notional.is_set else 0.0
    return _Book(effective=effective, gross=gross, daily=daily)


def _gross_with_in_flight(
    ctx: RiskContext, held: Mapping[int, float], effective: Mapping[int, float]
) -> float | None:
    """Broker-reported gross exposure, adjusted as if every open order filled.

    Exposure an open order adds counts at the most it may cost (`open_order_unit`); exposure
    it takes away comes off at the reference price, the mark the broker's gross holds those
    shares at (never at a limit above the market), and not at all without one. An open order
    that cannot be valued leaves gross unknown.
    """
    gross = ctx.account.gross_position_value
    if gross is None or not math.isfinite(gross):
        return None
    units: dict[int, float] = {}
    for open_order in ctx.open_orders:
        if open_order.con_id in units:
            continue
        unit = open_order_unit(ctx, open_order)
        if unit is None:
            return None
        units[open_order.con_id] = unit
    for con_id, unit in units.items():
        change = abs(effective[con_id]) - abs(held.get(con_id, 0.0))
        gross += change * (unit if change > 0 else _mark(ctx, con_id))
    return gross


def _mark(ctx: RiskContext, con_id: int) -> float:
    """Reference price in base currency; 0 when unknown (an exposure it cannot value is not
    taken off)."""
    quote = ctx.quotes.get(con_id)
    fx = ctx.fx_of(con_id)
    if quote is None or quote.reference_price is None or fx is None:
        return 0.0
    return quote.reference_price * fx


def _daily_so_far(ctx: RiskContext) -> float | None:
    """Today's executed notional plus what open orders may still add, in base currency."""
    total = 0.0
    for execution in ctx.executions:
        fx = ctx.fx_of(execution.con_id)
        if fx is None:
            return None
        total += abs(execution.shares) * execution.price * fx
    for open_order in ctx.open_orders:
        unit = open_order_unit(ctx, open_order)
        if unit is None:
            return None
        total += abs(open_order.remaining) * unit
    return total


__all__ = [
    "CHECK_ORDER",
    "Checker",
    "EffectiveLimits",
    "Limit",
    "RiskContext",
    "check_orders",
    "effective_limits",
    "merged_contracts",
    "open_order_unit",
    "recheck_plan",
    "risk_price",
]
