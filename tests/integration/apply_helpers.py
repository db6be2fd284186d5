"""Helpers for the end-to-end apply tests (crash safety, concurrency): the `reconcile` CLI as
real subprocesses against a simulator running in this test process.

Responsible for writing small desired states and simulator scenarios, starting and killing
`python -m reconciler ...` processes, polling the simulator (journal, orders, positions) with
deadlines, and for a market that is "closed" per instrument so that orders rest until a test
opens it. Must not import the reconciler's internals beyond the simulator and the store (read
only), and must never sleep as synchronisation: every wait polls a condition with a deadline
(`waiting.wait_until`, re-exported here; `exited(proc)` stops it when a subprocess dies).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pg_server
from waiting import wait_until  # noqa: F401 (re-exported: the one polling helper)

ACCOUNT = "DU0000001"
PLACE_ORDER = 3  # incoming TWS message id of placeOrder
# A fixed Wednesday noon in New York: instruments with regular hours are open, and those
# given the empty session below are closed, whatever the real date and hour are.
SIM_CLOCK_START = "2026-01-07T17:00:00Z"
CLOSED_SESSION = "00:00-00:00"
DECODE_FAILURE_MARKERS = ("Error handling fields",)
SUBPROCESS_TIMEOUT = 60.0


# ------------------------------------------------------------------ desired state, scenario


def write_desired_state(
    directory: Path,
    targets: Mapping[str, float],
    *,
    ttl: str = "30s",
    account: str = ACCOUNT,
) -> Path:
    """One Portfolio of fixed-quantity targets (no band: any difference trades) and its
    RiskPolicy, with limits wide enough that nothing is clipped."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"    - {{symbol: {s}, quantity: {q:g}}}" for s, q in targets.items())
    (directory / "portfolio.yaml").write_text(
        f"""apiVersion: reconciler/v1
kind: Portfolio
metadata: {{name: e2e}}
spec:
  account: {account}
  targets:
{rows}
  cashReserve: 5%
  minTradeNotional: 0
  unmanaged: ignore
  execution: {{orderType: LMT, limitOffsetBps: 5, timeInForce: DAY, ttl: {ttl}}}
  riskPolicy: default
---
apiVersion: reconciler/v1
kind: RiskPolicy
metadata: {{name: default}}
spec:
  tradingState: ACTIVE
  maxOrderNotional: 60000
  maxPositionNotional: 80000
  maxLeverage: 1.0
  maxOrdersPerCycle: 20
  maxCycleTurnover: 100%
  maxDailyNotional: 500000
  maxPriceAge: 30s
  maxSpread: 1%
""",
        encoding="utf-8",
    )
    return directory


def scenario(
    holdings: Mapping[str, float],
    *,
    closed: Iterable[str] = (),
    cash: float = 100_000.0,
    account: str = ACCOUNT,
) -> dict:
    """A one-account scenario with fixed prices; orders for `closed` symbols rest
    (PreSubmitted, waiting for the open) until `open_market` is called."""
    return {
        "name": "apply-e2e",
        "seed": 1,
        "accounts": [
            {
                "id": account,
                "type": "cash",
                "cash": {"USD": cash},
                "positions": [
                    {"symbol": s, "quantity": q, "avgCost": 50} for s, q in holdings.items()
                ],
            }
        ],
        "instruments": [{"symbol": s, "regularHours": CLOSED_SESSION} for s in closed],
        "market": {"volatility": 0, "hours": "regular", "outsideHours": "queue"},
        "clock": {"start": SIM_CLOCK_START},
    }


# ------------------------------------------------------------------ simulator probes


def open_market(sim) -> None:
    """Let trading hours stop governing fills: resting orders fill on the next market tick."""
    sim.call(lambda: setattr(sim.gateway.hours, "enabled", False))


@dataclass(frozen=True)
class SentOrder:
    client_id: int
    order_ref: str


def placed_orders(sim) -> list[SentOrder]:
    """Every placeOrder the simulator received (its journal), in order."""
    sent = []
    for entry in list(sim.journal.messages("in", PLACE_ORDER)):
        refs = [f for f in entry["fields"] if f.startswith("rc-")]
        assert len(refs) == 1, f"placeOrder without exactly one rc- orderRef: {entry['fields']}"
        sent.append(SentOrder(entry["client_id"], refs[0]))
    return sent


def duplicate_refs(sent: Sequence[SentOrder]) -> list[str]:
    return sorted(ref for ref, n in Counter(o.order_ref for o in sent).items() if n > 1)


@dataclass(frozen=True)
class BrokerOrder:
    order_ref: str
    client_id: int
    symbol: str
    action: str
    quantity: float
    filled: float
    status: str


def broker_orders(sim) -> list[BrokerOrder]:
    """The simulator's orders (working and finished), read on its own loop."""

    def read():
        return [
            BrokerOrder(
                o.order_ref,
                o.client_id,
                sim.gateway.universe.get(o.con_id).symbol,
                o.action,
                o.total_quantity,
                o.filled,
                o.status,
            )
            for o in sim.gateway.broker.orders.values()
        ]

    return sim.call(read)


def positions(sim, account: str = ACCOUNT) -> dict[str, float]:
    return sim.call(
        lambda: {inst.symbol: qty for inst, qty, _ in sim.gateway.broker.positions(account) if qty}
    )


def shares_sent(orders: Iterable[BrokerOrder]) -> dict[str, float]:
    """Signed shares the orders asked for, per symbol."""
    totals: dict[str, float] = {}
    for o in orders:
        signed = o.quantity if o.action == "BUY" else -o.quantity
        totals[o.symbol] = totals.get(o.symbol, 0.0) + signed
    return totals


def exited(*procs: Process) -> Callable[[], str | None]:
    """For `wait_until(..., abort=exited(proc))`: stop waiting at once when one of `procs`
    exits first, with its output, so the failure explains itself."""

    def reason() -> str | None:
        for proc in procs:
            if proc.poll() is not None:
                return (
                    f"{proc.describe()} exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout()}\nstderr:\n{proc.stderr()}"
                )
        return None

    return reason


# ------------------------------------------------------------------ the CLI as subprocesses


def base_env(workdir: Path, db_url: str, client_id: int) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
    }
    return {
        **keep,
        "ORDERS_ENABLED": "true",
        "RECONCILER_STATE_DIR": str(workdir / "state"),
        "RECONCILER_REPORTS_DIR": str(workdir / "reports"),
        "RECONCILER_DB_URL": db_url,
        "IB_CLIENT_ID": str(client_id),
        "IB_CONNECT_TIMEOUT": "10",
        "PYTHONWARNINGS": "ignore",
    }


@dataclass
class Process:
    """A `reconcile` subprocess whose output goes to files (readable after a SIGKILL)."""

    args: tuple[str, ...]
    popen: subprocess.Popen
    out_path: Path
    err_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float = SUBPROCESS_TIMEOUT) -> int:
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL this process (by its own pid) and reap it."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        return f"`reconcile {' '.join(self.args)}` (pid {self.pid})"


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def explain(self) -> str:
        return (
            f"`reconcile {' '.join(self.args)}` exited {self.returncode}\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


@dataclass
class Cli:
    """Runs `python -m reconciler ...` against one simulator and one store; every process it
    started and did not reap is killed (by pid) at `close()`."""

    workdir: Path
    gateway: str
    db_url: str
    desired_dir: Path
    client_id: int = 31
    _processes: list[Process] = field(default_factory=list)
    _count: int = 0

    def env(self, client_id: int | None = None) -> dict[str, str]:
        return base_env(self.workdir, self.db_url, client_id or self.client_id)

    def _command(self, args: Sequence[str]) -> list[str]:
        command = [sys.executable, "-m", "reconciler", *args]
        if args and args[0] in ("plan", "apply"):
            command += ["--gateway", self.gateway]
        return command

    def start(self, *args: str, client_id: int | None = None) -> Process:
        self._count += 1
        out = self.workdir / f"proc{self._count}.out"
        err = self.workdir / f"proc{self._count}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            popen = subprocess.Popen(
                self._command(args),
                cwd=self.workdir,
                env=self.env(client_id),
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
            )
        proc = Process(tuple(args), popen, out, err)
        self._processes.append(proc)
        return proc

    def finish(self, proc: Process, timeout: float = SUBPROCESS_TIMEOUT) -> Result:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(
                f"{proc.describe()} did not finish within {timeout}s:\n{proc.stderr()[-4000:]}"
            ) from None
        result = Result(proc.args, proc.returncode, proc.stdout(), proc.stderr())
        assert_no_decode_errors(result)
        return result

    def run(
        self, *args: str, client_id: int | None = None, timeout: float = SUBPROCESS_TIMEOUT
    ) -> Result:
        return self.finish(self.start(*args, client_id=client_id), timeout)

    def apply(self, *extra: str, client_id: int | None = None) -> Process:
        return self.start(
            "apply", "--dir", str(self.desired_dir), "--auto-approve", *extra, client_id=client_id
        )

    def close(self) -> None:
        for proc in self._processes:
            if proc.poll() is None:
                proc.kill()


def assert_no_decode_errors(result: Result) -> None:
    for marker in DECODE_FAILURE_MARKERS:
        assert marker not in result.stderr, (
            f"client failed to decode a message:\n{result.explain()}"
        )


# ------------------------------------------------------------------ the store (read only)


def ledger_kinds(db_url: str, order_ref: str) -> list[str]:
    """Kinds of the ledger events of one orderRef, oldest first."""
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        return [event.kind for event in store.order_events(order_ref)]
    finally:
        store.close()


def ledger_payloads(db_url: str, order_ref: str) -> list[tuple[str, dict]]:
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        return [(event.kind, dict(event.payload or {})) for event in store.order_events(order_ref)]
    finally:
        store.close()


def intent_recorded_at(db_url: str, order_ref: str) -> dt.datetime:
    """When the order's INTENT was committed: where its TTL starts for recovery."""
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        intent = store.order_events(order_ref)[0]
        assert intent.kind == "INTENT", f"{order_ref}: first ledger event is {intent.kind}"
        return intent.at
    finally:
        store.close()


def recorded_order_refs(db_url: str) -> set[str]:
    """orderRefs that have an order row (written with their INTENT, before sending)."""
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        return {o.order_ref for o in store.list_orders(limit=10_000)}
    finally:
        store.close()


# ------------------------------------------------------------------ PostgreSQL


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A uniquely named, empty database on the test server (its URL), dropped afterwards;
    skips the test when the server does not answer."""
    pg_server.skip_unless_server_answers()
    admin = pg_server.admin_engine()
    try:
        with pg_server.database(admin, prefix="reconciler_apply") as name:
            yield pg_server.url_for(name)
    finally:
        admin.dispose()


def store_url(kind: str, tmp_path: Path, stack: contextlib.ExitStack) -> str:
    """A fresh store of `kind` (sqlite | postgres) for one test."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if kind == "postgres":
        return stack.enter_context(postgres_database())
    raise ValueError(f"unknown store kind {kind!r}")


def cycle_statuses(db_url: str) -> list[str]:
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        return sorted(c.status for c in store.list_cycles(limit=1000))
    finally:
        store.close()


def ledger_event_kinds(db_url: str) -> list[str]:
    """Kinds of every ledger event, oldest first."""
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        return [e.kind for e in reversed(store.recent_events(limit=100_000))]
    finally:
        store.close()


def filled_quantity(db_url: str, order_ref: str) -> float:
    """Shares the store's fills (one per execId) record for an orderRef."""
    from reconciler.store import open_store

    store = open_store(db_url)
    try:
        return store.filled_quantity(order_ref)
    finally:
        store.close()
