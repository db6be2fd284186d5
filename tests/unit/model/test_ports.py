"""The real broker session, order handle and store satisfy the ports in reconciler.model.ports.

Runtime: `isinstance` against the `@runtime_checkable` protocols (method and attribute
presence) on a real SQLite store; the broker's objects are checked against the simulator in
tests/integration/broker/test_broker_ports.py. Static: `mypy` (configured in pyproject.toml)
checks the ports, apply/, cycle/ and this file, whose `_conforms` assignments fail to type-check
when a real class lacks a protocol member or has an incompatible signature.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.model.ports import BrokerPort, CycleStorePort, OrderLedgerPort, StorePort
from reconciler.store import open_store

if TYPE_CHECKING:
    from reconciler.broker.adapter import Broker
    from reconciler.broker.orders import OrderEvent, OrderHandle
    from reconciler.model.ports import (
        HaltView,
        IntentView,
        OrderEventView,
        OrderHandlePort,
        TradingPort,
    )
    from reconciler.store import HaltState, Store, UnresolvedIntent


def _conforms(
    broker: Broker,
    handle: OrderHandle,
    event: OrderEvent,
    store: Store,
    halt: HaltState,
    intent: UnresolvedIntent,
) -> None:
    """Never called: mypy checks these assignments (the real classes against the ports)."""
    trading: TradingPort[OrderHandle] = broker
    session: BrokerPort = broker
    live: OrderHandlePort = handle
    seen: OrderEventView = event
    whole: StorePort = store
    ledger: OrderLedgerPort = store
    cycles: CycleStorePort = store
    halt_view: HaltView = halt
    intent_view: IntentView = intent
    del trading, session, live, seen, whole, ledger, cycles, halt_view, intent_view


def test_the_sqlite_store_satisfies_the_store_ports(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'ports.db'}") as store:
        assert isinstance(store, StorePort)
        assert isinstance(store, OrderLedgerPort)
        assert isinstance(store, CycleStorePort)
        assert not isinstance(store, BrokerPort)  # the check tells the ports apart


REPO = Path(__file__).resolve().parents[3]

# Must not type-check: the real Broker lacks a member that a port asks for. Proves that,
# under the project's mypy configuration, the real classes are seen with their members (not
# as Any), so a class that lacks a protocol member fails the `_conforms` assignments above.
LACKS_A_MEMBER = """\
from typing import Protocol

from reconciler.broker.adapter import Broker
from reconciler.model.ports import BrokerPort


class Reconnecting(BrokerPort, Protocol):
    async def reconnect(self) -> None: ...


def wrong(broker: Broker) -> Reconnecting:
    return broker
"""


def test_mypy_accepts_the_real_classes_as_the_ports_and_catches_a_missing_member(tmp_path):
    probe = tmp_path / "lacks_a_member.py"
    probe.write_text(LACKS_A_MEMBER)
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *config["files"], str(probe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # By file name, not path: mypy's cache may replay the probe's errors under the path of an
    # earlier run's identical probe.
    ours = [line for line in lines if ": error:" in line and f"{probe.name}:" not in line]
    assert not ours, output
    assert result.returncode == 1, output
    assert '"Broker" is missing following "Reconnecting" protocol member' in output, output
    assert any(line.strip().endswith("reconnect") for line in lines), output
