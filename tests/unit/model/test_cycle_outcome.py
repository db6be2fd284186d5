"""Cycle outcomes (pure): order counts, the apply status, drift no order closes, exit codes,
the summary line, the dry-run gate row, and 'unknown' drift in `status`."""

from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.app.exit_codes import exit_code_for_status
from reconciler.apply.gates import GateResult
from reconciler.decide.planner import build_plan
from reconciler.model import outcome
from reconciler.model.report import CycleReport, DesiredRef, OrderCounts, gate_rows
from reconciler.render.cycle_report import outcome_line, render_markdown
from reconciler.render.views import drift_summary


def plan_of(book, *targets, **policy):
    return build_plan(
        desired_of(portfolio(*targets)),
        actual_of(book),
        book.resolved(),
        {"default": limits(**policy)},
        now=NOW,
        plan_id="p1",
    )


def drifting():
    return Book(cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)


def orders(*statuses, filled=0.0):
    return [{"status": s, "filled": filled} for s in statuses]


def test_order_counts_name_every_outcome_and_count_a_fill_before_a_cancel_as_partial():
    counts = outcome.order_counts(
        [
            *orders("FILLED", "REJECTED", "NOT_SENT", "UNKNOWN", "CANCELLED"),
            {"status": "CANCELLED", "filled": 5.0},
            {"status": "WEIRD", "filled": 0},
        ]
    )
    assert counts == {
        "filled": 1,
        "partly filled": 1,
        "rejected": 1,
        "cancelled": 1,
        "not sent": 1,
        "unknown": 2,
    }


def test_apply_status_when_every_order_is_rejected_then_none_filled():
    status = outcome.apply_status(
        planned=3, approved=True, dry_run=False, orders=orders("REJECTED", "REJECTED", "NOT_SENT")
    )
    assert status == outcome.NONE_FILLED
    assert exit_code_for_status(status) == 4


def test_apply_status_when_halted_before_any_send_then_none_filled():
    status = outcome.apply_status(
        planned=2, approved=True, dry_run=False, orders=orders("NOT_SENT", "NOT_SENT")
    )
    assert status == outcome.NONE_FILLED


def test_apply_status_when_some_fill_then_partial_and_exit_0():
    status = outcome.apply_status(
        planned=2, approved=True, dry_run=False, orders=orders("FILLED", "CANCELLED")
    )
    assert status == outcome.PARTIAL and exit_code_for_status(status) == 0


def test_apply_status_when_every_order_fills_then_ok():
    status = outcome.apply_status(
        planned=2, approved=True, dry_run=False, orders=orders("FILLED", "FILLED")
    )
    assert status == outcome.OK


def test_apply_status_when_outcomes_are_unknown_and_nothing_filled_then_an_error():
    status = outcome.apply_status(
        planned=2, approved=True, dry_run=False, orders=orders("UNKNOWN", "REJECTED")
    )
    assert status == outcome.UNKNOWN and exit_code_for_status(status) == 1


def test_apply_status_of_a_dry_run_is_dry_run_never_ok():
    status = outcome.apply_status(
        planned=7, approved=True, dry_run=True, orders=orders(*["NOT_SENT"] * 7)
    )
    assert status == outcome.DRY_RUN and exit_code_for_status(status) == 0
    result = outcome.apply_result(status, outcome.order_counts(orders(*["NOT_SENT"] * 7)), [])
    assert "7 order(s) would have been sent" in result


def test_apply_status_without_orders_but_with_drift_left_is_blocked():
    status = outcome.apply_status(
        planned=0, approved=True, dry_run=False, orders=[], not_closed=["DU0000001:VTI"]
    )
    assert status == outcome.BLOCKED and exit_code_for_status(status) == 4


def test_apply_status_not_approved_is_an_error():
    status = outcome.apply_status(planned=1, approved=False, dry_run=False, orders=[])
    assert status == outcome.NOT_APPROVED and exit_code_for_status(status) == 1


def test_exit_codes_of_refused_and_unexpected_statuses():
    assert exit_code_for_status("refused") == 3
    assert exit_code_for_status("running") == 1
    assert exit_code_for_status(None) == 1


def test_drift_not_closed_when_the_halt_denies_every_order():
    plan = plan_of(drifting(), target("VTI", weight=0.5), trading_state="HALTED")
    assert not plan.orders
    assert outcome.drift_not_closed(plan) == ["DU0000001:VTI"]


def test_drift_not_closed_is_empty_when_orders_close_the_drift():
    plan = plan_of(drifting(), target("VTI", weight=0.5), target("BND", weight=0.3))
    assert plan.orders
    assert outcome.drift_not_closed(plan) == []


def test_drift_not_closed_is_empty_for_a_book_in_band():
    book = Book(cash=0.0, nav=29_000.0).instrument("VTI", 290.0, held=100)
    assert outcome.drift_not_closed(plan_of(book, target("VTI", weight=1.0))) == []


def test_summary_line_lists_every_outcome_in_a_fixed_order():
    counts = outcome.order_counts(orders("FILLED", "REJECTED"))
    assert outcome.summary_line(counts) == (
        "2 order(s): 1 filled, 0 partly filled, 1 rejected, 0 cancelled, 0 not sent, 0 unknown"
    )
    report = _report(status="partial", counts=OrderCounts.from_mapping(counts))
    assert outcome_line(report) == outcome.summary_line(counts)


def _report(**changes) -> CycleReport:
    fields = {
        "cycle_id": 1,
        "kind": "apply",
        "started_at": NOW,
        "finished_at": NOW,
        "status": "ok",
        "mode": "paper",
        "orders_enabled": False,
        "accounts": (),
        "desired": DesiredRef(None, None, None, None),
    }
    return CycleReport(**{**fields, **changes})


def test_gate_row_of_a_dry_run_says_dry_run_not_pass():
    gates = [
        GateResult("ORDERS_ENABLED", True, "ORDERS_ENABLED is false: dry run"),
        GateResult("TRADING_MODE", True, "mode=paper"),
    ]
    rows = gate_rows(gates, orders_enabled=False)
    assert [r.result for r in rows] == ["dry run: orders disabled", "pass"]
    assert gate_rows(gates, orders_enabled=True)[0].result == "pass"
    md = render_markdown(_report(status="dry-run", gates=rows))
    assert md.startswith("# Cycle 1 (apply): dry-run\n")
    assert "| ORDERS_ENABLED | dry run: orders disabled |" in md


def test_status_drift_is_unknown_when_a_price_is_missing():
    report = {
        "drift_before": [
            {"account": "A", "key": "VTI", "status": "managed", "drift": 0.0007, "in_band": True},
            {
                "account": "A",
                "key": "BND",
                "status": "missing-price",
                "drift": None,
                "in_band": False,
            },
        ]
    }
    summary = drift_summary(report, "A")
    assert "max unknown" in summary and "BND missing-price" in summary
    assert "0.07" not in summary


def test_status_drift_shows_the_maximum_when_every_price_is_known():
    report = {
        "drift_before": [
            {"account": "A", "key": "VTI", "status": "managed", "drift": -0.031, "in_band": False},
            {"account": "A", "key": "BND", "status": "managed", "drift": 0.001, "in_band": True},
        ]
    }
    assert drift_summary(report, "A") == "1 of 2 outside band (max 3.10 pts)"
