"""The read-only store of serve, mcp and export: it reads what a writer recorded, refuses every
write at the database, never creates or migrates a database, and pages/filters by time."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.store import SchemaError, StoreUnavailable, open_store, open_store_readonly

START = dt.datetime(2025, 1, 2, 14, 30, tzinfo=dt.UTC)  # the store fixtures' clock


def _record(store) -> int:
    cycle = store.begin_cycle("apply", accounts=["DU0000001"])
    store.record_intent(
        {"account": "DU0000001", "symbol": "VTI", "side": "BUY", "quantity": 10},
        order_ref="rc-1",
        plan_id="p1",
        cycle_id=cycle,
    )
    store.record_fill(
        exec_id="e1",
        order_ref="rc-1",
        account="DU0000001",
        shares=10,
        price=100.0,
        time=START,
        commission=1.0,
    )
    store.record_position_snapshot(cycle, "DU0000001", [{"symbol": "VTI", "quantity": 10}])
    store.finish_cycle(cycle, "ok", {"result": "applied"})
    return cycle


def test_a_readonly_store_reads_what_was_recorded_and_refuses_writes(backend, clock):
    with open_store(backend.url, clock=clock) as writer:
        cycle = _record(writer)
    with open_store_readonly(backend.url, clock=clock) as store:
        page, total = store.page_cycles(account="DU0000001")
        assert total == 1 and page[0].id == cycle and page[0].status == "ok"
        assert [f.exec_id for f in store.rows_between("fills")] == ["e1"]
        assert [o.order_ref for o in store.rows_between("orders")] == ["rc-1"]
        assert [p.symbol for p in store.rows_between("positions")] == ["VTI"]
        assert store.verify_ledger().ok
        with pytest.raises(StoreUnavailable, match="read-only"):
            store.halt("no", who="test")
        with pytest.raises(StoreUnavailable):
            store.begin_cycle("plan", accounts=["DU0000001"])
        assert store.current_halt() is None


def test_rows_between_and_pages_filter_by_time_and_outcome(backend, clock):
    with open_store(backend.url, clock=clock) as writer:
        _record(writer)
    with open_store_readonly(backend.url, clock=clock) as store:
        later = START + dt.timedelta(days=1)
        assert store.rows_between("fills", since=later) == []
        assert len(store.rows_between("fills", until=later)) == 1
        assert store.rows_between("events", account="DU0000002") == []
        assert store.page_cycles(status="refused") == ([], 0)
        assert store.page_cycles(offset=1)[0] == []
        assert store.page_cycles(until=START - dt.timedelta(seconds=1)) == ([], 0)


def test_a_missing_sqlite_file_is_unavailable_and_not_created(tmp_path):
    path = tmp_path / "absent" / "reconciler.db"
    with pytest.raises(StoreUnavailable):
        open_store_readonly(f"sqlite:///{path}")
    assert not path.exists() and not path.parent.exists()


def test_an_unmigrated_database_is_a_schema_error_and_stays_unmigrated(db_path, db_url):
    import sqlite3

    db_path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(db_path).close()  # an empty database file
    with pytest.raises(SchemaError, match="schema revision None"):
        open_store_readonly(db_url)
    tables = sqlite3.connect(db_path).execute("select name from sqlite_master").fetchall()
    assert tables == []
