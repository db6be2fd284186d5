"""The cycle report's public format does not change by accident: the JSON file, the Markdown
file, the report stored with the cycle and the report the cycle hands back (outcome,
`Refused`, `CycleError`) of representative real cycles are compared with golden copies.

Each cycle runs in this process against the simulator (TCP, the real client library) with a
fixed reconciler clock, a real SQLite store and a real reports directory. Values that differ
from run to run by design (the random part of plan ids, lease ids, the temporary directory,
broker fill times, the simulator's perm ids) are replaced by placeholders before comparing;
everything else (every key, every value, every Markdown line) must match.

Every JSON form (handed back, stored, file) of every cycle here is also validated against the
published schema, `schemas/cycle-report.schema.json`.

The golden files were captured from the cycle code before the report became a typed value,
and regenerated when the Markdown came to lead with the outcome and what changed (issue 11).
After an intended change of the report format, regenerate them with
`RECONCILER_UPDATE_GOLDEN=1 pytest tests/integration/test_cycle_report_golden.py` and review
the diff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import ACCOUNT, scenario, write_desired_state
from jsonschema import Draft202012Validator

from reconciler.app.cli.commands_trade import _echo_apply_summary
from reconciler.cycle import CycleError, Refused, apply_cycle, drift_report_cycle, plan_cycle
from reconciler.desired import load_desired_state
from reconciler.model.clock import FixedClock
from reconciler.model.report import CycleReport
from reconciler.model.settings import Settings
from reconciler.sim import run_in_thread
from reconciler.store import open_store

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).parent / "golden" / "cycle_reports"
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "cycle-report.schema.json"
REPORT_SCHEMA = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"
START = dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC)
HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}


class TickingClock(FixedClock):
    """Moves one millisecond each time it is read: deterministic, and never gives two events
    the same instant (the ledger compares fill times with snapshot times)."""

    def now(self) -> dt.datetime:
        self.advance(0.001)
        return super().now()


ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00")
FILE_STAMP = re.compile(r"\d{8}T\d{6}-cycle")
LEASE_ID = re.compile(r"\b[0-9a-f]{16}\b")
PID_ON_HOST = re.compile(r"pid \d+ on [^)]+")
MD_DURATION = re.compile(r"(finished <time>, )\d+(\.\d+)? s")
PLAN_ID = re.compile(r"\b\d{8}T\d{4}Z-[0-9a-f]{6}\b")


class Run:
    """One test's world: a simulator, a store, a reports directory, a fixed clock."""

    def __init__(self, tmp_path: Path, sim, *, orders_enabled: bool = True, targets=TARGETS):
        self.tmp = tmp_path
        self.sim = sim
        self.clock = TickingClock(START)
        self.store = open_store(f"sqlite:///{tmp_path / 'store.db'}", clock=self.clock)
        self.reports = tmp_path / "reports"
        self.desired = load_desired_state(write_desired_state(tmp_path / "desired", targets))
        self.settings = Settings(
            gateway_host=sim.host if sim else "127.0.0.1",
            gateway_port=sim.port if sim else _closed_port(),
            client_id=41,
            orders_enabled=orders_enabled,
            state_dir=str(tmp_path),
            reports_dir=str(self.reports),
        )
        self.plan_ids: dict[str, str] = {}

    def apply(self, **kwargs):
        self.clock.advance(60)
        kwargs.setdefault("approve", lambda _plan: True)
        return asyncio.run(
            apply_cycle(
                self.desired,
                self.settings,
                clock=self.clock,
                store=self.store,
                reports_dir=str(self.reports),
                **kwargs,
            )
        )

    def captured(self, handed_back: CycleReport) -> dict[str, Any]:
        """Everything a reader of this cycle's report can see, normalised."""
        handed = handed_back.to_dict()
        cycle = self.store.get_cycle(handed["cycle_id"])
        files = sorted(self.reports.glob(f"*-cycle{handed['cycle_id']}.*"))
        on_disk = {p.suffix: p.read_text(encoding="utf-8") for p in files}
        for document in (json.loads(json.dumps(handed, default=str)), cycle.report):
            REPORT_SCHEMA.validate(document)
        if ".json" in on_disk:
            REPORT_SCHEMA.validate(json.loads(on_disk[".json"]))
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            _echo_apply_summary(handed_back)
        return {
            "cli_summary": self._text(summary.getvalue()),
            "handed_back": self._normal(json.loads(json.dumps(handed, default=str))),
            "stored": self._normal(cycle.report),
            "stored_status": str(cycle.status),
            "json_file": self._normal(json.loads(on_disk[".json"])) if ".json" in on_disk else None,
            "markdown_file": self._text(on_disk[".md"]) if ".md" in on_disk else None,
        }

    def _text(self, text: str) -> str:
        text = text.replace(str(self.tmp), "<tmp>")
        text = PLAN_ID.sub(
            lambda m: self.plan_ids.setdefault(m[0], f"<plan{len(self.plan_ids)}>"), text
        )
        for n, lock_id in enumerate(self._lock_ids()):
            text = text.replace(lock_id, f"<lock{n}>")
        text = text.replace(f":{self.settings.gateway_port}", ":<port>")
        text = ISO_TIME.sub("<time>", text)
        text = FILE_STAMP.sub("<stamp>-cycle", text)
        text = LEASE_ID.sub("<lease>", text)
        text = MD_DURATION.sub(r"\1<duration> s", text)
        return PID_ON_HOST.sub("pid <pid> on <host>", text)

    def _lock_ids(self) -> list[str]:
        ids = []
        for cycle in sorted(self.store.list_cycles(limit=50), key=lambda c: c.id):
            lock_id = (cycle.report or {}).get("lock_id")
            if lock_id and lock_id not in ids:
                ids.append(lock_id)
        return ids

    def _normal(self, value):
        """Placeholders for what varies by design; keys in sorted order, so placeholders are
        numbered the same however the report was assembled."""
        if isinstance(value, dict):
            out = {}
            for key, item in sorted(value.items()):
                if key in ("time", "perm_id", "exec_id") and item is not None:
                    out[key] = f"<{key}>"
                elif key == "duration_seconds" and isinstance(item, float) and item >= 0:
                    out[key] = "<duration>"
                else:
                    out[key] = self._normal(item)
            return out
        if isinstance(value, list):
            return [self._normal(v) for v in value]
        if isinstance(value, str):
            return self._text(value)
        return value


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(name: str, captured: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(captured, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    golden = json.loads(path.read_text(encoding="utf-8"))
    for part in ("handed_back", "stored", "json_file", "cli_summary"):
        assert captured[part] == golden[part], f"{name}: {part} differs from the golden copy"
    assert captured["markdown_file"] == golden["markdown_file"], f"{name}: Markdown differs"
    assert captured["stored_status"] == golden["stored_status"]


def test_report_of_an_apply_with_fills_then_of_the_next_apply_with_nothing_to_do(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        applied = run.apply()
        assert applied.status == "ok" and len(applied.plan.orders) == 3
        check("applied", run.captured(applied.report))
        again = run.apply()
        assert again.status == "ok" and not again.plan.orders
        check("nothing_to_do", run.captured(again.report))


def test_report_of_an_apply_with_a_risk_denial(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        policy = tmp_path / "desired" / "portfolio.yaml"
        policy.write_text(
            policy.read_text().replace(
                "maxOrderNotional: 60000", "maxOrderNotional: 600\n  onBreach: deny"
            )
        )
        run.desired = load_desired_state(tmp_path / "desired")
        outcome = run.apply()
        assert outcome.plan.decisions and all(d.action == "deny" for d in outcome.plan.decisions)
        assert outcome.plan.orders  # the orders within the limit still go out
        check("denial", run.captured(outcome.report))


def test_report_of_a_dry_run(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim, orders_enabled=False)
        outcome = run.apply()
        assert outcome.status == "dry-run"
        check("dry_run", run.captured(outcome.report))


def test_report_of_an_apply_not_approved(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        outcome = run.apply(approve=lambda _plan: False)
        assert outcome.status == "not-approved"
        check("not_approved", run.captured(outcome.report))


def test_report_of_an_apply_refused_by_the_halt_gate(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        run.store.halt("desk says stop", who="test")
        with pytest.raises(Refused) as refused:
            run.apply()
        check("refused_halt", run.captured(refused.value.report))


def test_report_of_an_apply_refused_because_another_writer_holds_the_lock(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        other = open_store(f"sqlite:///{tmp_path / 'store.db'}", clock=run.clock)
        with (
            other.account_lock([ACCOUNT], holder="another-host:1"),
            pytest.raises(Refused) as refused,
        ):
            run.apply()
        check("refused_lock", run.captured(refused.value.report))


def test_report_of_an_apply_that_cannot_reach_the_gateway(tmp_path):
    run = Run(tmp_path, None)
    with pytest.raises(CycleError) as failed:
        run.apply()
    assert failed.value.report is not None
    check("error_no_gateway", run.captured(failed.value.report))


def test_report_of_a_drift_report_cycle(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        run.clock.advance(60)
        outcome = asyncio.run(
            drift_report_cycle(
                run.desired,
                run.settings,
                clock=run.clock,
                store=run.store,
                reports_dir=str(run.reports),
            )
        )
        assert len(outcome.plan.orders) == 3
        check("drift_report", run.captured(outcome.report))


def test_report_of_a_saved_plan_applied_and_of_a_stale_saved_plan(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        run.clock.advance(60)
        planned = asyncio.run(
            plan_cycle(run.desired, run.settings, clock=run.clock, store=run.store)
        )
        applied = run.apply(plan_file=planned.plan)
        assert applied.status == "ok"
        check("saved_plan_applied", run.captured(applied.report))

        run.clock.advance(60)
        stale = asyncio.run(plan_cycle(run.desired, run.settings, clock=run.clock, store=run.store))
        run.desired = load_desired_state(
            write_desired_state(tmp_path / "desired", {**TARGETS, "VEA": 12})
        )
        with pytest.raises(Refused) as refused:
            run.apply(plan_file=stale.plan)
        check("saved_plan_stale", run.captured(refused.value.report))


def test_report_of_an_apply_whose_orders_rest_until_their_ttl_and_are_cancelled(tmp_path):
    with run_in_thread(scenario(HOLDINGS, closed=("VEA", "VWO"))) as sim:
        run = Run(tmp_path, sim)
        run.desired = load_desired_state(
            write_desired_state(tmp_path / "desired", TARGETS, ttl="1s")
        )
        outcome = run.apply()
        assert outcome.status == "partial"
        check("cancelled_at_ttl", run.captured(outcome.report))


def test_report_of_an_apply_that_finds_a_ledger_break_and_orders_unknown_to_its_ledger(tmp_path):
    with run_in_thread(scenario(HOLDINGS)) as sim:
        run = Run(tmp_path, sim)
        run.apply()

        def move_bnd():
            book = sim.gateway.broker
            [bnd] = sim.gateway.universe.by_symbol("BND")
            book.set_position(ACCOUNT, bnd.con_id, 13, avg_cost=50)

        sim.call(move_bnd)
        broken = run.apply()
        check("ledger_break", run.captured(broken.report))

        (tmp_path / "other-store").mkdir()
        fresh = Run(tmp_path / "other-store", sim)
        orphaned = fresh.apply()
        check("orphans", fresh.captured(orphaned.report))
