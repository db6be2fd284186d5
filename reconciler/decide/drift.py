"""Diff: where each account stands against its desired state, and what changed in git.

Responsible for
- `drift_table`: one `DriftRow` per target and per held (or in-flight) instrument that is not
  targeted: quantity, reference price, market value in base currency, current and target
  weight of capital, drift, whether the instrument is inside its band, open orders in flight;
- the band rules (`weight_in_band`, `quantity_in_band`) the planner trades by;
- `state_after_fills`: the book after an apply from the cycle's snapshot, the fills received
  and the positions reported now (no second snapshot);
(What changed in the desired state itself is `reconciler.decide.changes`.)

Must not plan orders, apply risk limits, do I/O or print. Pure functions of values.

Decisions (documented for reviewers):
- `quantity`, `current_weight` and `drift` describe what is *held*. `in_band` judges the
  *effective* position (held + signed remaining of open orders), because that is what decides
  whether to trade: an open order already closing the gap keeps the row in band.
- Bands: outside EITHER set bound means trade (absolute weight points, relative fraction of
  the target weight); with neither set, any difference trades. Fixed-quantity targets are in
  band when the quantity equals the target or is within the relative band of it (the
  absolute band is in weight points and does not apply to quantities).
- Unmanaged rows: `in_band` is True under `unmanaged: ignore` (nothing to reconcile) and
  True under `liquidate` only once the effective position is flat.
- A row that cannot be valued says so in `status` (missing-price, missing-fx, unresolved,
  no-capital) and is never treated as flat or as zero-priced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.model.actual import (
    AccountState,
    ActualState,
    ContractInfo,
    Position,
    Quote,
    in_flight_by_con_id,
)
from reconciler.model.desired import Band, Portfolio, Target
from reconciler.model.plan import DriftRow, constructor

BAND_EPS = 1e-9  # float slack: a book exactly on its band edge is inside



# ---------------------------------------------------------------- bands


def weight_bound(target_weight: float, band: Band) -> float:
    """The tighter of the set bounds, in weight points (0 when none is set)."""
    bounds = []
    if band.absolute is not None:
        bounds.append(band.absolute)
    if band.relative is not None:
        bounds.append(band.relative * abs(target_weight))
    return min(bounds) if bounds else 0.0


def weight_in_band(current_weight: float, target_weight: float, band: Band) -> bool:
    return abs(current_weight - target_weight) <= weight_bound(target_weight, band) + BAND_EPS


def quantity_in_band(quantity: float, target_quantity: float, band: Band) -> bool:
    bound = (band.relative or 0.0) * abs(target_quantity)
    return abs(quantity - target_quantity) <= bound + BAND_EPS * max(1.0, abs(target_quantity))


# ---------------------------------------------------------------- lookups


def contract_for(
    target: Target, resolved: Mapping[str, ContractInfo], contracts: Mapping[int, ContractInfo]
) -> ContractInfo | None:
    """The resolved contract of a target: by instrument key, then symbol, then pinned conId."""
    instrument = target.instrument
    found = resolved.get(instrument.key) or resolved.get(instrument.symbol)
    if found is None and instrument.con_id is not None:
        found = contracts.get(instrument.con_id)
    return found


def reference_price(quote: Quote | None) -> float | None:
    return None if quote is None else quote.reference_price


# ---------------------------------------------------------------- drift table


def drift_table(
    portfolio: Portfolio,
    account: AccountState,
    actual: ActualState,
    resolved: Mapping[str, ContractInfo],
    capital: float,
) -> tuple[DriftRow, ...]:
    """Targets in portfolio order, then untargeted holdings and open orders by key."""
    held = account.held_by_con_id()
    in_flight = in_flight_by_con_id(actual.open_orders_for(account.account))
    has_capital = capital is not None and math.isfinite(capital) and capital > 0
    rows: list[DriftRow] = []
    targeted: set[int] = set()
    # Runs once per target of every account: what every row reads is looked up once here.
    name = account.account
    band = portfolio.band
    quotes = actual.quotes
    contracts = actual.contracts
    fx_rate = account.fx_rate
    new_row = _new_row

    for target in portfolio.targets:
        instrument = target.instrument
        contract = contract_for(target, resolved, contracts)
        if contract is None:
            rows.append(new_row(
                name, instrument.key, instrument.symbol, None, "unresolved", 0.0, None, None,
                None, target.weight, target.quantity, None, False,
            ))
            continue
        con_id = contract.con_id
        targeted.add(con_id)
        quantity = held.get(con_id, 0.0)
        flying = in_flight.get(con_id, 0.0)
        quote = quotes.get(con_id)
        price = None if quote is None else quote.reference_price
        fx = None if contract.currency is None else fx_rate(contract.currency)
        unit = value = weight = None
        if price is not None and fx is not None:
            unit = price * fx
            value = quantity * price * fx
            if has_capital:
                weight = value / capital
        target_weight = target.weight
        target_quantity = target.quantity
        in_band = False
        if target.quantity is not None:
            in_band = quantity_in_band(quantity + flying, target.quantity, band)
            if unit is not None and has_capital:
                target_weight = target.quantity * unit / capital
        if price is None:
            status = "missing-price"
        elif fx is None:
            status = "missing-fx"
        elif target.weight is not None and not has_capital:
            status = "no-capital"
        else:
            status = "managed"
            if target.weight is not None:
                target_quantity = target.weight * capital / unit  # type: ignore[operator]
                in_band = weight_in_band(
                    (quantity + flying) * unit / capital,  # type: ignore[operator]
                    target.weight,
                    band,
                )
        rows.append(new_row(
            name,
            instrument.key,
            contract.symbol,
            con_id,
            status,
            quantity,
            price,
            None if value is None else round(value, 2),
            None if weight is None else round(weight, 8),
            None if target_weight is None else round(target_weight, 8),
            target_quantity,
            None if weight is None or target_weight is None else round(weight - target_weight, 8),
            in_band,
            flying,
        ))

    unmanaged: dict[int, DriftRow] = {}
    positions = {p.con_id: p for p in account.positions}
    for con_id in {**held, **in_flight}:
        if con_id in targeted or (held.get(con_id, 0.0) == 0 and in_flight.get(con_id, 0.0) == 0):
            continue
        unmanaged[con_id] = _unmanaged_row(
            portfolio, account, actual, con_id, positions, held, in_flight, capital, has_capital
        )
    rows.extend(sorted(unmanaged.values(), key=lambda r: (r.key, r.con_id or 0)))
    return tuple(rows)


_new_row = constructor(DriftRow)


def _valuation(
    account: AccountState, quantity: float, price: float | None, currency: str | None,
    capital: float, has_capital: bool,
) -> tuple[float | None, float | None, float | None]:
    """(market value in base, current weight, fx) or Nones where it cannot be valued."""
    fx = account.fx_rate(currency) if currency is not None else None
    if price is None or fx is None:
        return None, None, fx
    value = quantity * price * fx
    return value, (value / capital if has_capital else None), fx


def _unmanaged_row(
    portfolio: Portfolio,
    account: AccountState,
    actual: ActualState,
    con_id: int,
    positions: Mapping[int, Any],
    held: Mapping[int, float],
    in_flight: Mapping[int, float],
    capital: float,
    has_capital: bool,
) -> DriftRow:
    contract = actual.contracts.get(con_id)
    position = positions.get(con_id)
    if contract is not None:
        key, symbol, currency = contract.key, contract.symbol, contract.currency
    elif position is not None:
        key, symbol, currency = position.key, position.symbol, position.currency
    else:
        # Only an open order knows this instrument; its currency is unknown, so no value.
        symbol = _symbol_of_open_order(actual, account.account, con_id)
        key, currency = symbol, None
    quantity = held.get(con_id, 0.0)
    flying = in_flight.get(con_id, 0.0)
    price = reference_price(actual.quotes.get(con_id))
    value, weight, _ = _valuation(account, quantity, price, currency, capital, has_capital)
    liquidate = portfolio.unmanaged == "liquidate"
    return _new_row(
        account=account.account,
        key=key,
        symbol=symbol,
        con_id=con_id,
        status="unmanaged",
        quantity=quantity,
        price=price,
        market_value=None if value is None else round(value, 2),
        current_weight=None if weight is None else round(weight, 8),
        target_weight=0.0 if liquidate else None,
        target_quantity=0.0 if liquidate else None,
        drift=None if (weight is None or not liquidate) else round(weight, 8),
        in_band=(quantity + flying == 0) if liquidate else True,
        in_flight=flying,
    )


def _symbol_of_open_order(actual: ActualState, account: str, con_id: int) -> str:
    return next(o.symbol for o in actual.open_orders_for(account) if o.con_id == con_id)


@dataclass(frozen=True)
class LedgerBreak:
    """The broker holds something other than the ledger's last snapshot plus its fills."""

    account: str
    con_id: int
    symbol: str
    expected: float
    actual: float

    def render(self) -> str:
        return (
            f"LEDGER_BREAK: account={self.account} symbol={self.symbol} conId={self.con_id} "
            f"ledger={self.expected:g} broker={self.actual:g}"
        )


def ledger_breaks(
    account: str,
    last_snapshot: Mapping[int, tuple[str, float]],
    net_fills: Mapping[int, float],
    broker_positions: Mapping[int, tuple[str, float]],
) -> list[LedgerBreak]:
    """Instruments where broker quantity != last recorded snapshot + fills recorded since.

    The broker stays authoritative; a break only says the ledger cannot explain a position
    (a manual trade, a fill the ledger missed), so that instrument is skipped this cycle.
    """
    breaks = []
    for con_id in sorted(set(last_snapshot) | set(net_fills) | set(broker_positions)):
        symbol = (broker_positions.get(con_id) or last_snapshot.get(con_id) or (str(con_id), 0.0))[0]
        expected = (last_snapshot.get(con_id, ("", 0.0))[1]) + net_fills.get(con_id, 0.0)
        actual = broker_positions.get(con_id, ("", 0.0))[1]
        if abs(expected - actual) > 1e-6:
            breaks.append(LedgerBreak(account, con_id, symbol, expected, actual))
    return breaks


@dataclass(frozen=True)
class FillDelta:
    """One fill of this cycle, as the after-state needs it (commission in `currency`)."""

    account: str
    con_id: int
    currency: str
    side: str  # BUY | SELL
    shares: float
    price: float
    commission: float = 0.0


def state_after_fills(
    before: ActualState,
    positions: Mapping[str, Sequence[Position]],
    fills: Sequence[FillDelta],
    *,
    now: Any,
) -> ActualState:
    """The book after an apply without a second snapshot: positions as the broker reports
    them now (one request), cash moved by the fills received (price x shares and commission,
    in the fill's currency), and NAV, gross position value and available funds moved by the
    cash and by each position's change valued at this cycle's quotes. Quotes, contracts and
    FX rates are the cycle's own. Accounts without positions given keep their state."""
    accounts: dict[str, AccountState] = {}
    for name, state in before.accounts.items():
        if name not in positions:
            accounts[name] = state
            continue
        cash = dict(state.cash)
        cash_delta_base = 0.0
        for f in fills:
            if f.account != name:
                continue
            signed = f.shares if f.side == "BUY" else -f.shares
            moved = -signed * f.price - f.commission
            cash[f.currency] = cash.get(f.currency, 0.0) + moved
            cash_delta_base += moved * (state.fx_rate(f.currency) or 0.0)
        held_before = state.held_by_con_id()
        held_after: dict[int, float] = {}
        for p in positions[name]:
            held_after[p.con_id] = held_after.get(p.con_id, 0.0) + p.quantity
        value_delta = gross_delta = 0.0
        for con_id in set(held_before) | set(held_after):
            q0, q1 = held_before.get(con_id, 0.0), held_after.get(con_id, 0.0)
            if q0 == q1:
                continue
            quote = before.quotes.get(con_id)
            info = before.contracts.get(con_id)
            price = quote.reference_price if quote is not None else None
            rate = state.fx_rate(info.currency) if info is not None else None
            if price is None or rate is None:
                continue
            value_delta += (q1 - q0) * price * rate
            gross_delta += (abs(q1) - abs(q0)) * price * rate
        accounts[name] = replace(
            state,
            cash=cash,
            total_cash=state.total_cash + cash_delta_base,
            net_liquidation=state.net_liquidation + cash_delta_base + value_delta,
            gross_position_value=state.gross_position_value + gross_delta,
            available_funds=state.available_funds + cash_delta_base,
            buying_power=state.buying_power + cash_delta_base,
            positions=tuple(positions[name]),
        )
    return replace(before, snapshot_time=now, accounts=accounts)
