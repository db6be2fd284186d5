"""Alembic environment for the store: runs migrations on the connection the store hands in.

Responsible for configuring Alembic's context from `config.attributes["connection"]` (set by
reconciler.store.migrate, which also holds the cross-process migration lock and the
transaction). Must not create engines, read alembic.ini, configure logging or commit.
"""

from __future__ import annotations

from alembic import context

from reconciler.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the store's migrations run through reconciler.store.open_store(), "
        "which passes a connection; the alembic command line is not wired up"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
