"""Recorded cycles against a real SQLite store: begun as running, finished exactly once with
their report whatever the body does, and the built report handed back (on `Refused` and
`CycleError` too)."""

import datetime as dt

import pytest
from builders import desired_of, portfolio, target

from reconciler.cycle.common import CycleError, Refused
from reconciler.cycle.record import RecordedCycle
from reconciler.model.clock import FixedClock
from reconciler.model.settings import Settings
from reconciler.store import open_store

WARNING = "IB_CLIENT_ID=0 is the master client id"


@pytest.fixture
def world(tmp_path):
    clock = FixedClock(dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}", clock=clock)

    def begin(kind="apply", warnings=()):
        return RecordedCycle.begin(
            store,
            kind,
            desired_of(portfolio(target("VTI", weight=1.0))),
            Settings(orders_enabled=True),
            ["DU0000001"],
            clock=clock,
            reports_dir=str(tmp_path / "reports"),
            warnings=warnings,
        )

    return store, clock, begin


def test_a_cycle_is_recorded_as_running_until_its_body_ends(world):
    store, clock, begin = world
    cycle = begin()
    assert store.get_cycle(cycle.cycle_id).status == "running"
    with cycle.finishing() as facts:
        clock.advance(2.5)
        facts.status = "ok"
        facts.result = "nothing to do"
    stored = store.get_cycle(cycle.cycle_id)
    assert stored.status == "ok" and stored.report == cycle.report.to_dict()
    assert cycle.report.result == "nothing to do" and cycle.report.duration_seconds == 2.5
    assert cycle.report.desired.git_commit == "abc1234" and cycle.report.kind == "apply"


def test_a_refusal_is_recorded_and_carries_the_report(world):
    store, _, begin = world
    cycle = begin()
    with pytest.raises(Refused) as refused, cycle.finishing() as facts:
        facts.lock_mismatches = []
        raise Refused(["lock held: account DU0000001"])
    report = refused.value.report
    assert report is cycle.report and report.status == "refused"
    assert report.errors == ("lock held: account DU0000001",) and report.lock_mismatches == ()
    assert store.get_cycle(cycle.cycle_id).status == "refused"


def test_a_cycle_error_is_recorded_with_its_message_and_carries_the_report(world):
    store, _, begin = world
    cycle = begin()
    with pytest.raises(CycleError) as failed, cycle.finishing():
        raise CycleError("cannot connect to 127.0.0.1:4002")
    assert failed.value.report.status == "error"
    assert failed.value.report.errors == ("cannot connect to 127.0.0.1:4002",)
    stored = store.get_cycle(cycle.cycle_id)
    assert stored.status == "error" and stored.error == "cannot connect to 127.0.0.1:4002"


def test_an_unexpected_exception_never_leaves_the_cycle_running(world):
    store, _, begin = world
    cycle = begin()
    failed = rf"cycle {cycle.cycle_id} failed: KeyError: 'x'"
    with pytest.raises(CycleError, match=failed) as e, cycle.finishing():
        raise KeyError("x")
    assert isinstance(e.value.__cause__, KeyError)
    assert e.value.report.errors == ("KeyError: 'x'",)
    assert store.get_cycle(cycle.cycle_id).status == "error"


def test_warnings_given_to_the_cycle_are_in_its_stored_report_and_files(world, tmp_path):
    store, _, begin = world
    cycle = begin(kind="plan", warnings=[WARNING])
    with cycle.finishing() as facts:
        facts.status = "ok"
    assert store.get_cycle(cycle.cycle_id).report["warnings"] == [WARNING]
    markdown = (tmp_path / "reports" / f"20260107T170000-cycle{cycle.cycle_id}.md").read_text()
    assert f"## Needs attention\n\n- **Warning**: {WARNING}\n" in markdown


# ------------------------------------------------------------------ report files


def _in_sync_plan(clock):
    from reconciler.model.plan import Plan

    now = clock.now()
    return Plan("p-in-sync", now, "0" * 64, None, None, "fp", {}, now, {}, {}, ())


def _cycle(store, clock, tmp_path, settings, *, plan=True):
    cycle = RecordedCycle.begin(
        store,
        "apply",
        desired_of(portfolio(target("VTI", weight=1.0))),
        settings,
        ["DU0000001"],
        clock=clock,
        reports_dir=str(tmp_path / "reports"),
    )
    with cycle.finishing() as facts:
        facts.plan = _in_sync_plan(clock) if plan else None
        facts.status, facts.result = "ok", "nothing to do"
    clock.advance(3600)
    return cycle


def test_a_nothing_to_do_cycle_gets_no_file_when_asked_to_skip_but_the_store_keeps_it(world, tmp_path):
    store, clock, _ = world
    skip = Settings(orders_enabled=True, report_nothing_to_do="skip")
    quiet = _cycle(store, clock, tmp_path, skip)
    assert quiet.report.nothing_to_do and quiet.report.files is None
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").iterdir())
    assert store.get_cycle(quiet.cycle_id).report["nothing_to_do"] is True
    # A cycle that did not get as far as a plan has something to tell: its file is written.
    unfinished = _cycle(store, clock, tmp_path, skip, plan=False)
    assert not unfinished.report.nothing_to_do and len(unfinished.report.files) == 2
    kept = _cycle(store, clock, tmp_path, Settings(orders_enabled=True))
    assert kept.report.nothing_to_do and len(kept.report.files) == 2


def test_retention_is_applied_after_each_report_is_written(world, tmp_path):
    from reconciler.model.settings import ReportRetention

    store, clock, _ = world
    keep_two = Settings(orders_enabled=True, report_retention=ReportRetention(count=2))
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "operator-notes.md").write_text("mine")
    cycles = [_cycle(store, clock, tmp_path, keep_two) for _ in range(3)]
    left = sorted(p.name for p in (tmp_path / "reports").iterdir())
    expected = sorted(
        ["operator-notes.md"] + [n.rsplit("/", 1)[-1] for c in cycles[1:] for n in c.report.files]
    )
    assert left == expected
    assert all(store.get_cycle(c.cycle_id).report for c in cycles)  # the store keeps every one
