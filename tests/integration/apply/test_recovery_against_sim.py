"""Recovery against the simulator, in process: an earlier cycle's INTENT is resolved from
what the broker knows after the process that placed it is gone (filled meanwhile, still
working within or past its TTL, or never sent), and nothing is ever sent again."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from inprocess import ACCOUNT, PLACE_ORDER, kinds, plan_of, planned, scenario
from waiting import wait_until_async

from reconciler.apply.executor import Executor
from reconciler.apply.recovery import recover
from reconciler.model.plan import order_ref

pytestmark = pytest.mark.asyncio

PLACED_BY = 21
REF = order_ref("p1", 1)


def sim_order(sim, ref: str):
    [order] = [o for o in sim.book.orders.values() if o.order_ref == ref]
    return order


async def lose_an_apply_with_a_resting_buy(sim, connect_broker, store, clock, *, ttl_seconds=60.0):
    """An apply (client id 21) sends a BUY limit below the market, sees it acknowledged, and
    then its connection is gone (as when its process dies): the executor can only call the
    outcome UNKNOWN and leave the INTENT unresolved, while the order keeps working at the
    gateway. Returns the limit price."""
    limit = round(sim.quote("BND").bid - 1.0, 2)
    order = planned(sim, "BND", "BUY", 10, leg=1, limit_price=limit, ttl_seconds=ttl_seconds)
    broker = await connect_broker(sim, client_id=PLACED_BY)
    executor = Executor(
        plan_of([order]),
        broker=broker,
        store=store,
        clock=clock,
        cycle_id=store.begin_cycle("apply", accounts=[ACCOUNT]),
    )
    run = asyncio.create_task(executor.run())
    await wait_until_async(lambda: "ACK" in kinds(store, REF), what="the buy acknowledged")
    sim.disconnect_client(PLACED_BY)
    [outcome] = await asyncio.wait_for(run, timeout=10)
    await broker.disconnect()
    assert outcome.status == "UNKNOWN", outcome
    assert sim_order(sim, REF).status == "Submitted"
    assert [i.order_ref for i in store.unresolved_intents()] == [REF]
    return limit


@pytest.mark.parametrize("rerun_client_id", [PLACED_BY, 22], ids=["same-client", "other-client"])
async def test_recover_when_the_order_filled_while_its_process_was_gone_then_records_the_fill_once_and_resolves_it(
    sim_factory, connect_broker, store, clock, rerun_client_id
):
    sim = await sim_factory(scenario())
    limit = await lose_an_apply_with_a_resting_buy(sim, connect_broker, store, clock)
    sim.set_quote("BND", bid=round(limit - 0.02, 2), ask=limit)  # marketable: it fills
    await wait_until_async(
        lambda: sim_order(sim, REF).status == "Filled", what="the orphaned buy to fill"
    )
    [execution] = [e for e in sim.book.executions if e.order_ref == REF]
    rerun = await connect_broker(sim, client_id=rerun_client_id)
    progress: list[str] = []

    results = await recover(rerun, store, [ACCOUNT], clock=clock, progress=progress.append)

    assert [(r["order_ref"], r["filled"]) for r in results] == [(REF, 10)]
    assert progress == [f"recover {REF}: {results[0]['resolution']}"]
    ledger = kinds(store, REF)
    assert ledger[-1] == "FILL" and ledger.count("PARTIAL") == 1, ledger
    final = store.order_events(REF)[-1]
    assert (final.payload["recovered"], final.payload["status"]) == (True, "FILLED")
    assert [(f.exec_id, f.shares) for f in store.list_fills()] == [(execution.exec_id, 10)]
    assert store.unresolved_intents() == [] and store.verify_ledger().ok
    # Resolved once: a second recovery finds nothing to do, and nothing was ever resent.
    assert await recover(rerun, store, [ACCOUNT], clock=clock, progress=progress.append) == []
    assert kinds(store, REF) == ledger
    assert [e["client_id"] for e in sim.journal.messages("in", PLACE_ORDER)] == [PLACED_BY]


async def test_recover_keeps_a_working_order_in_flight_within_its_ttl_and_cancels_it_after(
    sim_factory, connect_broker, store, clock
):
    sim = await sim_factory(scenario())
    await lose_an_apply_with_a_resting_buy(sim, connect_broker, store, clock, ttl_seconds=60)
    rerun = await connect_broker(sim, client_id=PLACED_BY)
    progress: list[str] = []

    clock.advance(30)
    [within] = await recover(rerun, store, [ACCOUNT], clock=clock, progress=progress.append)

    assert within["resolution"].startswith("still working at the broker: Submitted")
    assert sim_order(sim, REF).status == "Submitted"
    assert kinds(store, REF)[-1] == "ACK"
    assert [i.order_ref for i in store.unresolved_intents()] == [REF]

    clock.advance(31)  # 61s after the INTENT: past the 60s TTL
    [past] = await recover(rerun, store, [ACCOUNT], clock=clock, progress=progress.append)

    assert past["resolution"] == "cancelled by recovery after its TTL; filled 0"
    assert sim_order(sim, REF).status == "Cancelled"
    assert kinds(store, REF)[-1] == "CANCEL"
    assert store.unresolved_intents() == []
    assert len(sim.journal.messages("in", PLACE_ORDER)) == 1


async def test_recover_when_the_intent_never_reached_the_broker_then_resolves_it_without_sending(
    sim_factory, connect_broker, store, clock
):
    """The process died between committing the INTENT and sending the order."""
    sim = await sim_factory(scenario())
    order = planned(sim, "BND", "BUY", 10, leg=1)
    store.record_intent(
        {**dataclasses.asdict(order), "client_id": PLACED_BY},
        order_ref=REF,
        plan_id="p1",
        cycle_id=store.begin_cycle("apply", accounts=[ACCOUNT]),
    )
    rerun = await connect_broker(sim, client_id=PLACED_BY)

    [result] = await recover(rerun, store, [ACCOUNT], clock=clock, progress=lambda _m: None)

    assert (result["order_ref"], result["filled"]) == (REF, 0)
    assert kinds(store, REF) == ["INTENT", "RESOLVED"]
    final = store.order_events(REF)[-1]
    assert final.payload["recovered"] is True and final.payload["status"] == "NEVER_REACHED"
    assert store.unresolved_intents() == []
    assert sim.journal.messages("in", PLACE_ORDER) == []
