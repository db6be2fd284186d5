"""Outcomes automation can trust, end to end: exit codes, cycle statuses and summary lines of
`apply`, `plan --detailed-exitcode` and `run --once`; unwritable reports; unusable stores;
orders at the broker that the ledger does not know."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
from e2e import Cli, base_env, placed_order_refs
from waiting import wait_until

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

ENABLED = {"ORDERS_ENABLED": "true"}
SYMBOLS = ("GLD", "TLT", "VTI", "VXUS", "BND", "SGOV")


def _apply(cli, desired_dir, *extra, env=None):
    return cli("apply", "--dir", str(desired_dir), "--auto-approve", *extra, env=env)


def _cycles(cli, env=None) -> list[dict]:
    result = cli("show", "cycles", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _one_account(desired_dir) -> None:
    """Only DU0000001 (us-core): three orders on a fresh simulator account."""
    (desired_dir / "portfolios" / "global-balanced.yaml").unlink()


def _deny_every_order(desired_dir) -> None:
    policy = desired_dir / "risk" / "default.yaml"
    text = policy.read_text()
    text = text.replace("maxOrderNotional: 60000", "maxOrderNotional: 100")
    text = text.replace("onBreach: clip", "onBreach: deny")
    policy.write_text(text)


def _self_heal(desired_dir) -> None:
    schedule = desired_dir / "schedule.yaml"
    schedule.write_text(schedule.read_text().replace("selfHeal: false", "selfHeal: true"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ reports directory


def test_apply_when_the_reports_directory_cannot_be_created_then_exits_1_and_sends_nothing(
    cli, sim, desired_dir, tmp_path
):
    # A regular file where a parent directory is expected fails for root too.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file\n")
    env = {**ENABLED, "RECONCILER_REPORTS_DIR": str(blocker / "reports")}
    result = _apply(cli, desired_dir, env=env)
    assert result.returncode == 1, result.stderr
    assert f"reports directory {blocker / 'reports'} is not writable" in result.stderr
    assert "nothing was sent" in result.stderr
    assert sim.journal.messages("in", 3) == []
    [cycle] = _cycles(cli, env=env)
    assert cycle["status"] == "error" and "reports directory" in cycle["error"]


def test_a_report_that_cannot_be_written_after_trading_closes_the_cycle_and_the_next_apply_runs(
    tmp_path, desired_dir
):
    scenario = {
        "accounts": [{"id": "DU0000001", "cash": {"USD": 100000}}],
        "latency": {"fill": 3},
    }  # the orders work for three seconds: time to break the reports directory
    _one_account(desired_dir)
    reports = tmp_path / "reports"
    with run_in_thread(scenario) as gw:
        cli = Cli(tmp_path, f"{gw.host}:{gw.port}", base_env(tmp_path))
        apply = cli.popen("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
        try:
            wait_until(
                lambda: len([o for o in gw.broker.orders.values() if o.is_working]) == 3,
                30,
                "three working orders",
            )
            shutil.rmtree(reports)
            reports.write_text("the reports directory is now a file\n")
            out, err = apply.communicate(timeout=90)
        finally:
            if apply.poll() is None:
                apply.kill()
                apply.wait(10)
        assert apply.returncode == 0, err
        assert "Traceback" not in err
        assert "report files not written" in err and "the report is in the store" in err
        assert "3 order(s): 3 filled" in out
        [cycle] = _cycles(cli)
        assert cycle["status"] == "ok" and cycle["finished_at"]
        assert "report files not written" in cycle["report"]["report_files_error"]
        assert len(cycle["report"]["orders"]) == 3

        reports.unlink()
        again = _apply(cli, desired_dir, env=ENABLED)
        assert again.returncode == 0, again.stderr
        assert "nothing to do" in again.stdout
        assert [c["status"] for c in _cycles(cli)] == ["ok", "ok"]
        assert len(list(reports.glob("*-cycle2.md"))) == 1


# ------------------------------------------------------------------ unusable stores


def _read_only_store(cli) -> dict[str, str]:
    """Create the store, then an env whose RECONCILER_DB_URL opens it read-only."""
    assert cli("status").returncode == 0
    db = cli.workdir / ".reconciler" / "reconciler.db"
    assert db.is_file()
    return {"RECONCILER_DB_URL": f"sqlite:///file:{db}?mode=ro&uri=true"}


def test_apply_on_a_read_only_store_is_one_line_naming_the_database_and_sends_nothing(
    cli, sim, desired_dir
):
    env = {**ENABLED, **_read_only_store(cli)}
    result = _apply(cli, desired_dir, env=env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "reconciler.db" in line and "read-only" in line and "nothing was sent" in line
    assert "sqlalchemy" not in result.stderr.lower()
    assert sim.journal.messages("in", 3) == []


def test_halt_on_a_read_only_store_says_loudly_that_trading_is_not_halted(cli, sim):
    env = _read_only_store(cli)
    result = cli("halt", "--reason", "desk says stop", env=env)
    assert result.returncode == 1
    assert "HALT NOT RECORDED" in result.stderr and "reconciler.db" in result.stderr
    assert "TRADING IS NOT HALTED" in result.stderr
    assert "tradingState: HALTED" in result.stderr and "systemctl stop" in result.stderr
    assert "HALTED: desk says stop" not in result.stdout
    assert "not halted" in cli("status").stdout


def test_a_store_file_that_is_not_a_database_is_a_one_line_error(cli, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a database\n" * 50)
    result = cli("status", env={"RECONCILER_DB_URL": f"sqlite:///{bogus}"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot open the store {bogus}: the file is not a SQLite database "
        "[file is not a database]"
    ]


# ------------------------------------------------------------------ apply outcomes


def test_apply_when_every_order_is_rejected_then_exits_4_with_the_counts(cli, sim, desired_dir):
    for symbol in SYMBOLS:
        sim.call(sim.faults.reject_symbol, symbol)
    result = _apply(cli, desired_dir, env=ENABLED)
    assert result.returncode == 4, result.stderr
    assert (
        "Orders: 7 order(s): 0 filled, 0 partly filled, 7 rejected, 0 cancelled, 0 not sent, "
        "0 unknown." in result.stdout
    )
    assert "none-filled: NOTHING FILLED" in result.stdout
    assert "applied" not in result.stdout
    # The client library's Trade(...) dumps are not shown; our own lines are.
    assert "Canceled order: Trade(" not in result.stderr
    assert len(result.stderr) < 8000, result.stderr
    assert result.stderr.count("REJECTED") == 7
    [cycle] = _cycles(cli)
    assert cycle["status"] == "none-filled"
    assert cycle["report"]["counts"]["rejected"] == 7


def test_apply_when_every_needed_order_is_denied_then_exits_4_and_sends_nothing(
    cli, sim, desired_dir
):
    _deny_every_order(desired_dir)
    result = _apply(cli, desired_dir, "--format", "json", env=ENABLED)
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "blocked" and report["orders"] == []
    assert len(report["drift_not_closed"]) == 7  # the 7 instruments the orders were for
    assert "no allowed order closes the drift" in report["result"]
    assert sim.journal.messages("in", 3) == []


def test_plan_detailed_exitcode_when_every_needed_order_is_denied_then_exits_4(cli, desired_dir):
    _deny_every_order(desired_dir)
    result = cli("plan", str(desired_dir), "--detailed-exitcode")
    assert result.returncode == 4, result.stderr
    assert "stay outside their band" in result.stdout


def test_plan_detailed_exitcode_is_2_with_orders_and_0_in_sync(cli, desired_dir):
    assert cli("plan", str(desired_dir), "--detailed-exitcode").returncode == 2
    assert _apply(cli, desired_dir, env=ENABLED).returncode == 0
    assert cli("plan", str(desired_dir), "--detailed-exitcode").returncode == 0


def test_a_dry_run_is_recorded_and_reported_as_dry_run_with_the_orders_it_would_send(
    cli, sim, desired_dir
):
    result = _apply(cli, desired_dir)
    assert result.returncode == 0, result.stderr
    assert "7 order(s) would have been sent" in result.stdout
    assert sim.journal.messages("in", 3) == []
    [cycle] = _cycles(cli)
    assert cycle["status"] == "dry-run"
    assert cycle["report"]["would_send"] == 7
    [markdown] = list((cli.workdir / "reports").glob("*-cycle1.md"))
    text = markdown.read_text()
    assert text.startswith("# Cycle 1 (apply): dry-run\n")
    assert "| ORDERS_ENABLED | dry run: orders disabled |" in text
    assert "| ORDERS_ENABLED | pass |" not in text
    [report] = list((cli.workdir / "reports").glob("*-cycle1.json"))
    body = json.loads(report.read_text())
    gate = next(g for g in body["gates"] if g["name"] == "ORDERS_ENABLED")
    assert gate["result"] == "dry run: orders disabled"


# ------------------------------------------------------------------ run --once


def test_run_once_when_the_gateway_is_down_exits_1(tmp_path, desired_dir):
    _self_heal(desired_dir)
    cli = Cli(tmp_path, f"127.0.0.1:{_free_port()}", base_env(tmp_path))
    result = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "error" in result.stdout and "connect" in result.stdout


def test_run_once_when_halted_exits_3_and_sends_nothing(cli, sim, desired_dir):
    _self_heal(desired_dir)
    assert cli("halt", "--reason", "desk says stop").returncode == 0
    result = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "refused" in result.stdout and "desk says stop" in result.stdout
    assert sim.journal.messages("in", 3) == []


def test_run_once_applies_and_exits_0_then_exits_4_when_every_order_is_rejected(
    cli, sim, desired_dir
):
    _self_heal(desired_dir)
    for symbol in SYMBOLS:
        sim.call(sim.faults.reject_symbol, symbol)
    rejected = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir), env=ENABLED)
    assert rejected.returncode == 4, (rejected.stdout, rejected.stderr)
    assert "none-filled" in rejected.stdout
    sim.call(sim.faults.clear)
    applied = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir), env=ENABLED)
    assert applied.returncode == 0, (applied.stdout, applied.stderr)
    assert "applied: all 7 order(s) filled" in applied.stdout


def test_run_once_dry_run_exits_0_and_is_recorded_as_dry_run(cli, sim, desired_dir):
    _self_heal(desired_dir)
    result = cli("run", "--once", "--ignore-window", "--dir", str(desired_dir))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "dry-run" in result.stdout
    assert [c["status"] for c in _cycles(cli)] == ["dry-run"]
    assert sim.journal.messages("in", 3) == []


# ------------------------------------------------------------------ a lost or replaced store


def test_apply_with_a_new_store_while_the_broker_works_rc_orders_refuses_naming_them(
    tmp_path, desired_dir
):
    scenario = {
        "accounts": [{"id": "DU0000001", "cash": {"USD": 100000}}],
        "latency": {"fill": 60},
    }  # acknowledged, then working for a minute
    _one_account(desired_dir)
    with run_in_thread(scenario) as gw:
        cli = Cli(tmp_path, f"{gw.host}:{gw.port}", base_env(tmp_path))
        first = cli.popen("apply", "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
        try:
            wait_until(
                lambda: len([o for o in gw.broker.orders.values() if o.is_working]) == 3,
                30,
                "three working orders",
            )
        finally:
            first.kill()
            first.wait(10)
        working = sorted(o.order_ref for o in gw.broker.orders.values() if o.is_working)
        lost = {**ENABLED, "RECONCILER_STATE_DIR": str(tmp_path / "new-state")}
        verify = cli("audit", "verify", env=lost)
        assert verify.returncode == 0
        assert "Ledger EMPTY" in verify.stdout and "lost, replaced" in verify.stdout
        sent = placed_order_refs(gw)
        result = _apply(cli, desired_dir, env=lost)
        assert result.returncode == 3, (result.stdout, result.stderr)
        assert "not in the ledger" in result.stderr and "in flight twice" in result.stderr
        for ref in working:
            assert ref in result.stderr
        assert placed_order_refs(gw) == sent


def test_apply_with_a_new_store_reports_filled_rc_orders_it_does_not_know(
    cli, sim, desired_dir, tmp_path
):
    assert _apply(cli, desired_dir, env=ENABLED).returncode == 0
    refs = placed_order_refs(sim)
    lost = {**ENABLED, "RECONCILER_STATE_DIR": str(tmp_path / "new-state")}
    result = _apply(cli, desired_dir, "--format", "json", env=lost)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["orphan_orders"]) == 7
    assert all(any(ref in line for line in report["orphan_orders"]) for ref in refs)
    assert any("not in the ledger" in note for note in report["notes"])
    assert "unknown to the ledger" in result.stderr
    assert placed_order_refs(sim) == refs


def test_health_check_orders_are_not_taken_for_orders_unknown_to_the_ledger(cli, sim, desired_dir):
    assert cli("health", "--check-orders", "--account", "DU0000001").returncode == 0
    result = _apply(cli, desired_dir, "--format", "json", env=ENABLED)
    assert result.returncode == 0, result.stderr
    assert "orphan_orders" not in json.loads(result.stdout)
