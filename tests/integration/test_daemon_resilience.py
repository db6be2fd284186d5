"""The daemon (`reconcile run`, not `--once`) against a gateway that fails (issue 10, item 5):
down at start, restarted mid-run from its state file, losing its link to IBKR (1100), and
SIGTERM while an order is in flight.

The simulator runs in this process (so tests can stop it, inject 1100/1102 and read its
journal); the daemon is a real subprocess reaching it over TCP. Waits poll a condition with
a deadline.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from apply_helpers import (
    base_env,
    broker_orders,
    ledger_kinds,
    placed_orders,
    scenario,
    wait_until,
    write_desired_state,
)

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}  # one sell first, then two buys
FAST_BACKOFF = {
    "RECONCILER_RECONNECT_INITIAL_SECONDS": "0.2",
    "RECONCILER_RECONNECT_MAX_SECONDS": "1.5",
    "RECONCILER_RECONNECT_JITTER_SECONDS": "0.05",
}
# The daemon's log lines (human format: stdout is a file, not systemd).
RETRY = "gateway unreachable"
RETRY_LINE = re.compile(r"retry=(\d+) delay_seconds=([0-9.]+)")
STOPPED_ON_SIGTERM = re.compile(r"\] stopped .*signal=SIGTERM")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Daemon:
    """`reconcile run --ignore-window` as a subprocess; its output goes to a file."""

    def __init__(self, tmp_path: Path, port: int, client_id: int, env: dict[str, str]) -> None:
        self.desired = write_desired_state(tmp_path / "desired_state", TARGETS, ttl="120s")
        (self.desired / "schedule.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: Schedule\nmetadata: {name: loop}\n"
            "spec: {interval: 1s, timezone: America/New_York, selfHeal: true}\n",
            encoding="utf-8",
        )
        self.tmp_path = tmp_path
        self.port = port
        self.env = {
            **base_env(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", client_id),
            **FAST_BACKOFF,
            **env,
        }
        self.log_path = tmp_path / "daemon.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", *self.args("run")],
            cwd=tmp_path,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def args(self, *command: str) -> list[str]:
        return [
            *command,
            "--ignore-window",
            *("--dir", str(self.desired)),
            *("--gateway", f"127.0.0.1:{self.port}"),
        ]

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.output().splitlines() if needle in line]

    def wait_for(self, what: str, condition, timeout: float = 60.0) -> None:
        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the daemon exited {self.proc.returncode} while waiting for {what}:\n"
                    + self.output()
                )
            return condition()

        try:
            wait_until(check, timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- daemon log ---\n{self.output()}") from None

    def terminate(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def assert_clean(output: str) -> None:
    assert "Traceback" not in output, output
    assert "Error handling fields" not in output, output


def refs(*sims) -> list[str]:
    return [sent.order_ref for sim in sims for sent in placed_orders(sim)]


def test_the_daemon_started_while_the_gateway_is_down_retries_with_growing_delays_then_completes_a_cycle(
    tmp_path,
):
    port = free_port()
    daemon = Daemon(tmp_path, port, client_id=41, env={})
    try:
        daemon.wait_for("four reconnect retries", lambda: len(daemon.lines(RETRY)) >= 4)
        delays = [float(RETRY_LINE.search(line)[2]) for line in daemon.lines(RETRY)]
        assert delays[0] < delays[1] < delays[2], delays  # exponential while under the cap
        assert max(delays) <= 1.5 + 0.05, delays  # capped (plus jitter)
        assert "connection refused" in daemon.lines(RETRY)[0]
        with run_in_thread(scenario(HOLDINGS), port=port) as sim:
            daemon.wait_for("a completed apply cycle", lambda: daemon.lines("apply cycle"))
            assert Counter(refs(sim)).most_common(1)[0][1] == 1
            assert len(refs(sim)) == 3
            code = daemon.terminate()
    finally:
        daemon.kill()
    output = daemon.output()
    assert code == 0, output
    assert_clean(output)
    assert STOPPED_ON_SIGTERM.search(output), output


def test_the_daemon_survives_a_gateway_restart_from_its_state_file_without_a_duplicate_order(
    tmp_path,
):
    port = free_port()
    state = tmp_path / "sim-state.json"
    daemon = None
    try:
        with run_in_thread(scenario(HOLDINGS), port=port, state_file=state) as first:
            daemon = Daemon(tmp_path, port, client_id=42, env={})
            daemon.wait_for("the first apply cycle", lambda: daemon.lines("apply cycle"))
            before = refs(first)
            assert len(before) == 3
        # The gateway is gone: the daemon keeps retrying instead of exiting.
        daemon.wait_for("a reconnect retry", lambda: daemon.lines(RETRY))
        cycles_before = len(daemon.lines("apply cycle"))
        with run_in_thread(port=port, state_file=state) as second:
            daemon.wait_for(
                "a cycle after the restart",
                lambda: len(daemon.lines("apply cycle")) > cycles_before,
            )
            after = refs(second)
            code = daemon.terminate()
    finally:
        if daemon is not None:
            daemon.kill()
    output = daemon.output()
    assert code == 0, output
    assert_clean(output)
    everything = before + after
    assert len(everything) == len(set(everything)), everything  # no orderRef sent twice
    last = daemon.lines("apply cycle")[-1]
    assert "completed" in last or "nothing to do" in last or "ok" in last, last
    assert STOPPED_ON_SIGTERM.search(output), output


def test_1100_during_a_cycle_stops_orders_until_1102_then_the_next_cycle_sends(tmp_path):
    port = free_port()
    spec = scenario(HOLDINGS)
    spec["latency"] = {"fill": 4.0}  # the sell works long enough to inject 1100 meanwhile
    daemon = None
    try:
        with run_in_thread(spec, port=port) as sim:
            daemon = Daemon(tmp_path, port, client_id=43, env={})
            daemon.wait_for("the sell reaches the simulator", lambda: refs(sim), timeout=60)
            sim.call(sim.faults.lose_connectivity)
            daemon.wait_for(
                "the cycle stops sending", lambda: daemon.lines("no further orders are sent")
            )
            assert "(1100)" in daemon.lines("no further orders are sent")[0]
            daemon.wait_for(
                "two later cycles refused by 1100",
                lambda: len(daemon.lines("error (will retry next cycle)")) >= 3,
            )
            assert all("(1100)" in line for line in daemon.lines("error (will retry"))
            assert len(refs(sim)) == 1, refs(sim)  # only the sell, sent before 1100
            sim.call(sim.faults.restore_connectivity, 1102)
            daemon.wait_for("the buys after 1102", lambda: len(refs(sim)) == 3)
            sent = refs(sim)
            code = daemon.terminate()
    finally:
        if daemon is not None:
            daemon.kill()
    output = daemon.output()
    assert code == 0, output
    assert_clean(output)
    assert len(sent) == len(set(sent)), sent


def test_sigterm_mid_cycle_exits_0_says_it_stopped_and_the_next_run_once_resolves_without_resending(
    tmp_path,
):
    port = free_port()
    spec = scenario(HOLDINGS)
    spec["latency"] = {"fill": 3.0}  # the sell is in flight when SIGTERM arrives
    daemon = None
    try:
        with run_in_thread(spec, port=port) as sim:
            daemon = Daemon(
                tmp_path, port, client_id=44, env={"RECONCILER_SHUTDOWN_GRACE_SECONDS": "2"}
            )
            daemon.wait_for("the sell reaches the simulator", lambda: refs(sim), timeout=60)
            [sell] = refs(sim)
            code = daemon.terminate(timeout=40)
            output = daemon.output()
            assert code == 0, output
            assert_clean(output)
            assert STOPPED_ON_SIGTERM.search(output), output
            assert "left for the next run's recovery" in output
            assert refs(sim) == [sell]  # stopped sending: no buy went out
            kinds = ledger_kinds(daemon.env["RECONCILER_DB_URL"], sell)
            assert kinds[0] == "INTENT" and not {"FILL", "CANCEL", "REJ", "RESOLVED"} & set(
                kinds
            ), kinds
            wait_until(
                lambda: any(o.order_ref == sell and o.filled > 0 for o in broker_orders(sim)),
                timeout=30,
                what="the sell fills at the broker",
            )
            once = subprocess.run(
                [sys.executable, "-m", "reconciler", *daemon.args("run", "--once")],
                cwd=tmp_path,
                env=daemon.env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            sent = refs(sim)
    finally:
        if daemon is not None:
            daemon.kill()
    assert once.returncode == 0, (once.stdout, once.stderr)
    assert_clean(once.stdout + once.stderr)
    assert sent.count(sell) == 1, sent  # recovered, never resent
    assert len(sent) == 3 and len(set(sent)) == 3, sent  # the buys went out once
    kinds = ledger_kinds(daemon.env["RECONCILER_DB_URL"], sell)
    assert {"FILL", "RESOLVED"} & set(kinds), kinds
