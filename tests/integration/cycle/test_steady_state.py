"""Steady state against the simulator: an account mostly in band plans with live quotes only
for its candidates, and plans what a live quote for every instrument would have planned.

The simulator sends the real account stream (portfolio updates with market prices) and the
real market-data answers; the message counts come from its journal.
"""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.cycle.plan import plan_cycle
from reconciler.model.clock import SystemClock
from reconciler.model.desired import Band, DesiredState, Instrument, Portfolio, RiskPolicy, Target
from reconciler.model.settings import Settings
from reconciler.sim.messages import IN_REQ_MKT_DATA

ACCOUNT = "DU0000001"
N = 60  # instruments held; the 500-instrument figure is tests/bench/bench_steady_state.py
OUT_OF_BAND = 4  # the first few are short of their target
CASH = 100_000.0


def steady_world(n: int = N, out_of_band: int = OUT_OF_BAND):
    """A scenario (n holdings of 100 shares at fixed prices) and a desired state whose
    targets are the holdings' weights, except the first `out_of_band`, which want 50% more."""
    symbols = [f"ST{i:03d}" for i in range(n)]
    prices = [round(20 + i * 0.37, 2) for i in range(n)]
    scenario = {
        "name": "steady",
        "seed": 1,
        "accounts": [
            {
                "id": ACCOUNT,
                "type": "cash",
                "cash": {"USD": CASH},
                "positions": [{"symbol": s, "quantity": 100, "avgCost": p}
                              for s, p in zip(symbols, prices, strict=True)],
            }
        ],
        "instruments": [{"symbol": s, "price": p} for s, p in zip(symbols, prices, strict=True)],
        "market": {"volatility": 0, "hours": "always"},
        "latency": {"ack": 0.0, "fill": 0.0},
    }
    nav = CASH + sum(100 * p for p in prices)
    targets = tuple(
        Target(Instrument(s), weight=round(100 * p / nav * (1.5 if i < out_of_band else 1), 8))
        for i, (s, p) in enumerate(zip(symbols, prices, strict=True))
    )
    portfolio = Portfolio(
        name="core", account=ACCOUNT, targets=targets, band=Band(absolute=None, relative=0.1),
        min_trade_notional=10.0,
    )
    desired = DesiredState(
        portfolios=(portfolio,), risk_policies={"default": RiskPolicy("default")},
        schedules=(), content_hash="0" * 64, directory="desired_state",
    )
    return scenario, desired


async def plan_counting_quotes(sim, desired, margin: float | None):
    settings = Settings(gateway_port=sim.port, client_id=51, connect_timeout=10.0,
                        portfolio_price_margin=margin)
    before = len(sim.journal.messages("in", IN_REQ_MKT_DATA))
    outcome = await plan_cycle(desired, settings, clock=SystemClock(), accounts=[ACCOUNT])
    return outcome.plan, len(sim.journal.messages("in", IN_REQ_MKT_DATA)) - before


@pytest.mark.asyncio
async def test_plan_when_most_instruments_are_in_band_then_quotes_only_candidates_and_plans_the_same(
    sim_factory,
):
    scenario, desired = steady_world()
    sim = await sim_factory(scenario)
    full, full_quotes = await plan_counting_quotes(sim, desired, None)
    steady, steady_quotes = await plan_counting_quotes(sim, desired, 0.02)

    assert full_quotes >= N
    assert steady_quotes == OUT_OF_BAND  # the rest are clearly inside their band
    assert len(full.orders) == OUT_OF_BAND
    assert steady.orders == full.orders
    assert [dataclasses.astuple(d) for d in steady.decisions] == [
        dataclasses.astuple(d) for d in full.decisions
    ]
    assert [(r.key, r.in_band) for r in steady.accounts[0].drift] == [
        (r.key, r.in_band) for r in full.accounts[0].drift
    ]
    sources = [q["price_source"] for q in steady.quotes.values()]
    assert sources.count("live") == OUT_OF_BAND
    assert sources.count("portfolio") == N - OUT_OF_BAND
    assert {q["price_source"] for q in full.quotes.values()} == {"live"}
    # Every order is priced by a live quote of the cycle.
    assert all(steady.quotes[str(o.con_id)]["price_source"] == "live" for o in steady.orders)
