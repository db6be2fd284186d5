"""What the dashboard and MCP server derive from stored values (pure): weights before/after,
drift over time, cumulative commission and slippage, cash and NAV, risk codes in words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from reconciler.app.mcp_server import RISK_CODES, explain_code
from reconciler.app.serve import data

T0 = dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC)


def drift(key, weight, target, d, in_band=False, status="managed", account="DU1"):
    return {
        "account": account,
        "key": key,
        "current_weight": weight,
        "target_weight": target,
        "drift": d,
        "in_band": in_band,
        "status": status,
    }


REPORT = {
    "drift_before": [drift("VTI", 0.2, 0.5, -0.3), drift("BND", 0.0, 0.3, -0.3)],
    "drift_after": [
        drift("VTI", 0.45, 0.5, -0.05, True),
        drift("BND", 0.25, 0.3, -0.05),
        drift("X", 0.1, 0.1, 0.0, True, account="DU2"),
    ],
}


@dataclass
class Cycle:
    started_at: dt.datetime
    finished_at: dt.datetime | None
    report: dict


@dataclass
class Order:
    order_ref: str
    arrival_price: float | None


@dataclass
class Fill:
    exec_id: str
    order_ref: str | None
    side: str
    shares: float
    price: float
    time: dt.datetime
    commission: float | None


def test_weights_pair_target_before_and_after_per_instrument_of_one_account():
    rows = data.weights(REPORT, "DU1")
    assert [(r["key"], r["target"], r["before"], r["after"]) for r in rows] == [
        ("VTI", 0.5, 0.2, 0.45),
        ("BND", 0.3, 0.0, 0.25),
    ]
    assert [r["in_band_after"] for r in rows] == [True, False]


def test_drift_series_has_a_point_before_and_after_each_cycle():
    cycles = [Cycle(T0, T0 + dt.timedelta(seconds=5), REPORT), Cycle(T0, None, {})]
    series = data.drift_series(cycles, "DU1")
    assert series["t"] == [T0.timestamp(), T0.timestamp() + 5]
    assert series["series"] == {"BND": [-0.3, -0.05], "VTI": [-0.3, -0.05]}


def test_costs_accumulate_commission_and_signed_slippage_in_fill_order():
    orders = [Order("b", 100.0), Order("s", 50.0)]
    fills = [
        Fill("2", "s", "SELL", 10, 49.9, T0 + dt.timedelta(seconds=1), 1.0),
        Fill("1", "b", "BUY", 5, 100.2, T0, 0.5),
        Fill("3", None, "BUY", 1, 10.0, T0 + dt.timedelta(seconds=2), None),
    ]
    costs = data.cost_series(orders, fills)
    assert costs["commission"] == [0.5, 1.5, 1.5]
    # buy paid 0.2 more on 5 shares (+1.0); sell got 0.1 less on 10 shares (+1.0)
    assert costs["slippage"] == pytest.approx([1.0, 2.0, 2.0])
    assert costs["t"] == [T0.timestamp() + s for s in (0, 1, 2)]


def test_cash_is_nav_minus_the_market_value_the_plan_saw():
    plan = {
        "snapshot_time": T0.isoformat(),
        "accounts": [
            {
                "account": "DU1",
                "net_liquidation": 1000.0,
                "drift": [{"market_value": 600.0}, {"market_value": 150.0, "status": "unmanaged"}],
            },
            {"account": "DU2", "net_liquidation": 5.0, "drift": []},
        ],
    }
    assert data.cash_nav_series([plan], "DU1") == {
        "t": [T0.timestamp()],
        "nav": [1000.0],
        "cash": [250.0],
    }


def test_plan_summary_keeps_one_account_s_orders_and_decisions():
    body = {
        "plan_id": "p",
        "created_at": T0.isoformat(),
        "orders": [
            {"account": "DU1", "symbol": "VTI", "side": "BUY", "quantity": 3},
            {"account": "DU2", "symbol": "BND", "side": "SELL", "quantity": 1},
        ],
        "decisions": [{"account": "DU2", "code": "PRICE_MISSING", "action": "deny"}],
    }
    summary = data.plan_summary(body, "DU1")
    assert [o["symbol"] for o in summary["orders"]] == ["VTI"]
    assert summary["decisions"] == [] and summary["created_at"] == T0


def test_a_risk_code_is_explained_with_its_numbers():
    text = explain_code("NOTIONAL_EXCEEDS_MAX_PER_ORDER", {"max": 5000, "got": 7312})
    assert text.startswith("The order's notional is above maxOrderNotional")
    assert "The limit is 5000; the order asked for 7312." in text
    assert "not a risk code" in explain_code("NOPE")


def test_every_risk_code_of_the_risk_checks_has_words():
    from reconciler.decide import risk

    codes = {v for k, v in vars(risk).items() if k.isupper() and isinstance(v, str) and v == k}
    assert codes <= set(RISK_CODES)
