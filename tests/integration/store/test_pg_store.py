"""The store on PostgreSQL, what only PostgreSQL has: the schema a migration creates on a
brand-new database (server-side triggers, jsonb), and writer locks held as session advisory
locks that the server releases when the holder's process dies.

Every other store rule is tested on both backends from one test body: tests/unit/store,
parametrised by backend (its PostgreSQL half is marked `integration` and `postgres`)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from store_worker import Worker
from waiting import wait_until

from reconciler.store import LockHeld, open_store
from reconciler.store.migrate import HEAD_REVISION, current_revision
from reconciler.store.models import Base

pytestmark = pytest.mark.postgres

APPEND_ONLY = ("order_events", "fills", "fill_commissions", "halts")


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


ADVISORY_LOCKS_OF_OTHER_SESSIONS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _advisory_locks_of_other_sessions(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(ADVISORY_LOCKS_OF_OTHER_SESSIONS).scalar_one()


def test_a_holders_lock_is_a_session_advisory_lock_the_server_releases_when_it_dies(
    pg_store, pg_url
):
    worker = Worker("hold", pg_url, "DU0000001", "apply-by-worker")
    try:
        lock_id = worker.expect("HELD")
        assert _advisory_locks_of_other_sessions(pg_store) == 1
        with pytest.raises(LockHeld) as caught:
            pg_store.account_lock(["DU0000001"], "apply-by-test")
        assert caught.value.lock_id == lock_id
        worker.send("crash")
        assert worker.wait() == 0
    finally:
        worker.kill()
    # The server ends a dead client's session (and its advisory locks) once it notices the
    # closed connection, a moment after the process exit; there is no event to await.
    wait_until(
        lambda: _advisory_locks_of_other_sessions(pg_store) == 0,
        timeout=10,
        what="the server to release the dead session's advisory lock",
    )
    with pg_store.account_lock(["DU0000001"], "apply-by-test") as handle:
        assert [(h.lock_id, h.holder) for h in pg_store.lock_holders()] == [
            (handle.lock_id, "apply-by-test")
        ]
        assert _advisory_locks_of_other_sessions(pg_store) == 1  # the handle's own session
    assert pg_store.lock_holders() == []
    assert _advisory_locks_of_other_sessions(pg_store) == 0
