"""Across many accounts of one snapshot, the optimised planner plans what the reference does.

The hypothesis comparison (`test_planner_matches_reference`) draws one account at a time; the
optimised planner also shares work between the accounts of a plan (limit prices per
instrument and side, size increments, instruments whose quote passed the quote checks). These
seeded fleets exercise that sharing: several accounts holding overlapping instruments, two risk
policies, weight and quantity targets, bands of every shape, a foreign currency, instruments
without a quote, open orders, today's executions and a restricted symbol.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from reference_planner import planner as reference
from reference_planner import risk as reference_risk
from test_planner_matches_reference import assert_same_accounts

from reconciler.decide import risk
from reconciler.decide.planner import build_plan
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

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)


def _policies(rng: random.Random) -> tuple[RiskPolicy, RiskPolicy]:
    tight = RiskPolicy(
        name="tight",
        max_order_notional=rng.choice([None, 2_000.0, 20_000.0]),
        max_position_notional=rng.choice([None, 30_000.0]),
        max_leverage=rng.choice([None, 1.0, 1.5]),
        max_orders_per_cycle=rng.choice([None, 40]),
        max_cycle_turnover=rng.choice([None, 0.2]),
        max_daily_notional=rng.choice([None, 60_000.0, 400_000.0]),
        max_price_age_seconds=rng.choice([None, 30.0]),
        max_spread=rng.choice([None, 0.002]),
        restricted=("S0007",),
        on_breach=rng.choice(["clip", "clip", "deny"]),
        trading_state=rng.choice(["ACTIVE", "ACTIVE", "REDUCING"]),
    )
    loose = RiskPolicy(name="loose", max_order_notional=50_000.0, max_daily_notional=1e7)
    return tight, loose


def _fleet(seed: int, accounts: int = 4, size: int = 150):
    rng = random.Random(seed)
    contracts, quotes = [], {}
    for i in range(size):
        currency = "EUR" if i % 11 == 3 else "USD"
        info = ContractInfo(2_000_000 + i, f"S{i:04d}", "STK", "SMART", "ARCA", currency,
                            min_tick=rng.choice([0.01, 0.05]),
                            size_increment=rng.choice([1.0, 1.0, 1.0, 0.1, 5.0]))
        contracts.append(info)
        if i % 37 == 5:
            continue  # no quote: PRICE_MISSING
        mid = round(rng.uniform(5, 400), 2)
        half = mid * rng.choice([0.0001, 0.0005, 0.003])
        age = rng.choice([1, 5, 90])
        quotes[info.con_id] = Quote(info.con_id, info.symbol, round(mid - half, 2),
                                    round(mid + half, 2), mid, mid,
                                    NOW - dt.timedelta(seconds=age))
    states, orders, executions, portfolios = {}, [], [], []
    for n in range(accounts):
        name = f"DU{n + 1:07d}"
        positions, value = [], 0.0
        for c in contracts:
            if rng.random() < 0.7:
                quantity = float(rng.randint(-5, 300))
                if quantity:
                    positions.append(Position(name, c.con_id, c.symbol, "STK", c.currency,
                                              quantity, 10.0))
                    quote = quotes.get(c.con_id)
                    if quote is not None:
                        value += abs(quantity) * quote.reference_price
        cash = value * rng.choice([0.02, 0.1, 0.5])
        state = AccountState(name, "USD", value + cash, cash, {"USD": cash},
                             {"USD": 1.0, "EUR": 1.1}, value, cash, cash, tuple(positions))
        states[name] = state
        for i, c in enumerate(rng.sample(contracts, 6)):
            if c.con_id in quotes:
                orders.append(OpenOrder(name, i, 60_000 + 100 * n + i, 17, c.con_id, c.symbol,
                                        rng.choice(["BUY", "SELL"]), 5.0, 0.0, 5.0, "LMT",
                                        quotes[c.con_id].reference_price, "DAY",
                                        f"rc-old-{n}-{i}", "Submitted"))
        for i, c in enumerate(rng.sample(contracts, 4)):
            executions.append(Execution(f"e{n}-{i}", name, c.con_id, c.symbol, "BUY", 2.0, 20.0,
                                        NOW, i, i, ""))
        chosen = rng.sample(contracts, int(size * 0.8))
        weights = [rng.random() for _ in chosen]
        total = sum(weights) / rng.choice([0.9, 0.97, 1.0])
        targets = tuple(
            Target(Instrument(c.symbol, currency=c.currency), quantity=float(rng.randint(0, 200)))
            if rng.random() < 0.2
            else Target(Instrument(c.symbol, currency=c.currency), weight=w / total)
            for c, w in zip(chosen, weights, strict=True)
        )
        portfolios.append(Portfolio(
            name=f"p{n}", account=name, targets=targets,
            band=Band(absolute=rng.choice([None, 0.0005, 0.002]),
                      relative=rng.choice([None, 0.1, 0.25])),
            min_trade_notional=rng.choice([0.0, 50.0, 500.0]),
            unmanaged=rng.choice(["ignore", "liquidate"]),
            sells="buyOnly" if rng.random() < 0.2 else "allowed",
            risk_policy=rng.choice(["tight", "loose"]),
            cash_reserve=rng.choice([0.0, 0.02]),
        ))
    actual = ActualState(NOW, NOW, tuple(states), states, quotes,
                         {c.con_id: c for c in contracts[: size // 2]}, tuple(orders),
                         tuple(executions))
    tight, loose = _policies(rng)
    desired = DesiredState(tuple(portfolios), {"tight": tight, "loose": loose}, (), "0" * 64,
                           "fleet")
    resolved = {c.symbol: c for c in contracts}
    return desired, actual, resolved


@pytest.mark.parametrize("seed", range(8))
def test_optimised_planner_when_given_a_fleet_of_accounts_then_plans_equal_the_reference(seed):
    desired, actual, resolved = _fleet(seed)
    policies = desired.risk_policies
    new = build_plan(
        desired, actual, resolved,
        {name: risk.effective_limits(p, {}) for name, p in policies.items()},
        now=NOW, plan_id="fleet",
    )
    old = reference.build_plan(
        desired, actual, resolved,
        {name: reference_risk.effective_limits(p, {}) for name, p in policies.items()},
        now=NOW, plan_id="fleet",
    )
    assert sum(len(a.orders) for a in new.accounts) > 0
    assert_same_accounts(new, old)
    sources = {k: {f: v for f, v in q.items() if f != "price_source"}
               for k, q in new.quotes.items()}
    assert dataclasses.replace(new, quotes=sources) == old
