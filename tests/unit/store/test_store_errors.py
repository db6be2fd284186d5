"""Report files are checked before trading and never keep a cycle open; an unusable store is one
line naming the database and the cause; client-library Trade(...) dumps are not shown."""

import json
import logging
import sqlite3

import pytest

from reconciler.app.cli import _HandledGatewayErrors
from reconciler.cycle.common import CycleError, check_reports_dir, unwritable_reason
from reconciler.cycle.record import ReportFacts, finish_cycle
from reconciler.model.clock import FixedClock
from reconciler.model.report import DesiredRef
from reconciler.store import StoreUnavailable, open_store
from reconciler.store.engine import unavailable_cause


def test_unwritable_reason_is_none_for_a_writable_directory_and_says_why_otherwise(tmp_path):
    assert unwritable_reason(tmp_path / "new" / "reports") is None
    assert (tmp_path / "new" / "reports").is_dir()
    assert list((tmp_path / "new" / "reports").iterdir()) == []
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    why = unwritable_reason(blocker / "reports")
    assert why is not None and "Not a directory" in why


def test_check_reports_dir_refuses_before_anything_is_sent(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(CycleError, match=r"is not writable .*nothing was sent"):
        check_reports_dir(str(blocker / "reports"))
    check_reports_dir(str(tmp_path / "ok"))
    check_reports_dir(None)


def _store(tmp_path):
    import datetime as dt

    clock = FixedClock(dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC))
    return open_store(f"sqlite:///{tmp_path / 'store.db'}", clock=clock), clock


def _facts(cycle_id: int, clock) -> ReportFacts:
    return ReportFacts(
        cycle_id=cycle_id,
        kind="apply",
        started_at=clock.now(),
        mode="paper",
        orders_enabled=False,
        accounts=("DU0000001",),
        desired=DesiredRef("0" * 64, None, None, "desired_state"),
        status="ok",
    )


def test_finish_cycle_closes_the_cycle_when_its_report_files_cannot_be_written(tmp_path, caplog):
    store, clock = _store(tmp_path)
    cycle_id = store.begin_cycle("apply", accounts=["DU0000001"])
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with caplog.at_level(logging.ERROR, logger="reconciler.cycle"):
        report = finish_cycle(store, _facts(cycle_id, clock), clock, str(blocker / "reports"))
    cycle = store.get_cycle(cycle_id)
    assert cycle.status == "ok" and cycle.finished_at is not None
    assert "report files not written" in cycle.report["report_files_error"]
    assert cycle.report["files"] == []
    assert report.files == () and report.report_files_error == cycle.report["report_files_error"]
    assert any("report files not written" in r.getMessage() for r in caplog.records)


def test_finish_cycle_writes_json_and_markdown(tmp_path):
    store, clock = _store(tmp_path)
    cycle_id = store.begin_cycle("apply", accounts=["DU0000001"])
    report = finish_cycle(store, _facts(cycle_id, clock), clock, str(tmp_path / "reports"))
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert names == [f"20260107T170000-cycle{cycle_id}.json", f"20260107T170000-cycle{cycle_id}.md"]
    assert report.files == tuple(str(tmp_path / "reports" / n) for n in names)
    written = json.loads((tmp_path / "reports" / names[0]).read_text())
    assert written == store.get_cycle(cycle_id).report == report.to_dict()


def test_a_read_only_store_raises_store_unavailable_naming_the_file(tmp_path):
    store, _ = _store(tmp_path)
    store.close()
    db = tmp_path / "store.db"
    readonly = open_store(f"sqlite:///file:{db}?mode=ro&uri=true")
    with pytest.raises(StoreUnavailable) as caught:
        readonly.halt("desk says stop", who="test")
    assert str(db) in str(caught.value) and "read-only" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert readonly.current_halt() is None


def test_a_file_that_is_not_a_database_cannot_be_opened_as_a_store(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not a database\n" * 100)
    with pytest.raises(StoreUnavailable, match="not a SQLite database"):
        open_store(f"sqlite:///{bogus}")


def test_constraint_errors_are_not_taken_for_an_unusable_store():
    assert unavailable_cause(sqlite3.IntegrityError("UNIQUE constraint failed: x")) is None
    assert unavailable_cause(sqlite3.OperationalError("no such table: alembic_version")) is None
    assert unavailable_cause(sqlite3.OperationalError("database is locked")) is None


def test_postgresql_read_only_is_unavailable_but_the_append_only_trigger_is_not():
    import psycopg.errors

    read_only = psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only ...")
    assert "read-only" in unavailable_cause(read_only)
    trigger = psycopg.errors.InsufficientPrivilege("table fills is append-only: UPDATE refused")
    assert unavailable_cause(trigger) is None
    denied = psycopg.errors.InsufficientPrivilege("permission denied for table cycles")
    assert "permission denied for table cycles" in unavailable_cause(denied)


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("ib_async.wrapper", logging.WARNING, "", 0, message, None, None)


def test_trade_dumps_of_the_client_library_are_not_shown():
    dump = "Canceled order: Trade(contract=Stock(conId=1, symbol='GLD'), " + "x" * 4000 + ")"
    assert _HandledGatewayErrors.filter(_record(dump)) is False
    assert _HandledGatewayErrors.filter(_record("IBKR API validation warning: Trade(x)")) is False
    assert _HandledGatewayErrors.filter(_record("Error handling fields: [...]")) is True
