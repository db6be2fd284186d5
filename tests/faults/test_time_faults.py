"""Fault catalogue: time is not what it seems (the host's time zone differs from the
exchange's; the exchange switches from daylight saving time to standard time while the
reconciler runs).

The time-zone test runs `reconcile apply` as a subprocess with another TZ; the DST test runs
scheduled cycles in this process with an injected clock that the test moves across the
switch (the CLI reads the system clock), with the simulator's clock moved alongside.
"""

from __future__ import annotations

import datetime as dt
import time

from apply_helpers import placed_orders, scenario, write_desired_state
from invariants import assert_safe, ledger_view

from reconciler.sim import run_in_thread


def test_fault_host_time_zone_far_from_the_exchange_changes_nothing(world, faulty):
    """Fault: the reconciler runs with TZ=Asia/Kathmandu (UTC+05:45) against a gateway in New
    York time. Guarantee: every time the reconciler keeps is UTC and true: the ledger's
    fill times are the broker's execution times, the cycle's start is now (not hours off),
    the orderRefs carry the UTC minute, and the book converges."""
    w = world(faulty({"BND": 20}), {"BND": 10, "VEA": 10})
    w.cli.extra_env["TZ"] = "Asia/Kathmandu"
    before = dt.datetime.now(dt.UTC)

    result = w.cli.finish(w.cli.apply())

    assert result.returncode == 0, result.explain()
    w.safe(positions={"BND": 10, "VEA": 10})
    from reconciler.store import open_store

    store = open_store(w.db_url)
    try:
        fills = store.list_fills(limit=100)
        [cycle] = store.list_cycles(limit=1)
    finally:
        store.close()
    at_broker = w.sim.call(lambda: {e.exec_id: e.time for e in w.sim.gateway.book.executions})
    for fill in fills:
        broker_time = dt.datetime.fromisoformat(at_broker[fill.exec_id])
        assert abs((fill.time - broker_time).total_seconds()) < 1, (fill.time, broker_time)
    assert abs((cycle.started_at - before).total_seconds()) < 120, cycle.started_at
    stamp = before.strftime("%Y%m%dT")
    assert all(ref.startswith(f"rc-{stamp}") for ref in ledger_view(w.db_url).orders)


class MovableClock:
    """An injected clock that runs from a chosen instant and can be moved (a test stand-in
    for the passing of days)."""

    def __init__(self, at: dt.datetime) -> None:
        self.set(at)

    def set(self, at: dt.datetime) -> None:
        self._at, self._mono = at.astimezone(dt.UTC), time.monotonic()

    def now(self) -> dt.datetime:
        return self._at + dt.timedelta(seconds=time.monotonic() - self._mono)


SCHEDULE = """apiVersion: reconciler/v1
kind: Schedule
metadata: {name: trade}
spec:
  interval: 15m
  window: {avoidOpenMinutes: 5, avoidCloseMinutes: 10}
  selfHeal: true
"""
# US daylight saving time ends on Sunday 2026-11-01: XNYS opens at 13:30Z before, 14:30Z after.
FRIDAY_EDT = dt.datetime(2026, 10, 30, 13, 45, tzinfo=dt.UTC)  # 09:45 EDT: inside
MONDAY_EST_EARLY = dt.datetime(2026, 11, 2, 13, 45, tzinfo=dt.UTC)  # 08:45 EST: closed
MONDAY_EST_OPEN = dt.datetime(2026, 11, 2, 14, 45, tzinfo=dt.UTC)  # 09:45 EST: inside


def test_fault_dst_switch_between_cycles_of_one_run_moves_the_trading_window_with_it(tmp_path):
    """Fault: the exchange leaves daylight saving time between two cycles of one scheduled
    run (the same UTC hour is in session on Friday and before the open on Monday).
    Guarantee: the window follows the exchange's local time: Friday 13:45Z trades, Monday
    13:45Z plans, reports `outside-window` and sends nothing, Monday 14:45Z trades."""
    from reconciler.app.scheduler import run_cycle_outcome
    from reconciler.model.settings import load_settings
    from reconciler.store import open_store

    spec = scenario({})
    spec["market"]["hours"] = "regular"
    spec["clock"] = {"start": FRIDAY_EDT.isoformat()}
    directory = write_desired_state(tmp_path / "desired_state", {"VTI": 10})
    (directory / "schedule.yaml").write_text(SCHEDULE, encoding="utf-8")
    clock = MovableClock(FRIDAY_EDT)
    with run_in_thread(spec) as sim:
        settings = load_settings(
            {
                "IB_GATEWAY_HOST": sim.host,
                "IB_GATEWAY_PORT": str(sim.port),
                "IB_CLIENT_ID": "73",
                "IB_CONNECT_TIMEOUT": "5",
                "ORDERS_ENABLED": "true",
                "RECONCILER_STATE_DIR": str(tmp_path / "state"),
                "RECONCILER_DB_URL": f"sqlite:///{tmp_path / 'store.db'}",
                "RECONCILER_REPORTS_DIR": str(tmp_path / "reports"),
            },
            dotenv_path=None,
        )
        store = open_store(settings.effective_db_url, clock=clock)

        def cycle_at(at: dt.datetime, targets: dict[str, float]):
            clock.set(at)
            sim.call(sim.clock.set, at)
            write_desired_state(directory, targets)
            return run_cycle_outcome(
                str(directory), settings, "trade", clock=clock, store=store, echo=lambda _: None
            )

        try:
            friday = cycle_at(FRIDAY_EDT, {"VTI": 10})
            early = cycle_at(MONDAY_EST_EARLY, {"VTI": 20})
            sent_before_open = len(placed_orders(sim))
            opened = cycle_at(MONDAY_EST_OPEN, {"VTI": 20})
        finally:
            store.close()

        assert friday.exit_code == 0 and "ok: applied" in friday.line, friday.line
        assert early.exit_code == 0 and "outside-window" in early.line, early.line
        assert "America/New_York" in early.line, early.line
        assert sent_before_open == 1, "an order was sent before Monday's open"
        assert opened.exit_code == 0 and "ok: applied" in opened.line, opened.line
        _, broker = assert_safe(str(settings.effective_db_url), sim, positions={"VTI": 20})
        assert len([r for r in broker.placed_refs if r]) == 2
