"""One writer per account (issue 5): of two `reconcile apply` runs on one account exactly one
trades, the other exits 3 naming the holder; with the SQLite store and with PostgreSQL.

The simulator runs in this process; `reconcile` runs as real subprocesses over TCP. The
first apply's orders rest at the simulator (their instrument's session is closed), so it
provably holds the lock while the second one starts; the test then opens the market and the
first apply finishes. Each PostgreSQL test gets a uniquely named database, dropped after.
"""

from __future__ import annotations

import os
import secrets
import socket

import pytest
from apply_helpers import (
    ACCOUNT,
    Cli,
    broker_orders,
    duplicate_refs,
    open_market,
    placed_orders,
    positions,
    scenario,
    wait_until,
    write_desired_state,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

PG_ADMIN_URL = os.environ.get(
    "RECONCILER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FIRST_CLIENT, SECOND_CLIENT = 41, 42
TARGETS = {"VEA": 10, "VWO": 10}


def _postgres_answers() -> bool:
    url = make_url(PG_ADMIN_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), 1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def postgres_url():
    if not _postgres_answers():
        pytest.skip(f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string()} does not answer")
    name = f"reconciler_apply_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request):
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def cli_for(tmp_path):
    clis: list[Cli] = []

    def make(sim, db_url: str) -> Cli:
        desired = write_desired_state(tmp_path / "desired_state", TARGETS, ttl="60s")
        cli = Cli(tmp_path, f"{sim.host}:{sim.port}", db_url, desired, client_id=FIRST_CLIENT)
        clis.append(cli)
        return cli

    yield make
    for cli in clis:
        cli.close()


def test_apply_when_another_apply_holds_the_account_then_exits_3_naming_it_and_sends_nothing(
        db_url, cli_for):
    with run_in_thread(scenario({}, closed=TARGETS)) as sim:
        cli = cli_for(sim, db_url)

        first = cli.apply(client_id=FIRST_CLIENT)
        wait_until(lambda: len(placed_orders(sim)) == len(TARGETS), timeout=30,
                   what="the first apply's orders at the simulator", alive=[first])

        second = cli.finish(cli.apply(client_id=SECOND_CLIENT))

        assert second.returncode == 3, second.explain()
        assert f"account {ACCOUNT} is locked by" in second.stderr, second.explain()
        assert f"pid {first.pid} " in second.stderr, f"holder not named:\n{second.stderr}"
        assert first.poll() is None, "the first apply should still be waiting on its orders"
        sent = placed_orders(sim)
        assert {o.client_id for o in sent} == {FIRST_CLIENT}, sent

        open_market(sim)
        done = cli.finish(first)

        assert done.returncode == 0, done.explain()
        assert done.stdout.count("FILLED") == len(TARGETS), done.explain()
        assert {o.client_id for o in placed_orders(sim)} == {FIRST_CLIENT}
        assert duplicate_refs(placed_orders(sim)) == []
        assert all(o.status == "Filled" for o in broker_orders(sim))
        assert positions(sim) == TARGETS

        cycles = cli.run("show", "cycles", "--format", "json")
        assert cycles.returncode == 0, cycles.explain()
        statuses = sorted(c["status"] for c in cycles.json())
        assert statuses == ["ok", "refused"], cycles.json()
