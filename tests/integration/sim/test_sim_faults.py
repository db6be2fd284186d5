"""Fault injection seen through the clients: drops, lost acks, pacing, connectivity,
duplicated fills."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.asyncio


async def test_drop_after_messages_when_limit_reached_then_client_is_disconnected(
    sim, connect, wait
):
    ib = await connect(sim, client_id=1)
    sent = [e for e in sim.journal.messages("in", client_id=1) if e["msg_id"] != 71]
    sim.faults.drop_after_messages = len(sent) + 1
    ib.client.reqCurrentTime()
    await wait(lambda: not ib.isConnected(), what="connection dropped")


async def test_drop_after_orders_when_kth_order_then_it_lives_but_client_never_hears(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    contract = await stock(ib, "VTI")
    sim.faults.drop_after_orders = 1
    trade = ib.placeOrder(
        contract, client_lib.MarketOrder("BUY", 3, account="DU0000001", orderRef="lost-ack")
    )
    await wait(lambda: not ib.isConnected(), what="connection dropped")
    assert trade.orderStatus.status == "PendingSubmit"
    sim.faults.drop_after_orders = None
    again = await connect(sim, client_id=1)
    assert [f.execution.orderRef for f in again.fills()] == ["lost-ack"]


async def test_withheld_acks_when_order_fills_then_only_requests_reveal_it(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    sim.faults.withhold_acks = True
    trade = ib.placeOrder(
        await stock(ib, "BND"),
        client_lib.MarketOrder("BUY", 4, account="DU0000001", orderRef="silent"),
    )
    await wait(
        lambda: any(
            o.order_ref == "silent" and o.status == "Filled" for o in sim.book.orders.values()
        ),
        what="order filled in sim",
    )
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # everything sent before is in
    assert trade.orderStatus.status == "PendingSubmit"
    fills = await asyncio.wait_for(ib.reqExecutionsAsync(), 5)
    assert [f.execution.orderRef for f in fills] == ["silent"]


async def test_pacing_when_client_exceeds_the_limit_then_error_100_and_disconnect(
    sim, connect, wait
):
    ib = await connect(sim, client_id=1, throttle=False)
    codes = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    sim.faults.pacing_limit = 10
    for _ in range(15):
        ib.client.reqCurrentTime()
    await wait(lambda: not ib.isConnected(), what="paced out")
    assert 100 in codes


async def test_pacing_when_client_throttles_itself_then_connect_and_requests_pass(
    sim, connect, client_lib, stock
):
    sim.faults.pacing_limit = 50
    ib = await connect(sim, client_id=1)
    contracts = [
        client_lib.Stock(s, "SMART", "USD")
        for s in ("VTI", "BND", "AAPL", "MSFT", "GLD", "TLT", "SPY", "QQQ")
    ]
    qualified = await ib.qualifyContractsAsync(*contracts)
    assert all(c.conId for c in qualified)
    assert ib.isConnected()


async def test_connectivity_blip_sends_1100_then_1102(sim, connect, wait):
    ib = await connect(sim, client_id=1)
    codes = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    await sim.faults.connectivity_blip(restored=1102)
    await wait(lambda: codes[-1:] == [1102], what="restored notice")
    assert codes == [1100, 1102]


async def test_a_client_connecting_while_the_link_is_down_hears_1100_until_restored(
    sim, connect, wait
):
    sim.faults.lose_connectivity()
    codes: list[int] = []

    ib = await connect(sim, client_id=2)
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    told = [e for e in sim.journal.messages("out", client_id=2) if "1100" in e["fields"]]
    assert told, "the new client was not told 1100"
    sim.faults.restore_connectivity(1101)
    await wait(lambda: codes[-1:] == [1101], what="restored notice")
    assert not sim.faults.link_down
    later = await connect(sim, client_id=3)
    assert later.isConnected()
    assert not [e for e in sim.journal.messages("out", client_id=3) if "1100" in e["fields"]]


async def test_duplicate_exec_details_when_replayed_then_client_keeps_one_fill(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    sim.faults.duplicate_exec_details = True
    trade = ib.placeOrder(
        await stock(ib, "SGOV"), client_lib.MarketOrder("BUY", 10, account="DU0000001")
    )
    await wait(trade.isDone)
    exec_messages = [e for e in sim.journal.messages("out", msg_id=11, client_id=1)]
    assert len(exec_messages) == 2
    assert exec_messages[0]["fields"][14] == exec_messages[1]["fields"][14]
    assert len(trade.fills) == 1


async def test_withheld_position_end_and_ignored_requests_make_client_requests_time_out(
    sim, connect
):
    ib = await connect(sim, client_id=1)
    sim.faults.withhold_position_end = True
    sim.faults.ignore_requests = {49}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ib.reqPositionsAsync(), 0.3)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.3)
    sim.faults.clear()
    assert len(await asyncio.wait_for(ib.reqPositionsAsync(), 5)) == 3
