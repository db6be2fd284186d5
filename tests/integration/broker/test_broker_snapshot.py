"""Snapshots and instrument resolution against the simulator, with both client libraries."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from reconciler.broker import (
    Broker,
    LockMismatch,
    ResolutionError,
    SnapshotError,
    StartupSyncIncomplete,
    lock_entries,
)
from reconciler.model.actual import ActualState
from reconciler.model.desired import Instrument
from reconciler.model.settings import Settings

pytestmark = pytest.mark.asyncio

DEMO = ("DU0000001", "DU0000002")
VTI, BND, AAPL, VXUS = 900000001, 900000006, 265598, 900000014
MULTI_CURRENCY = {
    "accounts": [
        {
            "id": "DU0000005",
            "cash": {"USD": 50000, "EUR": 10000},
            "positions": [{"symbol": "SAP", "quantity": 10, "avgCost": 200, "currency": "EUR"}],
        }
    ]
}


def settings_for(sim, timeout: float = 3.0) -> Settings:
    return Settings(gateway_port=sim.port, client_id=17, connect_timeout=timeout)


async def connected(sim, client_lib, **kwargs) -> Broker:
    return await Broker.connect(
        settings_for(sim), readonly=True, library=client_lib.__name__, **kwargs
    )


async def test_snapshot_of_demo_accounts_is_complete(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        targets = await broker.resolve([Instrument("VTI"), Instrument("BND")])
        state = await broker.snapshot(DEMO, targets)
    assert isinstance(state, ActualState)
    assert state.managed_accounts == DEMO and set(state.accounts) == set(DEMO)
    one, two = state.accounts["DU0000001"], state.accounts["DU0000002"]
    assert {(p.symbol, p.quantity) for p in one.positions} == {("VTI", 100), ("AAPL", 20)}
    assert {(p.symbol, p.quantity) for p in two.positions} == {("VXUS", 200)}
    assert one.cash == {"USD": 100000} and two.cash == {"USD": 80000}
    assert one.base_currency == "USD" and one.fx_rates == {"USD": 1.0}
    assert one.net_liquidation == pytest.approx(100000 + 100 * 290 + 20 * 230)
    assert one.gross_position_value == pytest.approx(100 * 290 + 20 * 230)
    # quotes for every target and every held position, each with a UTC time
    assert set(state.quotes) == {VTI, BND, AAPL, VXUS}
    for quote in state.quotes.values():
        assert quote.bid is not None and quote.ask is not None and quote.market_data_type == 1
        assert quote.time is not None and quote.time.utcoffset() == dt.timedelta(0)
    assert state.quotes[VTI].mid == pytest.approx(290.0)
    # contract details for held positions too (AAPL and VXUS are not targets)
    aapl = state.contracts[AAPL]
    assert (aapl.symbol, aapl.exchange, aapl.primary_exchange) == ("AAPL", "SMART", "NASDAQ")
    assert aapl.min_tick == 0.01 and aapl.size_increment == 1.0
    assert aapl.time_zone_id and aapl.liquid_hours and aapl.trading_hours
    assert state.server_time is not None and state.extra == {}
    assert state.open_orders == () and state.executions == ()
    assert len(state.fingerprint()) == 64


async def test_snapshot_is_stable_when_nothing_changed(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        first = await broker.snapshot(DEMO, [])
        second = await broker.snapshot(DEMO, [])
    assert first.fingerprint() == second.fingerprint()
    assert first.quotes[VTI].bid == second.quotes[VTI].bid


async def test_snapshot_of_multi_currency_account_reports_fx_and_cash_per_currency(
    sim_factory, client_lib
):
    sim = await sim_factory(MULTI_CURRENCY)
    async with await connected(sim, client_lib) as broker:
        state = await broker.snapshot(["DU0000005"], [])
    account = state.accounts["DU0000005"]
    assert account.cash == {"EUR": 10000, "USD": 50000}
    assert account.fx_rates["EUR"] == pytest.approx(1.08)
    [sap] = account.positions
    assert (sap.symbol, sap.currency, sap.quantity) == ("SAP", "EUR", 10)
    assert state.contracts[sap.con_id].currency == "EUR"
    assert state.quotes[sap.con_id].reference_price is not None


async def test_snapshot_when_no_market_data_then_quote_has_no_price_and_is_listed(sim, client_lib):
    sim.faults.no_market_data = {"BND"}
    async with await connected(sim, client_lib) as broker:
        targets = await broker.resolve([Instrument("BND")])
        state = await broker.snapshot(["DU0000001"], targets)
    quote = state.quotes[BND]
    assert (quote.bid, quote.ask, quote.last, quote.time) == (None, None, None, None)
    assert quote.reference_price is None
    assert state.extra["quotes_missing"] == "BND"
    assert state.quotes[VTI].reference_price is not None


async def test_snapshot_when_only_delayed_data_then_quotes_say_delayed(sim, client_lib):
    sim.faults.delayed_only = True
    async with await connected(sim, client_lib) as broker:
        state = await broker.snapshot(["DU0000001"], [])
    assert {q.market_data_type for q in state.quotes.values()} == {3}
    assert all(q.reference_price is not None for q in state.quotes.values())


async def test_snapshot_when_connection_drops_midway_then_snapshot_error(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        sent = [e for e in sim.journal.messages("in", client_id=17) if e["msg_id"] != 71]
        sim.faults.drop_after_messages = len(sent) + 2
        with pytest.raises(SnapshotError) as caught:
            await broker.snapshot(DEMO, [])
    assert "connection" in str(caught.value)
    assert str(caught.value).startswith("incomplete snapshot, nothing planned")


async def test_snapshot_when_gateway_lost_connectivity_then_snapshot_error(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        blip = asyncio.ensure_future(sim.faults.connectivity_blip(restored=1102, duration=30))
        try:
            await broker.server_time()  # answered after the 1100 the gateway sent first
            with pytest.raises(SnapshotError, match="1100"):
                await broker.snapshot(DEMO, [])
        finally:
            blip.cancel()


async def test_snapshot_when_connectivity_was_restored_before_then_snapshot_succeeds(
    sim, client_lib
):
    async with await connected(sim, client_lib) as broker:
        await sim.faults.connectivity_blip(restored=1102, duration=0)
        await broker.server_time()
        state = await broker.snapshot(DEMO, [])
    assert set(state.accounts) == set(DEMO)


async def test_snapshot_when_positions_never_end_then_snapshot_error_names_positions(
    sim, client_lib
):
    async with await connected(sim, client_lib, timeout=0.5) as broker:
        # The first snapshot after connecting may use the start-up sync's positions (complete,
        # or the connect failed); every later one asks the gateway again.
        await broker.snapshot(DEMO, [])
        sim.faults.withhold_position_end = True
        with pytest.raises(SnapshotError, match="positions"):
            await broker.snapshot(DEMO, [])


# ---------------------------------------------------------------- resolution


async def test_resolve_known_symbols_returns_contract_info_by_key(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        resolved = await broker.resolve(
            [Instrument("VTI"), Instrument("SAP", currency="EUR"), Instrument("VTI")]
        )
    assert set(resolved) == {"VTI", "SAP:STK:EUR"}
    assert (resolved["VTI"].con_id, resolved["VTI"].primary_exchange) == (VTI, "ARCA")
    assert resolved["SAP:STK:EUR"].currency == "EUR"


async def test_resolve_unknown_and_ambiguous_lists_every_problem_with_candidates(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        with pytest.raises(ResolutionError) as caught:
            await broker.resolve([Instrument("VTI"), Instrument("NOPE"), Instrument("DUAL")])
    problems = {p.key: p for p in caught.value.problems}
    assert set(problems) == {"NOPE", "DUAL"}
    assert problems["NOPE"].kind == "unknown"
    assert problems["DUAL"].kind == "ambiguous"
    candidates = problems["DUAL"].candidates
    assert [(c.con_id, c.primary_exchange) for c in candidates] == [
        (900000061, "NASDAQ"),
        (900000060, "NYSE"),
    ]
    assert "conId=900000060" in str(caught.value)


async def test_resolve_when_primary_exchange_pinned_then_not_ambiguous(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        resolved = await broker.resolve([Instrument("DUAL", primary_exchange="NYSE")])
    assert resolved["DUAL"].con_id == 900000060


async def test_resolve_with_a_matching_lock_uses_the_locked_con_id(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        resolved = await broker.resolve([Instrument("VTI"), Instrument("BND")])
        lock = {entry.key: entry for entry in lock_entries(resolved)}
        again = await broker.resolve([Instrument("VTI"), Instrument("BND")], lock)
    assert again == resolved
    requests = [e for e in sim.journal.messages("in", msg_id=9)]
    assert any(e["fields"][3] == str(VTI) for e in requests)  # looked up by conId


async def test_resolve_when_lock_no_longer_matches_then_lock_mismatch_names_fields(sim, client_lib):
    async with await connected(sim, client_lib) as broker:
        resolved = await broker.resolve([Instrument("VTI"), Instrument("BND")])
        lock = {entry.key: entry for entry in lock_entries(resolved)}
        lock["VTI"] = dataclasses.replace(lock["VTI"], min_tick=0.05, primary_exchange="NYSE")
        lock["BND"] = dataclasses.replace(lock["BND"], con_id=999999999)
        with pytest.raises(LockMismatch) as caught:
            await broker.resolve([Instrument("VTI"), Instrument("BND")], lock)
    found = {(p.key, p.field) for p in caught.value.mismatches}
    assert found == {("VTI", "min_tick"), ("VTI", "primary_exchange"), ("BND", "con_id")}
    assert "locked=0.05 gateway=0.01" in str(caught.value)


async def test_resolve_and_snapshot_of_the_whole_universe_stay_within_the_pacing_limit(
    sim, client_lib
):
    sim.faults.pacing_limit = 50  # the gateway disconnects a client sending more per second
    symbols = sorted({i.symbol for i in sim.universe if i.currency == "USD"} - {"DUAL", "SHOP"})
    async with await connected(sim, client_lib) as broker:
        resolved = await broker.resolve([Instrument(s) for s in symbols])
        state = await broker.snapshot(DEMO, resolved)
        assert broker.connected
    assert len(resolved) == len(symbols) > 45
    assert {c.con_id for c in resolved.values()} <= set(state.quotes)
    assert all(q.reference_price is not None for q in state.quotes.values())


async def test_connect_when_positions_never_end_then_no_flat_book_is_ever_reported(sim, client_lib):
    sim.faults.withhold_position_end = True
    if client_lib.__name__ == "ib_async":  # raiseSyncErrors: the start-up sync itself fails
        with pytest.raises(StartupSyncIncomplete, match="positions"):
            await connected(sim, client_lib, timeout=0.5)
        return
    async with await connected(sim, client_lib, timeout=0.5) as broker:  # ib_insync only logs
        with pytest.raises(SnapshotError, match="positions"):
            await broker.snapshot(DEMO, [])
