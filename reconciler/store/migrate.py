"""Create or upgrade the store's schema with Alembic, safely from several processes at once.

Responsible for the Alembic `Config` built in code (script_location inside this package; no
alembic.ini anywhere), the "is it already at head?" fast path (one SELECT, no Alembic import:
every command opens the store), and the cross-process migration lock: on SQLite the
migration runs inside a `BEGIN IMMEDIATE` transaction (a second process waits for the first
to commit, then finds the schema at head); on PostgreSQL it holds a transaction-scoped
advisory lock before reading the version table. Must not define tables (models.py and
migrations/versions do) or touch data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from reconciler.store.engine import is_postgresql, read_tx, write_tx

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions; a test checks it against Alembic's view.
HEAD_REVISION = "0001_initial"
# An arbitrary, fixed 64-bit key: "reconciler schema migration".
MIGRATION_ADVISORY_KEY = 0x7265636F6E63696C


class SchemaError(RuntimeError):
    """The database's schema is newer than this reconciler or otherwise unusable."""


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The head according to Alembic's scan of the versions directory."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the store ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None for an empty database."""
    try:
        with read_tx(engine) as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return None  # no version table yet
    if len(rows) > 1:
        raise SchemaError(f"alembic_version holds {len(rows)} rows; expected one")
    return rows[0][0] if rows else None


def upgrade_to_head(engine: Engine) -> str:
    """Bring the schema to the latest revision (idempotent); returns that revision."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return current
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    if current is not None and not _known(script, current):
        raise SchemaError(
            f"the database is at schema revision {current!r}, which this reconciler does not "
            f"know (newest known: {HEAD_REVISION!r}); upgrade the reconciler"
        )
    with write_tx(engine) as conn:
        if is_postgresql(engine):
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_ADVISORY_KEY}
            )
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return HEAD_REVISION


def _known(script: ScriptDirectory, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
