"""Notifications and metrics of `reconcile run --once` (the timer), of the operator's halt and
resume, of a cycle that cannot reach the gateway, and of `reconcile notify` (the systemd
OnFailure= path), each received by a local HTTP endpoint (apprise `json://`).

One module-scoped world runs the commands in order against one simulator and store and keeps
what the receiver got after each; the tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from apply_helpers import ACCOUNT, Cli, Result, scenario, write_desired_state
from notify_receiver import Receiver
from prometheus_client.parser import text_string_to_metric_families

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10}


@dataclass
class ObservedCli(Cli):
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, client_id: int | None = None) -> dict[str, str]:
        return {**super().env(client_id), **self.extra}


@dataclass
class Step:
    result: Result
    notified: list[dict]
    metrics: str


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> dict[str, Step]:
    tmp = tmp_path_factory.mktemp("observe-run")
    desired = write_desired_state(tmp / "desired_state", TARGETS)
    (desired / "schedule.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Schedule\nmetadata: {name: report}\n"
        "spec: {interval: 15m, timezone: America/New_York, selfHeal: false}\n",
        encoding="utf-8",
    )
    metrics_file = tmp / "reconciler.prom"
    receiver = Receiver()
    done: dict[str, Step] = {}
    with run_in_thread(scenario(HOLDINGS)) as sim:
        gateway = f"{sim.host}:{sim.port}"
        cli = ObservedCli(
            tmp,
            gateway,
            f"sqlite:///{tmp / 'store.db'}",
            desired,
            client_id=62,
            extra={
                "RECONCILER_METRICS_FILE": str(metrics_file),
                "RECONCILER_NOTIFY_URLS": receiver.url,
            },
        )

        def step(name: str, *args: str) -> None:
            receiver.clear()
            result = cli.run(*args)
            text = metrics_file.read_text() if metrics_file.exists() else ""
            done[name] = Step(result, list(receiver.received), text)

        once = ("run", "--once", "--dir", str(desired), "--gateway", gateway)
        try:
            step("drift", *once)
            step("drift again", *once)
            step("halt", "halt", "--reason", "maintenance window")
            step("refused", "apply", "--dir", str(desired), "--auto-approve")
            step("resume", "resume")
            down = ("apply", "--dir", str(desired), "--auto-approve")
            cli.gateway = f"127.0.0.1:{closed_port()}"
            step("failed", *down)
            step("notify", "notify", "--event", "failed", "--message", "reconcile.service failed")
        finally:
            cli.close()
            receiver.close()
    return done


def test_a_report_only_cycle_notifies_its_drift_with_the_plan_summary(steps):
    step = steps["drift"]
    assert step.result.returncode == 0, step.result.explain()
    [drift] = step.notified
    assert drift["title"] == f"ib-reconciler: drift in {ACCOUNT} (2 out of band)"
    assert "report only: selfHeal false" in drift["message"]
    assert "Plan: 2 order(s)" in drift["message"]
    assert "would SELL 10 BND" in drift["message"]
    assert (
        value(step.metrics, "reconciler_cycles_total", account=ACCOUNT, outcome="report-only")
        == 1.0
    )


def test_the_same_drift_at_the_next_cycle_is_not_notified_again_within_the_period(steps):
    step = steps["drift again"]
    assert step.result.returncode == 0, step.result.explain()
    assert step.notified == []
    assert (
        value(step.metrics, "reconciler_cycles_total", account=ACCOUNT, outcome="report-only")
        == 2.0
    )


def test_halt_refusal_and_resume_are_notified(steps):
    [halt] = steps["halt"].notified
    assert "HALTED" in halt["title"] and "maintenance window" in halt["message"]
    refused = steps["refused"]
    assert refused.result.returncode == 3, refused.result.explain()
    [event] = refused.notified
    assert "REFUSED" in event["title"] and "maintenance window" in event["message"]
    assert (
        value(refused.metrics, "reconciler_cycles_total", account=ACCOUNT, outcome="refused") == 1.0
    )
    [resume] = steps["resume"].notified
    assert "resumed" in resume["title"] and resume["type"] == "success"


def test_a_cycle_that_cannot_reach_the_gateway_notifies_the_failure_and_reports_it_down(steps):
    failed = steps["failed"]
    assert failed.result.returncode == 1, failed.result.explain()
    [event] = failed.notified
    assert "FAILED" in event["title"] and event["type"] == "failure"
    assert value(failed.metrics, "reconciler_gateway_up") == 0.0
    assert value(failed.metrics, "reconciler_cycles_total", account=ACCOUNT, outcome="error") == 1.0


def test_reconcile_notify_sends_what_systemds_on_failure_unit_passes(steps):
    step = steps["notify"]
    assert step.result.returncode == 0, step.result.explain()
    assert [(n["title"], n["message"]) for n in step.notified] == [
        ("ib-reconciler: failed", "reconcile.service failed")
    ]
