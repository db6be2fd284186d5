"""The store on PostgreSQL: schema by migration, append-only triggers, one hash chain under
concurrent writers, advisory-lock writer locks across processes."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import Worker
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from reconciler.store import LockHeld, open_store
from reconciler.store.migrate import HEAD_REVISION, current_revision
from reconciler.store.models import Base

pytestmark = pytest.mark.postgres

APPEND_ONLY = ("order_events", "fills", "fill_commissions", "halts")


def _append_five(store):
    for i in range(1, 6):
        store.append_event(
            "STATUS", order_ref=f"rc-p-00{i}", account="DU0000001", payload={"i": i, "px": 101.25}
        )


def test_migration_creates_the_schema_on_a_fresh_postgresql_database(fresh_pg_database_url, clock):
    store = open_store(fresh_pg_database_url, clock=clock)
    try:
        tables = set(inspect(store.engine).get_table_names())
        assert {
            "cycles",
            "plans",
            "orders",
            "order_events",
            "ledger_head",
            "fills",
            "position_snapshots",
            "risk_denials",
            "locks",
            "halts",
            "desired_snapshots",
            "alembic_version",
        } <= tables
        assert current_revision(store.engine) == HEAD_REVISION
        with store.engine.connect() as conn:
            triggers = set(
                conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars()
            )
            report_type = conn.execute(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'cycles' AND column_name = 'report'"
                )
            ).scalar()
            differences = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert {f"{t}_append_only" for t in APPEND_ONLY} <= triggers
        assert report_type == "jsonb"
        assert differences == []
    finally:
        store.close()


def test_opening_twice_is_idempotent(pg_url, clock):
    first = open_store(pg_url, clock=clock)
    first.append_event("STATUS", payload={"n": 1})
    first.close()
    second = open_store(pg_url, clock=clock)
    try:
        assert current_revision(second.engine) == HEAD_REVISION
        assert [e.payload for e in second.recent_events()] == [{"n": 1}]
    finally:
        second.close()


def test_two_processes_opening_a_fresh_database_at_once_both_find_one_schema(
    fresh_pg_database_url,
):
    workers = [Worker("open", fresh_pg_database_url) for _ in range(2)]
    try:
        for worker in workers:
            worker.expect("READY")
        for worker in workers:
            worker.send("GO")
        assert [worker.expect("OPENED") for worker in workers] == [HEAD_REVISION] * 2
        assert [worker.wait() for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()


def test_the_hash_chain_verifies_and_names_an_edited_row(pg_store):
    _append_five(pg_store)
    assert pg_store.verify_ledger().ok
    with pg_store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE order_events DISABLE TRIGGER order_events_append_only"))
        conn.execute(text("UPDATE order_events SET account = 'DU0000009' WHERE seq = 4"))
    result = pg_store.verify_ledger()
    assert (result.ok, result.checked, result.first_bad_seq) == (False, 3, 4)
    assert "edited" in result.reason


def test_a_deleted_row_is_detected_and_named(pg_store):
    _append_five(pg_store)
    with pg_store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE order_events DISABLE TRIGGER order_events_append_only"))
        conn.execute(text("DELETE FROM order_events WHERE seq = 2"))
    result = pg_store.verify_ledger()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "seq=2 is missing" in result.reason


@pytest.mark.parametrize("table", ["order_events", "fills", "halts"])
def test_update_delete_and_truncate_are_refused_by_triggers(pg_store, clock, table):
    _append_five(pg_store)
    pg_store.record_fill(
        exec_id="e1",
        order_ref=None,
        account="DU0000001",
        con_id=1,
        symbol="VTI",
        side="BUY",
        shares=1,
        price=10.0,
        time=clock.now(),
    )
    pg_store.halt("test", "ops")
    column = {"order_events": "kind", "fills": "symbol", "halts": "who"}[table]
    for sql in (f"UPDATE {table} SET {column} = 'X'", f"DELETE FROM {table}", f"TRUNCATE {table}"):
        with (
            pytest.raises(DatabaseError, match=f"table {table} is append-only"),
            pg_store.engine.begin() as conn,
        ):
            conn.execute(text(sql))
    assert pg_store.verify_ledger().ok


def test_concurrent_appends_from_two_processes_keep_one_valid_chain(pg_store, pg_url):
    per_worker = 25
    workers = [Worker("append", pg_url, str(per_worker), tag) for tag in ("a", "b")]
    try:
        for worker in workers:
            worker.expect("READY")
        for worker in workers:
            worker.send("GO")
        for worker in workers:
            worker.expect("DONE")
        assert [worker.wait() for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()
    result = pg_store.verify_ledger()
    assert (result.ok, result.checked) == (True, 2 * per_worker)
    events = pg_store.recent_events(limit=1000)
    for tag in ("a", "b"):
        mine = sorted((e for e in events if e.payload["tag"] == tag), key=lambda e: e.seq)
        assert [e.payload["i"] for e in mine] == list(range(per_worker))


def test_record_fill_deduplicates_and_intents_resolve(pg_store, clock):
    pg_store.record_intent(
        {"account": "DU0000001", "symbol": "VTI", "side": "BUY", "quantity": 10, "leg": 1},
        order_ref="rc-p-001",
        plan_id="p",
        cycle_id=None,
    )
    fill = dict(
        exec_id="e1",
        order_ref="rc-p-001",
        account="DU0000001",
        shares=10,
        price=250.0,
        time=clock.now(),
    )
    assert pg_store.record_fill(**fill) is True
    assert pg_store.record_fill(**fill) is False
    assert pg_store.record_commission("e1", 1.0, "USD") is True
    assert pg_store.record_commission("e1", 1.0, "USD") is False
    assert pg_store.list_fills()[0].commission == 1.0
    assert pg_store.filled_quantity("rc-p-001") == 10
    assert [i.order_ref for i in pg_store.unresolved_intents()] == ["rc-p-001"]
    pg_store.append_event("FILL", order_ref="rc-p-001", account="DU0000001", payload={})
    assert pg_store.unresolved_intents() == []
    assert pg_store.verify_ledger().ok


def test_a_second_process_gets_lock_held_and_a_crashed_holder_is_taken_over(pg_store, pg_url):
    worker = Worker("hold", pg_url, "DU0000001", "apply-by-worker")
    try:
        lock_id = worker.expect("HELD")
        with pytest.raises(LockHeld) as caught:
            pg_store.account_lock(["DU0000001"], "apply-by-test")
        assert caught.value.lock_id == lock_id
        assert "apply-by-worker" in caught.value.holder
        # An expired lease does not help while the holder's session holds the advisory lock.
        [lease] = pg_store.lock_holders()
        pg_store.clock.set(lease.expires_at)
        with pytest.raises(LockHeld, match="may be hung"):
            pg_store.account_lock(["DU0000001"], "apply-by-test")
        worker.send("crash")
        assert worker.wait() == 0
    finally:
        worker.kill()
    # The server releases a dead session's advisory locks once it notices the closed
    # connection, a moment after the process exit: wait for that, with a deadline.
    _wait_for_no_advisory_locks(pg_store)
    # The crashed session's advisory lock is gone; its lease is stale and taken over.
    with pg_store.account_lock(["DU0000001"], "apply-by-test") as handle:
        assert [(h.lock_id, h.holder) for h in pg_store.lock_holders()] == [
            (handle.lock_id, "apply-by-test")
        ]
        handle.renew()
    assert pg_store.lock_holders() == []


def _wait_for_no_advisory_locks(store, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    while True:
        with store.engine.connect() as conn:
            if conn.execute(query).scalar_one() == 0:
                return
        assert time.monotonic() < deadline, "a dead session's advisory lock was never released"
        time.sleep(0.02)


def test_halt_and_resume_on_postgresql(pg_store):
    pg_store.halt("maintenance", "ops")
    assert pg_store.current_halt().reason == "maintenance"
    assert pg_store.resume("ops") is True
    assert pg_store.current_halt() is None
    assert [h.action for h in pg_store.halt_history()] == ["RESUME", "HALT"]
