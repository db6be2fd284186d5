"""Orders through the clients' public API: fills, commissions, resting, partials, cancels,
rejections and trading hours."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.asyncio

THIN_IBM = {
    "accounts": [{"id": "DU0000003", "cash": {"USD": 200000}}],
    "instruments": [{"symbol": "IBM", "liquidity": 30}],
}
REGULAR_HOURS = {
    "accounts": [{"id": "DU0000004", "cash": {"USD": 50000}}],
    "market": {"hours": "regular"},
    "clock": {"start": "2026-01-10T15:00:00Z"},  # a Saturday
}


def errors_of(ib) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code))
    return seen


async def test_market_order_when_placed_then_filled_at_ask_with_commission(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    order = client_lib.MarketOrder("BUY", 10, account="DU0000001", orderRef="cycle1-leg1")
    trade = ib.placeOrder(await stock(ib, "AAPL"), order)
    await wait(trade.isDone, what="market order done")
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == 230.01
    [fill] = trade.fills
    assert fill.execution.side == "BOT" and fill.execution.shares == 10
    assert fill.execution.orderRef == "cycle1-leg1"
    assert fill.execution.permId == trade.order.permId != 0
    assert fill.commissionReport.commission == 1.0  # 10 x 0.005 < 1.00 minimum
    assert fill.commissionReport.currency == "USD"
    assert sim.book.accounts["DU0000001"].cash["USD"] == pytest.approx(100000 - 2300.1 - 1.0)


async def test_commission_when_large_order_then_per_share_rate_applies(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    trade = ib.placeOrder(
        await stock(ib, "INTC"), client_lib.MarketOrder("BUY", 1000, account="DU0000001")
    )
    await wait(trade.isDone)
    assert sum(f.commissionReport.commission for f in trade.fills) == 5.0


async def test_limit_order_when_not_marketable_then_rests_until_price_crosses(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    order = client_lib.LimitOrder("BUY", 10, 229.00, account="DU0000001", orderRef="rest")
    trade = ib.placeOrder(await stock(ib, "AAPL"), order)
    await wait(lambda: trade.orderStatus.status == "Submitted", what="limit order working")
    assert trade.fills == []
    assert [t.order.orderRef for t in ib.openTrades()] == ["rest"]
    sim.set_quote("AAPL", bid=228.50, ask=228.90)
    await wait(trade.isDone, what="limit order filled after price move")
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.price == 228.90


async def test_midprice_and_adaptive_orders_fill_at_mid_and_at_market(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    contract = await stock(ib, "VTI")
    mid = client_lib.Order(
        action="BUY", totalQuantity=5, orderType="MIDPRICE", lmtPrice=290.50, account="DU0000001"
    )
    adaptive = client_lib.MarketOrder(
        "SELL",
        5,
        account="DU0000001",
        algoStrategy="Adaptive",
        algoParams=[client_lib.TagValue("adaptivePriority", "Normal")],
    )
    mid_trade = ib.placeOrder(contract, mid)
    adaptive_trade = ib.placeOrder(contract, adaptive)
    await wait(lambda: mid_trade.isDone() and adaptive_trade.isDone())
    assert mid_trade.fills[0].execution.price == 290.00
    assert adaptive_trade.fills[0].execution.price == 289.99
    assert adaptive_trade.order.algoStrategy == "Adaptive"


async def test_partial_fills_when_liquidity_is_thin_then_order_fills_in_parts(
    sim_factory, connect, client_lib, stock, wait
):
    gateway = await sim_factory(THIN_IBM)
    ib = await connect(gateway, client_id=1)
    trade = ib.placeOrder(
        await stock(ib, "IBM"), client_lib.MarketOrder("BUY", 100, account="DU0000003")
    )
    await wait(trade.isDone, what="thin order completely filled")
    assert [f.execution.shares for f in trade.fills] == [30, 30, 30, 10]
    assert [f.execution.cumQty for f in trade.fills] == [30, 60, 90, 100]
    assert len({f.execution.execId for f in trade.fills}) == 4
    assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(1.0)
    statuses = [entry.status for entry in trade.log]
    assert "Submitted" in statuses and statuses[-1] == "Filled"


async def test_ioc_order_when_liquidity_is_thin_then_remainder_is_cancelled(
    sim_factory, connect, client_lib, stock, wait
):
    gateway = await sim_factory(THIN_IBM)
    ib = await connect(gateway, client_id=1)
    order = client_lib.MarketOrder("BUY", 100, account="DU0000003", tif="IOC")
    trade = ib.placeOrder(await stock(ib, "IBM"), order)
    await wait(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert trade.orderStatus.filled == 30


async def test_cancel_when_order_is_resting_then_cancelled_with_202(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    errors = errors_of(ib)
    trade = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.LimitOrder("BUY", 1, 200.00, account="DU0000001")
    )
    await wait(lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    await wait(trade.isDone, what="cancel confirmed")
    assert trade.orderStatus.status == "Cancelled"
    assert (trade.order.orderId, 202) in errors
    assert sim.book.find(1, trade.order.orderId).status == "Cancelled"


async def test_cancel_when_order_unknown_or_filled_then_10147_or_10148(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    errors = errors_of(ib)
    trade = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.MarketOrder("BUY", 1, account="DU0000001")
    )
    await wait(trade.isDone)
    ib.cancelOrder(trade.order)
    ib.cancelOrder(client_lib.Order(orderId=999_999))
    await wait(lambda: len(errors) >= 2, what="cancel refusals")
    assert (trade.order.orderId, 10148) in errors
    assert (999_999, 10147) in errors
    assert trade.orderStatus.status == "Filled"


async def test_rejection_when_buying_power_is_insufficient_then_201(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    errors = errors_of(ib)
    trade = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.MarketOrder("BUY", 1000, account="DU0000001")
    )
    await wait(trade.isDone, what="rejected order done")
    assert trade.orderStatus.status == "Cancelled"
    assert errors == [(trade.order.orderId, 201)]
    assert trade.fills == []
    assert sim.book.accounts["DU0000001"].cash["USD"] == 100000


async def test_rejection_when_selling_more_than_held_in_cash_account_then_201(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    errors = errors_of(ib)
    trade = ib.placeOrder(
        await stock(ib, "AAPL"), client_lib.MarketOrder("SELL", 21, account="DU0000001")
    )
    await wait(trade.isDone)
    assert errors == [(trade.order.orderId, 201)]


async def test_rejection_when_symbol_is_rejected_by_fault_or_unknown_then_201(
    sim, connect, client_lib, stock, wait
):
    ib = await connect(sim, client_id=1)
    errors = errors_of(ib)
    sim.faults.reject_symbol("GLD")
    rejected = ib.placeOrder(
        await stock(ib, "GLD"), client_lib.MarketOrder("BUY", 1, account="DU0000001")
    )
    unknown = ib.placeOrder(
        client_lib.Stock("NOSUCH", "SMART", "USD"),
        client_lib.MarketOrder("BUY", 1, account="DU0000001"),
    )
    await wait(lambda: rejected.isDone() and unknown.isDone())
    assert sorted(errors) == sorted([(rejected.order.orderId, 201), (unknown.order.orderId, 201)])


async def test_trading_hours_when_market_closed_then_order_waits_for_the_open(
    sim_factory, connect, client_lib, stock, wait
):
    gateway = await sim_factory(REGULAR_HOURS)
    ib = await connect(gateway, client_id=1)
    trade = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.MarketOrder("BUY", 10, account="DU0000004")
    )
    await wait(lambda: trade.orderStatus.status == "PreSubmitted", what="queued for open")
    gateway.clock.set(dt.datetime(2026, 1, 12, 14, 31, tzinfo=dt.UTC))  # Monday 09:31 ET
    await wait(trade.isDone, what="filled after the open")
    assert trade.orderStatus.status == "Filled"


async def test_trading_hours_when_reject_policy_then_closed_market_rejects_with_201(
    sim_factory, connect, client_lib, stock, wait
):
    gateway = await sim_factory(
        {**REGULAR_HOURS, "market": {"hours": "regular", "outsideHours": "reject"}}
    )
    ib = await connect(gateway, client_id=1)
    errors = errors_of(ib)
    trade = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.MarketOrder("BUY", 10, account="DU0000004")
    )
    await wait(trade.isDone)
    assert errors == [(trade.order.orderId, 201)]
