"""Accounts as the clients see them: positions, account values, summaries, pushes."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.asyncio

MULTI_CURRENCY = {
    "accounts": [
        {
            "id": "DU0000009",
            "cash": {"USD": 10000, "EUR": 5000},
            "positions": [{"symbol": "SAP", "quantity": 10, "avgCost": 200, "currency": "EUR"}],
        }
    ],
    "market": {"fx": {"EUR": 1.10}},
}


def values(ib, account: str, tag: str) -> dict[str, str]:
    return {v.currency: v.value for v in ib.accountValues(account) if v.tag == tag}


async def test_account_values_when_connected_then_nav_is_cash_plus_positions(sim, connect):
    ib = await connect(sim, client_id=1)
    # demo: 100,000 USD + 100 VTI @ 290 + 20 AAPL @ 230
    assert values(ib, "DU0000001", "NetLiquidation") == {"USD": "133600.00"}
    assert values(ib, "DU0000001", "TotalCashValue") == {"USD": "100000.00"}
    assert values(ib, "DU0000001", "GrossPositionValue") == {"USD": "33600.00"}
    assert values(ib, "DU0000001", "BuyingPower") == {"USD": "100000.00"}
    assert values(ib, "DU0000001", "AvailableFunds") == {"USD": "100000.00"}
    assert values(ib, "DU0000001", "ExchangeRate")["USD"] == "1.00"
    assert values(ib, "DU0000002", "NetLiquidation") == {"USD": "92800.00"}
    avg_costs = {p.contract.symbol: p.avgCost for p in ib.positions("DU0000001")}
    assert avg_costs == {"VTI": 250.0, "AAPL": 190.0}


async def test_account_values_when_multi_currency_then_base_currency_nav_uses_fx(
    sim_factory, connect
):
    gateway = await sim_factory(MULTI_CURRENCY)
    ib = await connect(gateway, client_id=1)
    assert values(ib, "DU0000009", "ExchangeRate")["EUR"] == "1.1"
    assert values(ib, "DU0000009", "CashBalance")["EUR"] == "5000.00"
    # 10,000 USD + 5,000 EUR + 10 SAP @ 220 EUR, at 1.10 USD/EUR
    assert values(ib, "DU0000009", "NetLiquidation") == {"USD": "17920.00"}
    [position] = ib.positions()
    assert (position.contract.currency, position.contract.symbol) == ("EUR", "SAP")


async def test_portfolio_when_single_account_then_account_updates_carry_market_values(
    sim_factory, connect
):
    gateway = await sim_factory(accounts=["DU0000005"])
    gateway.book.set_position("DU0000005", gateway.instrument("BND").con_id, 50, 70.0)
    ib = await connect(gateway, client_id=1)
    [item] = ib.portfolio()
    assert item.contract.symbol == "BND"
    assert (item.position, item.marketPrice, item.marketValue) == (50, 73.0, 3650.0)
    assert item.unrealizedPNL == pytest.approx(150.0)
    assert values(ib, "DU0000005", "TotalCashValue") == {"USD": "1000000.00"}


async def test_account_summary_lists_requested_tags_per_account(sim, connect):
    ib = await connect(sim, client_id=1)
    summary = await asyncio.wait_for(ib.accountSummaryAsync("DU0000002"), 5)
    tags = {v.tag: v.value for v in summary}
    assert tags["NetLiquidation"] == "92800.00"
    assert tags["TotalCashValue"] == "80000.00"
    assert tags["AccountType"] == "INDIVIDUAL"


async def test_positions_and_account_values_are_pushed_after_a_fill(sim, connect, client_lib, wait):
    ib = await connect(sim, client_id=1)
    before = float(values(ib, "DU0000002", "TotalCashValue")["USD"])
    order = client_lib.MarketOrder("SELL", 50, account="DU0000002")
    trade = ib.placeOrder(client_lib.Stock("VXUS", "SMART", "USD"), order)
    await wait(trade.isDone, what="VXUS sale filled")
    assert trade.orderStatus.status == "Filled"
    assert {p.contract.symbol: p.position for p in ib.positions("DU0000002")} == {"VXUS": 150}
    # sold 50 at the bid 63.99, commission 1.00
    await wait(
        lambda: float(values(ib, "DU0000002", "TotalCashValue")["USD"]) != before,
        what="account value push",
    )
    assert float(values(ib, "DU0000002", "TotalCashValue")["USD"]) == pytest.approx(
        before + 50 * 63.99 - 1.0
    )
