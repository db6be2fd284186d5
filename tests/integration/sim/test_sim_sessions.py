"""Several clients, reconnects and restarts: what each client sees and what survives."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio


async def test_reconnect_replays_executions_and_completed_orders(
        sim, connect, client_lib, stock, wait):
    ib = await connect(sim, client_id=4)
    trade = ib.placeOrder(await stock(ib, "BND"),
                          client_lib.MarketOrder("BUY", 20, account="DU0000001",
                                                 orderRef="c7-l1"))
    await wait(trade.isDone)
    exec_id = trade.fills[0].execution.execId
    ib.disconnect()

    again = await connect(sim, client_id=4)
    replayed = {f.execution.execId: f for f in again.fills()}
    assert exec_id in replayed
    assert replayed[exec_id].execution.orderRef == "c7-l1"
    assert replayed[exec_id].commissionReport.commission == 1.0
    completed = await again.reqCompletedOrdersAsync(False)
    [done] = [t for t in completed if t.order.orderRef == "c7-l1"]
    assert done.orderStatus.status == "Filled"
    assert done.order.permId == trade.order.permId
    assert done.order.filledQuantity == 20


async def test_reconnect_when_order_still_working_then_open_orders_are_replayed(
        sim, connect, client_lib, stock, wait):
    ib = await connect(sim, client_id=4)
    trade = ib.placeOrder(await stock(ib, "TLT"),
                          client_lib.LimitOrder("BUY", 5, 80.00, account="DU0000002",
                                                orderRef="resting"))
    await wait(lambda: trade.orderStatus.status == "Submitted")
    ib.disconnect()
    again = await connect(sim, client_id=4)
    [open_trade] = again.openTrades()
    assert open_trade.order.orderRef == "resting"
    assert open_trade.order.permId == trade.order.permId
    assert open_trade.orderStatus.remaining == 5


async def test_two_clients_see_only_their_own_orders(sim, connect, client_lib, stock, wait):
    first = await connect(sim, client_id=11)
    second = await connect(sim, client_id=12)
    contract = await stock(first, "VTI")
    mine = first.placeOrder(contract, client_lib.LimitOrder("BUY", 1, 250.0,
                                                             account="DU0000001",
                                                             orderRef="first"))
    theirs = second.placeOrder(await stock(second, "VTI"),
                               client_lib.LimitOrder("BUY", 1, 251.0, account="DU0000002",
                                                     orderRef="second"))
    await wait(lambda: mine.orderStatus.status == theirs.orderStatus.status == "Submitted")
    first_view = await first.reqOpenOrdersAsync()
    second_view = await second.reqOpenOrdersAsync()
    assert [t.order.orderRef for t in first_view] == ["first"]
    assert [t.order.orderRef for t in second_view] == ["second"]
    all_orders = await first.reqAllOpenOrdersAsync()
    assert sorted(t.order.orderRef for t in all_orders) == ["first", "second"]
    assert {t.order.orderRef for t in second.openTrades()} == {"second"}


async def test_state_survives_a_simulator_restart(sim_factory, connect, client_lib, stock,
                                                  wait, tmp_path):
    state = tmp_path / "sim-state.json"
    gateway = await sim_factory(state_file=state)
    ib = await connect(gateway, client_id=2)
    filled = ib.placeOrder(await stock(ib, "VTI"),
                           client_lib.MarketOrder("BUY", 10, account="DU0000001"))
    resting = ib.placeOrder(await stock(ib, "VTI"),
                            client_lib.LimitOrder("SELL", 5, 400.0, account="DU0000001",
                                                  orderRef="gtc", tif="GTC"))
    await wait(lambda: filled.isDone() and resting.orderStatus.status == "Submitted")
    cash = gateway.broker.accounts["DU0000001"].cash["USD"]
    ib.disconnect()
    await gateway.stop()

    restarted = await sim_factory(state_file=state)
    assert restarted.broker.accounts["DU0000001"].cash["USD"] == cash
    ib2 = await connect(restarted, client_id=2)
    holdings = {p.contract.symbol: p.position for p in ib2.positions("DU0000001")}
    assert holdings["VTI"] == 110
    assert [t.order.orderRef for t in ib2.openTrades()] == ["gtc"]
    assert {f.execution.permId for f in ib2.fills()} == {filled.order.permId}
    again = ib2.placeOrder(await stock(ib2, "VTI"),
                           client_lib.MarketOrder("BUY", 1, account="DU0000001"))
    await wait(again.isDone)
    assert again.order.permId > resting.order.permId
    assert again.order.orderId > resting.order.orderId


async def test_state_file_when_a_second_simulator_uses_it_then_refused(sim_factory, tmp_path):
    from reconciler.sim.state import StateFileError

    state = tmp_path / "shared.json"
    await sim_factory(state_file=state)
    with pytest.raises(StateFileError, match="in use"):
        await sim_factory(state_file=state)
