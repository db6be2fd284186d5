"""Fills reported after an order's final status: recorded once, for our orders only."""

import datetime as dt

from reconciler.apply.journal import record_late_fills
from reconciler.model.actual import Execution
from reconciler.store import open_store

ACCOUNT = "DU0000001"
REF = "rc-20260107T1700Z-abc123-001"


def execution(exec_id: str, ref: str = REF, account: str = ACCOUNT) -> Execution:
    return Execution(
        exec_id=exec_id,
        account=account,
        con_id=7,
        symbol="VEA",
        side="BUY",
        shares=4.0,
        price=50.0,
        time=dt.datetime(2026, 1, 7, 17, 0, 5, tzinfo=dt.UTC),
        order_id=1,
        perm_id=11,
        order_ref=ref,
    )


def test_record_late_fills_records_a_fill_of_a_cancelled_order_once_and_ignores_foreign_ones(
    tmp_path,
):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.record_intent(
            {"account": ACCOUNT, "symbol": "VEA", "side": "BUY", "quantity": 10.0, "leg": 1},
            order_ref=REF,
            plan_id="20260107T1700Z-abc123",
            cycle_id=None,
        )
        store.record_fill(exec_id="e1", order_ref=REF, account=ACCOUNT, shares=4.0, price=50.0)
        store.append_event("CANCEL", order_ref=REF, account=ACCOUNT, payload={"filled": 4.0})
        late = [
            execution("e1"),  # already recorded
            execution("e2"),  # after the cancel was confirmed
            execution("e3", ref="manual-1"),  # not ours
            execution("e4", account="DU0000002"),  # another account
        ]

        assert [e.exec_id for e in record_late_fills(store, late, [ACCOUNT])] == ["e2"]
        assert record_late_fills(store, late, [ACCOUNT]) == []
        assert store.filled_quantity(REF) == 8.0
        assert [e.kind for e in store.order_events(REF)][-1] == "PARTIAL"
    finally:
        store.close()
