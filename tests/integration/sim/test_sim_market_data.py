"""Contracts, quotes and bars through the clients' public API."""

from __future__ import annotations

import asyncio
import math

import pytest

pytestmark = pytest.mark.asyncio


async def test_qualify_when_symbol_known_then_contract_is_filled_in(sim, connect, client_lib):
    ib = await connect(sim, client_id=1)
    [contract] = await ib.qualifyContractsAsync(client_lib.Stock("AAPL", "SMART", "USD"))
    assert contract.conId == 265598
    assert contract.primaryExchange == "NASDAQ"


async def test_qualify_when_symbol_unknown_then_error_200_and_nothing_qualified(
    sim, connect, client_lib
):
    ib = await connect(sim, client_id=1)
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    result = await ib.qualifyContractsAsync(client_lib.Stock("NOSUCH", "SMART", "USD"))
    assert [c for c in result if c] == []
    assert errors == [200]


async def test_contract_details_when_symbol_ambiguous_then_every_listing_is_returned(
    sim, connect, client_lib
):
    ib = await connect(sim, client_id=1)
    details = await ib.reqContractDetailsAsync(client_lib.Stock("DUAL", "SMART", "USD"))
    assert sorted(d.contract.primaryExchange for d in details) == ["NASDAQ", "NYSE"]
    by_currency = await ib.reqContractDetailsAsync(client_lib.Stock("SHOP", "SMART"))
    assert sorted(d.contract.currency for d in by_currency) == ["CAD", "USD"]


async def test_contract_details_carry_ticks_sizes_and_hours(sim, connect, client_lib):
    ib = await connect(sim, client_id=1)
    [details] = await ib.reqContractDetailsAsync(client_lib.Stock("VTI", "SMART", "USD"))
    assert details.minTick == 0.01
    assert details.sizeIncrement == 1
    assert details.timeZoneId == "US/Eastern"
    assert details.stockType == "ETF"
    days = details.liquidHours.split(";")  # always open by default: whole days
    assert len(days) == 7 and days[0].endswith(":0000") and ":0000-" in days[0]
    assert details.tradingHours == details.liquidHours


THANKSGIVING_WEEK = {
    "accounts": [{"id": "DU0000001", "cash": {"USD": 10000}}],
    "market": {
        "hours": "regular",
        "holidays": ["2026-11-26"],
        "earlyCloses": {"2026-11-27": "13:00"},
    },
    "clock": {"start": "2026-11-23T15:00:00Z"},  # Monday 10:00 New York
}


@pytest.mark.integration
async def test_contract_details_hours_follow_the_scenario_holidays_and_early_closes(
    sim_factory, connect, client_lib
):
    gateway = await sim_factory(THANKSGIVING_WEEK)
    ib = await connect(gateway, client_id=1)
    [vti] = await ib.reqContractDetailsAsync(client_lib.Stock("VTI", "SMART", "USD"))
    assert vti.timeZoneId == "US/Eastern"
    assert vti.liquidHours.split(";") == [
        "20261123:0930-20261123:1600",
        "20261124:0930-20261124:1600",
        "20261125:0930-20261125:1600",
        "20261126:CLOSED",
        "20261127:0930-20261127:1300",
        "20261128:CLOSED",
        "20261129:CLOSED",
    ]
    assert vti.tradingHours.split(";") == [
        "20261123:0400-20261123:2000",
        "20261124:0400-20261124:2000",
        "20261125:0400-20261125:2000",
        "20261126:CLOSED",
        "20261127:0400-20261127:1700",
        "20261128:CLOSED",
        "20261129:CLOSED",
    ]
    [sap] = await ib.reqContractDetailsAsync(client_lib.Stock("SAP", "SMART", "EUR"))
    assert sap.timeZoneId == "MET"  # the exchange's zone; hours are read in it
    assert sap.liquidHours.split(";")[0] == "20261123:0900-20261123:1730"
    assert sap.liquidHours.split(";")[3] == "20261126:CLOSED"


async def test_snapshot_quote_has_bid_ask_last_and_close(sim, connect, client_lib, stock):
    ib = await connect(sim, client_id=1)
    [ticker] = await ib.reqTickersAsync(await stock(ib, "VTI"))
    assert (ticker.bid, ticker.ask, ticker.last, ticker.close) == (289.99, 290.01, 290.0, 290.0)
    assert ticker.marketDataType == 1


async def test_streaming_quote_when_price_moves_then_ticker_updates(
    sim, connect, client_lib, wait, stock
):
    ib = await connect(sim, client_id=1)
    ticker = ib.reqMktData(await stock(ib, "AAPL"))
    await wait(lambda: ticker.bid == 229.99, what="first streaming bid")
    sim.set_quote("AAPL", bid=231.00, ask=231.04)
    await wait(lambda: (ticker.bid, ticker.ask) == (231.0, 231.04), what="updated quote")
    assert ticker.last == 231.02


async def test_market_data_type_when_delayed_requested_then_delayed_ticks_arrive(
    sim, connect, client_lib, stock
):
    ib = await connect(sim, client_id=1)
    ib.reqMarketDataType(3)
    [ticker] = await ib.reqTickersAsync(await stock(ib, "BND"))
    assert ticker.marketDataType == 3
    assert (ticker.bid, ticker.ask) == (72.99, 73.01)
    sent_types = {e["fields"][3] for e in sim.journal.messages("out", msg_id=1, client_id=1)}
    assert sent_types <= {"66", "67", "68", "72", "73", "75", "76"}


async def test_historical_daily_bars_end_at_the_current_close(sim, connect, client_lib, stock):
    ib = await connect(sim, client_id=1)
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(await stock(ib, "GLD"), "", "30 D", "1 day", "TRADES", True), 5
    )
    assert 20 <= len(bars) <= 23
    assert bars[-1].close == 240.0
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    dates = [b.date for b in bars]
    assert dates == sorted(dates) and all(d.weekday() < 5 for d in dates)


async def test_no_market_data_fault_when_requested_then_error_354(sim, connect, client_lib, stock):
    ib = await connect(sim, client_id=1)
    sim.faults.no_market_data = {"VTI"}
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    [ticker] = await ib.reqTickersAsync(await stock(ib, "VTI"))
    assert errors == [354]
    assert math.isnan(ticker.bid)


async def test_delayed_only_fault_when_live_requested_then_10167_and_delayed_data(
    sim, connect, client_lib, stock
):
    ib = await connect(sim, client_id=1)
    sim.faults.delayed_only = True
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    [ticker] = await ib.reqTickersAsync(await stock(ib, "TLT"))
    assert errors == [10167]
    assert ticker.marketDataType == 3
    assert ticker.bid == 91.99


async def test_stale_quote_fault_when_snapshot_requested_then_only_close_arrives(
    sim, connect, client_lib, stock
):
    ib = await connect(sim, client_id=1)
    sim.faults.stale_symbols = {"SGOV"}
    [ticker] = await ib.reqTickersAsync(await stock(ib, "SGOV"))
    assert math.isnan(ticker.bid) and math.isnan(ticker.ask) and math.isnan(ticker.last)
    assert ticker.close == 100.4
