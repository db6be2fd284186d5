"""The cycle report as a value (pure): which members its JSON always has and which only once
the cycle got that far, the executor's order outcome carried field for field, counts, costs,
warnings, and that a built report cannot be changed."""

import dataclasses
import datetime as dt

import pytest
from builders import NOW

from reconciler.apply.executor import OrderOutcome
from reconciler.model import outcome
from reconciler.model.report import (
    CycleReport,
    DesiredRef,
    OrderCounts,
    OrderRow,
    tca_rows,
)
from reconciler.render.cycle_report import render_markdown

ALWAYS = {
    "format",
    "version",
    "cycle_id",
    "kind",
    "started_at",
    "status",
    "mode",
    "orders_enabled",
    "accounts",
    "desired",
    "gates",
    "plan_id",
    "drift_before",
    "drift_after",
    "orders",
    "denials",
    "errors",
    "notes",
    "finished_at",
    "duration_seconds",
    "tca",
    # Summaries a reader wants first, derived from the members above.
    "headline",
    "nothing_to_do",
    "gates_passed",
    "traded",
    "drift_summary",
}


def report(**changes) -> CycleReport:
    fields = {
        "cycle_id": 7,
        "kind": "apply",
        "started_at": NOW,
        "finished_at": NOW + dt.timedelta(seconds=1.23456),
        "status": "refused",
        "mode": "paper",
        "orders_enabled": True,
        "accounts": ("DU0000001",),
        "desired": DesiredRef("ab" * 32, "abc1234def", False, "desired_state"),
    }
    return CycleReport(**{**fields, **changes})


def order(ref: str, status: str, filled: float, **changes) -> OrderRow:
    return OrderRow(
        order_ref=ref,
        leg=1,
        account="DU0000001",
        key="VTI",
        side="BUY",
        quantity=10.0,
        status=status,
        filled=filled,
        **changes,
    )


def test_a_cycle_refused_at_its_gates_has_only_the_members_every_report_has():
    body = report(errors=("REFUSED TRADING_STATE: halted",)).to_dict()
    assert set(body) == ALWAYS
    assert body["format"] == "ib-reconciler/cycle-report" and body["version"] == 1
    assert body["started_at"] == "2026-11-20T15:30:00+00:00"
    assert body["finished_at"] == "2026-11-20T15:30:01.234560+00:00"
    assert body["duration_seconds"] == 1.235
    assert body["plan_id"] is None and body["errors"] == ["REFUSED TRADING_STATE: halted"]
    assert body["desired"] == {
        "hash": "ab" * 32,
        "git_commit": "abc1234def",
        "git_dirty": False,
        "directory": "desired_state",
    }


def test_members_reached_are_in_the_json_even_when_empty():
    body = report(breaks=(), recovery=(), lock_mismatches=(), result="nothing to do").to_dict()
    assert set(body) - ALWAYS == {"breaks", "recovery", "lock_mismatches", "result"}
    assert body["breaks"] == [] and body["recovery"] == [] and body["result"] == "nothing to do"


def test_warnings_are_in_the_json_and_the_markdown_only_when_there_are_some():
    quiet = report()
    assert "warnings" not in quiet.to_dict()
    assert "Warning" not in render_markdown(quiet)
    loud = report(warnings=("IB_CLIENT_ID=0 is the master client id",))
    assert loud.to_dict()["warnings"] == ["IB_CLIENT_ID=0 is the master client id"]
    markdown = render_markdown(loud)
    assert "## Needs attention\n\n- **Warning**: IB_CLIENT_ID=0 is the master client id\n" in markdown


def test_an_order_row_carries_every_field_of_the_executors_outcome():
    executed = OrderOutcome(
        order_ref="rc-p1-001",
        leg=1,
        account="DU0000001",
        key="VTI",
        side="BUY",
        quantity=10.0,
        status="FILLED",
        filled=10.0,
        avg_price=290.1,
        commission=1.0,
        est_commission=1.2,
        arrival_price=290.0,
        slippage_bps=3.45,
        perm_id=12345,
        message="",
        fills=[{"exec_id": "e1", "shares": 10.0, "price": 290.1, "time": None}],
    )
    # The report adds what the plan knew of each order (its reason and currency).
    assert [f.name for f in dataclasses.fields(OrderRow)] == [
        f.name for f in dataclasses.fields(OrderOutcome)
    ] + ["reason", "currency"]
    assert OrderRow.from_dict(executed.to_dict()).to_dict() == {
        **executed.to_dict(),
        "reason": "",
        "currency": None,
    }


def test_counts_keep_the_words_and_the_order_of_the_summary_line():
    counts = outcome.order_counts(
        [{"status": "FILLED", "filled": 1}, {"status": "CANCELLED", "filled": 2}]
    )
    typed = OrderCounts.from_mapping(counts)
    assert typed.filled == 1 and typed.partly_filled == 1 and typed.unknown == 0
    assert list(typed.as_mapping().items()) == list(counts.items())
    body = report(counts=typed).to_dict()
    assert body["counts"] == counts


def test_transaction_costs_list_only_orders_that_filled_something():
    orders = (
        order("rc-p1-001", "FILLED", 10.0, arrival_price=290.0, avg_price=290.5),
        order("rc-p1-002", "REJECTED", 0.0),
        order("rc-p1-003", "PARTIAL_CANCELLED", 4.0),
    )
    assert [r.order_ref for r in tca_rows(orders)] == ["rc-p1-001", "rc-p1-003"]
    body = report(orders=orders).to_dict()
    assert [r["order_ref"] for r in body["tca"]] == ["rc-p1-001", "rc-p1-003"]
    assert body["tca"][0]["avg_price"] == 290.5
    assert "## Transaction costs" in render_markdown(report(orders=orders))


def test_a_built_report_cannot_be_changed():
    built = report()
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = "ok"  # type: ignore[misc]


def test_markdown_leads_with_the_outcome_and_collapses_gates_that_all_passed():
    from reconciler.model.report import DecisionRow, GateRow

    gates = (GateRow("TRADING_MODE", True, "mode=paper", "pass"),) * 8
    filled = order(
        "rc-p-001", "FILLED", 10.0, avg_price=290.1, commission=1.0, reason="VTI low", currency="USD"
    )
    ok = report(status="ok", gates=gates, orders=(filled,), result="applied: all 1 order(s) filled")
    lines = render_markdown(ok).splitlines()
    assert lines[2] == "**applied: all 1 order(s) filled**"
    assert lines.index("## What changed") < lines.index("## Gates")
    assert "All 8 gates passed." in lines and "<details><summary>Gate details</summary>" in lines
    assert "DU0000001: bought 2,901.00 USD, sold 0.00 USD, commission 1.00" in "\n".join(lines)

    refused = dataclasses.replace(
        ok,
        status="refused",
        gates=(*gates[:7], GateRow("TRADING_STATE", False, "halted: desk", "REFUSED")),
        errors=("REFUSED TRADING_STATE: halted: desk",),
        orders=(),
        denials=(DecisionRow("DU0000001", "BND", "SELL", "MAX_ORDER", "deny", "x=1"),),
    )
    text = render_markdown(refused)
    assert text.splitlines()[2].startswith("**REFUSED, nothing was sent")
    assert text.index("## Needs attention") < text.index("## Gates")
    assert "- **Gate TRADING_STATE refused**: halted: desk" in text
    assert "**Risk denied** DU0000001 SELL `BND`" in text
    assert "<details>" not in text and "| TRADING_STATE | REFUSED |" in text
