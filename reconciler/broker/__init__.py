"""The broker adapter: the only package that talks to IB Gateway through a client library.

Public surface: `Broker` (connect, resolve, snapshot, orders, recovery reads), `health` and
`check_orders`, `lock_entries`, the `BrokerError` family and `OrderHandle`. Importing this
package does not import `ib_async`/`ib_insync`; `Broker.connect` does, on first use.
"""

from reconciler.broker.adapter import Broker
from reconciler.broker.contracts import lock_entries
from reconciler.broker.errors import (
    AccountNotManaged,
    BrokerError,
    Candidate,
    ClientIdInUse,
    ConnectionLost,
    GatewayUnreachable,
    LockMismatch,
    NotAnApiEndpoint,
    NotConnected,
    OrderError,
    ReadOnlyConnection,
    RequestTimeout,
    ResolutionError,
    ResolutionProblem,
    SnapshotError,
    StartupSyncIncomplete,
)
from reconciler.broker.health import HealthReport, OrderCheckReport, check_orders, health
from reconciler.broker.orders import OrderEvent, OrderHandle

__all__ = [
    "AccountNotManaged",
    "Broker",
    "BrokerError",
    "Candidate",
    "ClientIdInUse",
    "ConnectionLost",
    "GatewayUnreachable",
    "HealthReport",
    "LockMismatch",
    "NotAnApiEndpoint",
    "NotConnected",
    "OrderCheckReport",
    "OrderError",
    "OrderEvent",
    "OrderHandle",
    "ReadOnlyConnection",
    "RequestTimeout",
    "ResolutionError",
    "ResolutionProblem",
    "SnapshotError",
    "StartupSyncIncomplete",
    "check_orders",
    "health",
    "lock_entries",
]
