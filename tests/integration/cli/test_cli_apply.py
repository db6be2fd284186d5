"""`reconcile apply` end to end: gates, dry run, stale plans, convergence, outcomes."""

from __future__ import annotations

import json
import sqlite3

import pytest
from e2e import Cli, base_env, placed_order_refs

from reconciler.model.plan import document_orders
from reconciler.sim import run_in_thread

ENABLED = {"ORDERS_ENABLED": "true"}


def test_apply_converges_every_account_and_a_second_apply_is_a_no_op(cli, sim, desired_dir):
    first = cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert first.returncode == 0, first.stderr
    refs = placed_order_refs(sim)
    assert len(refs) == 7 and len(set(refs)) == 7
    assert cli("plan", str(desired_dir), "--detailed-exitcode").returncode == 0
    second = cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert placed_order_refs(sim) == refs
    assert cli("audit", "verify").returncode == 0


def test_apply_without_orders_enabled_is_a_dry_run_that_sends_nothing(cli, sim, desired_dir):
    result = cli("apply", "--dir", str(desired_dir), "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert "DRY RUN" in result.stderr
    assert sim.journal.messages("in", 3) == []
    assert "NOT_SENT" in result.stdout
    assert cli("plan", str(desired_dir), "--detailed-exitcode").returncode == 2


def test_apply_without_auto_approve_and_without_a_terminal_sends_nothing(cli, sim, desired_dir):
    result = cli("apply", "--dir", str(desired_dir), env=ENABLED, stdin="yes\n")
    assert result.returncode == 1
    assert "Not approved" in result.stderr
    assert sim.journal.messages("in", 3) == []


GATE_CASES = {
    "live without override file": (
        {"TRADING_MODE": "live", "RECONCILER_ALLOWED_ACCOUNTS": "DU0000001,DU0000002"},
        "LIVE_TRADING_OVERRIDE_FILE",
    ),
    "live mode on paper accounts": (
        {
            "TRADING_MODE": "live",
            "RECONCILER_ALLOWED_ACCOUNTS": "DU0000001,DU0000002",
            "LIVE_TRADING_OVERRIDE_FILE": "{override}",
        },
        "ACCOUNT_KIND",
    ),
    "account not on the allowlist": (
        {"RECONCILER_ALLOWED_ACCOUNTS": "DU0000001"},
        "RECONCILER_ALLOWED_ACCOUNTS",
    ),
    "clean git required": ({"RECONCILER_REQUIRE_CLEAN_GIT": "true"}, "DESIRED_STATE_COMMITTED"),
}


@pytest.mark.parametrize("case", list(GATE_CASES))
def test_apply_when_a_gate_refuses_then_exits_3_and_sends_nothing(
    case, cli, sim, desired_dir, tmp_path
):
    env, gate = GATE_CASES[case]
    override = tmp_path / "override.txt"
    override.write_text("I mean it\n")
    env = {k: v.format(override=override) for k, v in env.items()}
    result = cli("apply", "--dir", str(desired_dir), "--auto-approve", env={**ENABLED, **env})
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert gate in result.stderr
    assert sim.journal.messages("in", 3) == []


def test_apply_when_risk_policy_is_halted_then_exits_3(cli, sim, desired_dir):
    policy = desired_dir / "risk" / "default.yaml"
    policy.write_text(policy.read_text().replace("tradingState: ACTIVE", "tradingState: HALTED"))
    result = cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert result.returncode == 3 and "TRADING_STATE" in result.stderr
    assert sim.journal.messages("in", 3) == []


def test_apply_when_account_is_not_managed_by_the_gateway_then_exits_3(cli, sim, desired_dir):
    core = desired_dir / "portfolios" / "us-core.yaml"
    core.write_text(core.read_text().replace("DU0000001", "DU0000009"))
    result = cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert (
        result.returncode == 3
        and "ACCOUNT_MANAGED" in result.stderr
        and "DU0000009" in result.stderr
    )
    assert sim.journal.messages("in", 3) == []


def test_halt_refuses_every_apply_until_resume(cli, sim, desired_dir):
    assert cli("halt", "--reason", "desk says stop").returncode == 0
    status = cli("status")
    assert "HALTED: desk says stop" in status.stdout
    refused = cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert refused.returncode == 3 and "desk says stop" in refused.stderr
    assert sim.journal.messages("in", 3) == []
    assert cli("resume").returncode == 0
    applied = cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert applied.returncode == 0, applied.stderr
    assert len(placed_order_refs(sim)) == 7


def test_apply_of_a_saved_plan_sends_exactly_its_orders(cli, sim, desired_dir, tmp_path):
    out = tmp_path / "plan.json"
    assert cli("plan", str(desired_dir), "--out", str(out)).returncode == 0
    plan = json.loads(out.read_text())
    expected = {f"rc-{plan['plan_id']}-{o['leg']:03d}" for o in document_orders(plan)}
    result = cli("apply", str(out), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 0, result.stderr
    assert sorted(placed_order_refs(sim)) == sorted(expected)


def test_apply_of_a_stale_plan_is_refused_naming_what_moved(cli, sim, desired_dir, tmp_path):
    out = tmp_path / "plan.json"
    assert cli("plan", str(desired_dir), "--out", str(out)).returncode == 0
    sim.set_quote("BND", bid=76.00, ask=76.02, last=76.01)  # +4%
    result = cli("apply", str(out), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 3
    assert "stale" in result.stderr and "BND moved" in result.stderr
    assert sim.journal.messages("in", 3) == []


def test_apply_of_a_plan_made_from_another_desired_state_is_refused(
    cli, sim, desired_dir, tmp_path
):
    out = tmp_path / "plan.json"
    assert cli("plan", str(desired_dir), "--out", str(out)).returncode == 0
    core = desired_dir / "portfolios" / "us-core.yaml"
    core.write_text(core.read_text().replace("weight: 30%", "weight: 29%"))
    result = cli("apply", str(out), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 3 and "desired state changed" in result.stderr
    assert sim.journal.messages("in", 3) == []


def test_partial_fills_and_ttl_cancels_are_recorded_and_the_next_cycle_plans_the_remainder(
    tmp_path, desired_dir
):
    scenario = {
        "accounts": [{"id": "DU0000001", "cash": {"USD": 100000}}],
        "instruments": [{"symbol": "BND", "liquidity": 40}],
        "market": {"volatility": 0, "fillInterval": 0.3},
    }
    (desired_dir / "portfolios" / "global-balanced.yaml").unlink()
    core = desired_dir / "portfolios" / "us-core.yaml"
    core.write_text(core.read_text().replace("ttl: 120s", "ttl: 1s"))
    with run_in_thread(scenario) as gw:
        cli = Cli(tmp_path, f"{gw.host}:{gw.port}", base_env(tmp_path))
        result = cli(
            "apply", "--dir", str(desired_dir), "--auto-approve", "--format", "json", env=ENABLED
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        bnd = next(o for o in report["orders"] if o["key"] == "BND")
        assert bnd["status"] == "PARTIAL_CANCELLED"
        assert 0 < bnd["filled"] < bnd["quantity"]
        held = bnd["filled"]
        events = _ledger_kinds(tmp_path, bnd["order_ref"])
        assert (
            events[0] == "INTENT"
            and "ACK" in events
            and "PARTIAL" in events
            and events[-1] == "CANCEL"
        )
        again = json.loads(cli("plan", str(desired_dir), "--format", "json").stdout)
        [next_bnd] = [o for o in document_orders(again) if o["key"] == "BND"]
        assert next_bnd["quantity"] == bnd["quantity"] - held


def test_rejected_orders_are_recorded_as_final_and_not_retried_within_the_cycle(
    tmp_path, desired_dir
):
    scenario = {
        "accounts": [{"id": "DU0000001", "cash": {"USD": 100000}}],
        "faults": {"rejectSymbols": ["SGOV"]},
    }
    (desired_dir / "portfolios" / "global-balanced.yaml").unlink()
    with run_in_thread(scenario) as gw:
        cli = Cli(tmp_path, f"{gw.host}:{gw.port}", base_env(tmp_path))
        result = cli(
            "apply", "--dir", str(desired_dir), "--auto-approve", "--format", "json", env=ENABLED
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        sgov = next(o for o in report["orders"] if o["key"] == "SGOV")
        assert sgov["status"] == "REJECTED" and sgov["filled"] == 0
        assert _ledger_kinds(tmp_path, sgov["order_ref"])[-1] == "REJ"
        assert [r for r in placed_order_refs(gw) if r == sgov["order_ref"]] == [sgov["order_ref"]]
        assert {o["status"] for o in report["orders"] if o["key"] != "SGOV"} == {"FILLED"}


def test_audit_verify_detects_an_edited_and_a_deleted_ledger_row(cli, desired_dir, tmp_path):
    assert cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED).returncode == 0
    assert cli("audit", "verify").returncode == 0
    db = sqlite3.connect(tmp_path / ".reconciler" / "reconciler.db")
    triggers = [r[0] for r in db.execute("select name from sqlite_master where type='trigger'")]
    for name in triggers:
        db.execute(f'drop trigger "{name}"')
    db.execute("update order_events set payload = replace(payload, 'BUY', 'SELL') where seq = 3")
    db.commit()
    edited = cli("audit", "verify")
    assert edited.returncode == 1 and "seq 3" in edited.stderr
    db.close()


def test_audit_verify_detects_a_deleted_row(cli, desired_dir, tmp_path):
    assert cli("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED).returncode == 0
    db = sqlite3.connect(tmp_path / ".reconciler" / "reconciler.db")
    for (name,) in db.execute("select name from sqlite_master where type='trigger'").fetchall():
        db.execute(f'drop trigger "{name}"')
    db.execute("delete from order_events where seq = 5")
    db.commit()
    db.close()
    deleted = cli("audit", "verify")
    assert deleted.returncode == 1 and "seq" in deleted.stderr


def _ledger_kinds(workdir, order_ref: str) -> list[str]:
    db = sqlite3.connect(workdir / ".reconciler" / "reconciler.db")
    try:
        return [
            k
            for (k,) in db.execute(
                "select kind from order_events where order_ref = ? order by seq", (order_ref,)
            )
        ]
    finally:
        db.close()


def test_a_saved_plan_is_applied_at_most_once(cli, sim, desired_dir, tmp_path):
    for symbol in ("GLD", "TLT", "VTI", "VXUS", "BND", "SGOV"):
        sim.call(sim.faults.reject_symbol, symbol)
    out = tmp_path / "plan.json"
    assert cli("plan", str(desired_dir), "--out", str(out)).returncode == 0
    first = cli("apply", str(out), "--dir", str(desired_dir), env=ENABLED)
    assert first.returncode == 4, first.stderr  # every order rejected: none filled
    sent = placed_order_refs(sim)
    assert len(sent) == 7  # all rejected: positions and open orders are unchanged
    again = cli("apply", str(out), "--dir", str(desired_dir), env=ENABLED)
    assert again.returncode == 3 and "already applied" in again.stderr
    assert placed_order_refs(sim) == sent
