"""Metrics and notifications of real `reconcile apply` runs against the simulator (issue 11,
items 1 and 3): the Prometheus textfile parsed with `prometheus_client.parser` holds what the
cycle did (orders, denials, drift, outcome, NAV), counters keep growing across processes, and
the notifications reach a local HTTP receiver (apprise `json://`), a down one failing nothing.

One module-scoped world runs three applies against one simulator and store, then the tests
read what they left: (1) fills, a rejection and a denial; (2) after a position moved behind
the ledger's back, a ledger break; (3) the same with the receiver gone.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest
from apply_helpers import ACCOUNT, Cli, Result, scenario, write_desired_state
from notify_receiver import Receiver, closed_port_url
from prometheus_client.parser import text_string_to_metric_families

from reconciler.app.exit_codes import exit_code_for_status
from reconciler.sim import run_in_thread
from reconciler.store import open_store

pytestmark = pytest.mark.integration

HOLDINGS = {"BND": 20}
# BND: sell 10 (fills); VEA: buy 10 (the simulator rejects it); VWO: buy 100 = $4,500, over
# the policy's maxOrderNotional of $2,000 with onBreach: deny (a risk denial).
TARGETS = {"BND": 10, "VEA": 10, "VWO": 100}


@dataclass
class ObservedCli(Cli):
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, client_id: int | None = None) -> dict[str, str]:
        return {**super().env(client_id), **self.extra}


@dataclass
class Applied:
    result: Result
    report: dict
    metrics: str  # the textfile after this apply
    notified: list[dict]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, as Prometheus' own parser reads the text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observe-apply")
    desired = write_desired_state(tmp / "desired_state", TARGETS)
    policy = desired / "portfolio.yaml"
    policy.write_text(
        policy.read_text().replace(
            "maxOrderNotional: 60000", "maxOrderNotional: 2000\n  onBreach: deny"
        )
    )
    spec = scenario(HOLDINGS)
    spec["faults"] = {"rejectSymbols": ["VEA"]}
    metrics_file = tmp / "textfile" / "reconciler.prom"
    receiver = Receiver()
    runs: list[Applied] = []
    with run_in_thread(spec) as sim:
        cli = ObservedCli(
            tmp,
            f"{sim.host}:{sim.port}",
            f"sqlite:///{tmp / 'store.db'}",
            desired,
            client_id=61,
            extra={
                "RECONCILER_METRICS_FILE": str(metrics_file),
                "RECONCILER_NOTIFY_URLS": receiver.url,
            },
        )

        def apply() -> None:
            receiver.clear()
            result = cli.finish(cli.apply("--format", "json"))
            runs.append(
                Applied(result, result.json(), metrics_file.read_text(), list(receiver.received))
            )

        try:
            apply()

            def move_bnd():  # a trade the ledger never saw: the next cycle finds a break
                [bnd] = sim.gateway.universe.by_symbol("BND")
                sim.gateway.broker.set_position(ACCOUNT, bnd.con_id, 13, avg_cost=50)

            sim.call(move_bnd)
            apply()
            cli.extra["RECONCILER_NOTIFY_URLS"] = closed_port_url()
            apply()
        finally:
            cli.close()
            receiver.close()
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    return runs, store


def test_the_textfile_counts_the_apply_its_orders_and_its_denial(world):
    runs, _ = world
    first = runs[0]
    report, text = first.report, first.metrics
    assert first.result.returncode == exit_code_for_status(report["status"]), first.result.explain()
    assert report["status"] == "partial"
    assert value(text, "reconciler_cycles_total", account=ACCOUNT, outcome="applied") == 1.0
    by_status = {o["status"] for o in report["orders"]}
    assert by_status == {"FILLED", "REJECTED"}
    assert value(text, "reconciler_orders_total", account=ACCOUNT, outcome="filled") == 1.0
    assert value(text, "reconciler_orders_total", account=ACCOUNT, outcome="rejected") == 1.0
    [denial] = report["denials"]
    assert (
        value(
            text,
            "reconciler_risk_decisions_total",
            account=ACCOUNT,
            code=denial["code"],
            kind="denial",
        )
        == 1.0
    )
    assert value(text, "reconciler_cycle_duration_seconds_count", kind="apply") == 1.0


def test_the_textfile_holds_the_drift_left_after_the_apply_and_the_nav_it_planned_with(world):
    runs, store = world
    report, text = runs[0].report, runs[0].metrics
    managed = [d for d in report["drift_after"] if d["status"] == "managed"]
    assert managed, report
    widest = max(abs(d["drift"]) for d in managed)
    outside = sum(1 for d in managed if not d["in_band"])
    assert outside == 2  # VEA rejected, VWO denied
    assert value(text, "reconciler_drift_max_abs_ratio", account=ACCOUNT) == pytest.approx(widest)
    assert value(text, "reconciler_instruments_out_of_band", account=ACCOUNT) == outside
    plan = store.get_plan(report["plan_id"])
    assert value(text, "reconciler_nav", account=ACCOUNT, currency="USD") == pytest.approx(
        plan["nav"][ACCOUNT]
    )
    finished = value(text, "reconciler_last_cycle_success_timestamp_seconds", account=ACCOUNT)
    assert finished == pytest.approx(_timestamp(report["finished_at"]), abs=1e-3)


def test_the_textfile_says_the_gateway_was_up_what_was_sent_and_that_the_ledger_verified(world):
    text = world[0][0].metrics
    assert value(text, "reconciler_gateway_up") == 1.0
    assert value(text, "reconciler_gateway_connected") == 1.0
    assert value(text, "reconciler_gateway_messages_sent_total") > 2  # at least the two orders
    assert value(text, "reconciler_pacing_waits_total") is not None
    assert value(text, "reconciler_ledger_verified") == 1.0
    assert value(text, "reconciler_ledger_breaks", account=ACCOUNT) == 0.0


def test_counters_keep_growing_across_apply_processes(world):
    runs, _ = world
    totals = [
        sum(v for (name, _), v in samples(run.metrics).items() if name == "reconciler_cycles_total")
        for run in runs
    ]
    assert totals == [1.0, 2.0, 3.0]
    rejected = [
        value(run.metrics, "reconciler_orders_total", account=ACCOUNT, outcome="rejected")
        for run in runs
    ]
    assert rejected == sorted(rejected) and rejected[-1] >= 2.0
    sent = [value(run.metrics, "reconciler_gateway_messages_sent_total") for run in runs]
    assert sent[0] < sent[1] < sent[2]


def test_the_apply_notifies_its_rejected_order_and_its_risk_denial(world):
    first = world[0][0]
    titles = [n["title"] for n in first.notified]
    assert len(titles) == 2, titles
    [rejected] = [n for n in first.notified if "REJECTED" in n["title"]]
    [order] = [o for o in first.report["orders"] if o["status"] == "REJECTED"]
    assert order["order_ref"] in rejected["message"]
    assert rejected["type"] == "failure"
    [denial] = [n for n in first.notified if "risk denied" in n["title"]]
    assert "VWO" in denial["message"] and "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in denial["message"]
    assert value(first.metrics, "reconciler_notifications_sent_total", event="rejected") == 1.0


def test_a_ledger_break_is_notified_and_the_same_denial_is_not_notified_again(world):
    second = world[0][1]
    assert second.report["breaks"], second.report
    titles = [n["title"] for n in second.notified]
    [ledger_break] = [n for n in second.notified if "LEDGER BREAK" in n["title"]]
    assert "symbol=BND" in ledger_break["message"]
    assert not [t for t in titles if "risk denied" in t], titles  # same denial, within 24h
    assert [t for t in titles if "REJECTED" in t], titles  # each rejection is news
    assert value(second.metrics, "reconciler_ledger_breaks", account=ACCOUNT) >= 1.0


def test_a_down_receiver_fails_no_cycle_and_is_counted(world):
    third = world[0][2]
    assert third.notified == []
    status = third.report["status"]
    assert status not in ("error", "refused"), third.report
    assert third.result.returncode == exit_code_for_status(status), third.result.explain()
    assert "notification rejected not delivered" in third.result.stderr
    failed = value(third.metrics, "reconciler_notifications_failed_total", event="rejected")
    assert failed == 1.0


def test_promtool_accepts_the_textfile(world, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus) is not installed; the text is checked by its parser")
    path = tmp_path / "reconciler.prom"
    path.write_text(world[0][-1].metrics)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=path.read_text(), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _timestamp(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()
