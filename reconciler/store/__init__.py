"""The store: SQLAlchemy 2 persistence of the reconciler's record (SQLite file or PostgreSQL).

Responsible for re-exporting the public API: `open_store` and `Store`, the ledger's
`EventRow`/`VerifyResult`, lock types (`LockHandle`, `LockHeld`, `LockLost`, `LockInfo`), the
read views and the store's errors (`StoreUnavailable`: the database cannot be used at all).
Must not hold logic of its own.
"""

from reconciler.store.api import (
    DuplicateIntent,
    PlanConflict,
    Store,
    open_store,
    open_store_readonly,
)
from reconciler.store.engine import StoreUnavailable, StoreUrlError, make_engine
from reconciler.store.ledger import EventRow, VerifyResult
from reconciler.store.locks import LockHandle, LockHeld, LockInfo, LockLost
from reconciler.store.migrate import SchemaError
from reconciler.store.queries import (
    CycleView,
    FillView,
    HaltEvent,
    HaltState,
    OrderView,
    PositionView,
    StatusRow,
    UnresolvedIntent,
)

__all__ = [
    "CycleView",
    "DuplicateIntent",
    "EventRow",
    "FillView",
    "HaltEvent",
    "HaltState",
    "LockHandle",
    "LockHeld",
    "LockInfo",
    "LockLost",
    "OrderView",
    "PlanConflict",
    "PositionView",
    "SchemaError",
    "StatusRow",
    "Store",
    "StoreUnavailable",
    "StoreUrlError",
    "UnresolvedIntent",
    "VerifyResult",
    "make_engine",
    "open_store",
    "open_store_readonly",
]
