"""Fixtures for the store's PostgreSQL tests on the server at 127.0.0.1:5432 (override with
RECONCILER_TEST_POSTGRES_URL): a uniquely named database per test session with an empty
schema per test, or a brand-new database for the tests that need one; all dropped after.
Every test here is skipped, with the reason, when that server does not answer."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reconciler.model.clock import FixedClock
from reconciler.store import Store, open_store

__all__ = ["Worker"]

ADMIN_URL = os.environ.get(
    "RECONCILER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = dt.datetime(2025, 1, 2, 14, 30, tzinfo=dt.UTC)

# The worker module lives with the SQLite tests; both suites start the same worker processes.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "store"))
from store_worker import Worker  # noqa: E402


def _server_answers(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), 1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_admin():
    if not _server_answers(ADMIN_URL):
        pytest.skip(f"PostgreSQL at {make_url(ADMIN_URL).render_as_string()} does not answer")
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _create_database(pg_admin) -> str:
    name = f"reconciler_test_{os.getpid()}_{secrets.token_hex(4)}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return name


def _drop_database(pg_admin, name: str) -> None:
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _url(database: str, schema: str | None = None) -> str:
    url = make_url(ADMIN_URL).set(database=database)
    if schema is not None:
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def fresh_pg_database_url(pg_admin) -> Iterator[str]:
    """A brand-new, uniquely named database of its own, dropped after the test."""
    name = _create_database(pg_admin)
    try:
        yield _url(name)
    finally:
        _drop_database(pg_admin, name)


@pytest.fixture(scope="session")
def pg_session_database(pg_admin) -> Iterator[str]:
    """One uniquely named database for the test session (creating databases is slow)."""
    name = _create_database(pg_admin)
    try:
        yield name
    finally:
        _drop_database(pg_admin, name)


@pytest.fixture
def pg_url(pg_session_database) -> Iterator[str]:
    """An empty schema of its own in the session database, as the search_path of the URL."""
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(_url(pg_session_database), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield _url(pg_session_database, schema)
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def pg_store(pg_url: str, clock: FixedClock) -> Iterator[Store]:
    store = open_store(pg_url, clock=clock)
    yield store
    store.close()
