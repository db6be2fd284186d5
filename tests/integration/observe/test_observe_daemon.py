"""The daemon (`reconcile run`) serves its metrics over HTTP (RECONCILER_METRICS_PORT) and
they follow its cycles; a real subprocess against the simulator in this process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from apply_helpers import ACCOUNT, base_env, scenario, wait_until, write_desired_state
from prometheus_client.parser import text_string_to_metric_families

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_daemon_serves_metrics_over_http_that_count_its_cycles(tmp_path):
    desired = write_desired_state(tmp_path / "desired_state", {"BND": 10, "VEA": 10})
    (desired / "schedule.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Schedule\nmetadata: {name: loop}\n"
        "spec: {interval: 1s, timezone: America/New_York, selfHeal: false}\n",
        encoding="utf-8",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    log = tmp_path / "daemon.log"
    with run_in_thread(scenario({"BND": 20})) as sim, log.open("w") as out:
        gateway = f"{sim.host}:{sim.port}"
        env = {
            **base_env(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 63),
            "RECONCILER_METRICS_PORT": str(port),
        }
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "run",
                "--dir",
                str(desired),
                "--gateway",
                gateway,
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            reports = (
                "reconciler_cycles_total",
                (("account", ACCOUNT), ("outcome", "report-only")),
            )

            def two_cycles_counted() -> bool:
                if daemon.poll() is not None:
                    raise AssertionError(f"daemon exited {daemon.returncode}:\n{log.read_text()}")
                if f"metrics served at {url}" not in log.read_text():
                    return False
                return scrape(url).get(reports, 0.0) >= 2.0

            wait_until(two_cycles_counted, timeout=60, what="two cycles counted at /metrics")
            metrics = scrape(url)
            assert metrics[("reconciler_gateway_up", ())] == 1.0
            assert metrics[("reconciler_instruments_out_of_band", (("account", ACCOUNT),))] == 2.0
            assert metrics[("reconciler_cycle_duration_seconds_count", (("kind", "plan"),))] >= 2.0
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(60) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_the_daemon_refuses_to_start_on_a_metrics_port_already_in_use(tmp_path):
    desired = write_desired_state(tmp_path / "desired_state", {"BND": 10})
    (desired / "schedule.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Schedule\nmetadata: {name: loop}\n"
        "spec: {interval: 1h, timezone: America/New_York, selfHeal: false}\n",
        encoding="utf-8",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **base_env(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 64),
            "RECONCILER_METRICS_PORT": str(port),
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "run",
                "--dir",
                str(desired),
                "--gateway",
                f"127.0.0.1:{free_port()}",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
