"""Notifications of a finished cycle (reconciler.observe.notify): which events a cycle is worth,
and the de-duplication of persisting conditions, with times as values."""

from __future__ import annotations

import datetime as dt

from reports import ACCOUNT, START, deny, drift, facts, order

from reconciler.model.report import GateRow
from reconciler.observe.facts import CycleFacts
from reconciler.observe.notify import (
    Event,
    Sent,
    cycle_events,
    due,
    dump_state,
    load_state,
    observed_scopes,
    remember,
)

HOUR = dt.timedelta(hours=1)
DAY = 24 * 3600.0
OUT = (drift("VTI", 0.70, 0.60), drift("BND", 0.30, 0.40), drift("GLD", 0.0, 0.0, in_band=True))


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_a_drift_report_notifies_the_instruments_out_of_band_with_their_direction():
    [event] = cycle_events(facts(kind="plan", drift_before=OUT))
    assert event.kind == "drift"
    assert event.scope == f"drift:{ACCOUNT}"
    assert event.fingerprint == "BND:under,VTI:over"
    assert "VTI: weight 70.00%, target 60.00% (drift +10.00 pts)" in event.body
    assert "GLD" not in event.body
    assert "report only" in event.body


def test_an_apply_that_acts_on_its_drift_does_not_notify_drift():
    assert cycle_events(facts(kind="apply", status="ok", drift_before=OUT)) == []


def test_a_dry_run_notifies_drift_like_a_report_only_cycle():
    assert kinds(cycle_events(facts(status="dry-run", drift_before=OUT))) == ["drift"]


def test_a_refused_cycle_names_the_gate_and_is_scoped_by_its_accounts():
    gate = GateRow("HALT", False, "halted: maintenance", "REFUSED")
    [event] = cycle_events(
        facts(status="refused", gates=(gate,), errors=("HALT: halted: maintenance",))
    )
    assert (event.kind, event.scope, event.fingerprint) == ("refused", f"refused:{ACCOUNT}", "HALT")
    assert "HALT: halted: maintenance" in event.body


def test_a_failed_cycle_carries_its_error_without_the_numbers_in_its_fingerprint():
    failed = CycleFacts("apply", "error", START, START, reasons=("cycle 12 failed: timeout 10s",))
    [event] = cycle_events(failed)
    assert event.kind == "failed"
    assert "cycle 12 failed: timeout 10s" in event.body
    assert event.fingerprint == "cycle # failed: timeout #s"


def test_denials_rejections_unknown_orders_and_breaks_each_make_an_event():
    events = cycle_events(
        facts(
            status="partial",
            orders=(
                order(1, "VEA", "REJECTED"),
                order(2, "VWO", "UNKNOWN"),
                order(3, "BND", "FILLED", filled=10),
            ),
            denials=(deny("GLD"), deny("IAU", action="clip"), deny("BND", "LEDGER_BREAK")),
            breaks=(f"LEDGER_BREAK: account={ACCOUNT} symbol=BND conId=1 ledger=10 broker=13",),
        )
    )
    assert kinds(events) == ["denial", "rejected", "unknown", "break"]
    denial, rejected, unknown, ledger_break = events
    assert "GLD" in denial.body and "IAU" not in denial.body  # a clip is not a denial
    assert "BND" not in denial.body  # the skipped instrument of a break: the break says it
    assert "rc-plan-001" in rejected.body and rejected.scope is None
    assert "rc-plan-002" in unknown.body and "next cycle" in unknown.body
    assert "ledger=10 broker=13" in ledger_break.body


def test_a_new_condition_is_sent_and_the_same_one_again_only_after_the_repeat_period():
    event = Event("drift", "t", "b", "drift:A", "VTI:over")
    send, kept = due([event], {}, {"drift:A"}, now=START, repeat_seconds=DAY)
    assert send == [event]
    state = remember(kept, send, START)
    send, kept = due([event], state, {"drift:A"}, now=START + 23 * HOUR, repeat_seconds=DAY)
    assert send == []
    assert kept == state  # the first notification's time still counts
    send, _ = due([event], state, {"drift:A"}, now=START + 24 * HOUR, repeat_seconds=DAY)
    assert send == [event]


def test_a_changed_condition_is_sent_at_once():
    state = {"drift:A": Sent("VTI:over", START)}
    changed = Event("drift", "t", "b", "drift:A", "BND:under,VTI:over")
    send, _ = due([changed], state, {"drift:A"}, now=START + HOUR, repeat_seconds=DAY)
    assert send == [changed]


def test_a_condition_that_cleared_is_forgotten_so_its_return_is_sent_at_once():
    state = {"drift:A": Sent("VTI:over", START), "drift:B": Sent("X:over", START)}
    send, kept = due([], state, {"drift:A"}, now=START + HOUR, repeat_seconds=DAY)
    assert send == [] and kept == {"drift:B": Sent("X:over", START)}  # B was not looked at
    event = Event("drift", "t", "b", "drift:A", "VTI:over")
    send, _ = due([event], kept, {"drift:A"}, now=START + 2 * HOUR, repeat_seconds=DAY)
    assert send == [event]


def test_events_without_a_scope_are_never_held_back():
    event = Event("rejected", "t", "b")
    state = remember({}, [event], START)
    assert state == {}
    send, _ = due([event, event], state, set(), now=START, repeat_seconds=DAY)
    assert send == [event, event]


def test_a_cycle_looks_at_drift_conditions_only_when_it_got_as_far_as_a_plan():
    assert observed_scopes(CycleFacts("apply", "refused", START, START, (ACCOUNT,))) == {
        f"refused:{ACCOUNT}",
        f"failed:{ACCOUNT}",
    }
    assert f"drift:{ACCOUNT}" in observed_scopes(facts(drift_before=OUT))


def test_the_state_file_round_trips_and_an_unreadable_one_starts_afresh(tmp_path):
    path = tmp_path / "notify-state.json"
    state = {"drift:A": Sent("VTI:over", START)}
    path.write_text(dump_state(state))
    assert load_state(path) == state
    path.write_text("{not json")
    assert load_state(path) == {}
    assert load_state(tmp_path / "missing.json") == {}
