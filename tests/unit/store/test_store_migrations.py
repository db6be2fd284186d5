"""The store creates or upgrades its schema by itself, once, safely (on every backend;
the SQLite file and its pragmas are SQLite's own)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from store_worker import Worker

from reconciler.store import SchemaError, StoreUrlError, open_store
from reconciler.store.migrate import HEAD_REVISION, current_revision, head_revision
from reconciler.store.models import Base, LedgerHead

EXPECTED_TABLES = {
    "alembic_version",
    "cycles",
    "cycle_accounts",
    "plans",
    "orders",
    "order_events",
    "ledger_head",
    "fills",
    "fill_commissions",
    "position_snapshots",
    "position_snapshot_items",
    "risk_denials",
    "locks",
    "halts",
    "desired_snapshots",
}


def test_open_store_creates_the_schema_on_an_empty_sqlite_file_and_its_directory(
    db_path, db_url, clock
):
    assert not db_path.parent.exists()
    store = open_store(db_url, clock=clock)
    try:
        assert db_path.is_file()
        assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES
        assert current_revision(store.engine) == head_revision()
        assert store.verify_ledger().ok and store.verify_ledger().checked == 0
    finally:
        store.close()


def test_opening_twice_is_idempotent_and_keeps_the_data(backend, clock):
    first = open_store(backend.url, clock=clock)
    first.append_event("STATUS", payload={"n": 1})
    first.close()
    second = open_store(backend.url, clock=clock)
    try:
        assert current_revision(second.engine) == head_revision()
        assert [e.payload for e in second.recent_events()] == [{"n": 1}]
        assert second.verify_ledger().ok
    finally:
        second.close()


def test_models_and_the_migration_describe_the_same_schema(store):
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_two_processes_opening_a_fresh_database_at_once_both_find_one_schema(backend, clock):
    workers = [Worker("open", backend.url) for _ in range(2)]
    try:
        for worker in workers:
            worker.expect("READY")
        for worker in workers:
            worker.send("GO")
        revisions = [worker.expect("OPENED") for worker in workers]
        assert [worker.wait() for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()
    assert revisions == [head_revision(), head_revision()]
    store = open_store(backend.url, clock=clock)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert conn.execute(select(func.count()).select_from(LedgerHead)).scalar() == 1
    finally:
        store.close()


def test_a_database_from_a_newer_reconciler_is_refused(backend, clock):
    store = open_store(backend.url, clock=clock)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    store.close()
    with pytest.raises(SchemaError, match="9999_future"):
        open_store(backend.url, clock=clock)


def test_an_unsupported_database_url_is_refused_naming_it():
    with pytest.raises(StoreUrlError, match="mysql"):
        open_store("mysql://localhost/x")
    with pytest.raises(StoreUrlError, match="does not parse"):
        open_store("not a url")


def test_the_fast_path_head_revision_matches_the_migrations_directory():
    assert head_revision() == HEAD_REVISION


def test_an_in_memory_database_works_for_throwaway_runs(clock):
    store = open_store("sqlite://", clock=clock)
    try:
        store.append_event("STATUS", payload={"n": 1})
        with store.account_lock(["DU0000001"], "demo"):
            assert [h.holder for h in store.lock_holders()] == ["demo"]
        assert store.verify_ledger().ok
    finally:
        store.close()
