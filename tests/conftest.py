"""Suite-wide rules and shared fixtures.

Every test under tests/integration, tests/faults and tests/soak is marked `integration` (it
drives a real client library over TCP, a real database server or subprocesses), so
`pytest -m "not integration"` is the fast suite; and a test that is not marked `integration`
(by folder, by decorator or by its `pytest.param` marks) fails if it opens a TCP connection,
so the split stays true.

The PostgreSQL fixtures live here because two folders use them: the store tests' PostgreSQL
parametrisation (tests/unit/store, marked `integration` and `postgres` per param) and the
PostgreSQL-only store tests (tests/integration/store). They skip, with the reason, when the
server does not answer (see tests/pg_server.py).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pg_server
import pytest

# Folders whose every test is an integration test: the end-to-end tests, the fault
# catalogue and the soak (the real CLI against the simulator). The fuzz tests mark their one
# TCP test themselves; the rest open no socket.
INTEGRATION_DIRS = (
    Path(__file__).parent / "integration",
    Path(__file__).parent / "faults",
    Path(__file__).parent / "soak",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        parents = Path(str(item.fspath)).parents
        if any(folder in parents for folder in INTEGRATION_DIRS):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_stay_off_the_network(request, monkeypatch):
    # get_closest_marker sees the item's own marks, which include a parametrisation's
    # `pytest.param(..., marks=...)`: a PostgreSQL param of a unit store test may connect.
    if request.node.get_closest_marker("integration") is not None:
        return
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(
                f"unit test opened a TCP connection to {address!r}: move it to "
                "tests/integration or mark it @pytest.mark.integration"
            )
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="session")
def pg_admin():
    """An AUTOCOMMIT engine on the test server's admin database; skips when it is down."""
    pg_server.skip_unless_server_answers()
    engine = pg_server.admin_engine()
    yield engine
    engine.dispose()


@pytest.fixture
def fresh_pg_database_url(pg_admin) -> Iterator[str]:
    """A brand-new, uniquely named database of its own, dropped after the test."""
    with pg_server.database(pg_admin) as name:
        yield pg_server.url_for(name)


@pytest.fixture(scope="session")
def pg_session_database(pg_admin) -> Iterator[str]:
    """One uniquely named database for the test session (creating databases is slow)."""
    with pg_server.database(pg_admin) as name:
        yield name


@pytest.fixture
def pg_url(pg_session_database) -> Iterator[str]:
    """An empty schema of its own in the session database, as the search_path of the URL."""
    with pg_server.schema(pg_session_database) as url:
        yield url
