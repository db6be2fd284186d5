"""Write-ahead orders: the order row and its INTENT commit together; outcomes resolve it;
fills are recorded once per execId."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from reconciler.model.plan import PlannedOrder, order_ref
from reconciler.store import DuplicateIntent
from reconciler.store.models import OrderEvent, OrderRow


def planned(
    leg: int, account: str = "DU0000001", side: str = "BUY", qty: float = 10
) -> PlannedOrder:
    return PlannedOrder(
        leg=leg,
        account=account,
        key="VTI",
        symbol="VTI",
        con_id=12345,
        sec_type="STK",
        exchange="SMART",
        primary_exchange="ARCA",
        currency="USD",
        side=side,
        quantity=qty,
        order_type="LMT",
        limit_price=250.5,
        time_in_force="DAY",
        ttl_seconds=120,
        outside_rth=False,
        arrival_price=250.0,
        est_notional=2505.0,
        est_commission=1.0,
        reason="below band",
    )


def intend(store, leg: int, **kw) -> str:
    ref = order_ref("p1", leg)
    store.record_intent(planned(leg, **kw), order_ref=ref, plan_id="p1", cycle_id=None)
    return ref


def test_record_intent_writes_the_order_row_and_its_intent_event_together(store, clock):
    ref = intend(store, 1)
    [order] = store.list_orders()
    assert (order.order_ref, order.symbol, order.side, order.quantity) == (ref, "VTI", "BUY", 10)
    assert (order.limit_price, order.arrival_price, order.est_notional) == (250.5, 250.0, 2505.0)
    assert order.status == "INTENT" and order.created_at == clock.now()
    [event] = store.order_events(ref)
    assert event.kind == "INTENT" and event.account == "DU0000001"
    assert event.payload["plan_id"] == "p1" and event.payload["order"]["con_id"] == 12345


def test_record_intent_twice_for_one_order_ref_is_refused_and_writes_nothing(store):
    ref = intend(store, 1)
    with pytest.raises(DuplicateIntent, match=ref):
        intend(store, 1)
    assert len(store.order_events(ref)) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OrderRow)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(OrderEvent)).scalar() == 1
    assert store.verify_ledger().ok


def test_record_intent_refuses_an_order_without_account_side_or_quantity(store):
    with pytest.raises(ValueError, match="side"):
        store.record_intent(
            {"account": "DU0000001", "symbol": "VTI", "quantity": 1},
            order_ref="rc-x-001",
            plan_id=None,
            cycle_id=None,
        )
    assert store.list_orders() == [] and store.verify_ledger().checked == 0


def test_unresolved_intents_are_those_without_a_final_outcome(store):
    only_intent = intend(store, 1)
    acked = intend(store, 2)
    partly = intend(store, 3)
    filled = intend(store, 4)
    cancelled = intend(store, 5)
    rejected = intend(store, 6)
    resolved = intend(store, 7)
    other_account = intend(store, 8, account="DU0000002")
    store.append_event("ACK", order_ref=acked, account="DU0000001", payload={"perm_id": 1})
    store.append_event("PARTIAL", order_ref=partly, account="DU0000001", payload={"shares": 4})
    store.append_event("FILL", order_ref=filled, account="DU0000001", payload={})
    store.append_event("PARTIAL", order_ref=cancelled, account="DU0000001", payload={})
    store.append_event("CANCEL", order_ref=cancelled, account="DU0000001", payload={})
    store.append_event("REJ", order_ref=rejected, account="DU0000001", payload={})
    store.append_event("RESOLVED", order_ref=resolved, account="DU0000001", payload={})

    pending = store.unresolved_intents()
    assert [i.order_ref for i in pending] == [only_intent, acked, partly, other_account]
    assert [i.last_kind for i in pending] == ["INTENT", "ACK", "PARTIAL", "INTENT"]
    assert pending[0].order["limit_price"] == 250.5
    assert [i.order_ref for i in store.unresolved_intents("DU0000002")] == [other_account]


def test_record_fill_deduplicates_by_exec_id(store, clock):
    ref = intend(store, 1)
    fill = dict(
        exec_id="0001.01",
        order_ref=ref,
        account="DU0000001",
        con_id=12345,
        symbol="VTI",
        side="BOT",
        shares=4,
        price=250.4,
        time=clock.now(),
    )
    assert store.record_fill(**fill) is True
    assert store.record_fill(**fill) is False
    assert store.record_fill(**{**fill, "exec_id": "0001.02", "shares": 6, "price": 250.6})
    assert store.filled_quantity(ref) == 10
    fills = store.list_fills()
    assert [f.exec_id for f in fills] == ["0001.02", "0001.01"]
    assert {f.side for f in fills} == {"BUY"}
    [order] = store.list_orders()
    assert order.filled_quantity == 10 and order.avg_fill_price == pytest.approx(250.52)


def test_a_fill_missing_its_contract_fields_takes_them_from_the_order(store):
    ref = intend(store, 1, side="SELL")
    assert store.record_fill(exec_id="e9", order_ref=ref, account="DU0000001", shares=3, price=10.0)
    [fill] = store.list_fills()
    assert (fill.symbol, fill.side, fill.con_id, fill.time) == ("VTI", "SELL", 12345, None)


def test_a_late_commission_report_completes_the_fill(store, clock):
    store.record_fill(
        exec_id="e1",
        order_ref=None,
        account="DU0000001",
        con_id=1,
        symbol="VTI",
        side="BUY",
        shares=1,
        price=10.0,
        time=clock.now(),
    )
    assert store.record_commission("e1", 1.05, "USD") is True
    assert store.record_commission("e1", 9.99, "USD") is False
    [fill] = store.list_fills()
    assert (fill.commission, fill.commission_currency) == (1.05, "USD")


def test_list_orders_is_newest_first_with_latest_status_and_account_filter(store, clock):
    first = intend(store, 1)
    clock.advance(1)
    second = intend(store, 2, account="DU0000002")
    store.append_event("ACK", order_ref=first, account="DU0000001", payload={})
    store.append_event("CANCEL", order_ref=first, account="DU0000001", payload={})
    orders = store.list_orders()
    assert [(o.order_ref, o.status) for o in orders] == [(second, "INTENT"), (first, "CANCEL")]
    assert [o.order_ref for o in store.list_orders(account="DU0000001")] == [first]
    assert len(store.list_orders(limit=1)) == 1
