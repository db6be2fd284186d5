"""Fixtures for the broker adapter's integration tests (shared ones live one level up)."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.model.plan import PlannedOrder

AAPL_CON_ID = 265598

BASE_ORDER = PlannedOrder(
    leg=1,
    account="DU0000001",
    key="AAPL",
    symbol="AAPL",
    con_id=AAPL_CON_ID,
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    currency="USD",
    side="BUY",
    quantity=10,
    order_type="MKT",
    limit_price=None,
    time_in_force="DAY",
    ttl_seconds=60,
    outside_rth=False,
    arrival_price=230.0,
    est_notional=2300.0,
    est_commission=1.0,
    reason="test",
)


@pytest.fixture
def planned():
    """`planned(**changes)`: a PlannedOrder for AAPL on DU0000001 (MKT BUY 10 by default)."""

    def make(**changes) -> PlannedOrder:
        return dataclasses.replace(BASE_ORDER, **changes)

    return make
