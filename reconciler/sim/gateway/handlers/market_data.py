"""Market-data requests of the simulated gateway: quotes (snapshot and streaming), market
data type, daily historical bars, and the price steps of the background market loop.

Responsible for reqMktData (ticks for bid, ask, last and the day's figures, delayed tick
types when asked or forced, snapshot end), streaming only changed prices, the noMarketData,
delayedOnly and staleQuotes faults, reqHistoricalData (daily bars only; error 162
otherwise), and advancing the price model. Must not touch orders or accounts (see
ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from reconciler.sim import messages as m
from reconciler.sim.gateway.handlers.contracts import AMBIGUOUS, NO_SECURITY, resolve
from reconciler.sim.gateway.session import MarketSub
from reconciler.sim.market import Instrument
from reconciler.sim.protocol import to_int
from reconciler.sim.requests import parse_historical, parse_market_data

if TYPE_CHECKING:
    from reconciler.sim.gateway.server import SimGateway
    from reconciler.sim.gateway.session import Handler, Session

UTC = dt.UTC
NO_MARKET_DATA = (
    "Requested market data is not subscribed. Check API status by selecting the "
    "Account menu then under Management choose Market Data Subscription Manager "
    "and/or check that the correct data feed is in use."
)
_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)


class MarketDataHandlers:
    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway

    def routes(self) -> dict[int, Handler]:
        return {
            m.IN_REQ_MKT_DATA: self.req_mkt_data,
            m.IN_CANCEL_MKT_DATA: self.cancel_mkt_data,
            m.IN_REQ_MARKET_DATA_TYPE: self.req_market_data_type,
            m.IN_REQ_HISTORICAL_DATA: self.req_historical,
            m.IN_CANCEL_HISTORICAL_DATA: lambda s, f: None,
        }

    def req_market_data_type(self, session: Session, fields: list[str]) -> None:
        session.md_type = to_int(fields[2], 1) if len(fields) > 2 else 1

    def req_mkt_data(self, session: Session, fields: list[str]) -> None:
        faults = self.gateway.faults
        req = parse_market_data(fields)
        matches = resolve(self.gateway.universe, req.contract)
        if len(matches) != 1:
            session.error(req.req_id, 200, NO_SECURITY if not matches else AMBIGUOUS)
            return
        inst = matches[0]
        if faults.market_data_missing(inst.symbol):
            session.error(req.req_id, 354, NO_MARKET_DATA)
            return
        delayed = session.md_type in (3, 4)
        if faults.delayed_only and not delayed:
            session.error(
                req.req_id,
                10167,
                "Requested market data is not subscribed. Displaying delayed market data.",
            )
            delayed = True
        md_type = (
            (4 if session.md_type == 4 else 3) if delayed else (2 if session.md_type == 2 else 1)
        )
        session.send(m.market_data_type(req.req_id, md_type))
        sub = MarketSub(inst.con_id, delayed)
        self._send_ticks(session, req.req_id, inst, sub, initial=True)
        if req.snapshot:
            session.send(m.tick_snapshot_end(req.req_id))
        else:
            session.market_subs[req.req_id] = sub

    def cancel_mkt_data(self, session: Session, fields: list[str]) -> None:
        session.market_subs.pop(to_int(fields[2]), None)

    def _send_ticks(
        self, session: Session, req_id: int, inst: Instrument, sub: MarketSub, initial: bool
    ) -> None:
        quote = self.gateway.prices.quote(inst)

        def tick(tick_type: int) -> int:
            return m.DELAYED_OFFSET[tick_type] if sub.delayed else tick_type

        if self.gateway.faults.is_stale(inst.symbol):
            if initial and quote.close:
                session.send(m.tick_price(req_id, tick(m.TICK_CLOSE), quote.close, 0))
            return
        prices = [
            (m.TICK_BID, quote.bid, quote.bid_size),
            (m.TICK_ASK, quote.ask, quote.ask_size),
            (m.TICK_LAST, quote.last, quote.last_size),
        ]
        if initial:
            prices += [
                (m.TICK_HIGH, quote.high, 0),
                (m.TICK_LOW, quote.low, 0),
                (m.TICK_CLOSE, quote.close, 0),
                (m.TICK_OPEN, quote.open, 0),
            ]
        for tick_type, price, size in prices:
            if price is None or (not initial and sub.last_sent.get(tick_type) == price):
                continue
            sub.last_sent[tick_type] = price
            session.send(m.tick_price(req_id, tick(tick_type), price, size))
        if initial:
            session.send(m.tick_size(req_id, tick(m.TICK_VOLUME), quote.volume))

    def quotes_changed(self, con_ids: list[int]) -> None:
        """Stream the new prices of these instruments to their subscribers."""
        wanted = set(con_ids)
        universe = self.gateway.universe
        for session in list(self.gateway.sessions):
            for req_id, sub in session.market_subs.items():
                if sub.con_id in wanted:
                    self._send_ticks(session, req_id, universe.get(sub.con_id), sub, initial=False)

    def step_prices(self, sim_seconds: float, now: dt.datetime) -> None:
        """Advance the price model by simulated seconds and stream what moved."""
        changed = self.gateway.prices.step(sim_seconds, now)
        if changed:
            self.quotes_changed(changed)

    def req_historical(self, session: Session, fields: list[str]) -> None:
        gateway = self.gateway
        req = parse_historical(fields)
        matches = resolve(gateway.universe, req.contract)
        if len(matches) != 1:
            session.error(req.req_id, 200, NO_SECURITY if not matches else AMBIGUOUS)
            return
        inst = matches[0]
        if req.bar_size.strip().lower() not in ("1 day", "1 days"):
            session.error(
                req.req_id,
                162,
                "Historical Market Data Service error message:"
                f"the simulator serves daily bars only, not {req.bar_size!r}",
            )
            return
        days = duration_days(req.duration)
        if days is None:
            session.error(
                req.req_id,
                162,
                f"Historical Market Data Service error message:invalid duration {req.duration!r}",
            )
            return
        end = parse_end(req.end) or gateway.clock.now()
        end_date = end.astimezone(ZoneInfo(inst.time_zone_id)).date()
        count = max(1, math.ceil(days * 5 / 7))
        bars = gateway.prices.daily_bars(inst, end_date, count)
        start_text = (end - dt.timedelta(days=days)).strftime("%Y%m%d %H:%M:%S")
        session.send(
            m.historical_data(req.req_id, start_text, end.strftime("%Y%m%d %H:%M:%S"), bars)
        )


def duration_days(text: str) -> int | None:
    """Calendar days of a historical duration such as ``30 D``, ``2 W`` or ``1 Y``."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    n, unit = int(match.group(1)), match.group(2).upper()
    if unit == "S":
        return max(1, math.ceil(n / 86400))
    return n * {"D": 1, "W": 7, "M": 30, "Y": 365}[unit]


def parse_end(text: str) -> dt.datetime | None:
    """A historical request's end time (``yyyymmdd hh:mm:ss [zone]``), UTC when no zone."""
    text = (text or "").strip()
    if not text:
        return None
    parts = text.replace("-", " ").split()
    try:
        stamp = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        try:
            stamp = dt.datetime.strptime(parts[0], "%Y%m%d")
        except ValueError:
            return None
    zone = parts[2] if len(parts) > 2 else "UTC"
    try:
        return stamp.replace(tzinfo=ZoneInfo(zone))
    except Exception:
        return stamp.replace(tzinfo=UTC)
