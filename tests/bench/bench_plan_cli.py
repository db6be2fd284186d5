"""Benchmark: `reconcile plan` wall time against the simulator, next to the pacing floor.

Issue 4: "`reconcile plan` wall time against the simulator for 500 instruments, printed next
to the floor set by the gateway's pacing." For 500 and for 50 target instruments (the
simulator's built-in USD universe plus made-up listings added through the scenario's
`instruments`), this script

- starts the simulator in a background thread (the real TWS socket protocol over TCP) with a
  paper account that holds every fifth instrument and a second account that the desired
  state does not manage, and IB's pacing rule enforced (over 50 messages in a second: error
  100 and a disconnect);
- writes a desired state (one Portfolio targeting every instrument at 0.19%, a generous
  RiskPolicy) to a temporary directory;
- warms up (the in-process run below, which also creates the store, and one CLI run against
  a closed port, which also measures the CLI's fixed cost), then times three runs of
  `reconcile plan DIR --format json --gateway HOST:PORT` as a subprocess, sharing one
  RECONCILER_STATE_DIR as an operator's runs would;
- counts the API messages the client sent per run (the simulator's journal, incoming
  entries; the handshake is not paced and not counted) and prints the pacing floor:
  messages / the throttle the adapter sets on the client library
  (`reconciler/broker/pacing.py`, RECONCILER_MAX_MSG_RATE default 45/s), beside the
  library default (45/s) and the gateway's limit (50/s); and the most messages the gateway
  received in any 1 s;
- times the pieces in-process through the library (settings + desired state + store,
  Broker.connect, resolve, snapshot, build_plan + render) to show where the wall time goes.

`--stall-ms N` pauses the simulator's process for about N ms at random moments during the
timed runs (a C loop holding the GIL, like a gateway's GC pause): the gateway then reads some
messages late and counts them together with later ones, which shows how much jitter the
client's pacing tolerates before error 100.

Prints figures; asserts nothing about speed. Exits 1 when a run fails (e.g. disconnected for
pacing), else 0.
Usage: python tests/bench/bench_plan_cli.py [--sizes 500,50] [--runs 3] [--stall-ms 0]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.broker.pacing import DEFAULT_MESSAGE_RATE
from reconciler.model.plan import document_orders
from reconciler.sim import run_in_thread
from reconciler.sim.market import builtin_universe

ACCOUNT = "DU0000001"
OTHER_ACCOUNT = "DU0000002"  # in the gateway, not in the desired state
CASH = 10_000_000.0
CLIENT_ID = 17
GATEWAY_PACING_LIMIT = 50
RUN_TIMEOUT = 120.0
# Message ids (client -> gateway) named in the per-kind breakdown.
MESSAGE_NAMES = {
    1: "reqMktData",
    2: "cancelMktData",
    6: "reqAccountUpdates",
    7: "reqExecutions",
    9: "reqContractDetails",
    49: "reqCurrentTime",
    59: "reqMarketDataType",
    61: "reqPositions",
    71: "startApi",
    76: "reqAccountUpdatesMulti",
    77: "cancelAccountUpdatesMulti",
    8: "reqIds",
    99: "reqCompletedOrders",
    16: "reqAllOpenOrders",
    64: "cancelPositions",
}


# ---------------------------------------------------------------- inputs


def builtin_symbols() -> list[tuple[str, float]]:
    """Built-in US listings a bare symbol names unambiguously (no GME: often restricted)."""
    listings = [i for i in builtin_universe() if i.currency == "USD" and i.sec_type == "STK"]
    counts = collections.Counter(i.symbol for i in listings)
    return [(i.symbol, i.price) for i in listings if counts[i.symbol] == 1 and i.symbol != "GME"]


def instrument_universe(size: int) -> tuple[list[tuple[str, float]], list[dict]]:
    """(symbol, price) for `size` instruments, and the scenario entries adding made-up ones."""
    rng = random.Random(4)
    chosen = builtin_symbols()[:size]
    extra = []
    for number in range(size - len(chosen)):
        symbol = f"ZB{number:04d}"
        price = round(rng.uniform(8, 400), 2)
        extra.append({"symbol": symbol, "price": price, "primaryExchange": "NYSE",
                      "spread": round(max(0.02, price * 0.0004), 2), "longName": f"BENCH {symbol}"})
        chosen.append((symbol, price))
    return chosen, extra


def scenario(size: int) -> dict:
    """Two paper accounts; the managed one holds every fifth instrument."""
    chosen, extra = instrument_universe(size)
    positions = [{"symbol": symbol, "currency": "USD", "avgCost": price,
                  "quantity": max(1, int(15_000 // price))}
                 for symbol, price in chosen[::5]]
    return {
        "name": f"bench-plan-{size}",
        "seed": 11,
        "accounts": [
            {"id": ACCOUNT, "type": "cash", "cash": {"USD": CASH}, "positions": positions},
            {"id": OTHER_ACCOUNT, "type": "cash", "cash": {"USD": 50_000},
             "positions": [{"symbol": "VTI", "quantity": 10}]},
        ],
        "instruments": extra,
        "market": {"volatility": 0, "hours": "always"},
        # IB's rule: more than 50 messages in a second gets error 100 and a disconnect, so a
        # pacing bug fails the benchmark instead of flattering it.
        "faults": {"pacingLimit": GATEWAY_PACING_LIMIT},
    }


def write_desired_state(directory: Path, size: int) -> None:
    chosen, _ = instrument_universe(size)
    weight = min(0.0019, 0.95 / size)
    targets = "\n".join(f"    - {{symbol: {symbol}, weight: {weight:.4%}}}" for symbol, _ in chosen)
    (directory / "portfolio.yaml").write_text(
        "apiVersion: reconciler/v1\n"
        "kind: Portfolio\n"
        "metadata:\n"
        f"  name: bench-{size}\n"
        "spec:\n"
        f"  account: {ACCOUNT}\n"
        "  targets:\n"
        f"{targets}\n"
        "  cashReserve: 2%\n"
        "  band: {absolute: 0.05%}\n"
        "  minTradeNotional: 100\n"
        "  execution: {orderType: LMT, limitOffsetBps: 5}\n"
        "  riskPolicy: default\n",
        encoding="utf-8",
    )
    (directory / "risk.yaml").write_text(
        "apiVersion: reconciler/v1\n"
        "kind: RiskPolicy\n"
        "metadata:\n"
        "  name: default\n"
        "spec:\n"
        "  tradingState: ACTIVE\n"
        "  maxOrderNotional: 1000000\n"
        "  maxPositionNotional: 5000000\n"
        "  maxLeverage: 1.0\n"
        "  maxOrdersPerCycle: 10000\n"
        "  maxCycleTurnover: 100%\n"
        "  maxDailyNotional: 1000000000\n"
        "  maxPriceAge: 10m\n"
        "  maxSpread: 5%\n"
        "  onBreach: clip\n",
        encoding="utf-8",
    )


# ---------------------------------------------------------------- measuring


@dataclass(frozen=True)
class CliRun:
    seconds: float
    exit_code: int
    messages: int  # API messages (the handshake is not paced and not counted)
    by_kind: dict[int, int]
    peak_per_second: int
    orders: int


def api_messages_since(sim, start: int) -> list[dict]:
    """Client -> gateway API messages recorded after journal position `start`."""
    return [e for e in list(sim.journal)[start:]
            if e["dir"] == "in" and isinstance(e["msg_id"], int)]


def peak_per_second(entries: list[dict]) -> int:
    """Most messages that arrived at the gateway within any 1 s window."""
    import datetime as dt

    times = [dt.datetime.fromisoformat(e["t"]).timestamp() for e in entries]
    peak, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def cli_environment(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IB_", "RECONCILER_", "EXEC_RISK_", "TRADING_", "ORDERS_"))}
    env.update(RECONCILER_STATE_DIR=str(state_dir), IB_CLIENT_ID=str(CLIENT_ID))
    return env


def run_cli(desired_dir: Path, work: Path, gateway: str, sim=None) -> CliRun:
    command = [sys.executable, "-m", "reconciler", "plan", str(desired_dir), "--format", "json",
               "--gateway", gateway]
    mark = len(sim.journal) if sim is not None else 0
    started = time.perf_counter()
    # cwd: a directory without a .env file, so only this environment applies.
    done = subprocess.run(command, cwd=work, env=cli_environment(work / "state"),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    if sim is None:
        return CliRun(elapsed, done.returncode, 0, {}, 0, 0)
    if done.returncode != 0:
        raise SystemExit(f"`reconcile plan` exited {done.returncode}:\n{done.stderr[:2000]}\n"
                         f"gateway errors sent: {gateway_errors(sim, mark)}\n"
                         f"peak API messages in 1 s at the gateway: "
                         f"{peak_per_second(api_messages_since(sim, mark))}")
    sent = api_messages_since(sim, mark)
    return CliRun(
        seconds=elapsed,
        exit_code=done.returncode,
        messages=len(sent),
        by_kind=dict(collections.Counter(e["msg_id"] for e in sent)),
        peak_per_second=peak_per_second(sent),
        orders=count_orders(json.loads(done.stdout)),
    )


def gateway_errors(sim, start: int) -> list[str]:
    """Error messages (id 4) the simulator sent since `start`, other than farm notices."""
    found = []
    for entry in list(sim.journal)[start:]:
        if entry["dir"] == "out" and entry["msg_id"] == 4:
            text = " ".join(entry["fields"][1:5])
            if "farm" not in text:
                found.append(text)
    return found[:5]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def count_orders(plan: dict) -> int:
    return len(document_orders(plan))


@dataclass(frozen=True)
class Split:
    phases: dict[str, float]  # seconds by phase, in order
    messages: dict[str, int]  # client API messages by phase
    resolved: int
    quotes: int
    orders: int


async def split_in_process(sim, desired_dir: Path, work: Path) -> Split:
    """The CLI's steps through the library, each timed (and its messages counted)."""
    from reconciler.broker import Broker
    from reconciler.cycle.common import detect_breaks, skip_breaks, target_instruments
    from reconciler.decide.planner import build_plan, new_plan_id
    from reconciler.decide.risk import effective_limits
    from reconciler.desired import load_desired_state
    from reconciler.model.clock import SystemClock
    from reconciler.model.settings import load_settings
    from reconciler.render.plan import render_plan
    from reconciler.store import open_store

    phases: dict[str, float] = {}
    messages: dict[str, int] = {}

    class phase:
        def __init__(self, name: str) -> None:
            self.name = name

        def __enter__(self) -> None:
            self.mark = len(sim.journal)
            self.started = time.perf_counter()

        def __exit__(self, *_exc: object) -> None:
            phases[self.name] = time.perf_counter() - self.started
            messages[self.name] = len(api_messages_since(sim, self.mark))

    clock = SystemClock()
    with phase("settings, desired state, store"):
        settings = load_settings(
            {"IB_GATEWAY_HOST": sim.host, "IB_GATEWAY_PORT": str(sim.port),
             "IB_CLIENT_ID": str(CLIENT_ID), "RECONCILER_STATE_DIR": str(work / "state")},
            dotenv_path=None,
        )
        desired = load_desired_state(desired_dir)
        store = open_store(settings.effective_db_url, clock=clock)
    try:
        with phase("connect"):
            broker = await Broker.connect(settings, readonly=True, clock=clock)
        try:
            with phase("resolve (contract details)"):
                resolved = await broker.resolve(target_instruments(desired), lock=desired.lock)
            with phase("snapshot (accounts, positions, quotes)"):
                actual = await broker.snapshot(list(desired.accounts), resolved)
        finally:
            await broker.disconnect()
        with phase("plan + render json"):
            halt = store.current_halt()
            limits = {name: effective_limits(policy, settings.risk_env,
                                             halt=halt.reason if halt else None)
                      for name, policy in desired.risk_policies.items()}
            now = clock.now()
            plan = build_plan(desired, actual, resolved, limits, now=now,
                              plan_id=new_plan_id(now))
            plan = skip_breaks(plan, detect_breaks(store, actual, list(desired.accounts)))
            rendered = render_plan(plan, "json")
    finally:
        store.close()
    return Split(phases, messages, len(resolved), len(actual.quotes),
                 count_orders(json.loads(rendered)))


# ---------------------------------------------------------------- report


def floor_seconds(messages: float) -> float:
    """Least time the adapter's client throttle needs to send `messages`."""
    return messages / DEFAULT_MESSAGE_RATE


class GatewayStalls:
    """Pause this process (and so the simulator's thread) for ~`ms` now and then."""

    def __init__(self, ms: float) -> None:
        self.ms = ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-stalls", daemon=True)

    def __enter__(self) -> GatewayStalls:
        if self.ms > 0:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        probe = 1_000_000
        started = time.perf_counter()
        sum(range(probe))
        iterations = int(self.ms / 1000 / ((time.perf_counter() - started) / probe))
        rng = random.Random(1)
        while not self._stop.wait(rng.uniform(0.3, 1.5)):
            # sum() over a range runs in C without releasing the GIL: nothing else in this
            # process, the simulator included, runs until it returns.
            sum(range(iterations))


def bench(size: int, runs: int, stall_ms: float) -> bool:
    """Print the figures for `size` instruments; False when a timed run failed."""
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-plan-{size}-") as tmp:
        work = Path(tmp)
        desired_dir = work / "desired_state"
        desired_dir.mkdir()
        write_desired_state(desired_dir, size)
        with run_in_thread(scenario(size)) as sim:
            # Warm-up (the in-process split, the CLI against a closed port); then timed runs.
            split = asyncio.run(split_in_process(sim, desired_dir, work))
            fixed = run_cli(desired_dir, work, f"127.0.0.1:{closed_port()}")
            timed = []
            with GatewayStalls(stall_ms):
                for _ in range(runs):
                    try:
                        timed.append(run_cli(desired_dir, work, f"{sim.host}:{sim.port}", sim))
                    except SystemExit as failure:
                        failures.append(str(failure))
    stalls = f", simulator stalls of ~{stall_ms:g} ms" if stall_ms else ""
    if failures:
        print(f"--- {size} instruments{stalls}: {len(failures)} of {runs} runs FAILED")
        for failure in failures:
            print("  " + failure.replace("\n", "\n  "))
    if not timed:
        return False
    walls = [r.seconds for r in timed]
    messages = statistics.median(r.messages for r in timed)
    floor = floor_seconds(messages)
    best, median = min(walls), statistics.median(walls)
    rate = DEFAULT_MESSAGE_RATE
    breakdown = ", ".join(f"{MESSAGE_NAMES.get(k, f'id {k}')} {n}"
                          for k, n in sorted(timed[-1].by_kind.items(), key=lambda kv: -kv[1]))
    print(f"--- {size} instruments: 1 portfolio, {ACCOUNT} holds {len(range(0, size, 5))} "
          f"of them; {timed[-1].orders} orders planned{stalls}")
    print(f"  client API messages per plan : {messages:g} ({breakdown})")
    print(f"  CLI wall time                : min {best:.2f} s, median {median:.2f} s over "
          f"{len(walls)} runs ({', '.join(f'{w:.2f}' for w in walls)})")
    print(f"  pacing floor                 : {floor:.2f} s = {messages:g} msgs / {rate:.1f} msg/s "
          f"(adapter pacing: sliding window; at the "
          f"library default 45/s {messages / 45:.2f} s, at the gateway's 50/s "
          f"{messages / 50:.2f} s)")
    print(f"  peak at the gateway          : {max(r.peak_per_second for r in timed)} msgs in "
          f"any 1 s window (limit enforced by the simulator: {GATEWAY_PACING_LIMIT})")
    print(f"  wall / floor                 : min {best / floor:.2f}, median {median / floor:.2f}")
    print(f"  CLI fixed cost               : {fixed.seconds:.2f} s (same command, gateway port "
          f"closed, exit {fixed.exit_code}: start-up, imports, desired state, store)")
    print(f"  in-process split ({split.resolved} resolved, {split.quotes} quotes, "
          f"{split.orders} orders):")
    for name, seconds in split.phases.items():
        sent = split.messages[name]
        note = f"  {sent:4d} msgs, floor {floor_seconds(sent):6.2f} s" if sent else ""
        print(f"    {name:<38} {seconds:7.3f} s{note}")
    print(f"    {'total':<38} {sum(split.phases.values()):7.3f} s")
    return not failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,50", help="comma-separated instrument counts")
    parser.add_argument("--runs", type=int, default=3, help="timed CLI runs per size")
    parser.add_argument("--stall-ms", type=float, default=0.0,
                        help="pause the simulator ~this long at random moments (0: never)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"{os.cpu_count()} CPUs; simulator in a thread of this process; "
          "`reconcile plan DIR --format json --gateway HOST:PORT` as a subprocess")
    started = time.perf_counter()
    passed = [bench(size, args.runs, args.stall_ms) for size in sizes]
    print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
