"""Configuration warnings carried by the plan: in its JSON form (sealed by the digest), in
the Markdown pull-request comment, absent without warnings, and readable from plan files
written before plans carried them."""

from __future__ import annotations

import json

import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.decide.planner import build_plan
from reconciler.model.plan import (
    INTEGRITY_KEY,
    PlanFileError,
    PlanIntegrityError,
    dumps,
    loads,
    seal,
    with_warnings,
)
from reconciler.render.plan import render_plan

WARNING = (
    "EXEC_RISK_MAX_ORDER_NOTIONAL=5000 is set but NOT applied: EXEC_RISK_ENABLED is unset, so "
    "the override is off and only the limits in git bind"
)
TYPO = "ORDER_ENABLED (in .env) is not a variable ib-reconciler reads; did you mean ORDERS_ENABLED?"


def a_plan():
    book = Book("DU0000001", cash=50_000.0).instrument("VTI", 290.0)
    return build_plan(
        desired_of(portfolio(target("VTI", weight=0.5))),
        actual_of(book),
        book.resolved(),
        {"default": limits()},
        now=NOW,
        plan_id="20261120T1530Z-abcdef",
    )


def resealed(document: dict) -> dict:
    body = {k: v for k, v in document.items() if k != INTEGRITY_KEY}
    return {**body, INTEGRITY_KEY: seal(body)}


def test_with_warnings_adds_each_warning_once_in_order():
    plan = with_warnings(with_warnings(a_plan(), [WARNING, TYPO]), [TYPO, WARNING])
    assert plan.warnings == (WARNING, TYPO)
    assert with_warnings(plan, []) is plan


def test_warnings_are_in_the_json_plan_and_survive_a_round_trip():
    plan = with_warnings(a_plan(), [WARNING])
    text = dumps(plan)
    assert json.loads(text)["warnings"] == [WARNING]
    assert loads(text).warnings == (WARNING,)
    assert json.loads(dumps(a_plan()))["warnings"] == []


def test_an_edited_warning_is_refused_by_the_digest():
    document = json.loads(dumps(with_warnings(a_plan(), [WARNING])))
    document["warnings"] = []  # hiding the warning from the reviewer of a saved plan
    with pytest.raises(PlanIntegrityError, match="warnings"):
        loads(json.dumps(document))


def test_a_plan_file_written_before_plans_carried_warnings_loads_without_any():
    document = json.loads(dumps(a_plan()))
    del document["warnings"]
    assert loads(json.dumps(resealed(document))).warnings == ()


def test_warnings_that_are_not_a_list_of_text_are_not_a_readable_plan():
    document = json.loads(dumps(a_plan()))
    document["warnings"] = "EXEC_RISK is off"
    with pytest.raises(PlanFileError, match="warnings must be a list of strings"):
        loads(json.dumps(resealed(document)))


def test_the_markdown_comment_shows_each_warning_in_an_alert_above_the_accounts():
    markdown = render_plan(with_warnings(a_plan(), [WARNING, TYPO]), "markdown")
    assert "> [!WARNING]\n> **Configuration warnings (2)**" in markdown
    assert f"> - {WARNING}\n> - {TYPO}" in markdown
    assert markdown.index("[!WARNING]") < markdown.index("#### Account DU0000001")


def test_the_markdown_comment_has_no_warning_block_without_warnings():
    assert "[!WARNING]" not in render_plan(a_plan(), "markdown")
