"""The PostgreSQL server the tests use: 127.0.0.1:5432, trust auth, user postgres, database
test (override with RECONCILER_TEST_POSTGRES_URL).

Responsible for saying whether that server answers (tests that need it skip with the reason
when it does not), and for uniquely named databases on it, dropped after use. Shared by the
store fixtures (tests/conftest.py) and the end-to-end apply helpers. Everything here opens
TCP connections: only tests marked `integration` may call it (tests/conftest.py fails a
unit test that tries).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "RECONCILER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def server_answers(url: str = ADMIN_URL) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), 1.0):
            return True
    except OSError:
        return False


def skip_unless_server_answers(url: str = ADMIN_URL) -> None:
    if not server_answers(url):
        pytest.skip(f"PostgreSQL at {make_url(url).render_as_string()} does not answer")


def admin_engine(url: str = ADMIN_URL) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT")


def url_for(database: str, schema: str | None = None, admin_url: str = ADMIN_URL) -> str:
    """The URL of `database` on the server; with `schema`, that schema as its search_path."""
    url = make_url(admin_url).set(database=database)
    if schema is not None:
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def database(admin: Engine, prefix: str = "reconciler_test") -> Iterator[str]:
    """A brand-new, uniquely named database (its name), dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def schema(database_name: str) -> Iterator[str]:
    """An empty, uniquely named schema in `database_name` (the URL that uses it), dropped
    afterwards with everything in it."""
    name = f"t_{secrets.token_hex(6)}"
    engine = create_engine(url_for(database_name), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        yield url_for(database_name, name)
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        engine.dispose()
