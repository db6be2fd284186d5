"""Trading windows (pure): may a cycle send orders for an instrument at this instant?

Responsible for mapping an IB primary exchange to its exchange calendar (the ISO MIC names
of `exchange_calendars`), for reading IB's `liquidHours`/`tradingHours` text, and for the
decision itself: the calendar's regular session of the exchange-local day (holidays and
weekends closed, early closes and late opens as the calendar has them), narrowed by the
gateway's `liquidHours` for that day when present (the stricter wins), minus the Schedule's
guard minutes after the open and before the close. An exchange without a known calendar, or
hours that cannot be read, close the window: a check that cannot be evaluated denies.

Takes the calendar's day as a value (`Session` or `ClosedDay`); loading the calendar library
is `reconciler.cycle.window`'s job. Must not import the calendar library, read the clock or
do I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.model.desired import TradingWindow

# IB primary exchange -> exchange calendar. Every US venue trades on the NYSE/Nasdaq equity
# calendar (same holidays, same 13:00 early closes); elsewhere the listing exchange's own.
IB_EXCHANGE_CALENDARS: Mapping[str, str] = {
    # United States
    "NYSE": "XNYS",
    "ARCA": "XNYS",
    "AMEX": "XNYS",
    "NYSENAT": "XNYS",
    "BATS": "XNYS",
    "BYX": "XNYS",
    "EDGX": "XNYS",
    "EDGEA": "XNYS",
    "IEX": "XNYS",
    "PSX": "XNYS",
    "BEX": "XNYS",
    "CHX": "XNYS",
    "PEARL": "XNYS",
    "MEMX": "XNYS",
    "LTSE": "XNYS",
    "PINK": "XNYS",  # OTC Markets keeps the NYSE holidays
    "NASDAQ": "XNAS",
    "ISLAND": "XNAS",
    # Canada
    "TSE": "XTSE",
    "VENTURE": "XTSE",
    # Europe
    "LSE": "XLON",
    "LSEETF": "XLON",
    "IBIS": "XETR",
    "IBIS2": "XETR",
    "FWB": "XFRA",
    "FWB2": "XFRA",
    "SBF": "XPAR",
    "AEB": "XAMS",
    "ENEXT.BE": "XBRU",
    "BVL": "XLIS",
    "EBS": "XSWX",
    "BM": "XMAD",
    "BVME": "XMIL",
    "SFB": "XSTO",
    "OSE": "XOSL",
    "CPH": "XCSE",
    "HEX": "XHEL",
    "VSE": "XWBO",
    "ISED": "XDUB",
    # Asia-Pacific
    "ASX": "XASX",
    "SEHK": "XHKG",
    "TSEJ": "XTKS",
    "SGX": "XSES",
}


def calendar_name(primary_exchange: str, exchange: str = "") -> str | None:
    """The exchange calendar of a listing; None when its exchange has none we know.

    The primary exchange decides; the routing exchange only when no primary is given and it
    is a real venue (SMART routes anywhere, so it names no calendar).
    """
    venue = (primary_exchange or "").strip().upper()
    if not venue and (exchange or "").strip().upper() not in ("", "SMART"):
        venue = exchange.strip().upper()
    return IB_EXCHANGE_CALENDARS.get(venue)


@dataclass(frozen=True)
class Session:
    """A regular session of an exchange calendar on one exchange-local day."""

    calendar: str  # e.g. XNYS
    zone: str  # the exchange's IANA time zone, for the times people read
    day: dt.date
    open: dt.datetime  # timezone-aware
    close: dt.datetime
    early_close: bool = False
    late_open: bool = False


@dataclass(frozen=True)
class ClosedDay:
    """An exchange-local day without a regular session, and why (weekend, holiday name)."""

    calendar: str
    zone: str
    day: dt.date
    why: str


CalendarDay = Session | ClosedDay


class HoursError(ValueError):
    """IB hours text that does not read as days and ranges."""


def parse_ib_hours(
    text: str, zone: str
) -> dict[dt.date, tuple[tuple[dt.datetime, dt.datetime], ...]]:
    """IB `liquidHours`/`tradingHours` -> {trading day: ((start, end), ...)}; () is CLOSED.

    Reads both of IB's forms: `20260105:0930-20260105:1600;20260110:CLOSED` and the older
    `20090507:0700-1830,1830-2330;20090508:CLOSED`. Times are in `zone` (the contract's
    timeZoneId); an end at or before its start without a date of its own is the next day.
    Raises `HoursError` for anything else.
    """
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise HoursError(f"unknown time zone {zone!r}") from exc
    days: dict[dt.date, tuple[tuple[dt.datetime, dt.datetime], ...]] = {}
    for segment in (s.strip() for s in text.split(";")):
        if not segment:
            continue
        stamp, sep, rest = segment.partition(":")
        if not sep:
            raise HoursError(f"{segment!r} has no date")
        day = _date(stamp, segment)
        if rest.strip().upper() == "CLOSED":
            days.setdefault(day, ())
            continue
        ranges = list(days.get(day, ()))
        for part in rest.split(","):
            start_text, dash, end_text = part.strip().partition("-")
            if not dash:
                raise HoursError(f"{segment!r}: {part!r} is not a range")
            start = _instant(start_text, day, tz, segment)
            end = _instant(end_text, day, tz, segment)
            if end <= start and ":" not in end_text:
                end = _instant(end_text, day + dt.timedelta(days=1), tz, segment)
            if end <= start:
                raise HoursError(f"{segment!r}: {part!r} ends before it starts")
            ranges.append((start, end))
        days[day] = tuple(sorted(ranges))
    return days


def _date(stamp: str, segment: str) -> dt.date:
    try:
        return dt.datetime.strptime(stamp.strip(), "%Y%m%d").date()
    except ValueError as exc:
        raise HoursError(f"{segment!r}: {stamp!r} is not a date (YYYYMMDD)") from exc


def _instant(text: str, day: dt.date, tz: ZoneInfo, segment: str) -> dt.datetime:
    text = text.strip()
    if ":" in text:
        stamp, _, text = text.partition(":")
        day = _date(stamp, segment)
    if len(text) != 4 or not text.isdigit() or int(text[:2]) > 24 or int(text[2:]) > 59:
        raise HoursError(f"{segment!r}: {text!r} is not a time (HHMM)")
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    if text == "2400":
        return midnight + dt.timedelta(days=1)
    return midnight.replace(hour=int(text[:2]), minute=int(text[2:]))


@dataclass(frozen=True)
class WindowDecision:
    """Whether one instrument may be traded now, and the words that say why."""

    key: str
    exchange: str
    calendar: str | None
    open: bool
    reason: str
    opens_at: dt.datetime | None = None  # the window of the day, guard minutes applied
    closes_at: dt.datetime | None = None

    def render(self) -> str:
        venue = self.exchange or "no exchange"
        if self.calendar:
            venue += f" -> {self.calendar}"
        return f"{self.key} ({venue}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "exchange": self.exchange,
            "calendar": self.calendar,
            "open": self.open,
            "reason": self.reason,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
        }


def undecidable(key: str, exchange: str, calendar: str | None, why: str) -> WindowDecision:
    """A closed window because it cannot be decided; `why` says what is missing."""
    return WindowDecision(key, exchange, calendar, False, f"{why}; nothing is sent for it")


def no_calendar(key: str, exchange: str) -> WindowDecision:
    return undecidable(
        key,
        exchange,
        None,
        f"no market calendar is known for exchange {exchange or '(none)'!s}, so its trading "
        "window cannot be decided",
    )


def window_decision(
    now: dt.datetime,
    *,
    key: str,
    exchange: str,
    day: CalendarDay,
    guard: TradingWindow,
    liquid_hours: str = "",
    hours_zone: str = "",
) -> WindowDecision:
    """Is `now` inside the instrument's window on the calendar `day` (the exchange-local day
    of `now`)? The gateway's `liquidHours` (in `hours_zone`, else the exchange's zone) narrow
    the calendar's session when they cover that day; guard minutes then apply to whichever
    open and close bind."""
    name = day.calendar
    tz = ZoneInfo(day.zone)
    if isinstance(day, ClosedDay):
        return WindowDecision(
            key, exchange, name, False, f"{name} is closed on {day.day:%a %Y-%m-%d} ({day.why})"
        )
    open_at, close_at = day.open, day.close
    open_src = f"{name} {'late open' if day.late_open else 'open'} {_hm(open_at, tz)}"
    close_src = f"{name} {'early close' if day.early_close else 'close'} {_hm(close_at, tz)}"
    liquid: tuple[tuple[dt.datetime, dt.datetime], ...] | None = None
    if liquid_hours.strip():
        try:
            table = _parse_with_fallback(liquid_hours, hours_zone, day.zone)
        except HoursError as exc:
            return undecidable(
                key, exchange, name, f"the gateway's liquidHours cannot be read ({exc})"
            )
        liquid = table.get(day.day)
    if liquid is not None:
        if not liquid:
            return WindowDecision(
                key,
                exchange,
                name,
                False,
                f"the gateway's liquidHours say closed on {day.day:%a %Y-%m-%d} "
                f"(stricter than {name}, which has a session)",
            )
        first, last = liquid[0][0], max(end for _, end in liquid)
        if first > open_at:
            open_src = f"liquidHours open {_hm(first, tz)}, later than {name}'s {_hm(open_at, tz)}"
            open_at = first
        if last < close_at:
            close_src = (
                f"liquidHours close {_hm(last, tz)}, earlier than {name}'s {_hm(close_at, tz)}"
            )
            close_at = last
    window_open = open_at + dt.timedelta(minutes=guard.avoid_open_minutes)
    window_close = close_at - dt.timedelta(minutes=guard.avoid_close_minutes)
    zone = day.zone
    if window_open >= window_close:
        return WindowDecision(
            key,
            exchange,
            name,
            False,
            f"no window on {day.day:%a %Y-%m-%d}: {guard.avoid_open_minutes} minute(s) after "
            f"the open and {guard.avoid_close_minutes} before the close leave nothing "
            f"({open_src}; {close_src})",
        )
    span = dict(opens_at=window_open, closes_at=window_close)
    if now < window_open:
        why = f"before the window opens at {_hm(window_open, tz)} {zone} ({open_src}"
        why += (
            f" + {guard.avoid_open_minutes} guard minute(s))" if guard.avoid_open_minutes else ")"
        )
        return WindowDecision(key, exchange, name, False, why, **span)
    if now >= window_close:
        why = f"after the window closed at {_hm(window_close, tz)} {zone} ({close_src}"
        why += (
            f" - {guard.avoid_close_minutes} guard minute(s))" if guard.avoid_close_minutes else ")"
        )
        return WindowDecision(key, exchange, name, False, why, **span)
    if liquid and not any(start <= now < end for start, end in liquid):
        return WindowDecision(
            key,
            exchange,
            name,
            False,
            f"between the gateway's liquid sessions at {_hm(now, tz)} {zone}",
            **span,
        )
    return WindowDecision(
        key,
        exchange,
        name,
        True,
        f"inside the window {_hm(window_open, tz)}-{_hm(window_close, tz)} {zone} "
        f"({open_src}; {close_src})",
        **span,
    )


def _parse_with_fallback(text: str, zone: str, fallback: str):
    """The contract's timeZoneId when it is a zone we know, else the exchange's own (the
    hours are exchange-local either way)."""
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            zone = ""
    return parse_ib_hours(text, zone or fallback)


def _hm(instant: dt.datetime, tz: ZoneInfo) -> str:
    return f"{instant.astimezone(tz):%H:%M}"
