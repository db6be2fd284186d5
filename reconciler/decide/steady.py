"""Steady state: which instruments need a live quote this cycle, and the prices of the rest.

Responsible for `quote_candidates` (the instruments a cycle could trade, judged from the
portfolio market prices the account stream already delivers) and `with_prices` (the
snapshot with live quotes for those and portfolio prices, marked `source="portfolio"`, for
the rest). Must not do I/O or decide orders: the planner and risk do that with the result.

The safety margin rule (documented in README's safety model): an instrument skips its live
quote only when it is *clearly* inside its band: it is held, has a usable portfolio market
price m, a known FX rate and capital, no open order, is targeted (or untargeted under
`unmanaged: ignore`), and it stays inside its band for every price between m × (1 − margin)
and m × (1 + margin). Everything else is a candidate and gets a live quote. Risk refuses any
order whose price is not a live quote (`QUOTE_NOT_LIVE`), so a portfolio price can keep an
instrument out of a plan but never put an order into one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from reconciler.decide.drift import contract_for, quantity_in_band, weight_in_band
from reconciler.model.actual import ActualState, ContractInfo, Quote, in_flight_by_con_id
from reconciler.model.desired import Portfolio, Target

DEFAULT_MARGIN = 0.02  # 2%: how far the live price may be from the portfolio's market price


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def clearly_in_band(
    target: Target,
    portfolio: Portfolio,
    quantity: float,
    mark: float | None,
    fx: float | None,
    capital: float | None,
    margin: float,
) -> bool:
    """True when the holding is inside its band at every price within `margin` of `mark`."""
    if quantity == 0 or not _usable(mark) or fx is None or not _usable(capital):
        return False
    assert mark is not None and capital is not None
    if target.quantity is not None:
        return quantity_in_band(quantity, target.quantity, portfolio.band)
    if target.weight is None:
        return False
    return all(
        weight_in_band(quantity * price * fx / capital, target.weight, portfolio.band)
        for price in (mark * (1 - margin), mark * (1 + margin))
    )


def quote_candidates(
    portfolios: Iterable[Portfolio],
    actual: ActualState,
    resolved: Mapping[str, ContractInfo],
    margin: float = DEFAULT_MARGIN,
) -> set[int]:
    """conIds that need a live quote: every instrument of the accounts' portfolios that is
    not clearly inside its band (see the module's rule)."""
    wanted: set[int] = set()
    for portfolio in portfolios:
        account = actual.accounts[portfolio.account]
        capital = (
            portfolio.capital if portfolio.capital is not None else account.net_liquidation
        )
        held: dict[int, float] = {}
        marks: dict[int, float | None] = {}
        currencies: dict[int, str] = {}
        for position in account.positions:
            held[position.con_id] = held.get(position.con_id, 0.0) + position.quantity
            marks[position.con_id] = position.market_price
            currencies[position.con_id] = position.currency
        flying = in_flight_by_con_id(actual.open_orders_for(account.account))
        wanted.update(flying)  # risk values working orders with live quotes
        targeted: set[int] = set()
        for target in portfolio.targets:
            contract = contract_for(target, resolved, actual.contracts)
            if contract is None:
                continue  # unresolved: nothing to quote
            targeted.add(contract.con_id)
            if contract.con_id in flying or not clearly_in_band(
                target,
                portfolio,
                held.get(contract.con_id, 0.0),
                marks.get(contract.con_id),
                account.fx_rate(contract.currency),
                capital,
                margin,
            ):
                wanted.add(contract.con_id)
        for con_id, quantity in held.items():
            if con_id in targeted or quantity == 0:
                continue
            if portfolio.unmanaged == "liquidate" or not _usable(marks.get(con_id)):
                wanted.add(con_id)
    return wanted


def with_prices(
    actual: ActualState, live: Mapping[int, Quote], candidates: Iterable[int]
) -> ActualState:
    """The snapshot with the live quotes of `candidates` and, for every other instrument
    held with a portfolio market price, a quote carrying that price (`source="portfolio"`,
    as `last`, stamped with the snapshot time)."""
    quotes: dict[int, Quote] = {}
    for account in actual.accounts.values():
        for position in account.positions:
            if _usable(position.market_price) and position.con_id not in quotes:
                quotes[position.con_id] = Quote(
                    con_id=position.con_id,
                    symbol=position.symbol,
                    bid=None,
                    ask=None,
                    last=position.market_price,
                    close=None,
                    time=actual.snapshot_time,
                    source="portfolio",
                )
    for con_id in candidates:
        if con_id in live:
            quotes[con_id] = live[con_id]
    extra = dict(actual.extra)
    missing = sorted(q.symbol for c, q in quotes.items() if q.reference_price is None)
    if missing:
        extra["quotes_missing"] = ",".join(missing)
    return dataclasses.replace(actual, quotes=dict(sorted(quotes.items())), extra=extra)
