"""The randomised soak: many reconcile cycles over several paper accounts while faults are
injected at random, with the invariants of `invariants.py` checked after every cycle and at
the end.

Responsible for the run as a whole, reproducible from its seed: a temporary desired-state git
repository (edited and committed when the desired state changes), the simulator as a separate
process (`simhost.py`: `reconcile sim` plus a control channel) that may be SIGKILLed and
restarted from its state file, the real `reconcile apply` / `run --once` CLI in subprocesses
(SIGKILLed or SIGTERMed at random), `reconcile halt` / `resume`, and the tally (cycles, faults
by kind, exit codes, violations). Every random choice comes from one `random.Random(seed)`;
wall-clock timing (when a kill lands relative to the apply's progress) is the only source of
variation between two runs of one seed. Must not import the reconciler's internals beyond
reading its store through the public API, and must never sleep as synchronisation: waits poll
a condition with a deadline (`waiting.wait_until`); the only sleeps are the random delays that
place a fault, which are the soak's input, not synchronisation.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from waiting import wait_until

from soak import invariants as inv

REPO_ROOT = Path(__file__).resolve().parents[2]
SIMHOST = Path(__file__).with_name("simhost.py")
ACCOUNTS = ("DU0000001", "DU0000002", "DU0000003")
# This account's targets are weights (percent of NAV), so a price jump moves it out of band;
# the others hold fixed quantities.
WEIGHTED = "DU0000003"
# Built-in simulator instruments and their reference prices (README "Offline gateway simulator").
SYMBOLS = {"VTI": 290.0, "BND": 73.0, "TLT": 92.0, "GLD": 240.0, "AAPL": 230.0, "VXUS": 64.0}
SPREAD = 0.02
CLIENT_IDS = (31, 31, 31, 32)  # mostly one client id (a restarted apply sees its orders)
PROCESS_TIMEOUT = 150.0
TRACEBACK = "Traceback (most recent call last)"
DECODE_FAILURE = "Error handling fields"

# Faults drawn before a cycle starts, and at most one during it, with their weights.
BEFORE = {
    "desired_change": 5,
    "price_jump": 3,
    "reject_symbol": 1,
    "partial_fills": 2,
    "duplicate_exec_details": 1,
    "withhold_acks": 1,
    "drop_after_orders": 1,
    "halt": 1,
}
DURING = {
    "none": 4,
    "kill_apply_sigkill": 2,
    "kill_apply_sigterm": 1,
    "kill_sim": 1,
    "disconnect": 1,
    "blip_1101": 1,
    "blip_1102": 1,
    "halt_mid_apply": 1,
    "price_jump_mid_apply": 1,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------ the simulator process


class SimProcess:
    """simhost.py as a subprocess on a fixed port, restartable from its state file."""

    def __init__(self, workdir: Path, scenario_path: Path, port: int) -> None:
        self.workdir = workdir
        self.scenario_path = scenario_path
        self.port = port
        self.state_path = workdir / "sim-state.json"
        self.incarnation = 0
        self.proc: subprocess.Popen | None = None

    @property
    def journals(self) -> list[Path]:
        return [self.workdir / f"sim-journal-{i}.jsonl" for i in range(1, self.incarnation + 1)]

    def start(self) -> None:
        self.incarnation += 1
        log = (self.workdir / f"sim-{self.incarnation}.err").open("wb")
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        self.proc = subprocess.Popen(
            [sys.executable, str(SIMHOST), "--port", str(self.port), "--state",
             str(self.state_path), "--journal", str(self.journals[-1]),
             "--scenario", str(self.scenario_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True,
            cwd=self.workdir,
        )
        log.close()
        line = self.proc.stdout.readline()  # the host prints one line when it listens
        if not line:
            raise RuntimeError(f"simulator did not start: {self.stderr()[-2000:]}")
        ready = json.loads(line)
        assert ready.get("ready"), ready

    def stderr(self) -> str:
        path = self.workdir / f"sim-{self.incarnation}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, **command) -> dict:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator exited: {self.stderr()[-2000:]}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"simulator refused {command}: {reply}")
        return reply

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def broker(self) -> inv.BrokerState:
        return inv.read_broker_state(self.state_path)


def _pythonpath() -> str:
    parts = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(Path(__file__).parent)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


# ------------------------------------------------------------------ the desired state


@dataclass
class Desired:
    """The desired-state repository: targets per account and the one RiskPolicy."""

    directory: Path
    targets: dict[str, dict[str, int]]
    max_order_notional: float = 60000.0
    max_orders_per_cycle: int = 20
    ttl: str = "4s"
    commits: int = 0

    def limits(self) -> inv.Limits:
        return inv.Limits(self.max_order_notional, self.max_orders_per_cycle)

    def write(self, message: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        docs = []
        for account, targets in self.targets.items():
            unit = "weight" if account == WEIGHTED else "quantity"
            rows = "\n".join(
                f"    - {{symbol: {s}, {unit}: {q}{'%' if unit == 'weight' else ''}}}"
                for s, q in targets.items()
            )
            docs.append(
                f"""apiVersion: reconciler/v1
kind: Portfolio
metadata: {{name: soak-{account.lower()}}}
spec:
  account: {account}
  targets:
{rows}
  cashReserve: 5%
  minTradeNotional: 0
  unmanaged: ignore
  execution: {{orderType: LMT, limitOffsetBps: 10, timeInForce: DAY, ttl: {self.ttl}}}
  riskPolicy: default
"""
            )
        docs.append(
            f"""apiVersion: reconciler/v1
kind: RiskPolicy
metadata: {{name: default}}
spec:
  tradingState: ACTIVE
  maxOrderNotional: {self.max_order_notional:g}
  maxPositionNotional: 80000
  maxLeverage: 1.0
  maxOrdersPerCycle: {self.max_orders_per_cycle}
  maxCycleTurnover: 100%
  maxDailyNotional: 100000000
  maxPriceAge: 30s
  maxSpread: 2%
"""
        )
        (self.directory / "portfolio.yaml").write_text("---\n".join(docs), encoding="utf-8")
        (self.directory / "schedule.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: Schedule\nmetadata: {name: soak}\n"
            "spec: {interval: 1m, timezone: America/New_York, selfHeal: true}\n",
            encoding="utf-8",
        )
        git = ["git", "-C", str(self.directory), "-c", "user.name=soak",
               "-c", "user.email=soak@example.invalid", "-c", "commit.gpgsign=false"]
        if not (self.directory / ".git").exists():
            subprocess.run(["git", "init", "-q", "-b", "main", str(self.directory)], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], check=True)
        self.commits += 1


# ------------------------------------------------------------------ the run


@dataclass
class CycleRecord:
    number: int
    command: str
    client_id: int
    before: list[str]
    during: str
    exit_code: int | None
    new_orders: int
    seconds: float


@dataclass
class SoakResult:
    seed: int
    cycles: list[CycleRecord] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    exit_codes: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    broker_orders: int = 0
    broker_executions: int = 0
    partially_filled_orders: int = 0
    breaks_raised: int = 0
    sim_restarts: int = 0

    def summary(self, replay: str) -> str:
        lines = [
            f"soak seed {self.seed}: {len(self.cycles)} cycles in {self.seconds:.0f}s "
            f"over {len(ACCOUNTS)} accounts",
            f"broker: {self.broker_orders} orders ({self.partially_filled_orders} filled in "
            f"several executions), {self.broker_executions} executions; "
            f"simulator restarts {self.sim_restarts}; LEDGER_BREAK events {self.breaks_raised}",
            "faults injected by kind: "
            + (", ".join(f"{k}={n}" for k, n in sorted(self.faults.items())) or "none"),
            "exit codes: " + ", ".join(f"{k}={n}" for k, n in sorted(self.exit_codes.items(),
                                                                     key=lambda kv: str(kv[0]))),
            f"invariant violations: {len(self.violations)}",
        ]
        lines += [f"  VIOLATION {v}" for v in self.violations[:50]]
        if self.violations:
            lines.append(f"replay: {replay}")
        return "\n".join(lines)


class Soak:
    def __init__(self, seed: int, seconds: float, workdir: Path,
                 log: Callable[[str], None] = lambda line: None,
                 db_url: str | None = None) -> None:
        self.seed = seed
        self.seconds = seconds
        self.workdir = workdir
        self.log = log
        self.rng = random.Random(seed)
        self.result = SoakResult(seed)
        self.db_url = db_url or f"sqlite:///{workdir / 'store.db'}"
        self.desired = Desired(
            workdir / "desired_state",
            {a: {s: self.rng.randint(1, 15) if a == WEIGHTED else self.rng.randint(1, 30)
                 for s in self.rng.sample(sorted(SYMBOLS), 4)}
             for a in ACCOUNTS},
        )
        self.prices = dict(SYMBOLS)
        self.halted = False
        self._previous_faulted = False
        self.journal = inv.JournalScanner()
        self._killed_open: set[int] = set()  # cycles of killed applies, not yet closed
        self.sim: SimProcess | None = None
        self._processes = 0

    # ----- set-up -------------------------------------------------------------------
    def _scenario(self) -> Path:
        accounts = []
        for account in ACCOUNTS:
            held = self.rng.sample(sorted(SYMBOLS), 3)
            accounts.append({
                "id": account,
                "type": "cash",
                "cash": {"USD": 100000},
                "positions": [{"symbol": s, "quantity": self.rng.randint(1, 40), "avgCost": 50}
                              for s in held],
            })
        scenario = {
            "name": f"soak-{self.seed}",
            "seed": self.seed,
            "accounts": accounts,
            "market": {"volatility": 0, "hours": "always", "fillInterval": 0.05},
        }
        path = self.workdir / "scenario.json"
        path.write_text(json.dumps(scenario, indent=1), encoding="utf-8")
        return path

    def _env(self, client_id: int) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        return {
            **keep,
            "PYTHONPATH": _pythonpath(),
            "ORDERS_ENABLED": "true",
            "RECONCILER_STATE_DIR": str(self.workdir / "state"),
            "RECONCILER_REPORTS_DIR": str(self.workdir / "reports"),
            "RECONCILER_DB_URL": self.db_url,
            "IB_CLIENT_ID": str(client_id),
            "IB_CONNECT_TIMEOUT": "8",
            "PYTHONWARNINGS": "ignore",
        }

    def _start(self, args: list[str], client_id: int) -> tuple[subprocess.Popen, Path, Path]:
        self._processes += 1
        out = self.workdir / "procs" / f"{self._processes:05d}.out"
        err = out.with_suffix(".err")
        out.parent.mkdir(exist_ok=True)
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler", *args], cwd=self.workdir,
                env=self._env(client_id), stdin=subprocess.DEVNULL, stdout=o, stderr=e,
            )
        return proc, out, err

    def _cli(self, *args: str, client_id: int = 80) -> tuple[int, str, str]:
        proc, out, err = self._start(list(args), client_id)
        code = proc.wait(PROCESS_TIMEOUT)
        return code, out.read_text(errors="replace"), err.read_text(errors="replace")

    # ----- the run ------------------------------------------------------------------
    def run(self) -> SoakResult:
        started = time.monotonic()
        scenario = self._scenario()
        self.desired.write("initial desired state")
        self.sim = SimProcess(self.workdir, scenario, free_port())
        self.sim.start()
        try:
            number = 0
            while time.monotonic() - started < self.seconds or number < 2:
                number += 1
                self._cycle(number)
            self._settle(number)
        finally:
            self.sim.stop()
            self.result.seconds = time.monotonic() - started
        return self.result

    def _violation(self, where: str, problems: list[str]) -> None:
        for problem in problems:
            line = f"{where}: {problem}"
            self.result.violations.append(line)
            self.log(f"VIOLATION {line}")

    def _ensure_sim(self) -> None:
        if not self.sim.alive():
            self.sim.start()
            self.result.sim_restarts += 1

    def _cycle(self, number: int) -> None:
        rng = self.rng
        fault_log: list[str] = []
        self._ensure_sim()
        before_broker = self.sim.broker()
        halted_before = self.halted
        if self.halted and rng.random() < 0.6:
            code, out, err = self._cli("resume")
            self._expect_clean(f"cycle {number} resume", code, err, {0})
            self.halted = False
        befores = [k for k, w in BEFORE.items() if rng.random() < w / 12]
        for kind in befores:
            self._before(kind, fault_log)
        during = rng.choices(list(DURING), weights=list(DURING.values()))[0]
        command = rng.choice(["apply", "apply", "run"])
        client_id = rng.choice(CLIENT_IDS)
        limits = self.desired.limits()
        halted_at_start = self.halted
        args = (["apply", "--dir", str(self.desired.directory), "--auto-approve"]
                if command == "apply" else
                ["run", "--once", "--ignore-window", "--dir", str(self.desired.directory)])
        args += ["--gateway", f"127.0.0.1:{self.sim.port}"]
        t0 = time.monotonic()
        proc, out, err = self._start(args, client_id)
        killed = self._during(during, proc, before_broker, client_id, fault_log)
        try:
            code = proc.wait(PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            code = proc.wait(10)
            self._violation(f"cycle {number}", [f"`reconcile {command}` hung for "
                                                f"{PROCESS_TIMEOUT:g}s and was killed"])
        seconds = time.monotonic() - t0
        self._after_cycle_faults()
        stderr = err.read_text(errors="replace")
        stdout = out.read_text(errors="replace")
        # A cycle right after a faulted one may meet its aftermath (a lock lease, orders
        # still working), so it may also refuse or fail; two clean cycles in a row may not.
        faulted = bool(fault_log) or halted_before or self._previous_faulted
        self._previous_faulted = bool(fault_log)
        self.result.exit_codes[code] += 1
        if killed != "SIGKILL":
            allowed = {0, 1, 3, 4} if faulted else {0, 4}
            if killed == "SIGTERM":
                allowed |= {-signal.SIGTERM, 128 + signal.SIGTERM, 143}
            self._expect_clean(f"cycle {number} `{command}`", code, stderr, allowed, stdout)
        after_broker = self.sim.broker()
        new_refs = after_broker.refs() - before_broker.refs()
        new_orders = [o for o in after_broker.orders if o.order_ref in new_refs]
        self._violation(f"cycle {number} limits", inv.orders_within_limits(
            new_orders, limits, halted=halted_at_start))
        # A killed apply (SIGKILL; or SIGTERM, which `apply`/`run --once` now handle by stopping
        # sending and closing the cycle, though the signal may arrive before the handler is set)
        # leaves its cycle open. The next cycle that takes the account lock (one that exits
        # 0 or 4) closes it as aborted; cycles refused or failing before the lock (a halt,
        # the gateway down) leave it open, so it may stay open until then, not longer.
        if killed is None and code in (0, 4):
            self._killed_open.clear()
        self._check_ledger(f"cycle {number}", after_broker, complete=False,
                           allow_open=killed is not None)
        record = CycleRecord(number, command, client_id, fault_log, during, code,
                             len(new_orders), seconds)
        self.result.cycles.append(record)
        self.log(f"cycle {number}: {command} client {client_id} faults {fault_log or '-'} "
                 f"exit {code} new orders {len(new_orders)} in {seconds:.1f}s")

    def _expect_clean(self, where: str, code: int, stderr: str, allowed: set[int],
                      stdout: str = "") -> None:
        problems = []
        if code not in allowed:
            problems.append(f"exit {code} not in {sorted(allowed)}; stderr: "
                            f"{stderr[-1500:]!r} stdout: {stdout[-800:]!r}")
        if TRACEBACK in stderr:
            problems.append(f"traceback on stderr: {stderr[-2000:]!r}")
        if DECODE_FAILURE in stderr:
            problems.append("the client library failed to decode a message")
        self._violation(where, problems)

    # ----- faults -------------------------------------------------------------------
    def _before(self, kind: str, fault_log: list[str]) -> None:
        rng = self.rng
        if kind == "desired_change":
            changes = []
            for _ in range(rng.randint(1, 3)):
                account = rng.choice(ACCOUNTS)
                targets = self.desired.targets[account]
                symbol = rng.choice(sorted(SYMBOLS))
                if symbol in targets and len(targets) > 1 and rng.random() < 0.25:
                    del targets[symbol]  # no longer managed (`unmanaged: ignore`): left alone
                else:
                    targets[symbol] = (rng.randint(1, 15) if account == WEIGHTED
                                       else rng.randint(1, 40))
                changes.append(f"{account} {symbol} -> {targets.get(symbol)}")
            if rng.random() < 0.4:
                self.desired.max_order_notional = rng.choice([2500.0, 6000.0, 60000.0])
            if rng.random() < 0.3:
                self.desired.max_orders_per_cycle = rng.choice([2, 4, 20])
            self.desired.write("soak: " + "; ".join(changes))
        elif kind == "price_jump":
            self._jump(rng.choice(sorted(SYMBOLS)))
        elif kind == "reject_symbol":
            self.sim.command(op="faults", spec={"rejectSymbols": [rng.choice(sorted(SYMBOLS))]})
        elif kind == "partial_fills":
            self.sim.command(op="liquidity", shares=rng.choice([1, 3, 7]))
        elif kind == "duplicate_exec_details":
            self.sim.command(op="faults", spec={"duplicateExecDetails": True})
        elif kind == "withhold_acks":
            self.sim.command(op="faults", spec={"withholdAcks": True})
        elif kind == "drop_after_orders":
            self.sim.command(op="drop_after_orders", k=rng.randint(1, 3))
        elif kind == "halt":
            if self.halted:
                return
            code, _, err = self._cli("halt", "--reason", "soak: halted between cycles")
            self._expect_clean("halt", code, err, {0})
            self.halted = True
        fault_log.append(kind)
        self.result.faults[kind] += 1

    def _jump(self, symbol: str) -> None:
        move = self.rng.choice([-0.25, -0.1, -0.04, 0.04, 0.1, 0.25])
        price = round(max(5.0, self.prices[symbol] * (1 + move)), 2)
        # prices drift back toward the reference so a long soak stays within cash and limits
        if abs(price / SYMBOLS[symbol] - 1) > 0.4:
            price = SYMBOLS[symbol]
        self.prices[symbol] = price
        self.sim.command(op="quote", symbol=symbol, bid=round(price - SPREAD / 2, 2),
                         ask=round(price + SPREAD / 2, 2), last=price)

    def _during(self, kind: str, proc: subprocess.Popen, before: inv.BrokerState,
                client_id: int, fault_log: list[str]) -> str | None:
        """Inject the in-cycle fault; returns the signal the apply was killed with, if any."""
        if kind == "none":
            return None
        rng = self.rng
        trigger = rng.choice(["delay", "first_order"])
        delay = rng.uniform(0.3, 5.0)
        if trigger == "first_order":
            def placed() -> bool:
                if proc.poll() is not None:
                    return True
                try:
                    return bool(self.sim.broker().refs() - before.refs())
                except (OSError, ValueError):
                    return False
            with contextlib.suppress(AssertionError):  # no order at all: inject anyway
                wait_until(placed, 30.0, "a first order", interval=0.05)
        else:
            end = time.monotonic() + delay
            while time.monotonic() < end and proc.poll() is None:
                time.sleep(0.05)  # the delay is the fault's random placement, not a wait
        if proc.poll() is not None:
            return None  # the apply finished before the fault landed: nothing injected
        fault_log.append(f"{kind}@{trigger}")
        self.result.faults[kind] += 1
        if kind == "kill_apply_sigkill":
            os.kill(proc.pid, signal.SIGKILL)
            return "SIGKILL"
        if kind == "kill_apply_sigterm":
            os.kill(proc.pid, signal.SIGTERM)
            return "SIGTERM"
        if kind == "kill_sim":
            self.sim.kill()
            self.result.sim_restarts += 1
            if rng.random() < 0.5:
                self.sim.start()  # back while the apply may still be retrying
        elif kind == "disconnect":
            self.sim.command(op="disconnect", client_id=client_id)
        elif kind in ("blip_1101", "blip_1102"):
            self.sim.command(op="blip", restored=int(kind[-4:]), duration=rng.uniform(0.05, 1.0))
        elif kind == "halt_mid_apply":
            code, _, err = self._cli("halt", "--reason", "soak: halted during an apply")
            self._expect_clean("halt during apply", code, err, {0})
            self.halted = True
        elif kind == "price_jump_mid_apply":
            self._jump(rng.choice(sorted(SYMBOLS)))
        return None

    def _after_cycle_faults(self) -> None:
        if not self.sim.alive():
            self.sim.kill()  # reap
            self.sim.start()
        self.sim.command(op="clear_faults")

    # ----- invariants ---------------------------------------------------------------
    def _check_ledger(self, where: str, broker: inv.BrokerState, *, complete: bool,
                      allow_open: bool) -> None:
        from reconciler.store import open_store

        placed = self.journal.scan(self.sim.journals)
        self._violation(where, inv.orders_placed_once(placed, broker))
        store = open_store(self.db_url)
        try:
            fills = store.list_fills(limit=1_000_000)
            self._violation(where, inv.executions_recorded_once(
                broker, [f.exec_id for f in fills], complete=complete))
            verified = store.verify_ledger()
            self._violation(where, inv.audit_chain(verified.ok, verified.reason))
            cycles = store.list_cycles(limit=1_000_000)
            newest = max((c.id for c in cycles), default=None)
            if allow_open and newest is not None:
                self._killed_open.add(newest)
            self._violation(where, inv.cycles_closed(
                {c.id: c.status for c in cycles},
                allow_open=() if complete else self._killed_open))
            if complete:
                breaks = [e for e in store.recent_events(limit=1_000_000) if e.kind == "BREAK"]
                self.result.breaks_raised = len(breaks)
                for account in ACCOUNTS:
                    since = store.last_snapshot_at(account)
                    if since is None:
                        continue
                    ledger = {r.con_id: r.quantity for r in store.latest_positions(account)
                              if r.con_id is not None and r.quantity}
                    for con_id, qty in store.net_fills_since(account, since).items():
                        ledger[con_id] = ledger.get(con_id, 0.0) + qty
                    ledger = {c: q for c, q in ledger.items() if abs(q) > 1e-9}
                    raised = {int((e.payload or {}).get("con_id", -1)) for e in breaks
                              if e.account == account}
                    self._violation(where, inv.positions_explained(
                        account, ledger, broker.holdings.get(account, {}), raised))
        finally:
            store.close()

    def _settle(self, number: int) -> None:
        """Faults off, trading resumed, prices back: clean cycles until the book is in sync
        (at most three), then every invariant, the complete ones included."""
        self._ensure_sim()
        self.sim.command(op="clear_faults")
        if self.halted:
            code, _, err = self._cli("resume")
            self._expect_clean("final resume", code, err, {0})
            self.halted = False
        for _ in range(3):
            number += 1
            args = ["apply", "--dir", str(self.desired.directory), "--auto-approve",
                    "--gateway", f"127.0.0.1:{self.sim.port}"]
            code, out, err = self._cli(*args, client_id=31)
            self._expect_clean(f"settling cycle {number}", code, err, {0, 4}, out)
            self.result.exit_codes[code] += 1
            self.log(f"settling cycle {number}: exit {code}")
            broker = self.sim.broker()
            if not any(o.working for o in broker.orders) and code == 0:
                break
        broker = self.sim.broker()
        self._check_ledger("at the end", broker, complete=True, allow_open=False)
        code, out, err = self._cli("audit", "verify")
        self._expect_clean("`reconcile audit verify`", code, err, {0}, out)
        self.result.broker_orders = len(broker.orders)
        self.result.broker_executions = len(broker.executions)
        per_order = Counter(e.order_ref for e in broker.executions)
        self.result.partially_filled_orders = sum(1 for n in per_order.values() if n > 1)
