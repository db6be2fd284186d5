"""Order primitives against the simulator: fills, resting and cancel, rejection, recovery."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.broker import Broker, BrokerError, ConnectionLost, OrderError, check_orders
from reconciler.model.settings import Settings

pytestmark = pytest.mark.asyncio

AAPL = 265598


def settings_for(sim) -> Settings:
    return Settings(gateway_port=sim.port, client_id=17, connect_timeout=3.0)


async def trading(sim, client_lib, client_id: int = 17) -> Broker:
    return await Broker.connect(
        settings_for(sim), readonly=False, client_id=client_id, library=client_lib.__name__
    )


def drain(handle) -> list:
    events = []
    while not handle.events.empty():
        events.append(handle.events.get_nowait())
    return events


async def test_market_order_fills_with_commission_exec_id_and_order_ref(sim, client_lib, planned):
    async with await trading(sim, client_lib) as broker:
        handle = await broker.place_order(planned(), order_ref="rc-p1-001")
        assert handle.order_id > 0 and handle.status == "PendingSubmit"
        await broker.wait_order(handle, timeout=5)
    assert handle.is_final and handle.status == "Filled"
    assert (handle.filled, handle.remaining) == (10, 0)
    assert handle.avg_fill_price == pytest.approx(230.01)
    assert handle.perm_id and handle.order_ref == "rc-p1-001" and not handle.rejected
    [fill] = handle.fills
    assert fill.exec_id and fill.order_ref == "rc-p1-001" and fill.perm_id == handle.perm_id
    assert (fill.side, fill.shares, fill.price) == ("BUY", 10, 230.01)
    assert fill.commission == 1.0 and fill.commission_currency == "USD"
    assert fill.time.utcoffset() == dt.timedelta(0)
    kinds = [e.kind for e in drain(handle)]
    assert "fill" in kinds and "commission" in kinds and kinds.count("status") >= 1
    [sim_order] = [o for o in sim.broker.orders.values() if o.order_ref == "rc-p1-001"]
    assert sim_order.account == "DU0000001" and sim_order.order_type == "MKT"


async def test_limit_order_rests_then_cancel_ends_it(sim, client_lib, planned):
    async with await trading(sim, client_lib) as broker:
        order = planned(order_type="LMT", limit_price=200.0, time_in_force="GTC")
        handle = await broker.place_order(order, order_ref="rc-p1-002")
        await broker.wait_ack(handle, timeout=5)
        assert handle.acknowledged and handle.status == "Submitted"
        assert (handle.filled, handle.remaining) == (0, 10)
        snapshot = await broker.snapshot(["DU0000001"], [])
        [working] = snapshot.open_orders
        assert (working.order_ref, working.remaining, working.limit_price) == (
            "rc-p1-002",
            10,
            200.0,
        )
        assert working.time_in_force == "GTC" and working.perm_id == handle.perm_id
        await broker.cancel_order(handle)
        await broker.wait_order(handle, timeout=5)
        assert handle.status == "Cancelled" and handle.filled == 0
        assert not await broker.open_orders()


async def test_adaptive_and_midprice_orders_reach_the_gateway_as_built(sim, client_lib, planned):
    async with await trading(sim, client_lib) as broker:
        adaptive = await broker.place_order(
            planned(order_type="ADAPTIVE", limit_price=231.0), order_ref="rc-p1-003"
        )
        mid = await broker.place_order(
            planned(order_type="MIDPRICE", limit_price=231.0, quantity=2), order_ref="rc-p1-004"
        )
        await broker.wait_order(adaptive, timeout=5)
        await broker.wait_order(mid, timeout=5)
    assert adaptive.status == mid.status == "Filled"
    orders = {o.order_ref: o for o in sim.broker.orders.values()}
    assert orders["rc-p1-003"].algo_strategy == "Adaptive"
    assert orders["rc-p1-004"].order_type == "MIDPRICE"


async def test_rejected_order_is_final_with_the_gateway_reason(sim, client_lib, planned):
    sim.faults.reject_symbol("AAPL")
    async with await trading(sim, client_lib) as broker:
        handle = await broker.place_order(planned(), order_ref="rc-p1-005")
        await broker.wait_order(handle, timeout=5)
    assert handle.is_final and handle.rejected and handle.filled == 0
    assert any(code == 201 for code, _ in handle.errors)
    assert "201" in handle.error_message


async def test_recovery_after_reconnect_finds_orders_and_fills_by_order_ref(
    sim, client_lib, planned
):
    async with await trading(sim, client_lib) as broker:
        filled = await broker.place_order(planned(quantity=3), order_ref="rc-p2-001")
        resting = await broker.place_order(
            planned(order_type="LMT", limit_price=200.0), order_ref="rc-p2-002"
        )
        await broker.wait_order(filled, timeout=5)
        await broker.wait_ack(resting, timeout=5)
    async with await trading(sim, client_lib) as again:
        open_orders = {o.order_ref: o for o in await again.open_orders()}
        assert open_orders["rc-p2-002"].remaining == 10
        assert open_orders["rc-p2-002"].perm_id == resting.perm_id
        executions = [e for e in await again.executions() if e.order_ref == "rc-p2-001"]
        assert [(e.shares, e.perm_id) for e in executions] == [(3, filled.perm_id)]
        assert executions[0].commission == 1.0
        completed = {c.order_ref: c for c in await again.completed_orders()}
        assert completed["rc-p2-001"].status == "Filled"
        assert completed["rc-p2-001"].filled == 3
        handle = await again.attach("rc-p2-002")
        assert handle is not None and handle.perm_id == resting.perm_id
        await again.cancel_order(handle)
        await again.wait_order(handle, timeout=5)
        assert handle.status == "Cancelled"
        assert await again.attach("rc-p2-002") is None


async def test_recovery_from_another_client_id_sees_the_working_order(sim, client_lib, planned):
    async with await trading(sim, client_lib, client_id=21) as broker:
        resting = await broker.place_order(
            planned(order_type="LMT", limit_price=200.0), order_ref="rc-p3-001"
        )
        await broker.wait_ack(resting, timeout=5)
        async with await Broker.connect(
            settings_for(sim), readonly=True, client_id=22, library=client_lib.__name__
        ) as observer:
            [seen] = [o for o in await observer.open_orders() if o.order_ref == "rc-p3-001"]
    assert (seen.client_id, seen.perm_id, seen.remaining) == (21, resting.perm_id, 10)


async def test_check_orders_places_far_limit_and_cancels_it(sim, client_lib):
    sim.set_quote("SPY", bid=579.99, ask=580.01)
    report = await check_orders(
        settings_for(sim), "DU0000001", symbol="SPY", library=client_lib.__name__
    )
    assert report.ok and report.acknowledged and report.cancelled
    assert report.filled == 0 and report.final_status == "Cancelled"
    assert report.limit_price == pytest.approx(289.99)  # half the 579.99 bid, on the tick
    assert report.order_ref.startswith("rc-health-")
    [sim_order] = [o for o in sim.broker.orders.values() if o.order_ref == report.order_ref]
    assert sim_order.status == "Cancelled" and sim_order.filled == 0


async def test_check_orders_refuses_a_live_account_before_connecting(client_lib):
    with pytest.raises(OrderError, match="only paper accounts"):
        await check_orders(Settings(gateway_port=1), "U0000001", library=client_lib.__name__)


async def test_wait_when_connection_drops_before_ack_then_outcome_unknown_and_recoverable(
    sim, client_lib, planned
):
    async with await trading(sim, client_lib) as broker:
        sim.faults.drop_after_orders = 1
        handle = await broker.place_order(planned(quantity=4), order_ref="rc-p4-001")
        with pytest.raises(ConnectionLost, match="do not resend"):
            await broker.wait_order(handle, timeout=5)
        assert not handle.is_final
    sim.faults.drop_after_orders = None
    async with await trading(sim, client_lib) as again:
        # still working, or filled since: open orders first, then executions, finds it
        working = {o.order_ref: o.perm_id for o in await again.open_orders()}
        filled = {e.order_ref: e.perm_id for e in await again.executions()}
    found = working.get("rc-p4-001") or filled.get("rc-p4-001")
    assert found and found == next(
        o.perm_id for o in sim.broker.orders.values() if o.order_ref == "rc-p4-001"
    )
    placed = [e for e in sim.journal.messages("in", msg_id=3)]
    assert len(placed) == 1  # recovery read the outcome; nothing was sent twice


async def test_cancel_open_order_cancels_our_own_and_refuses_another_clients(
    sim, client_lib, planned
):
    async with await trading(sim, client_lib, client_id=31) as other:
        theirs = await other.place_order(
            planned(order_type="LMT", limit_price=200.0), order_ref="rc-p5-001"
        )
        await other.wait_ack(theirs, timeout=5)
        async with await trading(sim, client_lib) as broker:
            ours = await broker.place_order(
                planned(order_type="LMT", limit_price=201.0), order_ref="rc-p5-002"
            )
            await broker.wait_ack(ours, timeout=5)
            working = {o.order_ref: o for o in await broker.open_orders()}
            with pytest.raises(BrokerError, match="client id 31"):
                await broker.cancel_open_order(working["rc-p5-001"])
            await broker.cancel_open_order(working["rc-p5-002"])
            await broker.wait_order(ours, timeout=5)
            assert ours.status == "Cancelled"
            left = {o.order_ref for o in await broker.open_orders()}
    assert left == {"rc-p5-001"}


async def test_broker_check_orders_report_reads_as_ack_and_cancel(sim, client_lib):
    async with await trading(sim, client_lib) as broker:
        report = await broker.check_orders("DU0000002", symbol="VTI")
    text = str(report)
    assert report.ok and text.startswith("ACK Submitted, CANCEL: BUY 1 VTI LMT")
    assert "on DU0000002" in text and report.order_ref in text
