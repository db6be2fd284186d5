"""Benchmark: the pure planning step (drift, planner, risk, plan artifact) at scale.

Prints wall times and the cost per position for 1 account x 5,000 positions and
100 accounts x 1,000 positions, plus a linearity ratio (time per position at 5,000 vs 500
positions: about 1.0 when planning is O(n)), the plan file of 100 x 1,000 (size, write and
read back), and the same plans by the pre-issue-12 planner kept in
tests/unit/decide/reference_planner (a ratio measured in the same run). Builds its inputs in
memory; never fails on speed. `measure()` returns the figures as rows for run_all.py.

Usage: python tests/bench/bench_planner.py
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from reconciler.decide.planner import build_plan
from reconciler.decide.risk import effective_limits
from reconciler.model.actual import (
    AccountState,
    ActualState,
    ContractInfo,
    Execution,
    OpenOrder,
    Position,
    Quote,
)
from reconciler.model.desired import Band, DesiredState, Instrument, Portfolio, RiskPolicy, Target
from reconciler.model.plan import dumps, loads
from reconciler.util.files import atomic_write

HERE = Path(__file__).resolve().parent

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
POLICY = RiskPolicy(
    name="default",
    max_order_notional=50_000,
    max_position_notional=500_000,
    max_leverage=1.5,
    max_orders_per_cycle=100_000,
    max_cycle_turnover=0.5,
    max_daily_notional=10_000_000,
    max_price_age_seconds=60,
    max_spread=0.01,
    restricted=("S00007",),
)


def universe(size: int, rng: random.Random) -> tuple[list[ContractInfo], dict[int, Quote]]:
    contracts, quotes = [], {}
    for i in range(size):
        con_id = 1_000_000 + i
        symbol = f"S{i:05d}"
        contracts.append(ContractInfo(con_id, symbol, "STK", "SMART", "ARCA", "USD"))
        mid = round(rng.uniform(5, 500), 2)
        quotes[con_id] = Quote(con_id, symbol, round(mid - 0.01, 2), round(mid + 0.01, 2), mid,
                               mid, NOW - dt.timedelta(seconds=5))
    return contracts, quotes


def account(name: str, contracts: list[ContractInfo], quotes: dict[int, Quote],
            rng: random.Random) -> tuple[AccountState, list[OpenOrder], list[Execution]]:
    positions, value = [], 0.0
    for c in contracts:
        quantity = float(rng.randint(0, 200))
        if quantity:
            positions.append(Position(name, c.con_id, c.symbol, "STK", "USD", quantity, 10.0))
            value += quantity * quotes[c.con_id].reference_price
    cash = value * 0.1
    open_orders = [
        OpenOrder(name, i, 50_000 + i, 17, c.con_id, c.symbol, "BUY", 5.0, 0.0, 5.0, "LMT",
                  quotes[c.con_id].reference_price, "DAY", f"rc-old-{i:03d}", "Submitted")
        for i, c in enumerate(contracts[: len(contracts) // 50])
    ]
    executions = [
        Execution(f"e{name}{i}", name, c.con_id, c.symbol, "BUY", 1.0, 10.0, NOW, i, i, "")
        for i, c in enumerate(contracts[:20])
    ]
    state = AccountState(name, "USD", value + cash, cash, {"USD": cash}, {"USD": 1.0}, value,
                         cash, cash, tuple(positions))
    return state, open_orders, executions


def scenario(accounts: int, positions: int, seed: int = 1):
    rng = random.Random(seed)
    contracts, quotes = universe(positions, rng)
    weights = [rng.random() for _ in contracts]
    total = sum(weights) / 0.95
    targets = tuple(
        Target(Instrument(c.symbol), weight=w / total) for c, w in zip(contracts, weights,
                                                                       strict=True)
    )
    states, orders, executions, portfolios = {}, [], [], []
    for n in range(accounts):
        name = f"DU{n + 1:07d}"
        state, open_orders, fills = account(name, contracts, quotes, rng)
        states[name] = state
        orders += open_orders
        executions += fills
        portfolios.append(Portfolio(name=f"p{n}", account=name, targets=targets,
                                    band=Band(absolute=0.0005, relative=0.2),
                                    min_trade_notional=50.0, unmanaged="liquidate"))
    actual = ActualState(NOW, NOW, tuple(states), states, quotes,
                         {c.con_id: c for c in contracts}, tuple(orders), tuple(executions))
    desired = DesiredState(tuple(portfolios), {"default": POLICY}, (), "0" * 64, "bench")
    resolved = {c.symbol: c for c in contracts}
    return desired, actual, resolved


def timed_plan(accounts: int, positions: int, repeat: int = 3):
    desired, actual, resolved = scenario(accounts, positions)
    limits = {"default": effective_limits(POLICY, {})}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        plan = build_plan(desired, actual, resolved, limits, now=NOW, plan_id="bench")
        best = min(best, time.perf_counter() - started)
    started = time.perf_counter()
    text = dumps(plan)
    serialise = time.perf_counter() - started
    return best, plan, serialise, len(text)


def _reference():
    """The pre-optimisation planner kept by the tests, or None outside a checkout."""
    sys.path.insert(0, str(HERE.parent / "unit" / "decide"))
    try:
        from reference_planner import planner, risk
    except ImportError:
        return None
    finally:
        sys.path.pop(0)
    return planner, risk


def timed_reference(accounts: int, positions: int, repeat: int = 1) -> float | None:
    found = _reference()
    if found is None:
        return None
    planner, risk = found
    desired, actual, resolved = scenario(accounts, positions)
    limits = {"default": risk.effective_limits(POLICY, {})}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        planner.build_plan(desired, actual, resolved, limits, now=NOW, plan_id="bench")
        best = min(best, time.perf_counter() - started)
    return best


def construction_floor(plan, repeat: int = 3) -> float:
    """Seconds to build only the plan's output values (its drift rows, orders and decisions,
    the same counts, with the rounding a drift row carries) through the planner's own fast
    constructors, doing nothing else: what any pure-Python planner of this plan pays at
    least. The planner's time over it says how much is left to win."""
    from reconciler.model.plan import DriftRow, PlannedOrder, RiskDecision, constructor

    new_row, new_order = constructor(DriftRow), constructor(PlannedOrder)
    new_decision = constructor(RiskDecision)
    counts = (sum(len(a.drift) for a in plan.accounts), len(plan.orders), len(plan.decisions))
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for i in range(counts[0]):
            q = float(i)
            new_row("DU0000001", "K", "K", i, "managed", q, 1.5, round(q * 1.5, 2),
                    round(q / 3, 8), round(q / 7, 8), q, round(q / 3 - q / 7, 8), False, 0.0)
        for i in range(counts[1]):
            new_order(i, "DU0000001", "K", "K", i, "STK", "SMART", "ARCA", "USD", "BUY",
                      float(i), "LMT", 1.5, "DAY", 120.0, False, 1.5, 1.5 * i, 1.0, "r", 50.0)
        for i in range(counts[2]):
            new_decision("CODE", "deny", "DU0000001", "K", "BUY", float(i), 0.0,
                         {"max": 1.0, "got": round(i * 1.5, 2)})
        best = min(best, time.perf_counter() - started)
    return best


def plan_file(plan, repeat: int = 2) -> tuple[float, float, int]:
    """(write seconds, read seconds, bytes) of the plan file, as `plan --out` writes it and
    `apply --plan` reads it (serialise + seal + write; read + verify + build)."""
    write = read = float("inf")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "plan.json")
        for _ in range(repeat):
            started = time.perf_counter()
            atomic_write(path, dumps(plan) + "\n")
            write = min(write, time.perf_counter() - started)
            started = time.perf_counter()
            with open(path, encoding="utf-8") as handle:
                again = loads(handle.read())
            read = min(read, time.perf_counter() - started)
        size = os.path.getsize(path)
    assert again == plan, "the plan file did not read back as the same plan"
    return write, read, size


def measure() -> list[dict]:
    """The planner's figures against issue 12's targets, as rows for run_all.py."""
    rows = []
    small, _plan, _s, _n = timed_plan(1, 5_000)
    rows.append({"figure": "planner 1 x 5,000 positions", "value": f"{small:.3f} s",
                 "target": "< 0.1 s", "ok": small < 0.1})
    large, plan, _s, _n = timed_plan(100, 1_000)
    rows.append({"figure": "planner 100 x 1,000 positions", "value": f"{large:.3f} s",
                 "target": "< 1 s", "ok": large < 1.0})
    before = timed_reference(100, 1_000)
    if before is not None:
        rows.append({"figure": "planner 100 x 1,000: pre-issue-12 planner / now",
                     "value": f"{before / large:.1f}x ({before:.2f} s)", "target": "(ratio)",
                     "ok": None})
    floor = construction_floor(plan)
    rows.append({"figure": "planner 100 x 1,000 / building its output values alone",
                 "value": f"{large / floor:.1f}x (floor {floor:.2f} s)", "target": "(ratio)",
                 "ok": None})
    write, read, size = plan_file(plan)
    rows.append({"figure": "plan file 100 x 1,000: size", "value": f"{size / 1e6:.1f} MB",
                 "target": "< 30 MB", "ok": size < 30e6})
    rows.append({"figure": "plan file 100 x 1,000: write", "value": f"{write:.2f} s",
                 "target": "< 1 s", "ok": write < 1.0})
    rows.append({"figure": "plan file 100 x 1,000: read back", "value": f"{read:.2f} s",
                 "target": "< 1 s", "ok": read < 1.0})
    return rows


def main() -> None:
    print("planning (pure: drift + planner + risk + plan value), best of 3")
    rows = []
    for accounts, positions in ((1, 500), (1, 5_000), (100, 1_000)):
        seconds, plan, serialise, size = timed_plan(accounts, positions)
        n = accounts * positions
        rows.append((accounts, positions, seconds / n))
        print(
            f"  {accounts:>3} account(s) x {positions:>5,} positions: {seconds * 1000:8.1f} ms"
            f"  ({seconds / n * 1e6:6.1f} us/position; {len(plan.orders):>6,} orders, "
            f"{len(plan.decisions):>5,} decisions; JSON {size / 1e6:.1f} MB in "
            f"{serialise * 1000:.0f} ms)"
        )
    small, large = rows[0][2], rows[1][2]
    print(f"  linearity: cost per position at 5,000 / at 500 = {large / small:.2f} "
          f"(about 1 when O(n); 10 would be quadratic)")
    before = timed_reference(100, 1_000)
    if before is not None:
        print(f"  pre-issue-12 planner, 100 x 1,000: {before * 1000:8.1f} ms")
    floor = construction_floor(plan)
    print(f"  building the 100 x 1,000 plan's output values alone: {floor * 1000:8.1f} ms "
          f"(planner / that = {rows[2][2] * 100_000 / floor:.1f}x)")
    write, read, size = plan_file(plan)
    print(f"  plan file 100 x 1,000: {size / 1e6:.1f} MB, write {write * 1000:.0f} ms, "
          f"read back {read * 1000:.0f} ms")


if __name__ == "__main__":
    main()
