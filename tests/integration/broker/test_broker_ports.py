"""The real broker session and order handle satisfy the ports (reconciler.model.ports) at
runtime, against the simulator with both client libraries. The static check is mypy's, run by
tests/unit/model/test_ports.py."""

from __future__ import annotations

import pytest

from reconciler.broker import Broker
from reconciler.model.ports import BrokerPort, OrderEventView, OrderHandlePort, TradingPort
from reconciler.model.settings import Settings

pytestmark = pytest.mark.asyncio


async def test_a_trading_session_and_its_order_handles_satisfy_the_broker_ports(
    sim, client_lib, planned
):
    settings = Settings(gateway_port=sim.port, client_id=17, connect_timeout=3.0)
    async with await Broker.connect(
        settings, readonly=False, library=client_lib.__name__
    ) as broker:
        assert isinstance(broker, BrokerPort)
        assert isinstance(broker, TradingPort)
        handle = await broker.place_order(planned(), order_ref="rc-ports-001")
        await broker.wait_order(handle, timeout=5)
        assert isinstance(handle, OrderHandlePort)
        assert handle.status == "Filled" and handle.fills
        events = []
        while not handle.events.empty():
            events.append(handle.events.get_nowait())
        assert events and all(isinstance(e, OrderEventView) for e in events)
