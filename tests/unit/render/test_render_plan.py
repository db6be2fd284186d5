"""Plan rendering for a terminal and for a pull-request comment."""

import json

from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.decide.planner import build_plan
from reconciler.model.plan import document_orders
from reconciler.render.comment import CommentContext
from reconciler.render.plan import plan_summary, render_plan, unresolved_drift


def plan_of(book, *targets, **policy):
    desired = desired_of(portfolio(*targets))
    return build_plan(
        desired,
        actual_of(book),
        book.resolved(),
        {"default": limits(**policy)},
        now=NOW,
        plan_id="p1",
    )


def drifting():
    return Book(cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)


def test_text_shows_every_order_and_the_summary():
    plan = plan_of(drifting(), target("VTI", weight=0.5), target("BND", weight=0.3))
    text = render_plan(plan, "text")
    assert "Account DU0000001" in text
    assert "VTI" in text and "BND" in text
    assert [(o.side, o.symbol) for o in plan.orders] == [("BUY", "BND"), ("BUY", "VTI")]
    assert "Plan: 2 order(s)" in text


def test_markdown_is_a_pr_comment_with_tables():
    plan = plan_of(drifting(), target("VTI", weight=0.5), target("BND", weight=0.3))
    md = render_plan(
        plan,
        "markdown",
        context=CommentContext(
            changes=("Portfolio core: targets VTI weight 40% -> 50%",),
            changes_against="the last applied cycle",
        ),
    )
    assert md.startswith("### ib-reconciler plan")
    assert "| Leg | Side | Qty | Instrument |" in md
    assert "Portfolio core: targets VTI weight 40% -> 50%" in md


def test_json_is_the_plan_artifact():
    plan = plan_of(drifting(), target("VTI", weight=0.5))
    body = json.loads(render_plan(plan, "json"))
    assert body["format"] == "ib-reconciler/plan" and body["plan_id"] == "p1"
    assert len(plan.orders) == 1
    assert body["totals"]["orders"] == 1
    assert [o["symbol"] for o in document_orders(body)] == ["VTI"]


def test_summary_of_a_book_in_band_says_no_changes():
    book = Book(cash=0.0, nav=29_000.0).instrument("VTI", 290.0, held=100)
    plan = plan_of(book, target("VTI", weight=1.0))
    assert not plan.orders
    assert plan_summary(plan) == "No changes. Every managed instrument is inside its band."


def test_summary_never_claims_convergence_when_drift_remains_unplanned():
    plan = plan_of(drifting(), target("VTI", weight=0.5), trading_state="HALTED")
    assert not plan.orders
    assert unresolved_drift(plan) == ["DU0000001:VTI"]
    assert "stay outside their band" in plan_summary(plan)


def test_text_is_coloured_only_when_asked_for_a_terminal():
    plan = plan_of(drifting(), target("VTI", weight=0.5))
    assert "\x1b[" not in render_plan(plan, "text")
    assert "\x1b[" in render_plan(plan, "text", color=True)
