"""Suite-wide rules: every test under tests/integration is marked `integration` (it drives
a real client library over TCP, a real database server or subprocesses), so
`pytest -m "not integration"` is the fast suite; and a unit test that opens a TCP connection
fails, so the split stays true."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_stay_off_the_network(request, monkeypatch):
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
