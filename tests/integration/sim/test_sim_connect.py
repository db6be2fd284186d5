"""The simulator accepts real client connections the way IB Gateway does."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

pytestmark = pytest.mark.asyncio


async def test_connect_when_not_readonly_then_accounts_positions_and_orders_are_synced(
    sim, connect
):
    ib = await connect(sim, client_id=1)
    assert ib.isConnected()
    assert ib.managedAccounts() == ["DU0000001", "DU0000002"]
    holdings = {(p.account, p.contract.symbol): p.position for p in ib.positions()}
    assert holdings == {
        ("DU0000001", "VTI"): 100,
        ("DU0000001", "AAPL"): 20,
        ("DU0000002", "VXUS"): 200,
    }
    assert ib.openTrades() == []
    assert ib.client.serverVersion() == min(ib.client.MaxClientVersion, 178)


async def test_connect_when_readonly_then_no_order_requests_are_sent(sim, connect):
    ib = await connect(sim, client_id=7, readonly=True)
    assert ib.isConnected()
    sent = {e["msg_id"] for e in sim.journal.messages("in", client_id=7)}
    assert 61 in sent  # positions
    assert 5 not in sent and 99 not in sent  # no open or completed orders when readonly


async def test_connect_when_client_id_in_use_then_second_is_refused(sim, connect, client_lib):
    first = await connect(sim, client_id=3)
    second = client_lib.IB()
    with pytest.raises((ConnectionError, asyncio.TimeoutError, TimeoutError)):
        await second.connectAsync(sim.host, sim.port, clientId=3, timeout=1)
    refusals = [e for e in sim.journal.messages("out", msg_id=4) if e["fields"][3] == "326"]
    assert len(refusals) == 1
    assert first.isConnected()
    assert sim.session_client_ids() == [3]


async def test_current_time_and_next_ids_come_from_the_simulator(sim, connect, wait):
    ib = await connect(sim, client_id=1)
    server_time = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    assert abs((server_time - sim.clock.now()).total_seconds()) < 5

    def next_ids():
        return [e["fields"][2] for e in sim.journal.messages("out", msg_id=9, client_id=1)]

    assert next_ids() == ["1"]
    ib.client.reqIds(1)
    await wait(lambda: len(next_ids()) == 2, what="nextValidId answer to reqIds")


async def test_connect_when_clock_is_set_then_current_time_follows_it(sim, connect):
    sim.clock.set(dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC))
    ib = await connect(sim, client_id=1)
    server_time = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    assert server_time.astimezone(dt.UTC).date() == dt.date(2026, 1, 5)


async def test_farm_notices_are_sent_after_start_api(sim, connect):
    await connect(sim, client_id=1)
    codes = {e["fields"][3] for e in sim.journal.messages("out", msg_id=4, client_id=1)}
    assert {"2104", "2106", "2158"} <= codes


async def test_journal_records_every_message_in_both_directions(sim_factory, connect, tmp_path):
    path = tmp_path / "journal.jsonl"
    gateway = await sim_factory(journal_path=path)
    await connect(gateway, client_id=1)
    directions = {e["dir"] for e in gateway.journal}
    assert directions == {"in", "out"}
    gateway.journal.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == len(gateway.journal)
    assert {"t", "dir", "client_id", "msg_id", "fields"} <= set(gateway.journal[-1])
