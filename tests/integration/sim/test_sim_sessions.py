"""Several clients, reconnects and restarts: what each client sees and what survives."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.asyncio


async def test_reconnect_replays_executions_and_completed_orders(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=4)
    trade = ib.placeOrder(
        await stock(ib, "BND"),
        client_lib.MarketOrder("BUY", 20, account="DU0000001", orderRef="c7-l1"),
    )
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
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=4)
    trade = ib.placeOrder(
        await stock(ib, "TLT"),
        client_lib.LimitOrder("BUY", 5, 80.00, account="DU0000002", orderRef="resting"),
    )
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
    mine = first.placeOrder(
        contract, client_lib.LimitOrder("BUY", 1, 250.0, account="DU0000001", orderRef="first")
    )
    theirs = second.placeOrder(
        await stock(second, "VTI"),
        client_lib.LimitOrder("BUY", 1, 251.0, account="DU0000002", orderRef="second"),
    )
    await wait(lambda: mine.orderStatus.status == theirs.orderStatus.status == "Submitted")
    first_view = await first.reqOpenOrdersAsync()
    second_view = await second.reqOpenOrdersAsync()
    assert [t.order.orderRef for t in first_view] == ["first"]
    assert [t.order.orderRef for t in second_view] == ["second"]
    all_orders = await first.reqAllOpenOrdersAsync()
    assert sorted(t.order.orderRef for t in all_orders) == ["first", "second"]
    assert {t.order.orderRef for t in second.openTrades()} == {"second"}


async def test_state_survives_a_simulator_restart(
    sim_factory, connect, client_lib, stock, wait, tmp_path
):
    state = tmp_path / "sim-state.json"
    gateway = await sim_factory(state_file=state)
    ib = await connect(gateway, client_id=2)
    filled = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.MarketOrder("BUY", 10, account="DU0000001")
    )
    resting = ib.placeOrder(
        await stock(ib, "VTI"),
        client_lib.LimitOrder("SELL", 5, 400.0, account="DU0000001", orderRef="gtc", tif="GTC"),
    )
    await wait(lambda: filled.isDone() and resting.orderStatus.status == "Submitted")
    cash = gateway.book.accounts["DU0000001"].cash["USD"]
    ib.disconnect()
    await gateway.stop()

    restarted = await sim_factory(state_file=state)
    assert restarted.book.accounts["DU0000001"].cash["USD"] == cash
    ib2 = await connect(restarted, client_id=2)
    holdings = {p.contract.symbol: p.position for p in ib2.positions("DU0000001")}
    assert holdings["VTI"] == 110
    assert [t.order.orderRef for t in ib2.openTrades()] == ["gtc"]
    assert {f.execution.permId for f in ib2.fills()} == {filled.order.permId}
    again = ib2.placeOrder(
        await stock(ib2, "VTI"), client_lib.MarketOrder("BUY", 1, account="DU0000001")
    )
    await wait(again.isDone)
    assert again.order.permId > resting.order.permId
    assert again.order.orderId > resting.order.orderId


async def test_state_file_when_a_second_simulator_uses_it_then_refused(sim_factory, tmp_path):
    from reconciler.sim.state import StateFileError

    state = tmp_path / "shared.json"
    await sim_factory(state_file=state)
    with pytest.raises(StateFileError, match="in use"):
        await sim_factory(state_file=state)


def _saved_order(state_path, perm_id: int) -> dict:
    saved = json.loads(state_path.read_text(encoding="utf-8"))
    [order] = [o for o in saved["orders"] if o["perm_id"] == perm_id]
    return order


@pytest.mark.integration
async def test_restart_when_a_limit_order_rests_then_it_keeps_working_and_fills_for_its_client(
    sim_factory, connect, client_lib, stock, wait, tmp_path
):
    state = tmp_path / "sim-state.json"
    gateway = await sim_factory(state_file=state)
    ib = await connect(gateway, client_id=5)
    placed = ib.placeOrder(
        await stock(ib, "TLT"),
        client_lib.LimitOrder("BUY", 5, 80.00, account="DU0000002", orderRef="survivor"),
    )
    await wait(lambda: placed.orderStatus.status == "Submitted", what="order working")
    perm_id = placed.order.permId
    ib.disconnect()
    port = gateway.port
    await gateway.stop()

    restarted = await sim_factory(state_file=state, port=port)
    ib2 = await connect(restarted, client_id=5)
    [resumed] = ib2.openTrades()  # a reconnecting client gets its open orders
    assert (resumed.order.permId, resumed.order.orderRef) == (perm_id, "survivor")
    assert resumed.orderStatus.status == "Submitted" and resumed.orderStatus.remaining == 5
    restarted.set_quote("TLT", bid=79.95, ask=80.00)  # the limit becomes marketable
    await wait(resumed.isDone, what="restored order filled")
    assert resumed.orderStatus.status == "Filled" and resumed.orderStatus.filled == 5
    [fill] = resumed.fills  # pushed live to the reconnected client
    assert fill.execution.permId == perm_id and fill.execution.price == 80.00
    assert fill.commissionReport.commission == 1.0
    executions = await ib2.reqExecutionsAsync()
    assert [(f.execution.permId, f.execution.shares) for f in executions] == [(perm_id, 5)]
    await wait(
        lambda: _saved_order(state, perm_id)["status"] == "Filled", what="state file shows the fill"
    )
    assert _saved_order(state, perm_id)["filled"] == 5


@pytest.mark.integration
async def test_restart_when_an_order_awaits_a_slow_fill_then_it_fills_after_the_restart(
    sim_factory, connect, client_lib, stock, wait, tmp_path
):
    scenario = {
        "accounts": [{"id": "DU0000001", "cash": {"USD": 100000}}],
        "latency": {"fill": 1.0},
    }
    state = tmp_path / "sim-state.json"
    gateway = await sim_factory(scenario, state_file=state)
    ib = await connect(gateway, client_id=6)
    placed = ib.placeOrder(
        await stock(ib, "VTI"),
        client_lib.MarketOrder("BUY", 10, account="DU0000001", orderRef="slow"),
    )
    await wait(lambda: placed.orderStatus.status == "Submitted", what="order acknowledged")
    perm_id = placed.order.permId
    ib.disconnect()
    port = gateway.port
    await gateway.stop()
    assert _saved_order(state, perm_id)["status"] == "Submitted"  # stopped before its fill

    restarted = await sim_factory(scenario, state_file=state, port=port)
    ib2 = await connect(restarted, client_id=6)
    [resumed] = [t for t in ib2.trades() if t.order.permId == perm_id]
    await wait(resumed.isDone, timeout=10, what="restored order filled")
    assert resumed.orderStatus.status == "Filled" and resumed.orderStatus.filled == 10
    assert [f.execution.permId for f in resumed.fills] == [perm_id]
    executions = await ib2.reqExecutionsAsync()
    assert [(f.execution.permId, f.execution.shares) for f in executions] == [(perm_id, 10)]
    holdings = {p.contract.symbol: p.position for p in ib2.positions("DU0000001")}
    assert holdings == {"VTI": 10}
    await wait(
        lambda: _saved_order(state, perm_id)["status"] == "Filled", what="state file shows the fill"
    )
    # the stopped simulator's fill timer (due before the restarted one's) must not have run
    assert gateway.book.orders[perm_id].filled == 0
