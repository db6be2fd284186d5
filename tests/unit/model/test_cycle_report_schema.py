"""The published JSON Schema of the cycle report (`schemas/cycle-report.schema.json`, shipped
in the package too) describes `CycleReport.to_dict()`: a report with every member validates,
and the schema catches a member of the wrong shape. Real reports of real cycles are checked
against it by tests/integration/test_cycle_report_golden.py."""

import datetime as dt
import json
from pathlib import Path

import pytest
from builders import NOW
from jsonschema import Draft202012Validator, ValidationError

from reconciler.model.report import (
    AccountBalance,
    CycleReport,
    DecisionRow,
    DesiredRef,
    DriftLine,
    GateRow,
    OrderCounts,
    OrderRow,
    WindowRow,
)

REPO = Path(__file__).resolve().parents[3]
PUBLISHED = REPO / "schemas" / "cycle-report.schema.json"
SHIPPED = REPO / "reconciler" / "schemas" / "cycle-report.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def full_report() -> CycleReport:
    line = DriftLine("DU0000001", "VTI", "managed", 10.0, 290.0, 0.4, 0.5, -0.1, False)
    return CycleReport(
        cycle_id=3,
        kind="apply",
        started_at=NOW,
        finished_at=NOW + dt.timedelta(seconds=2),
        status="partial",
        mode="paper",
        orders_enabled=True,
        accounts=("DU0000001",),
        desired=DesiredRef("ab" * 32, "abc1234", False, "desired_state"),
        gates=(GateRow("TRADING_STATE", True, "not halted", "pass"),),
        plan_id="20261120T1530Z-abcdef",
        drift_before=(line,),
        drift_after=(line,),
        orders=(
            OrderRow(
                "rc-p-001",
                1,
                "DU0000001",
                "VTI",
                "BUY",
                10.0,
                "PARTIAL_CANCELLED",
                4.0,
                290.1,
                1.0,
                1.2,
                290.0,
                3.45,
                77,
                "TTL 60s reached, rest cancelled",
                (
                    {
                        "exec_id": "e1",
                        "shares": 4.0,
                        "price": 290.1,
                        "time": None,
                        "commission": 1.0,
                    },
                ),
                "VTI: weight 40.0% -> target 50.0%",
                "USD",
            ),
        ),
        denials=(DecisionRow("DU0000001", "BND", "SELL", "MAX_ORDER", "deny", "x=1"),),
        errors=(),
        notes=("a note",),
        warnings=("a warning",),
        lock_id="0123456789abcdef",
        recovery=(
            {
                "order_ref": "rc-o-001",
                "account": "DU0000001",
                "resolution": "filled",
                "filled": 1.0,
            },
        ),
        orphan_orders=(),
        lock_mismatches=(),
        breaks=(),
        stale_reasons=(),
        risk_at_apply=(),
        window=(WindowRow("VTI", "ARCA", "XNYS", True, "open", None, None),),
        planned_orders=1,
        totals={"orders": 1, "turnover": 2901.0, "est_commission": 1.2, "denials": 1, "clips": 0},
        counts=OrderCounts(partly_filled=1),
        drift_not_closed=("DU0000001:BND",),
        result="partly applied",
        remaining_orders_after=1,
        breaks_after=(),
        files=("a.json", "a.md"),
        balances=(AccountBalance("DU0000001", "USD", 1000.0, 500.0, 999.0, 0.0),),
    )


def test_the_package_ships_the_published_schema_unchanged():
    assert SHIPPED.read_text(encoding="utf-8") == PUBLISHED.read_text(encoding="utf-8")


def test_a_report_with_every_member_validates(validator):
    body = json.loads(json.dumps(full_report().to_dict()))
    validator.validate(body)
    assert set(body) == set(validator.schema["properties"]) - {
        "aborted_by_cycle",
        "would_send",
        "report_files_error",
        "plan_orders",  # drift reports only
    }


def test_a_report_of_a_refused_cycle_validates(validator):
    refused = CycleReport(
        7,
        "apply",
        NOW,
        NOW,
        "refused",
        "paper",
        False,
        ("DU0000001",),
        DesiredRef(None, None, None, None),
        errors=("TRADING_STATE: halted",),
    )
    validator.validate(json.loads(json.dumps(refused.to_dict())))


@pytest.mark.parametrize(
    ("member", "value"),
    [("status", "fine"), ("orders", [{"order_ref": "rc-1"}]), ("unexpected", 1)],
)
def test_the_schema_refuses_a_member_of_the_wrong_shape(validator, member, value):
    body = {**json.loads(json.dumps(full_report().to_dict())), member: value}
    with pytest.raises(ValidationError):
        validator.validate(body)
