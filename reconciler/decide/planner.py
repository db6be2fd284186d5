"""Planner: from desired state and a broker snapshot to a risk-checked `Plan` (pure).

Responsible for turning each portfolio's targets into orders (`plan_account`) and the
accounts of a desired state into one plan artifact (`build_plan`): target quantities, bands,
minimum trade, size increments, sells before buys, buy-only mode, unmanaged holdings, open
orders in flight, cash sufficiency, limit prices, estimated notional and commission, a reason
for every order, then `risk.check_orders`. Must not do I/O, read the clock (`now` is passed
in), talk to a broker or print; executing a plan is someone else's job.

Rules (decided here, documented for reviewers):
- Capital is the portfolio's `capital` when set, else the account's NAV; a weight is a share
  of capital, and the cash reserve (a share of capital) is never spent on buys.
- An instrument outside its band (see `reconciler.decide.drift`) trades all the way to its target,
  not to the band edge. The gap is measured from the *effective* position (held + signed
  remaining of open orders), so an open order is never doubled.
- Quantities round toward zero to the contract's size increment (whole shares by default,
  `reconciler.decide.sizing`): buys never overshoot, sells never oversell. A sell never
  exceeds what is held minus what open sell orders already sell: no accidental short, even
  if in-flight buys never fill.
- Orders smaller than `minTradeNotional` are skipped (with a note), except one that closes
  a position completely (an unmanaged liquidation, or a target of 0 that is out of band),
  which would otherwise leave dust forever.
- Sells come first in leg order; buy-only portfolios never sell. `unmanaged: liquidate`
  closes every untargeted holding (a short is bought back), `ignore` leaves it alone.
- Cash for buys = total cash (base) + net proceeds of the sells that passed risk − reserve
  × capital − remaining notional of open BUY orders (valued as risk values working orders,
  `risk.open_order_unit`), plus (maxLeverage − 1) × NAV when the effective maxLeverage is
  above 1. When buys cost more, `sizing.fit_buys_to_cash` scales them by one factor (the
  executor uses the same function when sells raise less than planned); a note says
  "buys scaled to cash: 0.83". Every planned order carries its portfolio's minTradeNotional
  so that no later resizing goes below it.
- Limit prices (LMT, and the cap of MIDPRICE) start from the far side of the quote (ask for
  a buy, bid for a sell; the reference price when one-sided) moved by `limitOffsetBps` in the
  marketable direction, then rounded to minTick conservatively (`sizing.round_to_tick`):
  buys down (never pay more than intended), sells up (never receive less). MKT and ADAPTIVE
  carry no limit price.
- Estimated notional (base currency) is valued at the limit price, or the far side for
  orders without one: an upper bound for buys, a lower bound for sell proceeds.
- A target that cannot be valued (no price, no FX rate, no capital, unresolved) gets no
  order and a denial with its code; nothing is ever valued at zero.
- Risk runs three times over the same inputs so that denied sells never fund buys and
  denied buys never take cash from others: sells alone, sells + buys (screen), sells + cash-
  fitted buys (final, authoritative). Each pass is O(orders).
"""

from __future__ import annotations

import datetime as dt
import operator
import random
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.decide.drift import drift_table
from reconciler.decide.risk import (
    FX_RATE_MISSING,
    NAV_UNKNOWN,
    PRICE_MISSING,
    Checker,
    EffectiveLimits,
    RiskContext,
    merged_contracts,
    open_order_unit,
)
from reconciler.decide.sizing import (
    estimate_commission,
    estimate_notional,
    fit_buys_to_cash,
    floor_to_increment,
    round_to_tick,
)
from reconciler.model.actual import (
    AccountState,
    ActualState,
    ContractInfo,
    Quote,
    fingerprint_parts,
)
from reconciler.model.desired import DesiredState, Portfolio, Target, UnknownAccountError
from reconciler.model.plan import (
    AccountPlan,
    DriftRow,
    Plan,
    PlannedOrder,
    RiskDecision,
    constructor,
)
from reconciler.util.collector import collector_paused

INSTRUMENT_UNRESOLVED = "INSTRUMENT_UNRESOLVED"
_EPS = 1e-9


class PlanningError(Exception):
    """The inputs cannot be planned at all (an account or a policy is missing)."""


def capital_for(portfolio: Portfolio, account: AccountState) -> float:
    """What weights are shares of: the portfolio's fixed capital, else the account's NAV."""
    return portfolio.capital if portfolio.capital is not None else account.net_liquidation


def new_plan_id(now: dt.datetime, rng: random.Random | None = None) -> str:
    """`20261122T0155Z-1a2b3c`: the minute in UTC and 24 random bits (injectable rng)."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: plan ids are made from UTC times")
    source = rng if rng is not None else random.SystemRandom()
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%MZ}-{source.getrandbits(24):06x}"


# ---------------------------------------------------------------- one account


# What a planned order's reason is written from: the text itself, or (portfolio, target, drift
# row). The text is written only for the orders that pass risk (`_reason`): most text of a
# large plan would be thrown away.
_Why = Any


def _reason(why: _Why, band_text: str) -> str:
    """`band_text`: the portfolio's `_band_text`, written once per account."""
    return why if isinstance(why, str) else _target_reason(*why, band_text)


class PlanShared:
    """What the accounts of one plan share, worked out once per plan rather than once per
    account: the resolved contracts by conId, size increments, limit prices per instrument
    and side, and the instruments whose quote passed the quote checks (per set of limits).
    Valid for one snapshot (quotes, contracts and clock); `build_plan` makes one per plan."""

    __slots__ = ("contracts", "increments", "prices", "quote_ok")

    def __init__(self, actual: ActualState, resolved: Mapping[str, ContractInfo]) -> None:
        self.contracts = merged_contracts(actual, resolved.values())
        self.increments: dict[int, float] = {}
        self.prices: dict[tuple[int, str, str, float], tuple[float | None, float]] = {}
        self.quote_ok: dict[int, set[int]] = {}


def plan_account(
    portfolio: Portfolio,
    limits: EffectiveLimits,
    account: AccountState,
    actual: ActualState,
    resolved: Mapping[str, ContractInfo],
    *,
    now: dt.datetime,
    first_leg: int = 1,
    shared: PlanShared | None = None,
) -> AccountPlan:
    """Drift, orders (after risk, legs numbered from `first_leg`), decisions and notes."""
    if shared is None:
        shared = PlanShared(actual, resolved)
    capital = capital_for(portfolio, account)
    rows = drift_table(portfolio, account, actual, resolved, capital)
    ctx = RiskContext.for_account(
        actual,
        account.account,
        now=now,
        min_trade_notional=portfolio.min_trade_notional,
        contracts=shared.contracts,
        increment_memo=shared.increments,
    )
    held = account.held_by_con_id()
    open_sells: dict[int, float] = {}
    for order in ctx.open_orders:
        if order.side == "SELL":
            open_sells[order.con_id] = open_sells.get(order.con_id, 0.0) + order.remaining

    decisions: list[RiskDecision] = []
    notes: list[str] = []
    proposals: list[tuple[PlannedOrder, _Why]] = []
    targets = {t.instrument.key: t for t in portfolio.targets}
    pricer = _Pricer(portfolio, ctx, account.account, shared.prices)

    for row in rows:
        if row.status == "managed":
            if row.in_band:
                continue  # the common case: nothing to do, nothing to say
            proposal = _towards_target(
                portfolio, targets[row.key], row, ctx, held, open_sells, decisions, notes, pricer
            )
        elif row.status == "unmanaged":
            proposal = _liquidation(
                portfolio, row, ctx, held, open_sells, decisions, notes, pricer
            )
        else:
            proposal = _towards_target(
                portfolio, targets[row.key], row, ctx, held, open_sells, decisions, notes, pricer
            )
        if proposal is not None:
            proposals.append(proposal)

    # Sells first, each side by instrument key; legs numbered in that order.
    by_key = operator.itemgetter(0)
    ordered = sorted(
        ((order.key, order, why) for order, why in proposals if order.side == "SELL"), key=by_key
    )
    sell_count = len(ordered)
    ordered += sorted(
        ((order.key, order, why) for order, why in proposals if order.side != "SELL"), key=by_key
    )
    priced = [_number(order, leg) for leg, (_, order, _) in enumerate(ordered, start=first_leg)]
    whys = [why for _, _, why in ordered]
    sells = priced[:sell_count]
    buys = priced[sell_count:]

    # Accounts share their quotes and clock, so instruments whose quote passed the quote-only
    # checks under the same limits need not be checked again (`Checker`).
    checker = Checker(ctx, limits, shared.quote_ok.setdefault(id(limits), set()))
    opened = checker.open_book()
    clean_sells: set[int] = set()
    sells_ok, sell_decisions = checker.run(sells, opened.copy(), clean=clean_sells)
    decisions.extend(sell_decisions)
    final: list[PlannedOrder] = sells_ok
    budget: float | None = None
    if buys:
        # The screen and the final pass both start with the accepted sells from the same
        # book, so that prefix runs once and each pass continues from a copy of its book.
        # Orders a pass accepted unchanged are known to the next one (`Checker.run`).
        after_sells = opened
        prefix, prefix_decisions = checker.run(
            sells_ok,
            after_sells,
            known=frozenset(clean_sells),
            accepted_before=frozenset(map(id, sells_ok)),
        )
        clean_buys: set[int] = set()
        screened, screen_decisions = checker.run(buys, after_sells.copy(), clean=clean_buys)
        decisions.extend(d for d in screen_decisions if d.side == "BUY")
        budget, budget_note = _cash_for_buys(portfolio, limits, account, ctx, sells_ok, capital)
        notes.append(budget_note)
        fitted = _fit_to_cash([o for o in screened if o.side == "BUY"], budget, ctx, notes)
        fitted_ok, fitted_decisions = checker.run(
            fitted,
            after_sells,
            known=frozenset(clean_buys),
            accepted_before=frozenset(map(id, screened)),
        )
        final = [*prefix, *fitted_ok]
        decisions.extend(prefix_decisions)
        decisions.extend(fitted_decisions)

    band_text = _band_text(portfolio)
    orders = tuple(
        _settle(order, leg, _reason(whys[order.leg - first_leg], band_text))
        for leg, order in enumerate(final, start=first_leg)
    )
    return AccountPlan(
        account=account.account,
        portfolio=portfolio.name,
        risk_policy=portfolio.risk_policy,
        base_currency=account.base_currency,
        net_liquidation=account.net_liquidation,
        capital=capital,
        drift=rows,
        orders=orders,
        decisions=tuple(decisions),
        notes=tuple(notes),
        cash_for_buys=None if budget is None else round(budget, 2),
    )


def _number(order: PlannedOrder, leg: int) -> PlannedOrder:
    """A freshly priced order with its provisional leg (its place in sells-then-buys order),
    set in place: nothing outside this account's planning holds it yet (see `_settle`)."""
    order.__dict__["leg"] = leg
    return order


def _settle(order: PlannedOrder, leg: int, reason: str) -> PlannedOrder:
    """An accepted order with its final leg and its reason, completed in place: every order
    here was made by this account's planning (priced, or resized by risk or cash fitting)
    and nothing outside it holds one yet, so a copy per order would buy nothing. The order is
    frozen from here on, like every value of the plan."""
    state = order.__dict__
    state["leg"] = leg
    state["reason"] = reason
    return order


def _refuse(code: str, row: DriftRow, detail: dict[str, Any]) -> RiskDecision:
    """A planner-level denial: the instrument could not even be sized."""
    return RiskDecision(
        code=code,
        action="deny",
        account=row.account,
        key=row.key,
        side="n/a",
        requested_quantity=0.0,
        allowed_quantity=0.0,
        detail=detail,
    )


def _sellable(con_id: int, held: Mapping[int, float], open_sells: Mapping[int, float]) -> float:
    return max(0.0, held.get(con_id, 0.0) - open_sells.get(con_id, 0.0))


def _towards_target(
    portfolio: Portfolio,
    target: Target,
    row: DriftRow,
    ctx: RiskContext,
    held: Mapping[int, float],
    open_sells: Mapping[int, float],
    decisions: list[RiskDecision],
    notes: list[str],
    pricer: _Pricer,
) -> tuple[PlannedOrder, _Why] | None:
    if row.status == "unresolved":
        decisions.append(_refuse(INSTRUMENT_UNRESOLVED, row, {"instrument": row.key}))
        return None
    if target.quantity is not None and row.in_band:
        return None  # a fixed quantity in band needs no price to know there is nothing to do
    if row.status == "missing-price":
        decisions.append(_refuse(PRICE_MISSING, row, {"con_id": row.con_id}))
        return None
    contract = ctx.contracts.get(row.con_id)
    assert contract is not None  # the drift row was valued with it
    if row.status == "missing-fx":
        detail = {"currency": contract.currency, "base": ctx.account.base_currency}
        decisions.append(_refuse(FX_RATE_MISSING, row, detail))
        return None
    if row.status == "no-capital":
        capital = capital_for(portfolio, ctx.account)
        decisions.append(_refuse(NAV_UNKNOWN, row, {"capital": capital}))
        return None
    if row.in_band:
        return None

    effective = row.quantity + row.in_flight
    gap = row.target_quantity - effective
    increment = ctx.size_increment(row.con_id)
    side = "BUY" if gap > 0 else "SELL"
    quantity = floor_to_increment(abs(gap), increment)
    if side == "SELL":
        if portfolio.buy_only:
            notes.append(f"{row.key}: buy-only, sell of {quantity:g} not planned")
            return None
        sellable = floor_to_increment(_sellable(row.con_id, held, open_sells), increment)
        if sellable < quantity:
            notes.append(f"{row.key}: sell limited to {sellable:g} held (no short)")
            quantity = sellable
    if quantity <= 0:
        notes.append(f"{row.key}: gap {gap:+g} is less than one size increment ({increment:g})")
        return None
    fx = ctx.account.fx_rate(contract.currency)
    notional = quantity * row.price * fx  # type: ignore[operator]
    closes_position = row.target_quantity == 0 and abs(effective + (
        quantity if side == "BUY" else -quantity)) < _EPS
    if notional < portfolio.min_trade_notional - _EPS and not closes_position:
        notes.append(
            f"{row.key}: {side} {quantity:g} ({notional:.2f}) is below minTradeNotional "
            f"{portfolio.min_trade_notional:g}"
        )
        return None
    return pricer.order(contract, row.key, side, quantity, fx), (portfolio, target, row)


def _liquidation(
    portfolio: Portfolio,
    row: DriftRow,
    ctx: RiskContext,
    held: Mapping[int, float],
    open_sells: Mapping[int, float],
    decisions: list[RiskDecision],
    notes: list[str],
    pricer: _Pricer,
) -> tuple[PlannedOrder, _Why] | None:
    if portfolio.unmanaged != "liquidate" or row.in_band:
        return None
    if row.price is None:
        decisions.append(_refuse(PRICE_MISSING, row, {"con_id": row.con_id}))
        return None
    contract = ctx.contracts.get(row.con_id) or _contract_from_position(ctx.account, row)
    fx = ctx.account.fx_rate(contract.currency)
    if fx is None:
        detail = {"currency": contract.currency, "base": ctx.account.base_currency}
        decisions.append(_refuse(FX_RATE_MISSING, row, detail))
        return None
    effective = row.quantity + row.in_flight
    increment = ctx.size_increment(row.con_id)
    if effective > 0:
        if portfolio.buy_only:
            notes.append(f"{row.key}: buy-only, liquidation of {effective:g} not planned")
            return None
        side = "SELL"
        quantity = floor_to_increment(
            min(effective, _sellable(row.con_id, held, open_sells)), increment
        )
    else:
        side = "BUY"
        quantity = floor_to_increment(-effective, increment)
    if quantity <= 0:
        notes.append(f"{row.key}: {effective:g} left is less than one size increment")
        return None
    if quantity < abs(effective) - _EPS:
        notes.append(f"{row.key}: liquidating {quantity:g} of {abs(effective):g}")
    reason = f"{row.key}: unmanaged holding {row.quantity:g}, unmanaged=liquidate"
    if row.in_flight:
        reason += f", in flight {row.in_flight:+g}"
    return pricer.order(contract, row.key, side, quantity, fx), reason


def _contract_from_position(account: AccountState, row: DriftRow) -> ContractInfo:
    position = next(p for p in account.positions if p.con_id == row.con_id)
    return ContractInfo(
        con_id=position.con_id,
        symbol=position.symbol,
        sec_type=position.sec_type,
        exchange="SMART",
        primary_exchange="",
        currency=position.currency,
    )


def _band_text(portfolio: Portfolio) -> str:
    band = portfolio.band
    parts = []
    if band.absolute is not None:
        parts.append(f"{band.absolute * 100:.1f}")
    if band.relative is not None:
        parts.append(f"{band.relative:.0%}")
    return "band ±" + "/".join(parts) if parts else "no band"


def _target_reason(portfolio: Portfolio, target: Target, row: DriftRow, band_text: str) -> str:
    if target.weight is not None:
        text = (
            f"{row.key}: weight {row.current_weight:.1%} -> target {target.weight:.1%} "
            f"(drift {row.drift * 100:+.1f} pts, {band_text}"
        )
    else:
        relative = portfolio.band.relative
        band = f"band ±{relative:.0%}" if relative is not None else "no band"
        text = f"{row.key}: quantity {row.quantity:g} -> target {target.quantity:g} ({band}"
    if row.in_flight:
        text += f", in flight {row.in_flight:+g}"
    return text + ")"


# ---------------------------------------------------------------- pricing


def limit_price(
    side: str, quote: Quote, order_type: str, offset_bps: float, tick: float
) -> float | None:
    """Far side of the quote moved by the offset, rounded conservatively; None for MKT."""
    if order_type not in ("LMT", "MIDPRICE"):
        return None
    far = _far_side(side, quote)
    move = offset_bps / 10_000.0
    raw = far * (1 + move) if side == "BUY" else far * (1 - move)
    return round_to_tick(raw, tick, down=side == "BUY")


def _far_side(side: str, quote: Quote) -> float:
    far = quote.ask if side == "BUY" else quote.bid
    if quote.mid is None or far is None:
        return quote.reference_price
    return far


_new_order = constructor(PlannedOrder)


class _Pricer:
    """Prices one account's proposals: limit price, estimated notional and commission.

    A limit price depends only on the quote, the side, the order type, the offset and the
    tick, so it is worked out once per instrument and side for the whole plan (`prices`,
    shared through `PlanShared`) rather than once per account."""

    __slots__ = ("account", "execution", "min_trade", "prices", "quotes")

    def __init__(
        self,
        portfolio: Portfolio,
        ctx: RiskContext,
        account: str,
        prices: dict[tuple[int, str, str, float], tuple[float | None, float]],
    ) -> None:
        self.execution = portfolio.execution
        self.min_trade = portfolio.min_trade_notional
        self.account = account
        self.prices = prices
        self.quotes = ctx.quotes

    def order(
        self, contract: ContractInfo, key: str, side: str, quantity: float, fx: float
    ) -> PlannedOrder:
        """The planned order, priced, with leg 0 until the account's orders are numbered."""
        con_id = contract.con_id
        execution = self.execution
        quote = self.quotes[con_id]
        found = self.prices.get((con_id, side, execution.order_type, execution.limit_offset_bps))
        if found is None:
            limit = limit_price(
                side, quote, execution.order_type, execution.limit_offset_bps, contract.min_tick
            )
            found = (limit, limit if limit is not None else _far_side(side, quote))
            self.prices[(con_id, side, execution.order_type, execution.limit_offset_bps)] = found
        limit, unit_price = found
        notional = estimate_notional(quantity, unit_price, fx, side)
        return _new_order(
            0,
            self.account,
            key,
            contract.symbol,
            con_id,
            contract.sec_type,
            contract.exchange,
            contract.primary_exchange,
            contract.currency,
            side,
            quantity,
            execution.order_type,
            limit,
            execution.time_in_force,
            execution.ttl_seconds,
            execution.outside_rth,
            quote.reference_price,
            notional,
            estimate_commission(quantity, notional),
            "",  # the reason is written for the orders that pass risk
            self.min_trade,
        )


# ---------------------------------------------------------------- cash


def _open_buy_notional(ctx: RiskContext) -> float | None:
    """Cash already committed to working buys, valued as risk values them; None if any
    cannot be valued."""
    total = 0.0
    for order in ctx.open_orders:
        if order.side != "BUY":
            continue
        unit = open_order_unit(ctx, order)
        if unit is None:
            return None
        total += order.remaining * unit
    return total


def _cash_for_buys(
    portfolio: Portfolio,
    limits: EffectiveLimits,
    account: AccountState,
    ctx: RiskContext,
    sells: Sequence[PlannedOrder],
    capital: float,
) -> tuple[float, str]:
    base = account.base_currency
    proceeds = sum(o.est_notional - o.est_commission for o in sells)
    reserve = portfolio.cash_reserve * max(capital, 0.0)
    open_buys = _open_buy_notional(ctx)
    if open_buys is None:
        return 0.0, "cash for buys: 0 (an open BUY order cannot be valued: no price or fx)"
    budget = account.total_cash + proceeds - reserve - open_buys
    text = (
        f"cash for buys: {budget:,.2f} {base} = cash {account.total_cash:,.2f} "
        f"+ sells {proceeds:,.2f} - reserve {reserve:,.2f} - open buys {open_buys:,.2f}"
    )
    leverage = limits.max_leverage.value
    if leverage is not None and leverage > 1 and account.net_liquidation > 0:
        borrowing = (leverage - 1) * account.net_liquidation
        budget += borrowing
        text += f" + borrowing {borrowing:,.2f} (maxLeverage {leverage:g})"
    return budget, text


def _fit_to_cash(
    buys: Sequence[PlannedOrder], budget: float, ctx: RiskContext, notes: list[str]
) -> list[PlannedOrder]:
    fit = fit_buys_to_cash(buys, budget, {o.con_id: ctx.size_increment(o.con_id) for o in buys})
    if fit.scaled:
        notes.append(
            f"buys scaled to cash: {fit.scale:.2f} (wanted {fit.wanted:,.2f}, have {budget:,.2f})"
        )
    notes.extend(f"{order.key}: buy dropped after scaling to cash" for order in fit.dropped)
    return list(fit.orders)


# ---------------------------------------------------------------- the whole plan


@collector_paused()
def build_plan(
    desired: DesiredState,
    actual: ActualState,
    resolved: Mapping[str, ContractInfo],
    limits_by_policy: Mapping[str, EffectiveLimits],
    *,
    now: dt.datetime,
    plan_id: str,
    accounts: Sequence[str] | None = None,
) -> Plan:
    """Plan every portfolio (or those of `accounts`), legs numbered across the plan from 1.

    A plan is ~10^5 acyclic values: the cyclic collector is paused while they are built (it
    would only rescan them as they grow); reference counting frees as usual."""
    try:
        portfolios = desired.portfolios_for(accounts)
    except UnknownAccountError as exc:
        raise PlanningError(str(exc)) from exc
    account_plans: list[AccountPlan] = []
    next_leg = 1
    shared = PlanShared(actual, resolved)
    for portfolio in portfolios:
        account = actual.accounts.get(portfolio.account)
        if account is None:
            raise PlanningError(
                f"account {portfolio.account} (portfolio {portfolio.name}) is in the desired "
                f"state but not in the broker snapshot; managed accounts: "
                f"{', '.join(actual.managed_accounts) or 'none'}"
            )
        limits = limits_by_policy.get(portfolio.risk_policy)
        if limits is None:
            raise PlanningError(
                f"no effective limits for risk policy {portfolio.risk_policy!r} "
                f"(portfolio {portfolio.name})"
            )
        account_plan = plan_account(
            portfolio, limits, account, actual, resolved, now=now, first_leg=next_leg,
            shared=shared,
        )
        next_leg += len(account_plan.orders)
        account_plans.append(account_plan)

    # Imported here: the desired package's __init__ pulls in the YAML loader, which a pure
    # stage must not load; `snapshot_of` itself is a pure view of the model.
    from reconciler.desired.snapshot import snapshot_of

    parts = fingerprint_parts(actual)
    instruments: dict[int, dict[str, Any]] = {}
    return Plan(
        plan_id=plan_id,
        created_at=now,
        desired_hash=desired.content_hash,
        git_commit=desired.git_commit,
        git_dirty=desired.git_dirty,
        actual_fingerprint=parts["all"],
        fingerprint_parts=parts,
        snapshot_time=actual.snapshot_time,
        quotes=_quotes_used(actual, account_plans),
        nav={a.account: a.net_liquidation for a in account_plans},
        accounts=tuple(account_plans),
        desired_snapshot={
            p.account: snapshot_of(p, desired.risk_policies.get(p.risk_policy), instruments)
            for p in portfolios
        },
    )


def _quotes_used(
    actual: ActualState, account_plans: Sequence[AccountPlan]
) -> dict[str, dict[str, Any]]:
    used: dict[str, dict[str, Any]] = {}
    seen: set[int | None] = {None}
    for account_plan in account_plans:
        for row in account_plan.drift:
            if row.con_id in seen:
                continue
            seen.add(row.con_id)
            quote = actual.quotes.get(row.con_id)
            if quote is None:
                continue
            used[str(row.con_id)] = {
                "symbol": quote.symbol,
                "bid": quote.bid,
                "ask": quote.ask,
                "last": quote.last,
                "close": quote.close,
                "time": quote.time.isoformat() if quote.time else None,
                "market_data_type": quote.market_data_type,
                "reference_price": quote.reference_price,
                # live: a quote requested this cycle; portfolio: the account's portfolio
                # market price (steady state, instruments clearly inside their band)
                "price_source": quote.source,
            }
    return used

