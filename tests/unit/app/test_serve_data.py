"""What the dashboard and MCP server derive from stored values (pure): weights before/after,
drift over time, cumulative commission and slippage, cash and NAV, risk codes in words."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.app.mcp_server import RISK_CODES, explain_code
from reconciler.app.serve import data
from reconciler.decide.planner import build_plan
from reconciler.model.clock import FixedClock
from reconciler.model.plan import document_orders, to_dict
from reconciler.store import open_store

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


def stored_plan() -> dict:
    """A plan document as the store keeps it (format 4), of two accounts."""
    one = Book("DU0000001", cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)
    two = Book("DU0000002", cash=40_000.0).hold("GLD", 10, price=240.0).instrument("TLT", 92.0)
    desired = desired_of(
        portfolio(target("VTI", weight=0.5), target("BND", weight=0.3), name="core"),
        portfolio(target("GLD", weight=0.1), target("TLT", weight=0.5), name="b",
                  account="DU0000002"),
    )
    plan = build_plan(
        desired, actual_of(one, two), {**one.resolved(), **two.resolved()},
        {"default": limits(max_order_notional=15_000)}, now=NOW, plan_id="p4",
    )
    return json.loads(json.dumps(to_dict(plan)))


def test_plan_summary_of_a_stored_format_4_plan_reads_its_tables():
    body = stored_plan()
    summary = data.plan_summary(body, "DU0000002")
    assert {o["symbol"] for o in summary["orders"]} == {"GLD", "TLT"}
    assert all(o["account"] == "DU0000002" and o["leg"] >= 1 for o in summary["orders"])
    everyone = data.plan_summary(body)
    assert len(everyone["orders"]) == len(document_orders(body)) == 4
    assert {d["code"] for d in everyone["decisions"]} == {"NOTIONAL_EXCEEDS_MAX_PER_ORDER"}
    assert all(isinstance(d["detail"], dict) for d in everyone["decisions"])


def test_cash_of_a_stored_format_4_plan_is_nav_minus_its_drift_table_s_market_value():
    body = stored_plan()
    series = data.cash_nav_series([body], "DU0000002")
    assert series["nav"] == [pytest.approx(42_400.0)]
    assert series["cash"] == [pytest.approx(40_000.0)]  # 10 GLD at 240 held


def test_a_stored_format_3_plan_still_reads_for_display():
    order = {"leg": 1, "account": "DU1", "symbol": "VTI", "side": "BUY", "quantity": 3.0}
    old = {
        "format": "ib-reconciler/plan",
        "version": 3,
        "plan_id": "old",
        "created_at": T0.isoformat(),
        "accounts": [
            {
                "account": "DU1",
                "net_liquidation": 100.0,
                "orders": [order],
                "decisions": [],
                "drift": [{"account": "DU1", "key": "VTI", "market_value": 40.0}],
            }
        ],
        "orders": [order],
        "decisions": [],
    }
    assert [o["symbol"] for o in data.plan_summary(old, "DU1")["orders"]] == ["VTI"]
    assert data.cash_nav_series([old], "DU1")["cash"] == [60.0]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"accounts": "x"},
        {"accounts": [None, {"orders": {"columns": "x", "rows": [1]}}]},
        {"accounts": [{"orders": {"columns": ["leg"], "rows": [[1, 2], "x"]}, "drift": 7}]},
    ],
)
def test_a_malformed_stored_plan_reads_as_no_orders_rather_than_failing(body):
    summary = data.plan_summary(body, "DU1")
    assert summary["orders"] == [] and summary["decisions"] == []
    assert data.cash_nav_series([body], "DU1") == {"t": [], "nav": [], "cash": []}


def test_a_store_holding_a_format_3_plan_and_a_format_4_plan_shows_each(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'reconciler.db'}", clock=FixedClock(NOW))
    try:
        order = {"leg": 1, "account": "DU0000009", "symbol": "VTI", "side": "BUY", "quantity": 3.0}
        store.record_plan(
            {
                "format": "ib-reconciler/plan",
                "version": 3,
                "plan_id": "old",
                "created_at": T0.isoformat(),
                "accounts": [{"account": "DU0000009", "orders": [order], "decisions": [],
                              "drift": [{"key": "VTI", "status": "managed",
                                         "target_weight": 0.5}]}],
                "orders": [order],
                "decisions": [],
            }
        )
        store.record_plan(stored_plan())
        new = data.account_detail(store, "DU0000002")
        old = data.account_detail(store, "DU0000009")
    finally:
        store.close()
    assert new["last_plan"]["plan_id"] == "p4"
    assert {o["symbol"] for o in new["last_plan"]["orders"]} == {"GLD", "TLT"}
    assert {t["key"] for t in new["targets"]} == {"GLD", "TLT"}
    assert old["last_plan"]["plan_id"] == "old"
    assert [o["symbol"] for o in old["last_plan"]["orders"]] == ["VTI"]
    assert old["targets"] == [{"key": "VTI", "target_weight": 0.5, "target_quantity": None}]


def test_a_risk_code_is_explained_with_its_numbers():
    text = explain_code("NOTIONAL_EXCEEDS_MAX_PER_ORDER", {"max": 5000, "got": 7312})
    assert text.startswith("The order's notional is above maxOrderNotional")
    assert "The limit is 5000; the order asked for 7312." in text
    assert "not a risk code" in explain_code("NOPE")


def test_every_risk_code_of_the_risk_checks_has_words():
    from reconciler.decide import risk

    codes = {v for k, v in vars(risk).items() if k.isupper() and isinstance(v, str) and v == k}
    assert codes <= set(RISK_CODES)
