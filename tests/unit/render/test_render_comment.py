"""The plan as a pull-request comment: golden files and the Markdown structure.

Golden files live in tests/unit/render/golden/; after an intended change to the comment,
regenerate them with UPDATE_GOLDEN=1 and review the diff like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target
from markdown_it import MarkdownIt

from reconciler.decide.planner import build_plan
from reconciler.model.desired import Band
from reconciler.render.comment import (
    GITHUB_COMMENT_LIMIT,
    CommentContext,
    ScheduleFacts,
    merge_effect,
)
from reconciler.render.plan import render_plan

GOLDEN = Path(__file__).parent / "golden"
REPORTING = CommentContext(
    schedules=(ScheduleFacts("default", self_heal=False),),
    changes=("Portfolio core: targets VTI weight 55% -> 50%",),
    changes_against="origin/main (`0123456789`)",
    artifact="plan.json",
)


def plan_of(book, *targets, band=None, **policy):
    shape = {"band": band} if band else {}
    return build_plan(
        desired_of(portfolio(*targets, **shape)),
        actual_of(book),
        book.resolved(),
        {"default": limits(**policy)},
        now=NOW,
        plan_id="p1",
    )


def with_orders():
    book = Book(cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)
    book = book.instrument("GLD", 180.0, held=100)
    return plan_of(
        book,
        target("VTI", weight=0.5),
        target("BND", weight=0.3),
        target("GLD", weight=0.1),
        max_order_notional=10_000.0,
    )


def denials_only():
    book = Book(cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)
    return plan_of(
        book, target("VTI", weight=0.5), target("BND", weight=0.3), restricted=("VTI", "BND")
    )


def in_sync():
    book = Book(cash=0.0, nav=29_000.0).instrument("VTI", 290.0, held=100)
    return plan_of(book, target("VTI", weight=1.0))


def three_hundred_instruments():
    book = Book(cash=10_000_000.0)
    symbols = [f"S{i:03d}" for i in range(300)]
    for i, symbol in enumerate(symbols):
        book = book.instrument(symbol, 20.0 + i)
    return plan_of(
        book, *(target(s, weight=0.003) for s in symbols), band=Band(absolute=0.0001)
    )


CASES = {
    "with_orders": (with_orders, REPORTING),
    "denials_only": (denials_only, CommentContext(orders_enabled=True, schedules=())),
    "in_sync": (in_sync, CommentContext(trading_mode="live", orders_enabled=True)),
    "three_hundred": (three_hundred_instruments, REPORTING),
}


def _golden(name: str, text: str) -> None:
    path = GOLDEN / f"comment_{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path.name} differs (UPDATE_GOLDEN=1)"


@pytest.fixture(scope="module")
def comments() -> dict[str, str]:
    return {name: render_plan(make(), "markdown", context=ctx) for name, (make, ctx) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_comment_matches_its_golden_file(comments, name):
    _golden(name, comments[name])


def _tokens(text: str):
    return MarkdownIt("commonmark").enable("table").parse(text)


def _section_items(text: str, heading: str) -> list[str]:
    """The inline text of the list items following a bold paragraph `heading`."""
    tokens = _tokens(text)
    items, inside, depth = [], False, 0
    for i, token in enumerate(tokens):
        if token.type == "inline" and tokens[i - 1].type == "paragraph_open" and depth == 0:
            inside = token.content == heading
        if token.type == "bullet_list_open":
            depth += 1
        if token.type == "bullet_list_close":
            depth -= 1
            if inside and depth == 0:
                return items
        if inside and depth and token.type == "inline":
            items.append(token.content)
    return items


def test_notes_are_their_own_list_not_items_of_the_risk_verdicts(comments):
    text = comments["with_orders"]
    notes = _section_items(text, "**Notes**")
    assert notes and notes[0].startswith("cash for buys: 59,893.50 USD")
    # Verdicts are a table: no list item anywhere carries a risk code or a note.
    tables = [t for t in _tokens(text) if t.type == "table_open"]
    assert len(tables) >= 3  # header, orders, verdicts (drift inside <details> is HTML)
    all_items = [
        t.content
        for t in _tokens(text)
        if t.type == "inline" and "NOTIONAL_EXCEEDS" in t.content
    ]
    assert all_items and all("cash for buys" not in c for c in all_items)


def test_comment_says_mode_orders_and_what_a_merge_does(comments):
    text = comments["with_orders"]
    assert "| Mode | paper, orders disabled (apply is a dry run) |" in text
    assert "`selfHeal: false`: the timer only reports drift" in text
    assert "2 to buy, 1 to sell, 0 denied, 3 clipped, 0 in band" in text
    assert "**Overall**" in text
    live = comments["in_sync"]
    assert "| Mode | **LIVE**, orders enabled |" in live


def test_summary_appears_once_and_nothing_points_above_or_below(comments):
    for name, text in comments.items():
        summary = next(line for line in text.splitlines() if line.startswith("**"))
        assert text.count(summary) == 1, name
        assert " above" not in text and " below" not in text, name


def test_denials_only_plan_lists_each_verdict_with_code_and_detail(comments):
    text = comments["denials_only"]
    assert "0 to buy, 0 to sell, 2 denied" in text
    assert text.count("| deny |") == 2
    assert "No orders for this account." in text


def test_large_plan_collapses_per_account_and_stays_under_the_limit(comments):
    text = comments["three_hundred"]
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert "<details><summary><b>Account DU0000001" in text
    assert "`plan.json`" in text  # where the rest is
    assert "300 to buy" in text


def test_merge_effect_with_self_heal_says_the_schedule_applies():
    context = CommentContext(schedules=(ScheduleFacts("fast", self_heal=True),))
    effect = merge_effect(in_sync(), context)
    assert "selfHeal: true" in effect and "dry run" in effect


def test_merge_effect_without_a_schedule_says_only_apply_sends():
    assert "only by `reconcile apply`" in merge_effect(in_sync(), CommentContext(schedules=()))


def test_a_saved_plan_shown_later_says_nothing_about_schedules_it_cannot_know(comments):
    assert "| On merge |" not in comments["in_sync"]
    assert "| On merge |" in comments["denials_only"]


def test_a_plan_too_large_for_one_comment_is_cut_with_a_pointer_to_the_artifact():
    book = Book(cash=50_000_000.0)
    symbols = [f"T{i:04d}" for i in range(1200)]
    for i, symbol in enumerate(symbols):
        book = book.instrument(symbol, 20.0 + i % 50)
    plan = plan_of(
        book, *(target(s, weight=0.0008) for s in symbols), band=Band(absolute=0.00001)
    )
    text = render_plan(plan, "markdown", context=REPORTING)
    assert len(plan.orders) == 1200
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert "leaves out" in text and "`plan.json`" in text
    assert "more order(s) in the JSON plan artifact" in text
