"""Fault catalogue: what the gateway says about orders goes wrong (repeated or withheld
messages, a late fill while a cancel is pending, 10148 and 10147 cancel answers, duplicate
order ids, rejections).

Each test runs `reconcile apply` as a subprocess against the simulator and ends with the
shared invariants of both ledger and broker (tests/faults/invariants.py).
"""

from __future__ import annotations

import json

import pytest
from apply_helpers import exited, open_market, placed_orders
from waiting import wait_until

HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}  # one sell, then two buys


def test_fault_exec_details_and_order_status_delivered_twice_are_recorded_once(world, faulty):
    """Fault: every live execDetails/commissionReport and every orderStatus arrives twice
    (`duplicateExecDetails`, `duplicateOrderStatus`). Guarantee: one fill row per execId,
    one FILL per order, filled quantities equal to the broker's."""
    w = world(
        faulty(HOLDINGS, {"duplicateExecDetails": True, "duplicateOrderStatus": True}), TARGETS
    )

    result = w.cli.finish(w.cli.apply("--format", "json"))

    assert result.returncode == 0, result.explain()
    assert {o["status"] for o in json.loads(result.stdout)["orders"]} == {"FILLED"}
    live = [
        e for e in w.sim.journal.messages("out") if e["msg_id"] == 11 and "-1" in e["fields"][:3]
    ]
    assert len(live) == 2 * len(TARGETS), "the fault did not double the live execDetails"
    ledger, _ = w.safe(positions=TARGETS)
    assert ledger.fill_rows == len(TARGETS)


def test_fault_withheld_acks_on_a_resting_order_then_the_ttl_cancel_is_recorded_from_the_broker(
    world, faulty
):
    """Fault: the gateway accepts the order but never pushes openOrder/orderStatus for it
    (`withholdAcks`) while it rests in a closed market. Guarantee: at its TTL the order is
    cancelled and recorded CANCEL with 0 filled, agreeing with the broker; no second order."""
    w = world(faulty({}, {"withholdAcks": True}, closed=("VEA",)), {"VEA": 10}, ttl="2s")

    result = w.cli.finish(w.cli.apply())

    assert result.returncode == 4, result.explain()
    ledger, broker = w.safe()
    [order] = broker.ours()
    assert order.status == "Cancelled" and order.filled == 0
    assert ledger.kinds_by_ref[order.order_ref][-1] == "CANCEL"


@pytest.mark.parametrize("library", ["ib_async", "ib_insync"])
def test_fault_10148_on_the_ttl_cancel_of_a_filled_order_records_every_fill_as_filled(
    library, world, faulty
):
    """Fault: acks and fills are withheld, so at the TTL the client still thinks the orders
    work; the cancel is answered 10148 (cannot be cancelled, state Filled) and the client
    library flips them to Cancelled. Guarantee: the executor asks the broker and records
    FILLED with every execution, never CANCELLED 0/N; the next apply has nothing to do.
    (Moved here from tests/integration/test_apply_outcomes.py.)"""
    w = world(faulty(HOLDINGS, {"withholdAcks": True}), TARGETS, ttl="2s", library=library)

    result = w.cli.finish(w.cli.apply("--format", "json"))

    assert result.returncode == 0, result.explain()
    assert "10148" in result.stderr, "the scenario did not produce the 10148 cancel answer"
    report = json.loads(result.stdout)
    assert [o["status"] for o in report["orders"]] == ["FILLED"] * 3, report["orders"]
    assert not any("scaled" in n for n in report.get("notes", [])), report.get("notes")
    ledger, broker = w.safe(positions=TARGETS)
    for order in broker.ours():
        assert "CANCEL" not in ledger.kinds_by_ref[order.order_ref]
    assert "BREAK" not in ledger.event_kinds

    again = w.cli.finish(w.cli.apply())
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.explain()
    assert "recover " not in again.stderr


def test_fault_partial_fill_then_cancel_then_a_late_fill_while_pending_cancel_is_recorded(
    world, faulty
):
    """Fault: the buy fills 4 of 10 (liquidity 4, no further fills for 30 s); at its TTL the
    cancel is answered PendingCancel, one more fill of 4 arrives, then Cancelled
    (`lateFillOnCancel`). Guarantee: both executions are in the ledger once, the order ends
    CANCEL with 8 filled as at the broker (not 4, not 0), and nothing is sent again."""
    spec = faulty({}, {"lateFillOnCancel": True}, liquidity=4, fillInterval=30)
    w = world(spec, {"VEA": 10}, ttl="2s")

    result = w.cli.finish(w.cli.apply("--format", "json"))

    assert result.returncode == 0, result.explain()
    [order] = json.loads(result.stdout)["orders"]
    assert order["status"] == "PARTIAL_CANCELLED" and order["filled"] == 8, order
    ledger, broker = w.safe(positions={"VEA": 8})
    [at_broker] = broker.ours()
    assert at_broker.status == "Cancelled" and at_broker.filled == 8
    assert ledger.kinds_by_ref[at_broker.order_ref][-1] == "CANCEL"
    assert len(ledger.fills) == 2


def test_fault_a_fill_reported_after_the_cancel_was_confirmed_is_recorded_not_a_ledger_break(
    world, faulty
):
    """Fault: the buy fills 4 of 10; its TTL cancel is confirmed (Cancelled, 202) and then
    one more execution of 4 arrives for the Cancelled order (`fillAfterCancel`). Guarantee:
    that execution is recorded once, by the apply or at the latest by the next cycle before
    it plans; the order's filled quantity becomes the broker's 8; no LEDGER_BREAK and no
    second order for the 4 shares already bought."""
    spec = faulty({}, {"fillAfterCancel": True}, liquidity=4, fillInterval=30)
    w = world(spec, {"VEA": 10}, ttl="2s")

    first = w.cli.finish(w.cli.apply())
    w.sim.call(w.sim.faults.clear)
    again = w.cli.finish(w.cli.apply("--format", "json"))

    assert first.returncode == 0, first.explain()
    assert again.returncode == 0, again.explain()
    ledger, broker = w.safe(positions={"VEA": 10})
    first_ref = broker.ours()[0].order_ref
    assert ledger.orders[first_ref].filled_quantity == 8
    assert "BREAK" not in ledger.event_kinds, again.explain()
    [second] = json.loads(again.stdout)["orders"]
    assert second["quantity"] == 2, second


def test_fault_103_duplicate_order_id_is_a_rejection_and_the_next_apply_converges(world, faulty):
    """Fault: the gateway answers the first order with 103 (duplicate order id) and does not
    accept it (`duplicateIdOnOrder: 1`). Guarantee: the order is recorded REJ with nothing
    filled, it is not retried under the same orderRef, and the next apply plans the gap
    afresh and converges."""
    w = world(faulty({}, {"duplicateIdOnOrder": 1}), {"VEA": 10})

    first = w.cli.finish(w.cli.apply())

    assert first.returncode == 4, first.explain()
    assert "103" in first.stdout + first.stderr, first.explain()
    [rejected] = placed_orders(w.sim)
    assert w.cli.finish(w.cli.apply()).returncode == 0
    ledger, broker = w.safe(positions={"VEA": 10})
    assert ledger.kinds_by_ref[rejected.order_ref][-1] == "REJ"
    assert len(broker.placed_refs) == 2 and broker.placed_refs[0] == rejected.order_ref


REJECTIONS = {
    "symbol": ({"rejectSymbols": ["VEA"]}, {}, "restricted"),
    "hours": ({}, {"hours": "regular", "outsideHours": "reject"}, "outside of regular trading"),
}


@pytest.mark.parametrize("why", list(REJECTIONS))
def test_fault_201_rejection_is_final_and_the_rest_of_the_plan_proceeds(why, world, faulty):
    """Fault: the gateway rejects the VEA buy with 201 (a restricted symbol; an order outside
    regular hours where the exchange refuses to queue it). Guarantee: VEA is recorded REJ
    with 0 filled and not retried in the cycle, the other orders proceed, exit 0 (partial)."""
    faults, market, text = REJECTIONS[why]
    closed = ("VEA",) if why == "hours" else ()
    w = world(faulty(HOLDINGS, faults, closed=closed, **market), TARGETS)

    result = w.cli.finish(w.cli.apply("--format", "json"))

    assert result.returncode == 0, result.explain()
    assert text in result.stderr, result.explain()
    statuses = {o["key"]: o["status"] for o in json.loads(result.stdout)["orders"]}
    assert statuses == {"BND": "FILLED", "VEA": "REJECTED", "VWO": "FILLED"}, statuses
    ledger, broker = w.safe(positions={"BND": 10, "VWO": 10})
    vea = [r for r, o in ledger.orders.items() if o.symbol == "VEA"]
    assert len(vea) == 1 and ledger.kinds_by_ref[vea[0]][-1] == "REJ"
    assert len(broker.placed_refs) == 3


def test_fault_201_for_buying_power_taken_by_another_order_is_a_rejection(world, faulty):
    """Fault: after the apply's snapshot, another program's resting buy takes the account's
    buying power, so the gateway rejects the apply's buy with 201 (insufficient buying
    power). Guarantee: recorded REJ with 0 filled, not retried, no order over a limit."""
    import asyncio

    from foreign import place_order

    w = world(faulty(HOLDINGS, closed=("BND",), cash=20_000.0), {"BND": 10, "VEA": 100})
    # 19,000 shares of IAU bid at 1.00: it never fills, and holds 19,000 USD of buying power.
    apply = w.cli.apply("--format", "json")
    wait_until(
        lambda: len(placed_orders(w.sim)) == 1, timeout=30, what="the sell", abort=exited(apply)
    )
    asyncio.run(place_order(w.sim.host, w.sim.port, "IAU", 19_000, 1.0))
    open_market(w.sim)

    result = w.cli.finish(apply)

    assert result.returncode == 0, result.explain()  # partial: the sell filled
    assert "BUYING POWER" in result.stderr, result.explain()
    ledger, broker = w.safe(positions={"BND": 10})
    [vea] = [r for r, o in ledger.orders.items() if o.symbol == "VEA"]
    assert ledger.kinds_by_ref[vea][-1] == "REJ" and ledger.orders[vea].filled_quantity == 0
    assert [r for r in broker.placed_refs if r].count(vea) == 1


def test_fault_10147_unknown_order_on_cancel_is_never_read_as_cancelled(world, faulty):
    """Fault: the TTL cancel of a resting order is answered 10147 (order id not found) while
    the order keeps working (`unknownOnCancel`). Guarantee: the order is not recorded
    cancelled; it stays unresolved until the broker's word settles it: when it later fills,
    the next apply records its FILL from the broker and sends nothing twice."""
    w = world(faulty({}, {"unknownOnCancel": True}, closed=("VEA",)), {"VEA": 10}, ttl="2s")

    first = w.cli.finish(w.cli.apply())

    assert "10147" in first.stderr, first.explain()
    [order] = placed_orders(w.sim)
    ledger, broker = w.safe(settled=False)
    assert broker.order(order.order_ref).status == "PreSubmitted"
    assert "CANCEL" not in ledger.kinds_by_ref[order.order_ref], ledger.kinds_by_ref
    w.sim.call(w.sim.faults.clear)
    open_market(w.sim)
    wait_until(
        lambda: w.sim.call(lambda: len(w.sim.gateway.book.executions)) == 1,
        timeout=10,
        what="the still-working order to fill",
    )

    again = w.cli.finish(w.cli.apply())

    assert again.returncode == 0, again.explain()
    ledger, broker = w.safe(positions={"VEA": 10})
    assert ledger.kinds_by_ref[order.order_ref][-1] == "FILL"
    assert len(broker.placed_refs) == 1
