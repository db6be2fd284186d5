"""`reconcile plan` end to end: the real client library over TCP to the simulator."""

from __future__ import annotations

import json
import socket

from e2e import Cli, base_env, placed_order_refs

from reconciler.model.plan import document_decisions, document_orders
from reconciler.sim import run_in_thread

# The demo book (DU0000001: 100,000 USD, 100 VTI, 20 AAPL; DU0000002: 80,000 USD, 200 VXUS)
# against the example desired state, at the simulator's fixed demo prices.
EXPECTED_ORDERS = {
    ("DU0000002", "BUY", "GLD", 20.0, "MIDPRICE"),
    ("DU0000002", "BUY", "TLT", 108.0, "MIDPRICE"),
    ("DU0000002", "BUY", "VTI", 51.0, "MIDPRICE"),
    ("DU0000002", "BUY", "VXUS", 34.0, "MIDPRICE"),
    ("DU0000001", "BUY", "BND", 549.0, "LMT"),
    ("DU0000001", "BUY", "SGOV", 100.0, "LMT"),
    ("DU0000001", "BUY", "VTI", 130.0, "LMT"),
}


def orders_of(plan: dict) -> set[tuple]:
    return {
        (o["account"], o["side"], o["key"], o["quantity"], o["order_type"])
        for o in document_orders(plan)
    }


def test_plan_json_lists_exactly_the_expected_orders_and_sends_none(cli, sim, desired_dir):
    result = cli("plan", str(desired_dir), "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert orders_of(plan) == EXPECTED_ORDERS
    orders = document_orders(plan)
    assert len(orders) == len(EXPECTED_ORDERS) and document_decisions(plan) == []
    assert "orders" not in plan and "decisions" not in plan  # format 4: only per account
    assert all(o["con_id"] and o["est_notional"] > 0 and o["reason"] for o in orders)
    assert plan["totals"]["denials"] == 0
    assert placed_order_refs(sim) == []
    legs = [o["leg"] for o in orders]
    assert sorted(legs) == list(range(1, len(EXPECTED_ORDERS) + 1))


def test_plan_connects_read_only_so_no_open_orders_request_is_sent(cli, sim, desired_dir):
    assert cli("plan", str(desired_dir)).returncode == 0
    assert sim.journal.messages("in", 3) == []  # placeOrder
    assert sim.journal.messages("in", 5) == []  # reqOpenOrders (sent by read-write connects only)


def test_plan_out_writes_the_artifact_and_detailed_exitcode_says_changes(
    cli, desired_dir, tmp_path
):
    out = tmp_path / "plan.json"
    result = cli("plan", str(desired_dir), "--out", str(out), "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    plan = json.loads(out.read_text())
    assert plan["format"] == "ib-reconciler/plan" and orders_of(plan) == EXPECTED_ORDERS
    assert plan["desired_hash"] and plan["actual_fingerprint"] and plan["quotes"]
    assert f"reconcile apply {out}" in result.stderr  # stdout carries only the plan
    assert "Plan written" not in result.stdout


def test_plan_markdown_is_a_pull_request_comment(cli, desired_dir):
    result = cli("plan", str(desired_dir), "--format", "markdown")
    assert result.returncode == 0
    assert result.stdout.startswith("### ib-reconciler plan")
    assert "| Leg | Side | Qty | Instrument |" in result.stdout


def test_plan_when_the_gateway_is_down_exits_1_with_a_clear_message_and_no_plan_file(
    tmp_path, desired_dir
):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Cli(tmp_path, f"127.0.0.1:{port}", base_env(tmp_path))
    out = tmp_path / "plan.json"
    result = cli("plan", str(desired_dir), "--out", str(out))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "no plan was written" in result.stderr
    assert not out.exists()


def test_plan_when_the_positions_request_times_out_exits_1_and_writes_no_plan(
    tmp_path, desired_dir
):
    with run_in_thread(
        {
            "faults": {"withholdPositionEnd": True},
            "accounts": [
                {"id": "DU0000001", "cash": {"USD": 100000}},
                {"id": "DU0000002", "cash": {"USD": 80000}},
            ],
        }
    ) as gw:
        cli = Cli(
            tmp_path, f"{gw.host}:{gw.port}", {**base_env(tmp_path), "IB_CONNECT_TIMEOUT": "2"}
        )
        out = tmp_path / "plan.json"
        result = cli("plan", str(desired_dir), "--out", str(out))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "position" in result.stderr.lower()
    assert not out.exists()


def test_plan_of_an_invalid_desired_state_exits_1_naming_file_and_line(cli, desired_dir):
    policy = desired_dir / "risk" / "default.yaml"
    policy.write_text(policy.read_text().replace("maxLeverage: 1.0", "maxLeverage: yes"))
    result = cli("plan", str(desired_dir))
    assert result.returncode == 1
    assert "risk/default.yaml:" in result.stderr and "E_YAML_BOOLEAN" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_for_an_account_the_gateway_does_not_manage_exits_1_naming_it(cli, desired_dir):
    core = desired_dir / "portfolios" / "us-core.yaml"
    core.write_text(core.read_text().replace("DU0000001", "DU0000009"))
    result = cli("plan", str(desired_dir))
    assert result.returncode == 1
    assert "DU0000009" in result.stderr and "DU0000001" in result.stderr


def test_lock_writes_the_lockfile_and_plan_uses_it(cli, desired_dir):
    result = cli("lock", str(desired_dir))
    assert result.returncode == 0, result.stderr
    lock = (desired_dir / "instruments.lock.yaml").read_text()
    for symbol in ("VTI", "BND", "SGOV", "VXUS", "TLT", "GLD"):
        assert f"{symbol}:" in lock
    assert cli("validate", str(desired_dir), gateway=False).returncode == 0
    plan = cli("plan", str(desired_dir), "--format", "json")
    assert plan.returncode == 0, plan.stderr
    assert orders_of(json.loads(plan.stdout)) == EXPECTED_ORDERS


def test_lock_of_an_ambiguous_symbol_exits_1_listing_candidates(cli, desired_dir):
    core = desired_dir / "portfolios" / "us-core.yaml"
    core.write_text(
        core.read_text().replace("{symbol: SGOV, quantity: 100}", "{symbol: DUAL, quantity: 10}")
    )
    result = cli("lock", str(desired_dir))
    assert result.returncode == 1
    assert "DUAL" in result.stderr and "ambiguous" in result.stderr.lower()
    assert "NYSE" in result.stderr and "NASDAQ" in result.stderr
    assert not (desired_dir / "instruments.lock.yaml").exists()
