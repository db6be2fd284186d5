"""The trading window of scheduled cycles (`run`, selfHeal: true) against the simulator.

The simulator's clock and the reconciler's injected clock start at the same instant, so the
simulator's contract details carry that day's liquidHours (from its `market.hours`,
`earlyCloses` and instruments' `regularHours`) and the reconciler decides the window with the
real exchange calendar. Outside the window a cycle still plans, records and reports, sends
nothing, says why and exits 0; inside both windows it applies.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from apply_helpers import placed_orders, scenario, write_desired_state

from reconciler.app.scheduler import run_cycle_outcome
from reconciler.model.settings import load_settings
from reconciler.sim import run_in_thread
from reconciler.store import open_store

pytestmark = pytest.mark.integration

MONDAY = "2026-11-23"  # an ordinary XNYS session, 09:30-16:00 New York (EST, UTC-5)
SCHEDULE = """apiVersion: reconciler/v1
kind: Schedule
metadata: {name: trade}
spec:
  interval: 15m
  window: {avoidOpenMinutes: 5, avoidCloseMinutes: 10}
  selfHeal: true
"""


def market(at_utc: str, *, hours: str = "regular", **extra) -> dict:
    spec = scenario({})
    spec["market"].update(hours=hours, **extra)
    spec["clock"] = {"start": at_utc}
    return spec


class StartedClock:
    """An injected clock that starts at a chosen instant and then runs (the ledger orders
    events by time, so a clock standing still would make fills look older than snapshots)."""

    def __init__(self, at: dt.datetime) -> None:
        self._at, self._mono = at.astimezone(dt.UTC), time.monotonic()

    def now(self) -> dt.datetime:
        return self._at + dt.timedelta(seconds=time.monotonic() - self._mono)


class Run:
    """One scheduled cycle in this process, with the clock fixed at `at_utc`."""

    def __init__(self, tmp_path: Path, sim, at_utc: str) -> None:
        self.directory = write_desired_state(tmp_path / "desired_state", {"VTI": 10})
        (self.directory / "schedule.yaml").write_text(SCHEDULE, encoding="utf-8")
        self.reports = tmp_path / "reports"
        self.settings = load_settings(
            {
                "IB_GATEWAY_HOST": sim.host,
                "IB_GATEWAY_PORT": str(sim.port),
                "IB_CLIENT_ID": "61",
                "IB_CONNECT_TIMEOUT": "5",
                "ORDERS_ENABLED": "true",
                "RECONCILER_STATE_DIR": str(tmp_path / "state"),
                "RECONCILER_DB_URL": f"sqlite:///{tmp_path / 'store.db'}",
                "RECONCILER_REPORTS_DIR": str(self.reports),
            },
            dotenv_path=None,
        )
        self.clock = StartedClock(dt.datetime.fromisoformat(at_utc))
        self.store = open_store(self.settings.effective_db_url, clock=self.clock)
        self.progress: list[str] = []

    def once(self):
        return run_cycle_outcome(
            str(self.directory),
            self.settings,
            "trade",
            clock=self.clock,
            store=self.store,
            echo=self.progress.append,
        )

    def last_cycle(self):
        [cycle] = self.store.list_cycles(limit=1)
        return cycle

    def markdown(self) -> str:
        [md] = sorted(self.reports.glob("*.md"))
        return md.read_text(encoding="utf-8")


def test_liquid_hours_closing_before_the_calendar_stop_the_cycle_sending(tmp_path):
    # The simulator closes early at 12:00 on a day XNYS trades until 16:00: 12:30 is outside.
    at = f"{MONDAY}T17:30:00+00:00"
    with run_in_thread(market(at, earlyCloses={MONDAY: "12:00"})) as sim:
        run = Run(tmp_path, sim, at)
        done = run.once()

        assert done.exit_code == 0
        assert "outside-window" in done.line
        assert "liquidHours close 12:00, earlier than XNYS's 16:00" in done.line
        assert "after the window closed at 11:50 America/New_York" in done.line
        assert placed_orders(sim) == []
        cycle = run.last_cycle()
        assert cycle.status == "outside-window"
        assert cycle.report["planned_orders"] == 1  # it planned and reported
        assert [o["status"] for o in cycle.report["orders"]] == ["NOT_SENT"]
        [row] = cycle.report["window"]
        assert (row["key"], row["exchange"], row["calendar"], row["open"]) == (
            "VTI",
            "ARCA",
            "XNYS",
            False,
        )
        assert any("outside the trading window: VTI" in line for line in run.progress)
        assert "## Trading window" in run.markdown()


def test_liquid_hours_opening_after_the_calendar_delay_the_window(tmp_path):
    at = f"{MONDAY}T15:00:00+00:00"  # 10:00 New York: XNYS is open, VTI's liquid hours not yet
    spec = market(at)
    spec["instruments"] = [{"symbol": "VTI", "regularHours": "10:30-16:00"}]
    with run_in_thread(spec) as sim:
        run = Run(tmp_path, sim, at)
        done = run.once()

        assert done.exit_code == 0 and "outside-window" in done.line
        assert "before the window opens at 10:35 America/New_York" in done.line
        assert "liquidHours open 10:30, later than XNYS's 09:30" in done.line
        assert placed_orders(sim) == []


def test_inside_the_calendar_and_the_liquid_hours_the_cycle_applies(tmp_path):
    at = f"{MONDAY}T16:00:00+00:00"  # 11:00 New York, before the simulator's 12:00 close
    with run_in_thread(market(at, earlyCloses={MONDAY: "12:00"})) as sim:
        run = Run(tmp_path, sim, at)
        done = run.once()

        assert done.exit_code == 0, done.line
        assert done.line.startswith("apply cycle 1 ok: applied"), done.line
        assert len(placed_orders(sim)) == 1
        assert not [line for line in run.progress if "break" in line.lower()]
        [row] = run.last_cycle().report["window"]
        assert row["open"] is True
        assert "inside the window 09:35-11:50 America/New_York" in row["reason"]


def test_on_a_us_holiday_the_cycle_plans_reports_and_names_the_holiday(tmp_path):
    # The simulator's market is always open; the exchange calendar knows Thanksgiving.
    at = "2026-11-26T16:00:00+00:00"
    with run_in_thread(market(at, hours="always")) as sim:
        run = Run(tmp_path, sim, at)
        done = run.once()

        assert done.exit_code == 0
        assert "XNYS is closed on Thu 2026-11-26 (holiday: Thanksgiving)" in done.line
        assert placed_orders(sim) == []
        report = json.loads(next(run.reports.glob("*.json")).read_text(encoding="utf-8"))
        assert report["status"] == "outside-window"
        assert report["result"].startswith("outside the trading window: 1 order(s) planned")


def test_with_ignore_window_the_holiday_does_not_stop_the_cycle(tmp_path):
    at = "2026-11-26T16:00:00+00:00"
    with run_in_thread(market(at, hours="always")) as sim:
        run = Run(tmp_path, sim, at)
        done = run_cycle_outcome(
            str(run.directory),
            run.settings,
            "trade",
            clock=run.clock,
            store=run.store,
            echo=run.progress.append,
            ignore_window=True,
        )

        assert done.exit_code == 0 and "ok: applied" in done.line, done.line
        assert len(placed_orders(sim)) == 1
        assert "window" not in run.last_cycle().report
