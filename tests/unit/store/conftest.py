"""Fixtures for the store tests: a fixed clock and a store on each backend.

`store` (and `backend`) are parametrised: every test that uses them runs on a fresh SQLite
file and, marked `integration` and `postgres`, on an empty schema of the PostgreSQL test
server (skipped, with the reason, when it does not answer). `pytest -m "not integration"`
runs the SQLite half only and stays off the network. Tests of what only SQLite has (the file,
its pragmas, a plain sqlite3 client) use `sqlite_store`, `db_path` and `raw_sqlite`;
PostgreSQL's own are in tests/integration/store.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.model.clock import FixedClock
from reconciler.store import Store, open_store

START = dt.datetime(2025, 1, 2, 14, 30, tzinfo=dt.UTC)

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BACKENDS = [
    SQLITE,
    pytest.param(POSTGRESQL, marks=[pytest.mark.integration, pytest.mark.postgres]),
]

# How each backend's append-only triggers are named (migration 0001), for tampering tests.
_SQLITE_TRIGGERS = ("{table}_no_update", "{table}_no_delete")
_POSTGRESQL_TRIGGER = "{table}_append_only"


@dataclass(frozen=True)
class Backend:
    """One store backend under test: its name and the URL of a database nobody has opened
    yet (opening it creates the schema)."""

    name: str
    url: str

    @property
    def has_truncate(self) -> bool:
        """TRUNCATE exists (and is refused by its own trigger) on PostgreSQL only."""
        return self.name == POSTGRESQL

    def tamper(self, store: Store, table: str, sql: str) -> None:
        """Run `sql` on `table` around its append-only triggers, as someone with direct
        write access to the database could: what `verify_ledger` must then detect."""
        with store.engine.begin() as conn:
            if self.name == SQLITE:
                for trigger in _SQLITE_TRIGGERS:
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger.format(table=table)}")
                conn.exec_driver_sql(sql)
            else:
                trigger = _POSTGRESQL_TRIGGER.format(table=table)
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
                conn.exec_driver_sql(sql)
                conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "reconciler.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture(params=BACKENDS)
def backend(request, db_url: str) -> Backend:
    if request.param == SQLITE:
        return Backend(SQLITE, db_url)
    # Requested only here, so the SQLite half never touches the PostgreSQL fixtures.
    return Backend(POSTGRESQL, request.getfixturevalue("pg_url"))


@pytest.fixture
def store(backend: Backend, clock: FixedClock) -> Iterator[Store]:
    opened = open_store(backend.url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(db_url: str, clock: FixedClock) -> Iterator[Store]:
    opened = open_store(db_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def raw_sqlite(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection that goes around the store, as a tamperer would."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    yield conn
    conn.close()
