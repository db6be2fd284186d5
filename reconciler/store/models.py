"""SQLAlchemy 2 models of the store's tables (the schema the migrations create).

Responsible for the declarative table definitions, the two column types every table shares
(`UTCDateTime`: timezone-aware UTC in and out on SQLite and PostgreSQL; `JSONValue`: JSON,
JSONB on PostgreSQL) and `to_jsonable`, which turns report/plan values into plain JSON. Must
not create tables itself (Alembic migrations do; a test checks models and migrations agree)
and must not contain queries.

Append-only tables (order_events, fills, fill_commissions, halts) are protected by
database triggers created in the migration; nothing in the code updates or deletes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UTC = dt.UTC
GENESIS_HASH = "0" * 64


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware UTC times")
        value = value.astimezone(UTC)
        # SQLite has no time zone type; it stores the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONValue(TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL (its dialect is imported only when one is used)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def to_jsonable(value: Any) -> Any:
    """Plain JSON (dict/list/str/int/float/bool/None) from plans, reports and dataclasses:
    datetimes as ISO UTC, tuples and sets as lists, non-finite floats as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


class Base(DeclarativeBase):
    pass


class Cycle(Base):
    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    desired_hash: Mapped[str | None] = mapped_column(String(128))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    plan_id: Mapped[str | None] = mapped_column(String(128))
    accounts: Mapped[Any] = mapped_column(JSONValue(), nullable=False)
    gates: Mapped[Any | None] = mapped_column(JSONValue())
    report: Mapped[Any | None] = mapped_column(JSONValue())
    error: Mapped[str | None] = mapped_column(Text)
    # host:pid of the process running the cycle, so a cycle left "running" by a process
    # that died can be told from one still in progress.
    holder: Mapped[str | None] = mapped_column(String(128))


class CycleAccount(Base):
    """Which accounts a cycle covered, indexed so "last cycle of account X" is one query."""

    __tablename__ = "cycle_accounts"

    cycle_id: Mapped[int] = mapped_column(
        ForeignKey("cycles.id", ondelete="CASCADE"), primary_key=True
    )
    account: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_cycle_accounts_account", "account", "cycle_id"),)


class PlanRow(Base):
    __tablename__ = "plans"

    plan_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    body: Mapped[Any] = mapped_column(JSONValue(), nullable=False)
    desired_hash: Mapped[str | None] = mapped_column(String(128))
    actual_fingerprint: Mapped[str | None] = mapped_column(String(128))


class OrderRow(Base):
    """One row per planned order, written together with its INTENT event."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_ref: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    plan_id: Mapped[str | None] = mapped_column(String(128))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    leg: Mapped[int | None] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)
    order_type: Mapped[str | None] = mapped_column(String(16))
    limit_price: Mapped[float | None] = mapped_column(Float)
    arrival_price: Mapped[float | None] = mapped_column(Float)
    est_notional: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    body: Mapped[Any] = mapped_column(JSONValue(), nullable=False)

    __table_args__ = (Index("ix_orders_account", "account", "id"),)


class OrderEvent(Base):
    """The hash-chained, append-only ledger (see ledger.py for the hash formula)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    order_ref: Mapped[str | None] = mapped_column(String(128))
    account: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON text
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_order_events_order_ref_kind", "order_ref", "kind"),
        Index("ix_order_events_account", "account", "seq"),
    )


class LedgerHead(Base):
    """One row: the chain's last seq and hash. Appends lock it, which serialises writers
    across processes; verification compares it with the last event to catch a cut tail."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class Fill(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exec_id: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    order_ref: Mapped[str | None] = mapped_column(String(128))
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    # Nullable: a fill whose symbol, side or time the broker did not say is still recorded.
    symbol: Mapped[str | None] = mapped_column(String(64))
    side: Mapped[str | None] = mapped_column(String(8))
    shares: Mapped[float] = mapped_column(Float, nullable=False)
    price: Mapped[float] = mapped_column(Float, nullable=False)
    time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    commission: Mapped[float | None] = mapped_column(Float)
    commission_currency: Mapped[str | None] = mapped_column(String(8))
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        Index("ix_fills_order_ref", "order_ref"),
        Index("ix_fills_account_time", "account", "time"),
    )


class FillCommission(Base):
    """Commission reports arrive after the execution; fills stay append-only, so they land here."""

    __tablename__ = "fill_commissions"

    exec_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    commission: Mapped[float] = mapped_column(Float, nullable=False)
    currency: Mapped[str | None] = mapped_column(String(8))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class PositionSnapshot(Base):
    """One broker snapshot of one account (header; an empty snapshot means flat)."""

    __tablename__ = "position_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (Index("ix_position_snapshots_account", "account", "id"),)


class PositionSnapshotItem(Base):
    __tablename__ = "position_snapshot_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("position_snapshots.id", ondelete="CASCADE"), nullable=False, index=True
    )
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)
    avg_cost: Mapped[float | None] = mapped_column(Float)


class RiskDenial(Base):
    __tablename__ = "risk_denials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    plan_id: Mapped[str | None] = mapped_column(String(128))
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    side: Mapped[str | None] = mapped_column(String(8))
    requested_quantity: Mapped[float | None] = mapped_column(Float)
    allowed_quantity: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[Any] = mapped_column(JSONValue(), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (Index("ix_risk_denials_cycle", "cycle_id"),)


class Lease(Base):
    """Who holds an account's writer lock; the OS-level lock proves liveness, this row names
    the holder for `status` and lets the operator `unlock` it."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    lock_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    holder: Mapped[str] = mapped_column(String(256), nullable=False)
    host: Mapped[str] = mapped_column(String(256), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    renewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class Halt(Base):
    """Append-only history of halt/resume; the current state is the last row."""

    __tablename__ = "halts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    action: Mapped[str] = mapped_column(String(8), nullable=False)  # HALT | RESUME
    reason: Mapped[str | None] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(256), nullable=False)
    cancel_open: Mapped[bool] = mapped_column(Boolean, nullable=False)


class DesiredSnapshot(Base):
    """The desired state an account was last applied with (for "what changed since")."""

    __tablename__ = "desired_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    snapshot: Mapped[Any] = mapped_column(JSONValue(), nullable=False)

    __table_args__ = (Index("ix_desired_snapshots_account", "account", "id"),)


APPEND_ONLY_TABLES = ("order_events", "fills", "fill_commissions", "halts")
