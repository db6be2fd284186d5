"""The trading window: exchange calendars (real `exchange_calendars` data), the gateway's
liquidHours and the Schedule's guard minutes, decided at injected instants (no real time)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconciler.cycle.window import calendar_day, window_decisions
from reconciler.decide.calendar import (
    IB_EXCHANGE_CALENDARS,
    ClosedDay,
    HoursError,
    Session,
    calendar_name,
    parse_ib_hours,
    window_decision,
)
from reconciler.model.actual import ContractInfo
from reconciler.model.desired import TradingWindow

ROOT = Path(__file__).resolve().parents[3]
NY = ZoneInfo("America/New_York")
GUARD = TradingWindow(avoid_open_minutes=5, avoid_close_minutes=10)
SPY = ContractInfo(756733, "SPY", "STK", "SMART", "ARCA", "USD", time_zone_id="US/Eastern")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def ny(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


def spy_at(now: dt.datetime, info: ContractInfo = SPY, guard: TradingWindow = GUARD):
    [decision] = window_decisions(now, [info], guard)
    return decision


# ------------------------------------------------------------ the calendar, at fixed instants


def test_window_on_observed_independence_day_is_closed_and_names_the_holiday():
    decision = spy_at(ny("2026-07-03T11:00"))  # Friday; July 4th is a Saturday
    assert not decision.open
    assert decision.reason == "XNYS is closed on Fri 2026-07-03 (holiday: July 4th)"


def test_window_on_christmas_is_closed():
    decision = spy_at(ny("2026-12-25T11:00"))
    assert not decision.open and "holiday: Christmas" in decision.reason


def test_window_on_a_normal_weekday_mid_session_is_open():
    decision = spy_at(ny("2026-11-23T11:00"))  # Monday
    assert decision.open
    assert decision.reason.startswith("inside the window 09:35-15:50 America/New_York")
    assert decision.opens_at == ny("2026-11-23T09:35")
    assert decision.closes_at == ny("2026-11-23T15:50")


def test_window_the_day_after_thanksgiving_closes_at_the_early_close_minus_the_guard():
    assert spy_at(ny("2026-11-27T12:45")).open
    late = spy_at(ny("2026-11-27T12:50"))
    assert not late.open
    assert late.reason == (
        "after the window closed at 12:50 America/New_York "
        "(XNYS early close 13:00 - 10 guard minute(s))"
    )
    # An ordinary day's afternoon would still be open.
    assert not spy_at(ny("2026-11-27T14:00")).open
    assert spy_at(ny("2026-11-30T14:00")).open


def test_window_on_thanksgiving_itself_is_closed():
    decision = spy_at(ny("2026-11-26T11:00"))
    assert not decision.open and "holiday: Thanksgiving" in decision.reason


@pytest.mark.parametrize(
    ("instant", "is_open"),
    [
        # 13:40 UTC: 08:40 New York on the Friday before clocks go forward (EST) ...
        ("2026-03-06T13:40:00+00:00", False),
        # ... and 09:40 on the first Monday after (EDT).
        ("2026-03-09T13:40:00+00:00", True),
        # 20:45 UTC: 15:45 EST (open) before the switch, 16:45 EDT (closed) after it.
        ("2026-03-06T20:45:00+00:00", True),
        ("2026-03-09T20:45:00+00:00", False),
        # Autumn: 09:40 EDT on the Friday before clocks go back, 08:40 EST on Monday 2 Nov.
        ("2026-10-30T13:40:00+00:00", True),
        ("2026-11-02T13:40:00+00:00", False),
        ("2026-11-02T14:40:00+00:00", True),
    ],
)
def test_window_follows_new_york_time_across_daylight_saving_switches(instant, is_open):
    assert spy_at(utc(instant)).open is is_open


def test_window_at_the_dst_switch_opens_at_0935_local_on_both_sides():
    before = spy_at(ny("2026-03-06T12:00"))
    after = spy_at(ny("2026-03-09T12:00"))
    assert before.opens_at.astimezone(dt.UTC) == utc("2026-03-06T14:35:00+00:00")
    assert after.opens_at.astimezone(dt.UTC) == utc("2026-03-09T13:35:00+00:00")


def test_window_on_a_weekend_is_closed():
    decision = spy_at(ny("2026-11-28T11:00"))
    assert not decision.open
    assert decision.reason == "XNYS is closed on Sat 2026-11-28 (weekend)"


def test_window_in_the_first_guard_minutes_says_when_it_opens():
    decision = spy_at(ny("2026-11-23T09:33"))
    assert not decision.open
    assert decision.reason == (
        "before the window opens at 09:35 America/New_York (XNYS open 09:30 + 5 guard minute(s))"
    )


def test_window_for_a_nasdaq_listing_uses_the_nasdaq_calendar():
    aapl = ContractInfo(265598, "AAPL", "STK", "SMART", "NASDAQ", "USD")
    decision = spy_at(ny("2026-11-27T12:55"), aapl)
    assert decision.calendar == "XNAS"
    assert not decision.open and "XNAS early close 13:00" in decision.reason


def test_window_for_a_foreign_listing_is_in_its_exchange_time_zone():
    sap = ContractInfo(1, "SAP", "STK", "SMART", "IBIS", "EUR", time_zone_id="MET")
    decision = spy_at(ny("2026-11-23T11:00"), sap)  # 17:00 in Frankfurt
    assert decision.calendar == "XETR" and decision.open
    assert "09:05-17:20 Europe/Berlin" in decision.reason


def test_window_for_an_unknown_exchange_is_closed_with_the_reason():
    odd = ContractInfo(2, "ODD", "STK", "SMART", "MOONEX", "USD")
    decision = spy_at(ny("2026-11-23T11:00"), odd)
    assert not decision.open and decision.calendar is None
    assert "no market calendar is known for exchange MOONEX" in decision.reason
    assert "nothing is sent" in decision.reason


def test_every_mapped_exchange_has_a_calendar_the_library_loads():
    for exchange, name in sorted(IB_EXCHANGE_CALENDARS.items()):
        day = calendar_day(name, dt.date(2026, 11, 23))
        assert day.calendar == name, exchange
        assert ZoneInfo(day.zone)


def test_calendar_day_reports_sessions_and_closed_days_as_values():
    day = calendar_day("XNYS", dt.date(2026, 11, 27))
    assert day == Session(
        "XNYS",
        "America/New_York",
        dt.date(2026, 11, 27),
        ny("2026-11-27T09:30"),
        ny("2026-11-27T13:00"),
        early_close=True,
    )
    assert calendar_day("XNYS", dt.date(2026, 12, 25)) == ClosedDay(
        "XNYS", "America/New_York", dt.date(2026, 12, 25), "holiday: Christmas"
    )


# ------------------------------------------------------------ exchange names


@pytest.mark.parametrize(
    ("primary", "exchange", "name"),
    [
        ("ARCA", "SMART", "XNYS"),
        ("NYSE", "SMART", "XNYS"),
        ("BATS", "SMART", "XNYS"),
        ("NASDAQ", "SMART", "XNAS"),
        ("arca", "SMART", "XNYS"),
        ("", "NYSE", "XNYS"),
        ("", "SMART", None),
        ("MOONEX", "SMART", None),
        ("LSE", "SMART", "XLON"),
        ("TSE", "SMART", "XTSE"),
    ],
)
def test_calendar_name_maps_ib_exchanges(primary, exchange, name):
    assert calendar_name(primary, exchange) == name


# ------------------------------------------------------------ IB hours text (pure)


def test_parse_ib_hours_reads_the_current_format_with_closed_days():
    days = parse_ib_hours("20261127:0930-20261127:1300;20261128:CLOSED", "US/Eastern")
    assert days == {
        dt.date(2026, 11, 27): ((ny("2026-11-27T09:30"), ny("2026-11-27T13:00")),),
        dt.date(2026, 11, 28): (),
    }


def test_parse_ib_hours_reads_the_older_format_and_overnight_ranges():
    days = parse_ib_hours("20090507:0700-1830,1830-2330;20090508:1800-0200", "US/Eastern")
    assert days[dt.date(2009, 5, 7)] == (
        (ny("2009-05-07T07:00"), ny("2009-05-07T18:30")),
        (ny("2009-05-07T18:30"), ny("2009-05-07T23:30")),
    )
    assert days[dt.date(2009, 5, 8)] == ((ny("2009-05-08T18:00"), ny("2009-05-09T02:00")),)


def test_parse_ib_hours_reads_a_whole_day_to_the_next_midnight():
    days = parse_ib_hours("20261123:0000-20261124:0000", "US/Eastern")
    assert days[dt.date(2026, 11, 23)] == ((ny("2026-11-23T00:00"), ny("2026-11-24T00:00")),)


@pytest.mark.parametrize(
    "text", ["garbage", "2026-11-23:0930-1600", "20261123:930-1600", "20261123:0930"]
)
def test_parse_ib_hours_refuses_what_it_cannot_read(text):
    with pytest.raises(HoursError):
        parse_ib_hours(text, "US/Eastern")


# ------------------------------------------------------------ liquidHours vs calendar (pure)

MONDAY = Session(
    "XNYS",
    "America/New_York",
    dt.date(2026, 11, 23),
    ny("2026-11-23T09:30"),
    ny("2026-11-23T16:00"),
)


def decide(now: str, liquid: str = "", guard: TradingWindow = GUARD, day=MONDAY):
    return window_decision(
        ny(now),
        key="SPY",
        exchange="ARCA",
        day=day,
        guard=guard,
        liquid_hours=liquid,
        hours_zone="US/Eastern",
    )


def test_liquid_hours_closing_earlier_than_the_calendar_win():
    liquid = "20261123:0930-20261123:1200;20261124:0930-20261124:1600"
    assert decide("2026-11-23T11:45", liquid).open
    late = decide("2026-11-23T11:55", liquid)
    assert not late.open
    assert late.reason == (
        "after the window closed at 11:50 America/New_York "
        "(liquidHours close 12:00, earlier than XNYS's 16:00 - 10 guard minute(s))"
    )


def test_liquid_hours_opening_later_than_the_calendar_win():
    early = decide("2026-11-23T10:00", "20261123:1030-20261123:1600")
    assert not early.open
    assert "opens at 10:35" in early.reason and "later than XNYS's 09:30" in early.reason


def test_liquid_hours_wider_than_the_calendar_leave_the_calendar_binding():
    always = "20261123:0000-20261124:0000"
    assert decide("2026-11-23T12:00", always).open
    assert not decide("2026-11-23T16:30", always).open
    assert "XNYS close 16:00" in decide("2026-11-23T16:30", always).reason


def test_liquid_hours_saying_closed_on_a_calendar_session_day_close_the_window():
    decision = decide("2026-11-23T12:00", "20261123:CLOSED;20261124:0930-20261124:1600")
    assert not decision.open
    assert "liquidHours say closed on Mon 2026-11-23" in decision.reason


def test_liquid_hours_that_do_not_cover_the_day_leave_the_calendar_alone():
    assert decide("2026-11-23T12:00", "20261124:0930-20261124:1000").open


def test_liquid_hours_that_cannot_be_read_close_the_window():
    decision = decide("2026-11-23T12:00", "every weekday")
    assert not decision.open
    assert "liquidHours cannot be read" in decision.reason and "nothing is sent" in decision.reason


def test_a_gap_between_liquid_sessions_is_outside_the_window():
    liquid = "20261123:0930-20261123:1100,20261123:1300-20261123:1600"
    assert decide("2026-11-23T10:00", liquid).open
    gap = decide("2026-11-23T12:00", liquid)
    assert not gap.open and "between the gateway's liquid sessions" in gap.reason


def test_guard_minutes_that_leave_nothing_close_the_window():
    half_day = Session(
        "XNYS",
        "America/New_York",
        dt.date(2026, 11, 27),
        ny("2026-11-27T09:30"),
        ny("2026-11-27T13:00"),
        early_close=True,
    )
    decision = decide("2026-11-27T11:00", guard=TradingWindow(120, 120), day=half_day)
    assert not decision.open and "leave nothing" in decision.reason


def test_window_without_guard_minutes_opens_at_the_open():
    assert decide("2026-11-23T09:30", guard=TradingWindow()).open
    assert not decide("2026-11-23T16:00", guard=TradingWindow()).open


# ------------------------------------------------------------ import cost


def test_the_calendar_library_is_imported_only_when_a_window_is_checked():
    script = textwrap.dedent(
        """
        import json, sys
        import reconciler.app.cli, reconciler.app.scheduler, reconciler.cycle.apply
        import reconciler.cycle.window, reconciler.decide.calendar
        from reconciler.app.cli import cli
        try:
            cli.main(["validate", "desired_state"], standalone_mode=False)
        except SystemExit:
            pass
        heavy = ["exchange_calendars", "pandas"]
        print(json.dumps([m for m in heavy if m in sys.modules]))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


# ------------------------------------------------------------ the cycle's outcome (pure)


def test_outside_the_window_the_status_is_outside_window_and_the_exit_code_0():
    from reconciler.app.exit_codes import exit_code_for_status
    from reconciler.model import outcome

    status = outcome.apply_status(
        planned=2,
        approved=True,
        dry_run=False,
        orders=[{"status": "NOT_SENT"}, {"status": "NOT_SENT"}],
        outside_window=True,
    )
    assert status == outcome.OUTSIDE_WINDOW == "outside-window"
    assert exit_code_for_status(status) == 0
    counts = outcome.order_counts([{"status": "NOT_SENT"}, {"status": "NOT_SENT"}])
    result = outcome.apply_result(status, counts, [], ["SPY (ARCA -> XNYS): weekend"])
    assert result == (
        "outside the trading window: 2 order(s) planned, nothing was sent "
        "(SPY (ARCA -> XNYS): weekend)"
    )


def test_outside_the_window_wins_over_a_dry_run_and_nothing_to_do_stays_ok():
    from reconciler.model import outcome

    assert (
        outcome.apply_status(
            planned=1, approved=True, dry_run=True, orders=[{}], outside_window=True
        )
        == outcome.OUTSIDE_WINDOW
    )
    assert (
        outcome.apply_status(
            planned=0, approved=True, dry_run=False, orders=[], outside_window=True
        )
        == outcome.OK
    )


def test_the_cycle_report_shows_the_window_of_each_traded_instrument():
    from reconciler.model.report import CycleReport, DesiredRef, WindowRow
    from reconciler.render.cycle_report import render_markdown

    decision = spy_at(ny("2026-11-27T12:55"))
    at = ny("2026-11-27T12:55")
    report = CycleReport(
        cycle_id=3,
        kind="apply",
        started_at=at,
        finished_at=at,
        status="outside-window",
        mode="paper",
        orders_enabled=True,
        accounts=("DU0000001",),
        desired=DesiredRef(None, None, None, None),
        window=(WindowRow.from_dict(decision.to_dict()),),
    )
    markdown = render_markdown(report)
    assert "## Trading window" in markdown
    assert "| SPY | ARCA | XNYS | NO | after the window closed at 12:50" in markdown
