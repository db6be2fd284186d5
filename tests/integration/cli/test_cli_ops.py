"""Operator commands end to end: health, halt/resume, run, status, show."""

from __future__ import annotations

import json
import socket

from e2e import Cli, base_env, placed_order_refs
from waiting import wait_until

from reconciler.model.plan import document_decisions, document_orders
from reconciler.sim import run_in_thread

ENABLED = {"ORDERS_ENABLED": "true"}


def test_health_against_the_simulator_is_healthy_and_sends_no_order(cli, sim):
    result = cli("health")
    assert result.returncode == 0, result.stderr
    assert "managed accounts: DU0000001, DU0000002" in result.stdout
    assert "healthy" in result.stdout.splitlines()[-1]
    assert sim.journal.messages("in", 3) == []


def test_health_when_the_gateway_is_down_exits_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = Cli(tmp_path, f"127.0.0.1:{port}", base_env(tmp_path))("health", "--format", "json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["healthy"] is False and str(port) in body["error"]


def test_health_check_orders_places_a_far_limit_and_cancels_it(cli, sim):
    result = cli("health", "--check-orders", "--account", "DU0000001")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert len(sim.journal.messages("in", 3)) == 1
    assert sim.journal.messages("in", 4), "the check order was not cancelled"
    assert not [o for o in sim.broker.orders.values() if o.is_working]
    assert "check-orders on DU0000001" in result.stdout


def test_health_check_orders_refuses_a_live_account(cli, sim):
    result = cli("health", "--check-orders", "--account", "U0000001")
    assert result.returncode == 1
    assert sim.journal.messages("in", 3) == []


def test_halt_with_cancel_open_cancels_orders_a_killed_apply_left_working(tmp_path, desired_dir):
    scenario = {
        "accounts": [{"id": "DU0000001", "cash": {"USD": 100000}}],
        "latency": {"fill": 60},
    }  # orders are acknowledged, then work for a minute
    (desired_dir / "portfolios" / "global-balanced.yaml").unlink()
    with run_in_thread(scenario) as gw:
        cli = Cli(tmp_path, f"{gw.host}:{gw.port}", base_env(tmp_path))
        apply = cli.popen("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
        try:
            wait_until(
                lambda: len([o for o in gw.broker.orders.values() if o.is_working]) == 3,
                30,
                "three working orders",
            )
        finally:
            apply.kill()
            apply.wait(10)
        halted = cli("halt", "--reason", "apply crashed", "--cancel-open")
        assert halted.returncode == 0, halted.stderr
        assert "Cancelled 3 open order(s)" in halted.stdout
        wait_until(
            lambda: not [o for o in gw.broker.orders.values() if o.is_working], 10, "cancels"
        )
        assert "HALTED: apply crashed" in cli("status").stdout


def test_run_once_with_self_heal_false_only_reports_drift(cli, sim, desired_dir):
    result = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 0, result.stderr
    assert "drift report (selfHeal false)" in result.stdout and "7 order(s)" in result.stdout
    assert sim.journal.messages("in", 3) == []
    cycles = json.loads(cli("show", "cycles", "--format", "json").stdout)
    assert [(c["kind"], c["status"]) for c in cycles] == [("plan", "ok")]
    [report] = list((cli.workdir / "reports").glob("*-cycle*.json"))
    body = json.loads(report.read_text())
    assert body["planned_orders"] == 7 and body["orders"] == []


def test_run_once_with_self_heal_true_applies(cli, sim, desired_dir):
    schedule = desired_dir / "schedule.yaml"
    schedule.write_text(schedule.read_text().replace("selfHeal: false", "selfHeal: true"))
    result = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 0, result.stderr
    assert "apply cycle" in result.stdout and "applied" in result.stdout
    assert len(placed_order_refs(sim)) == 7


def test_status_and_show_after_an_apply(cli, desired_dir):
    assert cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED).returncode == 0
    status = cli("status", "--format", "json")
    assert status.returncode == 0
    accounts = {row["account"]: row for row in json.loads(status.stdout)["accounts"]}
    assert set(accounts) == {"DU0000001", "DU0000002"}
    assert accounts["DU0000001"]["drift"].startswith("0 of 3 outside band")
    orders = json.loads(cli("show", "orders", "--format", "json").stdout)
    assert len(orders) == 7 and {o["status"] for o in orders} == {"FILL"}
    fills = json.loads(cli("show", "fills", "--account", "DU0000002", "--format", "json").stdout)
    assert {f["symbol"] for f in fills} == {"GLD", "TLT", "VTI", "VXUS"}
    cycles = cli("show", "cycles", "--limit", "1")
    assert "applied" in cycles.stdout
    positions = json.loads(
        cli("show", "positions", "--account", "DU0000001", "--format", "json").stdout
    )
    assert {p["symbol"]: p["quantity"] for p in positions}["SGOV"] == 100.0


def test_show_risk_prints_effective_limits_and_their_source(cli, desired_dir):
    env = {
        "EXEC_RISK_ENABLED": "true",
        "EXEC_RISK_MAX_ORDER_NOTIONAL": "5000",
        "EXEC_RISK_MAX_POSITION_NOTIONAL": "999999999",
    }
    result = cli("show", "risk", "--dir", str(desired_dir), "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {r["limit"]: r for r in json.loads(result.stdout)}
    assert rows["max_order_notional"]["value"] == 5000.0
    assert rows["max_order_notional"]["source"] == "env:EXEC_RISK_MAX_ORDER_NOTIONAL"
    assert rows["max_position_notional"]["value"] == 80000.0  # looser env is ignored
    assert rows["max_position_notional"]["source"].startswith("git:")


def test_env_override_tightens_the_plan(cli, desired_dir):
    env = {"EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_ORDER_NOTIONAL": "5000"}
    plan = json.loads(cli("plan", str(desired_dir), "--format", "json", env=env).stdout)
    orders = document_orders(plan)
    assert orders and all(o["est_notional"] <= 5000 for o in orders)
    assert any(d["code"] == "NOTIONAL_EXCEEDS_MAX_PER_ORDER" for d in document_decisions(plan))


def test_invalid_environment_value_is_a_clear_error(cli, desired_dir):
    result = cli("plan", str(desired_dir), env={"IB_GATEWAY_PORT": "four"})
    assert result.returncode == 1
    assert "IB_GATEWAY_PORT='four'" in result.stderr


def test_plan_markdown_shows_desired_state_changes_since_the_last_recorded_cycle(cli, desired_dir):
    assert cli("run", "--once", "--ignore-window", "--dir", str(desired_dir)).returncode == 0
    core = desired_dir / "portfolios" / "us-core.yaml"
    core.write_text(core.read_text().replace("weight: 50%", "weight: 45%"))
    result = cli("plan", str(desired_dir), "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert "#### Desired-state changes (against the last recorded cycle)" in result.stdout
    assert "- Portfolio us-core: targets VTI weight 50% → 45%" in result.stdout
