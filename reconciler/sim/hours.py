"""Trading hours of the simulated market: sessions per exchange-local day, open or closed.

Responsible for one notion of a session (regular or extended; weekends and scenario holidays
closed; scenario early closes shortening the day) used by fills, DAY-order expiry and the
``tradingHours``/``liquidHours`` text of contract details. Must not know accounts, orders or
the wire protocol (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from reconciler.sim.market import Instrument


@dataclass
class MarketHours:
    """Whether trading hours govern fills. Default: the market never closes (demo at any hour).

    With hours enabled, weekends and ``holidays`` are closed and ``early_closes`` (exchange-
    local date -> regular close "HH:MM") shorten a day: the regular session ends then and the
    extended session ends as much earlier, as US half days do (13:00, after-hours to 17:00).
    Fills, DAY expiry and the contract-details hours text all read the same sessions.
    """

    enabled: bool = False
    outside_hours: str = "queue"  # queue: wait for the open | reject: error 201
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    early_closes: dict[dt.date, str] = field(default_factory=dict)

    def session(
        self, inst: Instrument, day: dt.date, extended: bool = False
    ) -> tuple[dt.datetime, dt.datetime] | None:
        """(start, end) of the session on an exchange-local day; None when it is closed."""
        if day.weekday() >= 5 or day in self.holidays:
            return None
        tz = ZoneInfo(inst.time_zone_id)
        span = inst.extended if extended else inst.rth
        start, end = _at(day, span[0], tz), _at(day, span[1], tz)
        early = self.early_closes.get(day)
        if early is not None:
            cut = _at(day, inst.rth[1], tz) - _at(day, early, tz)
            if cut > dt.timedelta(0):
                end -= cut
        return (start, end) if end > start else None

    def is_open(self, inst: Instrument, now: dt.datetime, outside_rth: bool = False) -> bool:
        if not self.enabled:
            return True
        day = now.astimezone(ZoneInfo(inst.time_zone_id)).date()
        session = self.session(inst, day, extended=outside_rth)
        return session is not None and session[0] <= now < session[1]

    def session_close(self, inst: Instrument, now: dt.datetime) -> dt.datetime | None:
        """End of the regular session in progress or next to come (DAY orders expire then)."""
        if not self.enabled:
            return None
        first = now.astimezone(ZoneInfo(inst.time_zone_id)).date()
        for offset in range(0, 10):
            session = self.session(inst, first + dt.timedelta(days=offset))
            if session is not None and session[1] > now:
                return session[1]
        return None

    def hours_text(self, inst: Instrument, now: dt.datetime, extended: bool, days: int = 7) -> str:
        """Contract-details hours in IB's format, from the exchange-local day of `now`:
        ``20260105:0930-20260105:1600;20260110:CLOSED``. tradingHours is the extended
        session, liquidHours the regular one; an always-open market spans whole days."""
        first = now.astimezone(ZoneInfo(inst.time_zone_id)).date()
        parts = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            stamp = day.strftime("%Y%m%d")
            if not self.enabled:
                following = (day + dt.timedelta(days=1)).strftime("%Y%m%d")
                parts.append(f"{stamp}:0000-{following}:0000")
                continue
            session = self.session(inst, day, extended)
            if session is None:
                parts.append(f"{stamp}:CLOSED")
            else:
                parts.append(f"{session[0]:%Y%m%d:%H%M}-{session[1]:%Y%m%d:%H%M}")
        return ";".join(parts)


def _at(day: dt.date, hh_mm: str, tz: ZoneInfo) -> dt.datetime:
    hour, minute = (int(part) for part in hh_mm.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
