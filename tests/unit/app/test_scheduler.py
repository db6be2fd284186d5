"""Triggers of the scheduler (pure). The trading window is in test_trading_window.py."""

import datetime as dt

from reconciler.app.scheduler import trigger_for
from reconciler.model.desired import Schedule


def at(text):
    return dt.datetime.fromisoformat(text)


def test_trigger_for_cron_schedule_uses_its_timezone():
    trig = trigger_for(
        Schedule(name="c", cron="*/15 9-16 * * mon-fri", timezone="America/New_York")
    )
    nxt = trig.get_next_fire_time(None, at("2026-11-23T14:01:00+00:00"))
    assert nxt == at("2026-11-23T14:15:00+00:00")
