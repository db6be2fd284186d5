"""Initial schema: cycles, plans, orders, the hash-chained event ledger, fills, position
snapshots, risk denials, locks, halts, desired snapshots; append-only triggers.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("order_events", "fills", "fill_commissions", "halts")
GENESIS_HASH = "0" * 64


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cycles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts()),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("desired_hash", sa.String(128)),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("plan_id", sa.String(128)),
        sa.Column("accounts", _json(), nullable=False),
        sa.Column("gates", _json()),
        sa.Column("report", _json()),
        sa.Column("error", sa.Text),
        sa.Column("holder", sa.String(128)),
    )
    op.create_table(
        "cycle_accounts",
        sa.Column(
            "cycle_id",
            sa.Integer,
            sa.ForeignKey("cycles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("account", sa.String(64), primary_key=True),
    )
    op.create_index("ix_cycle_accounts_account", "cycle_accounts", ["account", "cycle_id"])
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(128), primary_key=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("desired_hash", sa.String(128)),
        sa.Column("actual_fingerprint", sa.String(128)),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_ref", sa.String(128), nullable=False, unique=True),
        sa.Column("plan_id", sa.String(128)),
        sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id")),
        sa.Column("leg", sa.Integer),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("con_id", sa.BigInteger),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("order_type", sa.String(16)),
        sa.Column("limit_price", sa.Float),
        sa.Column("arrival_price", sa.Float),
        sa.Column("est_notional", sa.Float),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("body", _json(), nullable=False),
    )
    op.create_index("ix_orders_account", "orders", ["account", "id"])
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("order_ref", sa.String(128)),
        sa.Column("account", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_order_events_order_ref_kind", "order_events", ["order_ref", "kind"])
    op.create_index("ix_order_events_account", "order_events", ["account", "seq"])
    ledger_head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(ledger_head, [{"id": 1, "seq": 0, "row_hash": GENESIS_HASH}])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exec_id", sa.String(128), nullable=False, unique=True),
        sa.Column("order_ref", sa.String(128)),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("con_id", sa.BigInteger),
        sa.Column("symbol", sa.String(64)),
        sa.Column("side", sa.String(8)),
        sa.Column("shares", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("time", _ts()),
        sa.Column("commission", sa.Float),
        sa.Column("commission_currency", sa.String(8)),
        sa.Column("perm_id", sa.BigInteger),
        sa.Column("recorded_at", _ts(), nullable=False),
    )
    op.create_index("ix_fills_order_ref", "fills", ["order_ref"])
    op.create_index("ix_fills_account_time", "fills", ["account", "time"])
    op.create_table(
        "fill_commissions",
        sa.Column("exec_id", sa.String(128), primary_key=True),
        sa.Column("commission", sa.Float, nullable=False),
        sa.Column("currency", sa.String(8)),
        sa.Column("recorded_at", _ts(), nullable=False),
    )
    op.create_table(
        "position_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id")),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("at", _ts(), nullable=False),
    )
    op.create_index("ix_position_snapshots_account", "position_snapshots", ["account", "id"])
    op.create_table(
        "position_snapshot_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "snapshot_id",
            sa.Integer,
            sa.ForeignKey("position_snapshots.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("con_id", sa.BigInteger),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("avg_cost", sa.Float),
    )
    op.create_index(
        "ix_position_snapshot_items_snapshot_id", "position_snapshot_items", ["snapshot_id"]
    )
    op.create_table(
        "risk_denials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id")),
        sa.Column("plan_id", sa.String(128)),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8)),
        sa.Column("requested_quantity", sa.Float),
        sa.Column("allowed_quantity", sa.Float),
        sa.Column("detail", _json(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
    )
    op.create_index("ix_risk_denials_cycle", "risk_denials", ["cycle_id"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("lock_id", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", _ts(), nullable=False),
        sa.Column("renewed_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
    )
    op.create_index("ix_locks_lock_id", "locks", ["lock_id"])
    op.create_table(
        "halts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("who", sa.String(256), nullable=False),
        sa.Column("cancel_open", sa.Boolean, nullable=False),
    )
    op.create_table(
        "desired_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id")),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("snapshot", _json(), nullable=False),
    )
    op.create_index("ix_desired_snapshots_account", "desired_snapshots", ["account", "id"])
    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION reconciler_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION reconciler_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION reconciler_refuse_change()"
            )
    elif dialect == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} "
                    f"ON {table} BEGIN SELECT RAISE(ABORT, "
                    f"'table {table} is append-only: {operation} refused'); END"
                )


def downgrade() -> None:
    raise RuntimeError("the store's initial schema holds the audit ledger; it is never dropped")
