"""Benchmark: the steady-state plan of a 500-instrument account that is in band.

The simulator runs in this process (over real TCP, real ib_async); the desired state has a
committed lockfile (built by resolving once, not measured). Measures `plan_cycle` with a live
quote for every instrument and with steady state on (`RECONCILER_PORTFOLIO_PRICE_MARGIN`
0.02: live quotes only for candidates), the messages each sends (simulator journal) and the
quote requests. Never fails on speed. `measure()` returns the figures as rows for run_all.py.

Usage: python tests/bench/bench_steady_state.py [N]
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration" / "cycle"))

from test_steady_state import ACCOUNT, steady_world  # noqa: E402

from reconciler.broker import Broker  # noqa: E402
from reconciler.cycle.plan import plan_cycle  # noqa: E402
from reconciler.model.clock import SystemClock  # noqa: E402
from reconciler.model.desired import LockedInstrument  # noqa: E402
from reconciler.model.settings import Settings  # noqa: E402
from reconciler.sim.gateway.server import SimGateway  # noqa: E402
from reconciler.sim.messages import IN_REQ_MKT_DATA  # noqa: E402

MARGIN = 0.02


async def _locked(sim: SimGateway, desired):
    """The desired state with a lockfile of its targets (one resolution, not measured)."""
    broker = await Broker.connect(
        Settings(gateway_port=sim.port, client_id=61, connect_timeout=30.0), readonly=True,
        clock=SystemClock(),
    )
    try:
        instruments = [t.instrument for p in desired.portfolios for t in p.targets]
        resolved = await broker.resolve(instruments)
    finally:
        await broker.disconnect()
    lock = {
        key: LockedInstrument(key, c.con_id, c.symbol, c.sec_type, c.exchange,
                              c.primary_exchange, c.currency, c.min_tick, c.size_increment)
        for key, c in resolved.items()
    }
    return dataclasses.replace(desired, lock=lock)


async def _plan(sim: SimGateway, desired, margin: float | None) -> dict:
    settings = Settings(gateway_port=sim.port, client_id=62, connect_timeout=30.0,
                        portfolio_price_margin=margin)
    sent = len(sim.journal.messages("in"))
    quotes = len(sim.journal.messages("in", IN_REQ_MKT_DATA))
    started = time.perf_counter()
    outcome = await plan_cycle(desired, settings, clock=SystemClock(), accounts=[ACCOUNT])
    return {
        "seconds": time.perf_counter() - started,
        "messages": len(sim.journal.messages("in")) - sent,
        "quotes": len(sim.journal.messages("in", IN_REQ_MKT_DATA)) - quotes,
        "plan": outcome.plan,
    }


async def _run(n: int) -> tuple[dict, dict]:
    scenario, desired = steady_world(n, out_of_band=0)
    sim = SimGateway(scenario)
    await sim.start()
    try:
        desired = await _locked(sim, desired)
        full = await _plan(sim, desired, None)
        steady = await _plan(sim, desired, MARGIN)
    finally:
        await sim.stop()
    return full, steady


def measure(n: int = 500) -> list[dict]:
    full, steady = asyncio.run(_run(n))
    same = steady["plan"].orders == full["plan"].orders
    return [
        {"figure": f"steady-state plan, {n} in-band instruments", "value":
         f"{steady['seconds']:.2f} s ({steady['messages']} msgs, {steady['quotes']} quotes)",
         "target": "< 3 s", "ok": steady["seconds"] < 3.0},
        {"figure": f"same plan with a live quote each ({n})", "value":
         f"{full['seconds']:.2f} s ({full['messages']} msgs, {full['quotes']} quotes)",
         "target": "(reference)", "ok": None},
        {"figure": "steady-state plan equals the full-quote plan (orders)", "value": str(same),
         "target": "True", "ok": same},
    ]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    for row in measure(n):
        print(f"  {row['figure']:<55} {row['value']:<36} target {row['target']}")


if __name__ == "__main__":
    main()
