"""The order journal against the simulator, in process: one order's broker events into the
ledger as they arrive, each execution once even when the gateway repeats it."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from inprocess import ACCOUNT, COMMISSION_REPORT, EXECUTION_DATA, kinds, planned, scenario

from reconciler.apply.journal import OrderJournal, record_fills
from reconciler.model.plan import order_ref

pytestmark = pytest.mark.asyncio

CLIENT_ID = 21
REF = order_ref("p1", 1)


def live_messages(sim, msg_id: int) -> list[list[str]]:
    """Messages the gateway pushed to our client unasked (req id -1 where there is one)."""
    return [
        e["fields"]
        for e in sim.journal.messages("out", msg_id, client_id=CLIENT_ID)
        if msg_id != EXECUTION_DATA or e["fields"][1] == "-1"
    ]


async def test_order_journal_when_exec_details_arrive_twice_then_records_each_exec_id_once(
    sim_factory, connect_broker, store
):
    sim = await sim_factory(scenario(liquidity={"IBM": 30}, faults={"duplicateExecDetails": True}))
    broker = await connect_broker(sim, client_id=CLIENT_ID)
    order = planned(sim, "IBM", "BUY", 100, leg=1)
    store.record_intent(dataclasses.asdict(order), order_ref=REF, plan_id="p1", cycle_id=None)
    handle = await broker.place_order(order, order_ref=REF)
    journal = OrderJournal(store, order, REF, handle)
    watcher = asyncio.create_task(journal.watch())
    try:
        await broker.wait_order(handle, timeout=10)
    finally:
        watcher.cancel()
    journal.drain()

    assert handle.is_final and handle.status == "Filled"
    executions = [e for e in sim.book.executions if e.order_ref == REF]
    assert [e.shares for e in executions] == [30, 30, 30, 10]
    # The gateway really did send every execution and its commission twice.
    assert len(live_messages(sim, EXECUTION_DATA)) == 2 * len(executions)
    assert len(live_messages(sim, COMMISSION_REPORT)) == 2 * len(executions)
    fills = {f.exec_id: f for f in store.list_fills()}
    assert set(fills) == {e.exec_id for e in executions}
    assert {x: fills[x].commission for x in fills} == {e.exec_id: e.commission for e in executions}
    partials = [e.payload["exec_id"] for e in store.order_events(REF) if e.kind == "PARTIAL"]
    assert sorted(partials) == sorted(fills)
    ledger = kinds(store, REF)
    assert ledger[0] == "INTENT" and ledger.count("ACK") == 1, ledger
    assert store.filled_quantity(REF) == 100
    # The same executions read back from the broker by orderRef (as recovery does) add nothing.
    trails = await broker.order_trails([REF])
    assert len(trails[REF].executions) == len(executions)
    assert record_fills(store, REF, ACCOUNT, trails[REF].executions) == 0
    assert kinds(store, REF) == ledger and store.verify_ledger().ok
