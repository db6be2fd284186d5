"""Trading-window decisions of the scheduler (pure)."""

import datetime as dt

from reconciler.app.scheduler import in_trading_window, trigger_for
from reconciler.model.desired import Schedule, TradingWindow

SCHEDULE = Schedule(name="default", interval_seconds=900, window=TradingWindow(5, 10))


def at(text):
    return dt.datetime.fromisoformat(text)


def test_window_when_mid_session_then_open():
    ok, _ = in_trading_window(at("2026-11-23T16:00:00+00:00"), SCHEDULE)  # Mon 11:00 New York
    assert ok


def test_window_when_in_first_minutes_after_open_then_closed():
    ok, why = in_trading_window(at("2026-11-23T14:33:00+00:00"), SCHEDULE)  # 09:33 New York
    assert not ok and "before the window opens at 09:35" in why


def test_window_when_in_last_minutes_before_close_then_closed():
    ok, why = in_trading_window(at("2026-11-23T20:55:00+00:00"), SCHEDULE)  # 15:55 New York
    assert not ok and "15:50" in why


def test_window_on_weekend_is_closed():
    ok, why = in_trading_window(at("2026-11-22T16:00:00+00:00"), SCHEDULE)  # Sunday
    assert not ok and "weekend" in why


def test_window_follows_daylight_saving_time():
    # 13:40 UTC is 09:40 New York in July (EDT) but 08:40 in November (EST).
    assert in_trading_window(at("2026-07-15T13:40:00+00:00"), SCHEDULE)[0]
    assert not in_trading_window(at("2026-11-18T13:40:00+00:00"), SCHEDULE)[0]


def test_trigger_for_cron_schedule_uses_its_timezone():
    trig = trigger_for(
        Schedule(name="c", cron="*/15 9-16 * * mon-fri", timezone="America/New_York")
    )
    nxt = trig.get_next_fire_time(None, at("2026-11-23T14:01:00+00:00"))
    assert nxt == at("2026-11-23T14:15:00+00:00")
