"""Cycles, plans, position snapshots, risk denials and desired snapshots are recorded and
read back newest first."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.model.actual import AccountState, ActualState, Position
from reconciler.model.plan import RiskDecision
from reconciler.store import PlanConflict


def test_a_cycle_is_begun_finished_once_and_read_back(store, clock):
    cycle_id = store.begin_cycle(
        "apply",
        accounts=["DU0000002", "DU0000001"],
        desired_hash="d" * 64,
        git_commit="abc123",
        git_dirty=False,
        gates=[{"name": "TRADING_MODE", "ok": True}],
    )
    clock.advance(12.5)
    store.finish_cycle(cycle_id, "ok", report={"orders": 2, "at": clock.now()}, plan_id="p1")
    cycle = store.last_cycle()
    assert (cycle.id, cycle.kind, cycle.status, cycle.plan_id) == (cycle_id, "apply", "ok", "p1")
    assert cycle.accounts == ("DU0000001", "DU0000002")
    assert cycle.duration_seconds == 12.5
    assert cycle.report == {"orders": 2, "at": "2025-01-02T14:30:12.500000+00:00"}
    assert cycle.gates == [{"name": "TRADING_MODE", "ok": True}]
    with pytest.raises(ValueError, match="already finished"):
        store.finish_cycle(cycle_id, "failed", report={})
    with pytest.raises(ValueError, match="does not exist"):
        store.finish_cycle(999, "failed", report={})
    with pytest.raises(ValueError, match="cycle kind"):
        store.begin_cycle("yolo")


def test_last_cycle_and_list_cycles_follow_the_account_newest_first(store):
    first = store.begin_cycle("plan", accounts=["DU0000001"])
    second = store.begin_cycle("apply", accounts=["DU0000002"])
    third = store.begin_cycle("demo", accounts=["DU0000001", "DU0000002"])
    assert store.last_cycle("DU0000001").id == third
    assert [c.id for c in store.list_cycles()] == [third, second, first]
    assert [c.id for c in store.list_cycles(account="DU0000001")] == [third, first]
    assert [c.id for c in store.list_cycles(limit=1)] == [third]
    assert store.last_cycle("DU0000009") is None


def test_record_plan_is_idempotent_and_refuses_a_different_body_for_the_same_id(store):
    plan = {
        "format": "ib-reconciler/plan",
        "plan_id": "p1",
        "desired_hash": "h",
        "actual_fingerprint": "f",
        "created_at": "2025-01-02T14:00:00+00:00",
        "accounts": [],
    }
    assert store.record_plan(plan) == "p1"
    assert store.record_plan(dict(plan)) == "p1"
    assert store.get_plan("p1") == plan
    with pytest.raises(PlanConflict, match="p1"):
        store.record_plan({**plan, "desired_hash": "other"})


def _position(account: str, symbol: str, qty: float, con_id: int) -> Position:
    return Position(
        account=account,
        con_id=con_id,
        symbol=symbol,
        sec_type="STK",
        currency="USD",
        quantity=qty,
        avg_cost=100.0,
    )


def _account(account: str, *positions: Position) -> AccountState:
    return AccountState(
        account=account,
        base_currency="USD",
        net_liquidation=1e5,
        total_cash=1e4,
        cash={"USD": 1e4},
        fx_rates={"USD": 1.0},
        gross_position_value=9e4,
        buying_power=2e5,
        available_funds=1e4,
        positions=positions,
    )


def test_latest_positions_come_from_each_accounts_newest_snapshot(store, clock):
    cycle_id = store.begin_cycle("apply", accounts=["DU0000001", "DU0000002"])
    state = ActualState(
        snapshot_time=clock.now(),
        server_time=None,
        managed_accounts=("DU0000001", "DU0000002"),
        accounts={
            "DU0000001": _account("DU0000001", _position("DU0000001", "VTI", 10, 1)),
            "DU0000002": _account("DU0000002", _position("DU0000002", "BND", 5, 2)),
        },
        quotes={},
        contracts={},
    )
    assert len(store.record_actual_state(cycle_id, state)) == 2
    clock.advance(60)
    store.record_position_snapshot(
        cycle_id,
        "DU0000001",
        [
            {"con_id": 1, "symbol": "VTI", "quantity": 25, "avg_cost": 101.0},
            {"con_id": 3, "symbol": "SGOV", "quantity": 100, "avg_cost": None},
        ],
    )
    latest = store.latest_positions()
    assert [(p.account, p.symbol, p.quantity) for p in latest] == [
        ("DU0000001", "SGOV", 100),
        ("DU0000001", "VTI", 25),
        ("DU0000002", "BND", 5),
    ]
    assert [p.symbol for p in store.latest_positions("DU0000002")] == ["BND"]
    assert len(store.latest_positions(limit=2)) == 2
    store.record_position_snapshot(cycle_id, "DU0000002", [])
    assert store.latest_positions("DU0000002") == []  # flat now, not the old snapshot


def test_risk_decisions_are_recorded_with_code_action_and_detail(store):
    cycle_id = store.begin_cycle("plan", accounts=["DU0000001"])
    decisions = [
        RiskDecision(
            code="NOTIONAL_EXCEEDS_MAX_PER_ORDER",
            action="clip",
            account="DU0000001",
            key="VTI",
            side="BUY",
            requested_quantity=30,
            allowed_quantity=20,
            detail={"max": 5000, "got": 7312.5},
        ),
        RiskDecision(
            code="RESTRICTED_INSTRUMENT",
            action="deny",
            account="DU0000001",
            key="GME",
            side="BUY",
            requested_quantity=3,
            allowed_quantity=0,
        ),
    ]
    assert store.record_denials(cycle_id, "p1", decisions) == 2
    rows = store.list_denials(cycle_id=cycle_id)
    assert [(r["code"], r["action"], r["allowed_quantity"]) for r in rows] == [
        ("RESTRICTED_INSTRUMENT", "deny", 0),
        ("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "clip", 20),
    ]
    assert rows[1]["detail"] == {"max": 5000, "got": 7312.5}
    assert store.record_denials(cycle_id, "p1", []) == 0


def test_the_last_applied_desired_snapshot_is_the_newest_for_that_account(store):
    assert store.last_applied_desired_snapshot("DU0000001") is None
    cycle_id = store.begin_cycle("apply", accounts=["DU0000001"])
    store.record_desired_snapshot("DU0000001", cycle_id, {"targets": {"VTI": 0.5}})
    store.record_desired_snapshot("DU0000001", cycle_id, {"targets": {"VTI": 0.6}})
    store.record_desired_snapshot("DU0000002", cycle_id, {"targets": {}})
    assert store.last_applied_desired_snapshot("DU0000001") == {"targets": {"VTI": 0.6}}


def test_status_rows_show_each_accounts_last_cycle_lock_halt_and_pending_orders(store, clock):
    cycle_id = store.begin_cycle("apply", accounts=["DU0000001", "DU0000002"])
    store.finish_cycle(cycle_id, "ok", report={})
    store.record_intent(
        {"account": "DU0000002", "symbol": "VTI", "side": "BUY", "quantity": 1},
        order_ref="rc-p-001",
        plan_id="p",
        cycle_id=cycle_id,
    )
    store.record_position_snapshot(cycle_id, "DU0000001", [])
    store.halt("broker outage", "ops")
    with store.account_lock(["DU0000001"], "apply-now") as handle:
        rows = {row.account: row for row in store.status_rows()}
    assert set(rows) == {"DU0000001", "DU0000002"}
    assert rows["DU0000001"].last_cycle.id == cycle_id
    assert rows["DU0000001"].lock.lock_id == handle.lock_id
    assert rows["DU0000002"].lock is None
    assert rows["DU0000001"].halt.reason == "broker outage"
    assert (rows["DU0000001"].unresolved_intents, rows["DU0000002"].unresolved_intents) == (0, 1)
    assert rows["DU0000001"].positions_at == clock.now()
    assert rows["DU0000002"].as_dict()["last_cycle"]["status"] == "ok"


def test_naive_datetimes_are_refused_rather_than_guessed(store):
    with pytest.raises(Exception, match="naive datetime"):
        store.record_fill(
            exec_id="e1",
            order_ref=None,
            account="DU0000001",
            shares=1,
            price=1.0,
            time=dt.datetime(2025, 1, 2, 14, 30),
        )
