"""Fixtures for the store's PostgreSQL-only tests on the server at 127.0.0.1:5432 (the
server fixtures, `pg_url` and `fresh_pg_database_url`, are in tests/conftest.py). Every test
here is skipped, with the reason, when that server does not answer.

The tests every backend must pass live in tests/unit/store, parametrised by backend; only
what is PostgreSQL's own (server-side schema objects, TRUNCATE, advisory locks) is here."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.model.clock import FixedClock
from reconciler.store import Store, open_store

START = dt.datetime(2025, 1, 2, 14, 30, tzinfo=dt.UTC)

# The worker process module (store_worker) lives with the backend-parametrised store tests;
# the tests here start it too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "store"))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def pg_store(pg_url: str, clock: FixedClock) -> Iterator[Store]:
    store = open_store(pg_url, clock=clock)
    yield store
    store.close()
