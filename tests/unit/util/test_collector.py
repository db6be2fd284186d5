"""`collector_paused` switches the cyclic collector off for its block and restores it."""

from __future__ import annotations

import gc

import pytest

from reconciler.util.collector import collector_paused


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_collector_paused_when_collector_was_on_then_off_inside_and_on_after(collector_on):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collector_paused_when_the_block_raises_then_the_collector_is_on_again(collector_on):
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_collector_paused_when_collector_was_off_then_it_stays_off(collector_on):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    gc.enable()


def test_build_plan_when_done_then_the_collector_is_on_again(collector_on):
    from builders import Book, actual_of, desired_of, limits, portfolio, target

    from reconciler.decide.planner import build_plan

    book = Book()
    plan = build_plan(
        desired_of(portfolio(target("BND", weight=0.5))), actual_of(book), book.resolved(),
        {"default": limits()}, now=book.now, plan_id="p",
    )
    assert plan.accounts
    assert gc.isenabled()
