"""Plan artifact helpers: deterministic orderRef, filtering instruments out with a reason."""

import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.decide.planner import build_plan
from reconciler.model.plan import PlanFileError, dumps, loads, order_ref, without_instruments


def a_plan():
    b = Book(cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)
    desired = desired_of(portfolio(target("VTI", weight=0.5), target("BND", weight=0.3)))
    return b, build_plan(
        desired, actual_of(b), b.resolved(), {"default": limits()}, now=NOW, plan_id="p1"
    )


def test_order_ref_is_a_deterministic_function_of_plan_and_leg():
    assert order_ref("20261122T0100Z-abc123", 7) == "rc-20261122T0100Z-abc123-007"
    assert order_ref("p", 7) == order_ref("p", 7) != order_ref("p", 8)


def test_without_instruments_drops_their_orders_and_records_a_denial():
    b, plan = a_plan()
    vti = b.contract_of("VTI").con_id
    filtered = without_instruments(plan, {("DU0000001", vti): {"ledger": 10.0, "broker": 5.0}})
    assert [o.key for o in filtered.orders] == ["BND"]
    [denial] = [d for d in filtered.decisions if d.code == "LEDGER_BREAK"]
    assert denial.key == "VTI" and denial.action == "deny" and denial.allowed_quantity == 0.0
    assert denial.render() == "LEDGER_BREAK: ledger=10 broker=5"


def test_without_instruments_with_nothing_skipped_is_the_same_plan():
    _, plan = a_plan()
    assert without_instruments(plan, {}) is plan


def test_loading_a_file_that_is_not_a_plan_is_refused():
    with pytest.raises(ValueError, match="not an ib-reconciler plan"):
        loads('{"hello": 1}')


def test_loading_a_plan_of_another_format_version_is_refused():
    _, plan = a_plan()
    text = dumps(plan).replace('"version": 4', '"version": 99')
    assert '"version": 99' in text
    with pytest.raises(PlanFileError, match="version 99"):
        loads(text)
