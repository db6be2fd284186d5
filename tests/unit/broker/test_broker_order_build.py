"""Building IB orders from planned orders, with both client libraries."""

from __future__ import annotations

import dataclasses

import ib_async
import ib_insync
import pytest

from reconciler.broker.errors import OrderError
from reconciler.broker.order_check import far_limit_price
from reconciler.broker.orders import build_order
from reconciler.model.plan import PlannedOrder

LIBS = [ib_async, ib_insync]

PLANNED = PlannedOrder(
    leg=1,
    account="DU0000001",
    key="VTI",
    symbol="VTI",
    con_id=756733,
    sec_type="STK",
    exchange="SMART",
    primary_exchange="ARCA",
    currency="USD",
    side="BUY",
    quantity=12,
    order_type="LMT",
    limit_price=250.13,
    time_in_force="DAY",
    ttl_seconds=120,
    outside_rth=False,
    arrival_price=250.0,
    est_notional=3001.56,
    est_commission=1.0,
    reason="VTI below band",
)


@pytest.fixture(params=LIBS, ids=lambda m: m.__name__)
def lib(request):
    return request.param


def planned(**changes):
    return dataclasses.replace(PLANNED, **changes)


def test_limit_order_carries_price_account_ref_tif_and_transmit(lib):
    order = build_order(lib, PLANNED, "rc-p1-001")
    assert (order.action, order.totalQuantity, order.orderType, order.lmtPrice) == (
        "BUY",
        12,
        "LMT",
        250.13,
    )
    assert (order.account, order.orderRef, order.tif, order.transmit) == (
        "DU0000001",
        "rc-p1-001",
        "DAY",
        True,
    )
    assert order.outsideRth is False and not order.algoStrategy


def test_market_order_has_no_limit(lib):
    order = build_order(lib, planned(order_type="MKT", limit_price=None, side="SELL"), "r")
    assert (order.orderType, order.action) == ("MKT", "SELL")
    assert order.lmtPrice != 250.13


def test_midprice_order_uses_the_limit_as_cap(lib):
    order = build_order(lib, planned(order_type="MIDPRICE"), "r")
    assert (order.orderType, order.lmtPrice) == ("MIDPRICE", 250.13)


def test_adaptive_order_is_an_algo_with_normal_priority(lib):
    order = build_order(lib, planned(order_type="ADAPTIVE", outside_rth=True), "r")
    assert (order.orderType, order.algoStrategy, order.outsideRth) == ("LMT", "Adaptive", True)
    assert [(p.tag, p.value) for p in order.algoParams] == [("adaptivePriority", "Normal")]
    market = build_order(lib, planned(order_type="ADAPTIVE", limit_price=None), "r")
    assert market.orderType == "MKT" and market.algoStrategy == "Adaptive"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": float("nan")}, "quantity"),
        ({"side": "HOLD"}, "side"),
        ({"limit_price": None}, "needs a limit price"),
        ({"limit_price": -1.0}, "limit price"),
        ({"order_type": "STP"}, "not supported"),
    ],
)
def test_bad_values_are_refused_before_anything_is_sent(lib, changes, message):
    with pytest.raises(OrderError, match=message):
        build_order(lib, planned(**changes), "r")


def test_order_ref_is_required(lib):
    with pytest.raises(OrderError, match="orderRef"):
        build_order(lib, PLANNED, "")


@pytest.mark.parametrize(
    ("reference", "tick", "expected"),
    [(250.13, 0.01, 125.06), (0.015, 0.01, 0.01), (101.0, 0.05, 50.5), (99.99, 0.0, 49.99)],
)
def test_far_limit_price_is_half_the_reference_rounded_down_to_tick(reference, tick, expected):
    assert far_limit_price(reference, tick) == pytest.approx(expected)
