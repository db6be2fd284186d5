"""Triggers of the scheduler (pure). The trading window is in test_trading_window.py."""

import datetime as dt

import pytest

from reconciler.app.scheduler import Resilience, SchedulerError, trigger_for, wait_for_gateway
from reconciler.model.desired import Schedule


def at(text):
    return dt.datetime.fromisoformat(text)


def test_trigger_for_cron_schedule_uses_its_timezone():
    trig = trigger_for(
        Schedule(name="c", cron="*/15 9-16 * * mon-fri", timezone="America/New_York")
    )
    nxt = trig.get_next_fire_time(None, at("2026-11-23T14:01:00+00:00"))
    assert nxt == at("2026-11-23T14:15:00+00:00")


def test_resilience_without_variables_uses_the_documented_defaults():
    assert Resilience.from_env({}) == Resilience(1.0, 60.0, 1.0, 10.0)


def test_resilience_reads_each_variable():
    made = Resilience.from_env(
        {
            "RECONCILER_RECONNECT_INITIAL_SECONDS": "0.5",
            "RECONCILER_RECONNECT_MAX_SECONDS": "30",
            "RECONCILER_RECONNECT_JITTER_SECONDS": "0",
            "RECONCILER_SHUTDOWN_GRACE_SECONDS": "4",
        }
    )
    assert made == Resilience(0.5, 30.0, 0.0, 4.0)


def test_resilience_when_a_value_is_not_a_number_then_the_error_names_the_variable():
    with pytest.raises(SchedulerError, match="RECONCILER_RECONNECT_MAX_SECONDS='soon'"):
        Resilience.from_env({"RECONCILER_RECONNECT_MAX_SECONDS": "soon"})


def test_resilience_when_negative_or_the_cap_is_below_the_first_delay_then_refuses():
    with pytest.raises(SchedulerError, match="RECONCILER_SHUTDOWN_GRACE_SECONDS"):
        Resilience.from_env({"RECONCILER_SHUTDOWN_GRACE_SECONDS": "-1"})
    with pytest.raises(SchedulerError, match="is below RECONCILER_RECONNECT_INITIAL_SECONDS"):
        Resilience.from_env(
            {
                "RECONCILER_RECONNECT_INITIAL_SECONDS": "5",
                "RECONCILER_RECONNECT_MAX_SECONDS": "2",
            }
        )


def test_wait_for_gateway_when_asked_to_stop_returns_false_without_probing():
    import threading

    stop = threading.Event()
    stop.set()
    lines: list[str] = []
    waited = wait_for_gateway("127.0.0.1", 9, resilience=Resilience(), stop=stop, echo=lines.append)
    assert waited is False
