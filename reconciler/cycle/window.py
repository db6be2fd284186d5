"""Market calendars for the trading window: `exchange_calendars` loaded on demand.

Responsible for turning an exchange calendar (holidays, early closes, late opens; shipped with
the library, read offline) into the `Session`/`ClosedDay` values `reconciler.decide.calendar`
decides with, and for the window of each resolved contract at one instant. The library and
pandas take most of a second to import, so they are imported here, on the first window
asked for, and only by cycles that check a window (`run` with selfHeal). Must not decide
anything itself (that is `decide.calendar`), talk to the broker or read the clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from reconciler.decide.calendar import (
    CalendarDay,
    ClosedDay,
    Session,
    WindowDecision,
    calendar_name,
    no_calendar,
    undecidable,
    window_decision,
)
from reconciler.model.actual import ContractInfo
from reconciler.model.desired import TradingWindow


class CalendarUnavailable(Exception):
    """The calendar cannot say anything about that day (outside its range, not installed)."""


@functools.lru_cache(maxsize=16)
def _calendar(name: str, year: int):
    # One calendar per (exchange, year) with a month either side, so a long-running daemon
    # picks up the next year's holidays and a day near New Year still has its neighbours.
    import exchange_calendars

    start = f"{year - 1}-12-01"
    try:
        return exchange_calendars.get_calendar(name, start=start, end=f"{year + 1}-01-31")
    except ValueError:
        # Some calendars record holidays only up to a year (XSES: 2026 in 4.13): the library's
        # default end stops there, and a day past it is then reported as unreadable.
        return exchange_calendars.get_calendar(name, start=start)


def calendar_zone(name: str, year: int) -> str:
    """The exchange's IANA time zone, e.g. America/New_York for XNYS."""
    return str(_load(name, year).tz)


def _load(name: str, year: int):
    try:
        return _calendar(name, year)
    except ImportError as exc:
        raise CalendarUnavailable(
            f"exchange_calendars is not installed ({exc}); reinstall ib-reconciler"
        ) from exc
    except Exception as exc:  # the library's own errors: bounds, unknown name
        raise CalendarUnavailable(f"{type(exc).__name__}: {exc}") from exc


def calendar_day(name: str, day: dt.date) -> CalendarDay:
    """The exchange-local `day` of calendar `name`: its session, or why there is none."""
    import pandas as pd

    calendar = _load(name, day.year)
    zone = str(calendar.tz)
    stamp = pd.Timestamp(day)
    try:
        if not calendar.is_session(stamp):
            return ClosedDay(name, zone, day, _closed_why(calendar, stamp, day))
        opens, closes = calendar.session_open(stamp), calendar.session_close(stamp)
    except Exception as exc:
        raise CalendarUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return Session(
        calendar=name,
        zone=zone,
        day=day,
        open=opens.to_pydatetime(),
        close=closes.to_pydatetime(),
        early_close=stamp in calendar.early_closes,
        late_open=stamp in calendar.late_opens,
    )


def _closed_why(calendar, stamp, day: dt.date) -> str:
    if day.weekday() >= 5:
        return "weekend"
    rules = calendar.regular_holidays
    if rules is not None:
        names = rules.holidays(stamp, stamp, return_name=True)
        if len(names):
            return f"holiday: {names.iloc[0]}"
    return "holiday"


def window_decisions(
    now: dt.datetime, contracts: Iterable[ContractInfo], guard: TradingWindow
) -> list[WindowDecision]:
    """The window of each contract at `now`: its exchange calendar's session of the day,
    narrowed by its liquidHours, minus the guard minutes."""
    decisions = []
    for info in contracts:
        exchange = info.primary_exchange or info.exchange
        name = calendar_name(info.primary_exchange, info.exchange)
        if name is None:
            decisions.append(no_calendar(info.key, exchange))
            continue
        try:
            zone = ZoneInfo(calendar_zone(name, now.year))
            day = calendar_day(name, now.astimezone(zone).date())
        except CalendarUnavailable as exc:
            decisions.append(
                undecidable(info.key, exchange, name, f"the {name} calendar cannot be read ({exc})")
            )
            continue
        decisions.append(
            window_decision(
                now,
                key=info.key,
                exchange=exchange,
                day=day,
                guard=guard,
                liquid_hours=info.liquid_hours,
                hours_zone=info.time_zone_id,
            )
        )
    return decisions
