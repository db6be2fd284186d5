"""Shared fixtures for integration tests: the simulator on an ephemeral port, both IB client
libraries, and a guard that fails any test in which a client could not decode a message."""

from __future__ import annotations

import importlib
import logging

import pytest
import pytest_asyncio
from waiting import wait_until_async

from reconciler.sim import SimGateway

CLIENT_LIBRARIES = ("ib_async", "ib_insync")
DECODE_FAILURE_MARKERS = ("Error handling fields", "Error for ")


@pytest.fixture(params=CLIENT_LIBRARIES)
def client_lib(request):
    """The imported client library module (ib_async, then ib_insync)."""
    return importlib.import_module(request.param)


class _DecodeFailures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(marker in message for marker in DECODE_FAILURE_MARKERS) or \
                record.name.endswith(".Decoder"):
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_decode_errors():
    """Fail the test if a client library logged that it could not handle a message."""
    handler = _DecodeFailures()
    loggers = [logging.getLogger(), logging.getLogger("ib_async"), logging.getLogger("ib_insync")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
    failures = [r.getMessage()[:500] for r in handler.records]
    assert not failures, f"client failed to decode messages: {failures}"


@pytest_asyncio.fixture
async def sim_factory():
    """Start SimGateways with chosen arguments; all are stopped at teardown."""
    started: list[SimGateway] = []

    async def start(scenario=None, **kwargs) -> SimGateway:
        gateway = SimGateway(scenario, **kwargs)
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in reversed(started):
        await gateway.stop()


@pytest_asyncio.fixture
async def sim(sim_factory) -> SimGateway:
    """The built-in demo scenario (DU0000001, DU0000002) on an ephemeral port."""
    return await sim_factory()


@pytest_asyncio.fixture
async def connect(client_lib):
    """Connect IB clients of the parametrised library; all are disconnected at teardown."""
    clients = []

    async def open_client(gateway: SimGateway, client_id: int = 1, readonly: bool = False,
                          timeout: float = 5, throttle: bool = True):
        ib = client_lib.IB()
        if not throttle:
            ib.client.MaxRequests = 0
        await ib.connectAsync(gateway.host, gateway.port, clientId=client_id,
                              readonly=readonly, timeout=timeout)
        clients.append(ib)
        return ib

    yield open_client
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def stock(client_lib):
    """`await stock(ib, "VTI")`: a qualified SMART stock contract (USD unless given)."""

    async def qualified(ib, symbol: str, currency: str = "USD", **fields):
        contract = client_lib.Stock(symbol, "SMART", currency, **fields)
        [result] = await ib.qualifyContractsAsync(contract)
        assert result and result.conId, f"{symbol} did not qualify"
        return result

    return qualified


@pytest.fixture
def wait():
    """`await wait(condition, timeout, what)`: poll until true, fail at the deadline
    (tests/waiting.py)."""
    return wait_until_async
