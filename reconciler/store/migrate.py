"""Create or upgrade the store's schema with Alembic, safely from several processes at once.

Responsible for the Alembic `Config` built in code (script_location inside this package; no
alembic.ini anywhere), the "is it already at head?" fast path, and the cross-process
migration lock: on SQLite the migration runs inside a `BEGIN IMMEDIATE` transaction (a second
process waits for the first to commit, then finds the schema at head); on PostgreSQL it
holds a transaction-scoped advisory lock before reading the version table. Must not define
tables (models.py and migrations/versions do) or touch data.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from reconciler.store.engine import is_postgresql, read_tx, write_tx

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# An arbitrary, fixed 64-bit key: "reconciler schema migration".
MIGRATION_ADVISORY_KEY = 0x7265636F6E63696C


class SchemaError(RuntimeError):
    """The database's schema is newer than this reconciler or otherwise unusable."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the store ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    with read_tx(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine) -> str:
    """Bring the schema to the latest revision (idempotent); returns that revision."""
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    current = current_revision(engine)
    if current == head:
        return head
    if current is not None and script.get_revision(current) is None:
        raise SchemaError(
            f"the database is at schema revision {current!r}, which this reconciler does not "
            f"know (newest known: {head!r}); upgrade the reconciler"
        )
    with write_tx(engine) as conn:
        if is_postgresql(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_ADVISORY_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return head
