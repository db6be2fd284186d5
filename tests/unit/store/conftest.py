"""Fixtures for the store's SQLite tests: a fixed clock, a fresh database file per test."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.model.clock import FixedClock
from reconciler.store import Store, open_store

START = dt.datetime(2025, 1, 2, 14, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "reconciler.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture
def store(db_url: str, clock: FixedClock) -> Iterator[Store]:
    opened = open_store(db_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def raw_sqlite(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection that goes around the store, as a tamperer would."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    yield conn
    conn.close()
