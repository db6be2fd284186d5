"""The app's Observer sending each kind of event through apprise to a local HTTP receiver
(`json://`), in this process with an injected clock: every event kind arrives with its
severity, a persisting drift is notified once per period, the event filter holds, and a down
receiver raises nothing and is counted in the textfile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from notify_receiver import Receiver, closed_port_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "observe"))
from reports import ACCOUNT, START, deny, drift, facts, order

from reconciler.app.observing import Observer
from reconciler.model.clock import FixedClock
from reconciler.model.report import GateRow
from reconciler.model.settings import NOTIFY_EVENTS, Settings
from reconciler.observe.facts import CycleFacts
from reconciler.observe.metrics import read_textfile

pytestmark = pytest.mark.integration

HOUR = 3600.0
OUT = (drift("VTI", 0.70, 0.60), drift("BND", 0.30, 0.40))
IN_BAND = (drift("VTI", 0.61, 0.60, in_band=True), drift("BND", 0.39, 0.40, in_band=True))
BREAK = f"LEDGER_BREAK: account={ACCOUNT} symbol=BND conId=1 ledger=10 broker=13"


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def observer(tmp_path, urls, clock, events=NOTIFY_EVENTS) -> Observer:
    settings = Settings(
        state_dir=str(tmp_path / "state"),
        metrics_file=str(tmp_path / "reconciler.prom"),
        notify_urls=tuple(urls),
        notify_events=tuple(events),
    )
    return Observer(settings, clock)


def test_every_event_kind_reaches_the_receiver_with_its_severity(tmp_path, receiver):
    watch = observer(tmp_path, [receiver.url], FixedClock(START))
    watch.cycle(facts(kind="plan", drift_before=OUT))
    gate = GateRow("HALT", False, "halted", "REFUSED")
    watch.cycle(facts(status="refused", gates=(gate,), errors=("HALT: halted",)))
    watch.cycle(CycleFacts("apply", "error", START, START, (ACCOUNT,), reasons=("timeout",)))
    watch.cycle(
        facts(
            status="partial",
            orders=(order(1, "VEA", "REJECTED"), order(2, "VWO", "UNKNOWN")),
            denials=(deny("GLD"),),
            breaks=(BREAK,),
        )
    )
    assert watch.event("halt", "ib-reconciler: HALTED", "why") is None
    assert watch.event("resume", "ib-reconciler: resumed", "lifted") is None
    got = [(n["title"].split(":", 1)[1].split()[0:2], n["type"]) for n in receiver.received]
    assert [t for t, _ in got] == [
        ["drift", "in"],
        ["cycle", "7"],
        ["apply", "cycle"],
        ["risk", "denied"],
        ["1", "order(s)"],
        ["1", "order(s)"],
        ["LEDGER", "BREAK"],
        ["HALTED"],
        ["resumed"],
    ]
    assert [k for _, k in got] == [
        "warning",
        "failure",
        "failure",
        "warning",
        "failure",
        "warning",
        "failure",
        "warning",
        "success",
    ]
    sent = read_textfile(tmp_path / "reconciler.prom")
    assert sent.value("reconciler_notifications_sent_total", event="rejected") == 1.0
    assert sent.value("reconciler_notifications_sent_total", event="halt") == 1.0


def test_a_persisting_drift_is_notified_once_per_period_and_again_after_it_cleared(
    tmp_path, receiver
):
    clock = FixedClock(START)
    watch = observer(tmp_path, [receiver.url], clock)
    seen = []
    for hours, drift_lines in ((0, OUT), (1, OUT), (23, OUT), (1, OUT), (1, IN_BAND), (1, OUT)):
        clock.advance(hours * HOUR)
        receiver.clear()
        watch.cycle(facts(kind="plan", drift_before=drift_lines))
        seen.append(len(receiver.received))
    # t=0 new; 1h same; 24h repeat period over; 25h same; 26h cleared; 27h back again
    assert seen == [1, 0, 1, 0, 0, 1]


def test_events_left_out_of_the_filter_are_not_sent(tmp_path, receiver):
    watch = observer(tmp_path, [receiver.url], FixedClock(START), events=("failed",))
    watch.cycle(facts(kind="plan", drift_before=OUT))
    assert watch.event("halt", "t", "b") is None
    assert receiver.received == []


def test_a_down_receiver_raises_nothing_and_is_counted_then_tried_again(tmp_path):
    watch = observer(tmp_path, [closed_port_url()], FixedClock(START))
    watch.cycle(facts(kind="plan", drift_before=OUT))
    watch.cycle(facts(kind="plan", drift_before=OUT))  # not delivered: not held back
    state = read_textfile(tmp_path / "reconciler.prom")
    assert state.value("reconciler_notifications_failed_total", event="drift") == 2.0
    assert state.value("reconciler_cycles_total", account=ACCOUNT, outcome="report-only") == 2.0
    assert watch.event("halt", "t", "b") is not None
