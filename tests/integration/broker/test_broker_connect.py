"""Connecting the broker adapter to the simulator, and every way connecting can fail."""

from __future__ import annotations

import asyncio
import socket

import pytest

from reconciler.broker import (
    AccountNotManaged,
    Broker,
    ClientIdInUse,
    GatewayUnreachable,
    NotAnApiEndpoint,
    ReadOnlyConnection,
    health,
)
from reconciler.model.settings import Settings

pytestmark = pytest.mark.asyncio


def settings_for(port: int, *, timeout: float = 3.0, host: str = "127.0.0.1") -> Settings:
    return Settings(gateway_host=host, gateway_port=port, client_id=17, connect_timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connect_readonly_reports_managed_accounts_and_server_time(sim, client_lib):
    library = client_lib.__name__
    async with await Broker.connect(
        settings_for(sim.port), readonly=True, library=library
    ) as broker:
        assert broker.library == library and broker.readonly
        assert broker.managed_accounts == ("DU0000001", "DU0000002")
        server_time = await broker.server_time()
        assert server_time.utcoffset().total_seconds() == 0
        assert abs((server_time - sim.clock.now()).total_seconds()) < 5
        assert broker.connect_latency > 0
    assert not broker.connected
    sent = {e["msg_id"] for e in sim.journal.messages("in", client_id=17)}
    assert 3 not in sent  # no order ever


async def test_connect_when_nothing_listens_then_gateway_unreachable_names_host_and_port(
    client_lib,
):
    port = free_port()
    with pytest.raises(GatewayUnreachable) as caught:
        await Broker.connect(settings_for(port), readonly=True, library=client_lib.__name__)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "is IB Gateway" in message
    assert "Traceback" not in message


async def test_connect_when_port_is_not_a_tws_api_then_handshake_error(client_lib):
    async def silent(reader, writer):
        await reader.read()  # accept and say nothing, like a wrong service would
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NotAnApiEndpoint, match="API port"):
            await Broker.connect(
                settings_for(port, timeout=0.5), readonly=True, library=client_lib.__name__
            )
    finally:
        server.close()
        await server.wait_closed()


async def test_connect_when_client_id_in_use_then_client_id_error_and_first_survives(
    sim, client_lib
):
    library = client_lib.__name__
    async with await Broker.connect(
        settings_for(sim.port), readonly=True, client_id=5, library=library
    ) as first:
        with pytest.raises(ClientIdInUse, match="client id 5 is already in use"):
            await Broker.connect(
                settings_for(sim.port, timeout=10), readonly=True, client_id=5, library=library
            )
        assert first.connected
        assert (await first.server_time()) is not None


async def test_snapshot_when_account_not_managed_then_error_names_managed_accounts(sim, client_lib):
    async with await Broker.connect(
        settings_for(sim.port), readonly=True, library=client_lib.__name__
    ) as broker:
        with pytest.raises(AccountNotManaged) as caught:
            await broker.snapshot(["DU0000009"], {})
    message = str(caught.value)
    assert "DU0000009" in message and "DU0000001, DU0000002" in message


async def test_place_order_when_connected_readonly_then_refused_before_sending(
    sim, client_lib, planned
):
    async with await Broker.connect(
        settings_for(sim.port), readonly=True, library=client_lib.__name__
    ) as broker:
        with pytest.raises(ReadOnlyConnection):
            await broker.place_order(planned(), order_ref="rc-ro-001")
    assert not [e for e in sim.journal.messages("in", msg_id=3)]


async def test_health_when_gateway_up_then_ok_with_accounts_and_latency(sim, client_lib):
    report = await health(settings_for(sim.port), library=client_lib.__name__)
    assert report.ok and report.handshake_ok and report.error is None
    assert report.managed_accounts == ("DU0000001", "DU0000002")
    assert report.server_time is not None and report.connect_latency > 0
    assert abs(report.clock_skew) < 5


async def test_health_when_gateway_down_then_not_ok_with_the_reason(client_lib):
    report = await health(settings_for(free_port()), library=client_lib.__name__)
    assert not report.ok and not report.handshake_ok
    assert "is IB Gateway" in report.error
