"""Every performance figure of the reconciler in one table, measured in one run.

Usage: python tests/bench/run_all.py [--quick] [--sizes 200,1000] [--latency both|on|off]
       [--skip-sequential] [--skip-others] [--max-msg-rate R]

For each size N (200 and 1,000 instruments; `--quick`: 200 only) and each latency (none, and
ack 50 ms / fill 300 ms), a fresh simulator (in a thread of this process, IB's pacing rule
on: over 50 messages in a second is error 100 and a disconnect) starts with one flat paper
account; the desired state buys a fixed quantity of each instrument at market, and its
lockfile (`reconcile lock`) is committed; `reconcile plan` runs once, as it would on the pull
request, so the store exists and is current (the first cycle ever on a machine also creates
the store's schema, once). Then
- `reconcile apply --auto-approve` runs as a subprocess (tests/bench/timed_cli.py: the CLI
  with the store's time measured), timed from spawn to exit; its messages by kind come from
  the simulator's journal, its start-up is spawn to its first message at the gateway;
- on another fresh simulator, tests/bench/sequential_script.py does the same trades one by
  one (qualify, quote, market order, wait for the fill), timed the same way;
- both end states are checked from the client side (positions equal the targets).
Ratios against the targets of issue 12 are computed in the same run: apply >= 3x faster than
the sequential script at N=200 with latency and >= 1x without, apply <= 1.2x the essential
floor ((N quotes + N orders + 10) / 45 per s). The other benchmarks' rows (planner, steady
state, validate) come from their modules' `measure()`, imported here when present.
Prints the table (Markdown) and exits 0; a failed run is a row with ok False, not a crash.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import importlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

ACCOUNT = "DU0000001"
APPLY_CLIENT_ID = 17
SEQUENTIAL_CLIENT_ID = 41
CHECK_CLIENT_ID = 42
LATENCY = {"ack": 0.05, "fill": 0.3}
RATE = 45.0  # the essential floor's budget (RECONCILER_MAX_MSG_RATE default)
FLOOR_OTHER = 10  # account requests etc. the floor allows besides quotes and orders
RUN_TIMEOUT = 1800.0
OTHER_BENCHMARKS = ("bench_planner", "bench_steady_state", "bench_validate")


def row(figure: str, value: str, target: str = "", ok: bool | None = None) -> dict:
    return {"figure": figure, "value": value, "target": target, "ok": ok}


# ---------------------------------------------------------------- inputs


def universe(size: int) -> list[tuple[str, float]]:
    """`size` (symbol, price): the simulator's unambiguous US listings, then made-up ones."""
    from reconciler.sim.market import builtin_universe

    listings = [i for i in builtin_universe() if i.currency == "USD" and i.sec_type == "STK"]
    counts = collections.Counter(i.symbol for i in listings)
    chosen = [(i.symbol, i.price) for i in listings if counts[i.symbol] == 1 and i.symbol != "GME"]
    chosen = chosen[:size]
    rng = random.Random(4)
    for number in range(size - len(chosen)):
        chosen.append((f"ZB{number:04d}", round(rng.uniform(8, 400), 2)))
    return chosen


def scenario(size: int, latency: bool) -> dict:
    chosen = universe(size)
    made_up = [
        {"symbol": s, "price": p, "primaryExchange": "NYSE",
         "spread": round(max(0.02, p * 0.0004), 2), "longName": f"BENCH {s}"}
        for s, p in chosen if s.startswith("ZB")
    ]
    data = {
        "name": f"bench-apply-{size}",
        "seed": 11,
        "accounts": [{"id": ACCOUNT, "type": "cash", "cash": {"USD": 20_000_000.0}}],
        "instruments": made_up,
        "market": {"volatility": 0, "hours": "always"},
        "faults": {"pacingLimit": 50},
    }
    if latency:
        data["latency"] = dict(LATENCY)
    return data


def targets_for(size: int) -> dict[str, float]:
    return {s: float(max(1, int(2000 // p))) for s, p in universe(size)}


def write_desired_state(directory: Path, targets: dict[str, float]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"    - {{symbol: {s}, quantity: {q:g}}}" for s, q in targets.items())
    (directory / "portfolio.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Portfolio\nmetadata: {name: bench}\nspec:\n"
        f"  account: {ACCOUNT}\n  targets:\n{rows}\n"
        "  cashReserve: 2%\n  minTradeNotional: 0\n  unmanaged: ignore\n"
        "  execution: {orderType: MKT, timeInForce: DAY, ttl: 120s}\n"
        "  riskPolicy: default\n",
        encoding="utf-8",
    )
    (directory / "risk.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: RiskPolicy\nmetadata: {name: default}\nspec:\n"
        "  tradingState: ACTIVE\n  maxOrderNotional: 1000000\n  maxPositionNotional: 5000000\n"
        "  maxLeverage: 1.0\n  maxOrdersPerCycle: 100000\n  maxCycleTurnover: 100%\n"
        "  maxDailyNotional: 1000000000\n  maxPriceAge: 10m\n  maxSpread: 5%\n",
        encoding="utf-8",
    )


def environment(work: Path, client_id: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IB_", "RECONCILER_", "EXEC_RISK_", "TRADING_", "ORDERS_"))}
    env.update(
        RECONCILER_STATE_DIR=str(work / "state"),
        IB_CLIENT_ID=str(client_id),
        ORDERS_ENABLED="true",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])),
        PYTHONWARNINGS="ignore",
    )
    return env


def git_commit(directory: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=directory, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
        "commit", "-q", "-m", "desired state and lockfile")


# ---------------------------------------------------------------- runs


@dataclass
class Run:
    seconds: float = 0.0
    ok: bool = False
    messages: dict[str, int] = field(default_factory=dict)
    startup: float | None = None
    startup_cpu: float | None = None
    store_seconds: float | None = None
    store_detail: str = ""
    timeline: str = ""
    note: str = ""

    @property
    def total(self) -> int:
        return sum(self.messages.values())


def journal_since(sim, mark: int, client_id: int) -> list[dict]:
    return [e for e in list(sim.journal)[mark:] if e["dir"] == "in" and e["client_id"] == client_id]


def kinds(entries: list[dict]) -> dict[str, int]:
    from reconciler.broker.pacing import MESSAGE_KINDS

    counted = collections.Counter(
        MESSAGE_KINDS.get(str(e["msg_id"]), f"msg{e['msg_id']}")
        for e in entries if isinstance(e["msg_id"], int)
    )
    return dict(counted.most_common())


def client_check(sim, targets_file: Path, work: Path) -> tuple[bool, str]:
    done = subprocess.run(
        [sys.executable, str(HERE / "sequential_script.py"), sim.host, str(sim.port),
         str(targets_file), "--check", "--client-id", str(CHECK_CLIENT_ID)],
        capture_output=True, text=True, timeout=120, env=environment(work, CHECK_CLIENT_ID),
    )
    return done.returncode == 0, (done.stdout.strip() or done.stderr[-300:])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            parts = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def cpu_at_first_message(sim, mark: int, proc: subprocess.Popen) -> float | None:
    """The apply process's CPU time when its first message reached the gateway: start-up
    cost independent of how loaded the machine is (a benchmark may poll)."""
    seen = mark
    while proc.poll() is None:
        entries = list(sim.journal)
        if any(e["dir"] == "in" and e["client_id"] == APPLY_CLIENT_ID for e in entries[seen:]):
            return cpu_seconds(proc.pid)
        seen = len(entries)
        time.sleep(0.002)
    return None


def timeline(entries: list[dict], spawned: float, seconds: float) -> str:
    """When (s after spawn) the phases began and ended, from the journal."""
    def at(entry: dict) -> float:
        return dt.datetime.fromisoformat(entry["t"]).timestamp() - spawned

    quotes = [e for e in entries if e["msg_id"] == 1]
    orders = [e for e in entries if e["msg_id"] == 3]
    parts = [f"first msg {at(entries[0]):.1f}"]
    if quotes:
        parts.append(f"quotes {at(quotes[0]):.1f}-{at(quotes[-1]):.1f}")
    if orders:
        parts.append(f"orders {at(orders[0]):.1f}-{at(orders[-1]):.1f}")
    parts.append(f"last msg {at(entries[-1]):.1f}, exit {seconds:.1f}")
    return ", ".join(parts)


def run_apply(size: int, latency: bool, rate: float | None = None) -> Run:
    from reconciler.sim import run_in_thread

    targets = targets_for(size)
    with tempfile.TemporaryDirectory(prefix=f"bench-apply-{size}-") as tmp:
        work = Path(tmp)
        desired = work / "desired"
        write_desired_state(desired, targets)
        targets_file = work / "targets.json"
        targets_file.write_text(json.dumps(targets), encoding="utf-8")
        times_file = work / "store-times.json"
        with run_in_thread(scenario(size, latency)) as sim:
            gateway = f"{sim.host}:{sim.port}"
            locked = subprocess.run(
                [sys.executable, "-m", "reconciler", "lock", str(desired), "--gateway", gateway],
                capture_output=True, text=True, timeout=RUN_TIMEOUT,
                env=environment(work, CHECK_CLIENT_ID), cwd=work,
            )
            if locked.returncode != 0:
                return Run(note=f"reconcile lock failed: {locked.stderr[-300:]}")
            git_commit(desired)
            planned = subprocess.run(
                [sys.executable, "-m", "reconciler", "plan", str(desired), "--gateway", gateway],
                capture_output=True, text=True, timeout=RUN_TIMEOUT,
                env=environment(work, CHECK_CLIENT_ID), cwd=work,
            )
            if planned.returncode != 0:
                return Run(note=f"reconcile plan failed: {planned.stderr[-300:]}")
            mark = len(sim.journal)
            env = environment(work, APPLY_CLIENT_ID)
            env["BENCH_STORE_TIMES"] = str(times_file)
            if rate is not None:
                env["RECONCILER_MAX_MSG_RATE"] = f"{rate:g}"
            spawned = time.time()
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "timed_cli.py"), "apply", "--dir", str(desired),
                 "--auto-approve", "--gateway", gateway],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work,
            )
            startup_cpu = cpu_at_first_message(sim, mark, proc)
            stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
            done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
            seconds = time.perf_counter() - started
            entries = journal_since(sim, mark, APPLY_CLIENT_ID)
            run = Run(seconds=seconds, messages=kinds(entries), startup_cpu=startup_cpu)
            if entries:
                first = dt.datetime.fromisoformat(entries[0]["t"]).timestamp()
                run.startup = first - spawned
                run.timeline = timeline(entries, spawned, seconds)
            if times_file.exists():
                times = json.loads(times_file.read_text())
                run.store_seconds = times["store_s"]
                run.store_detail = (
                    f"loop {times['loop_store_s']:.2f} s + writer CPU {times['writer_cpu_s']:.2f} s;"
                    f" writer wall incl. fsync {times['writer_busy_s']:.2f} s"
                )
            if done.returncode != 0:
                run.note = f"apply exit {done.returncode}: {(done.stderr or done.stdout)[-400:]}"
                return run
            run.ok, run.note = client_check(sim, targets_file, work)
            return run


def run_sequential(size: int, latency: bool) -> Run:
    from reconciler.sim import run_in_thread

    targets = targets_for(size)
    with tempfile.TemporaryDirectory(prefix=f"bench-seq-{size}-") as tmp:
        work = Path(tmp)
        targets_file = work / "targets.json"
        targets_file.write_text(json.dumps(targets), encoding="utf-8")
        with run_in_thread(scenario(size, latency)) as sim:
            mark = len(sim.journal)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(HERE / "sequential_script.py"), sim.host, str(sim.port),
                 str(targets_file), "--client-id", str(SEQUENTIAL_CLIENT_ID)],
                capture_output=True, text=True, timeout=RUN_TIMEOUT,
                env=environment(work, SEQUENTIAL_CLIENT_ID),
            )
            seconds = time.perf_counter() - started
            run = Run(seconds=seconds,
                      messages=kinds(journal_since(sim, mark, SEQUENTIAL_CLIENT_ID)))
            if done.returncode != 0:
                run.note = f"exit {done.returncode}: {(done.stdout + done.stderr)[-400:]}"
                return run
            run.ok, run.note = client_check(sim, targets_file, work)
            return run


# ---------------------------------------------------------------- the table


def floor_seconds(size: int) -> float:
    return (2 * size + FLOOR_OTHER) / RATE


def apply_rows(
    size: int, latency: bool, sequential: bool, rate: float | None = None
) -> list[dict]:
    label = f"N={size}, " + ("ack 50 ms / fill 300 ms" if latency else "zero latency")
    if rate is not None:
        label += f", RECONCILER_MAX_MSG_RATE={rate:g}"
    rows = []
    applied = run_apply(size, latency, rate)
    essential = 2 * size
    rows.append(row(
        f"apply, {label}",
        f"{applied.seconds:.1f} s, {applied.total} msgs"
        + ("" if applied.ok else f" ({applied.note})"),
        "end state = targets", applied.ok,
    ))
    if applied.timeline:
        rows.append(row(f"apply timeline (s after spawn), {label}", applied.timeline))
    if applied.ok:
        ratio = applied.seconds / floor_seconds(size)
        rows.append(row(
            f"apply / essential floor, {label}",
            f"{ratio:.2f} (floor {floor_seconds(size):.1f} s = ({size}+{size}+{FLOOR_OTHER}) "
            f"msgs / {RATE:g} per s)",
            "<= 1.2", ratio <= 1.2,
        ))
        rows.append(row(
            f"apply messages by kind, {label}",
            ", ".join(f"{k} {n}" for k, n in applied.messages.items()),
            f"<= {essential + FLOOR_OTHER} (N quotes + N orders + {FLOOR_OTHER})",
            applied.total <= essential + FLOOR_OTHER,
        ))
        if applied.store_seconds is not None:
            share = applied.store_seconds / applied.seconds
            rows.append(row(
                f"store share of apply wall time, {label}",
                f"{share:.1%} ({applied.store_detail})", "<= 10%", share <= 0.10,
            ))
        if applied.startup is not None:
            cpu = ("" if applied.startup_cpu is None
                   else f" wall ({applied.startup_cpu:.2f} s CPU of the process by then)")
            rows.append(row(
                f"apply start-up to first gateway message, {label}",
                f"{applied.startup:.2f} s{cpu}", "< 0.5 s", applied.startup < 0.5,
            ))
    if sequential:
        seq = run_sequential(size, latency)
        rows.append(row(
            f"sequential ib_async script, {label}",
            f"{seq.seconds:.1f} s, {seq.total} msgs" + ("" if seq.ok else f" ({seq.note})"),
            "end state = targets", seq.ok,
        ))
        if seq.ok and applied.ok:
            speedup = seq.seconds / applied.seconds
            goal = 3.0 if latency and size == 200 else 1.0
            rows.append(row(
                f"apply speed-up over the sequential script, {label}",
                f"{speedup:.2f}x", f">= {goal:g}x", speedup >= goal,
            ))
    return rows


def other_rows() -> list[dict]:
    rows = []
    for name in OTHER_BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            rows.append(row(name, f"not available ({exc})"))
            continue
        measure = getattr(module, "measure", None)
        if measure is None:
            rows.append(row(name, "not available (no measure())"))
            continue
        try:
            rows.extend(measure())
        except Exception as exc:  # one benchmark failing leaves the others' rows
            traceback.print_exc()
            rows.append(row(name, f"failed: {exc!r}", "", False))
    return rows


def machine() -> str:
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
            f"{platform.machine()}, Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}")


def render(rows: list[dict]) -> str:
    lines = ["| figure | value | target | ok |", "|---|---|---|---|"]
    for r in rows:
        ok = "" if r["ok"] is None else ("yes" if r["ok"] else "**no**")
        lines.append(f"| {r['figure']} | {r['value']} | {r['target']} | {ok} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=200 only (a few minutes)")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 200,1000)")
    parser.add_argument("--skip-sequential", action="store_true",
                        help="no sequential-script runs (apply figures only)")
    parser.add_argument("--skip-others", action="store_true",
                        help="no planner / steady-state / validate rows")
    parser.add_argument("--latency", choices=["both", "on", "off"], default="both",
                        help="which simulator latency settings to run")
    parser.add_argument("--max-msg-rate", type=float, default=None,
                        help="RECONCILER_MAX_MSG_RATE for the apply runs (default: its default)")
    args = parser.parse_args(argv)
    sizes = [200] if args.quick else [int(s) for s in (args.sizes or "200,1000").split(",")]
    started = time.perf_counter()
    rows: list[dict] = []
    for size in sizes:
        latencies = {"both": (True, False), "on": (True,), "off": (False,)}[args.latency]
        for latency in latencies:
            print(f"... N={size} {'with' if latency else 'without'} latency", file=sys.stderr,
                  flush=True)
            rows.extend(apply_rows(size, latency, not args.skip_sequential, args.max_msg_rate))
    if not args.skip_others:
        rows.extend(other_rows())
    print(f"Machine: {machine()}; {dt.date.today().isoformat()}; "
          f"benchmark time {time.perf_counter() - started:.0f} s\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
