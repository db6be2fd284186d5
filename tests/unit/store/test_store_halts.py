"""The halt switch: out of band, append-only history, current state read cheaply."""

from __future__ import annotations

import pytest


def test_trading_is_not_halted_in_a_new_store(store):
    assert store.current_halt() is None
    assert store.halt_history() == []


def test_halt_then_resume_keeps_the_whole_history_newest_first(store, clock):
    state = store.halt("fat finger in desired state", "alice", cancel_open=True)
    assert store.current_halt() == state
    assert (state.reason, state.who, state.cancel_open, state.at) == (
        "fat finger in desired state",
        "alice",
        True,
        clock.now(),
    )
    clock.advance(30)
    assert store.resume("bob") is True
    assert store.current_halt() is None
    clock.advance(30)
    store.halt("second look", "carol")
    assert store.current_halt().who == "carol"
    history = store.halt_history()
    assert [(h.action, h.who) for h in history] == [
        ("HALT", "carol"),
        ("RESUME", "bob"),
        ("HALT", "alice"),
    ]
    kinds = [e.kind for e in store.recent_events()]
    assert kinds == ["HALT", "RESUME", "HALT"]
    assert store.verify_ledger().ok


def test_resume_when_not_halted_changes_nothing(store):
    assert store.resume("bob") is False
    assert store.halt_history() == [] and store.recent_events() == []


def test_a_halt_needs_a_reason(store):
    with pytest.raises(ValueError, match="reason"):
        store.halt("  ", "alice")
    assert store.current_halt() is None
