"""The executor against the simulator, in process: write-ahead INTENT before every
placeOrder, sells before buys (buys only once every sell is final), and the TTL cancel of a
partly filled order recorded as CANCEL with what did fill."""

from __future__ import annotations

import asyncio

import pytest
from inprocess import (
    ACCOUNT,
    LedgerAtPlaceOrder,
    kinds,
    plan_of,
    planned,
    scenario,
)
from waiting import wait_until_async

from reconciler.apply.executor import Executor
from reconciler.model.plan import order_ref

pytestmark = pytest.mark.asyncio


def executor_for(orders, *, broker, store, clock, progress=None) -> Executor:
    return Executor(
        plan_of(orders),
        broker=broker,
        store=store,
        clock=clock,
        cycle_id=store.begin_cycle("apply", accounts=[ACCOUNT]),
        progress=progress or (lambda _message: None),
    )


def sim_order(sim, ref: str):
    [order] = [o for o in sim.book.orders.values() if o.order_ref == ref]
    return order


async def test_executor_commits_each_orders_intent_before_its_place_order_reaches_the_gateway(
    sim_factory, connect_broker, store, clock
):
    sim = await sim_factory(scenario(holdings={"BND": 20}))
    sim.journal = watch = LedgerAtPlaceOrder(store)
    # Buys on the lower legs: the sell (leg 3) must still go first.
    orders = [
        planned(sim, "VTI", "BUY", 3, leg=1),
        planned(sim, "AAPL", "BUY", 2, leg=2),
        planned(sim, "BND", "SELL", 10, leg=3),
    ]
    sell, buy_vti, buy_aapl = (order_ref("p1", leg) for leg in (3, 1, 2))
    broker = await connect_broker(sim)

    outcomes = await executor_for(orders, broker=broker, store=store, clock=clock).run()

    assert [(o.order_ref, o.status, o.filled) for o in outcomes] == [
        (buy_vti, "FILLED", 3),
        (buy_aapl, "FILLED", 2),
        (sell, "FILLED", 10),
    ]
    assert [a.order_ref for a in watch.arrivals] == [sell, buy_vti, buy_aapl]
    for arrival in watch.arrivals:
        # When the gateway got the order, its INTENT was committed and nothing else of it.
        assert arrival.ledger.get(arrival.order_ref) == ("INTENT",), arrival
    events = sorted(store.recent_events(limit=1000), key=lambda e: e.seq)
    assert [e.order_ref for e in events if e.kind == "INTENT"] == [sell, buy_vti, buy_aapl]
    for ref in (sell, buy_vti, buy_aapl):
        ledger = kinds(store, ref)
        assert ledger[0] == "INTENT" and ledger[-1] == "FILL", (ref, ledger)
    assert store.unresolved_intents() == [] and store.verify_ledger().ok


async def test_executor_sends_the_buys_only_once_every_sell_is_final(
    sim_factory, connect_broker, store, clock
):
    sim = await sim_factory(scenario(holdings={"BND": 20}))
    sim.journal = watch = LedgerAtPlaceOrder(store)
    limit = round(sim.quote("BND").ask + 1.0, 2)  # above the market: the sell rests
    orders = [
        planned(sim, "VTI", "BUY", 3, leg=1),
        planned(sim, "BND", "SELL", 10, leg=2, limit_price=limit),
        planned(sim, "AAPL", "BUY", 2, leg=3),
    ]
    buy_vti, sell, buy_aapl = (order_ref("p1", leg) for leg in (1, 2, 3))
    broker = await connect_broker(sim)
    run = asyncio.create_task(executor_for(orders, broker=broker, store=store, clock=clock).run())

    await wait_until_async(
        lambda: "ACK" in kinds(store, sell), what="the resting sell's acknowledgement"
    )
    assert sim_order(sim, sell).status == "Submitted"
    assert [a.order_ref for a in watch.arrivals] == [sell], "a buy was sent while a sell worked"

    sim.set_quote("BND", bid=limit, ask=round(limit + 0.02, 2))  # the sell becomes marketable
    outcomes = await asyncio.wait_for(run, timeout=15)

    assert {o.order_ref: o.status for o in outcomes} == {
        buy_vti: "FILLED",
        sell: "FILLED",
        buy_aapl: "FILLED",
    }
    assert [a.order_ref for a in watch.arrivals] == [sell, buy_vti, buy_aapl]
    for arrival in watch.arrivals[1:]:
        assert arrival.ledger[sell][-1] == "FILL", arrival


async def test_executor_when_the_ttl_passes_after_a_partial_fill_then_cancels_the_rest_and_records_cancel(
    sim_factory, connect_broker, store, clock
):
    # A thin book: 30 shares fill as soon as the order works, the rest only on a market tick,
    # and there is none for an hour.
    sim = await sim_factory(scenario(liquidity={"IBM": 30}, fill_interval=3600))
    order = planned(sim, "IBM", "BUY", 100, leg=1, ttl_seconds=0.5)
    ref = order_ref("p1", 1)
    progress: list[str] = []
    broker = await connect_broker(sim)

    [outcome] = await executor_for(
        [order], broker=broker, store=store, clock=clock, progress=progress.append
    ).run()

    assert (outcome.status, outcome.filled, outcome.quantity) == ("PARTIAL_CANCELLED", 30, 100)
    assert "TTL 0.5s reached, rest cancelled" in outcome.message
    assert any(line.startswith(f"ttl   {ref}: 0.5s passed") for line in progress), progress
    ledger = kinds(store, ref)
    assert ledger[0] == "INTENT" and "ACK" in ledger and ledger[-1] == "CANCEL", ledger
    assert ledger.count("PARTIAL") == 1
    cancel = store.order_events(ref)[-1]
    assert (cancel.payload["outcome"], cancel.payload["filled"]) == ("PARTIAL_CANCELLED", 30)
    assert store.filled_quantity(ref) == 30
    assert store.unresolved_intents() == []
    at_gateway = sim_order(sim, ref)
    assert (at_gateway.status, at_gateway.filled) == ("Cancelled", 30)
    assert len(sim.journal.messages("in", 4)) == 1  # one cancelOrder
