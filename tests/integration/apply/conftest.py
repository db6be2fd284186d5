"""Fixtures for in-process tests of the apply stage: the executor, the order journal and
recovery (reconciler/apply).

The simulator (`sim_factory`, tests/integration/conftest.py) runs on the test's own event
loop, the real `reconciler.broker.Broker` connects to it over TCP with each client library,
and `Executor`, `recover` and `OrderJournal` are driven directly with a real SQLite store: no
subprocess, so a test can look at the simulator, the client and the ledger at any moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from reconciler.broker import Broker
from reconciler.model.clock import FixedClock
from reconciler.model.settings import Settings
from reconciler.store import Store, open_store

START = dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'reconciler.db'}", clock=clock)
    yield opened
    opened.close()


@pytest_asyncio.fixture
async def connect_broker(client_lib):
    """`await connect_broker(sim, client_id)`: a trading `Broker` on the simulator with the
    parametrised client library; all are disconnected at teardown."""
    opened: list[Broker] = []

    async def connect(sim, client_id: int = 21) -> Broker:
        settings = Settings(gateway_port=sim.port, client_id=client_id, connect_timeout=5.0)
        broker = await Broker.connect(settings, readonly=False, library=client_lib.__name__)
        opened.append(broker)
        return broker

    yield connect
    for broker in opened:
        if broker.connected:
            await broker.disconnect()
