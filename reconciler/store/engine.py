"""Database engines for the store: SQLite files (the default) and PostgreSQL.

Responsible for building or adapting a SQLAlchemy `Engine` so every store operation behaves
the same on both backends: SQLite gets its parent directory created, WAL journal, foreign
keys, a busy timeout, full fsync and explicit `BEGIN` / `BEGIN IMMEDIATE` transactions (so a
writer takes the write lock up front instead of failing on a read-to-write upgrade);
PostgreSQL is used as is. `make_readonly_engine` builds one that can only read (SQLite
`mode=ro` + `query_only`, PostgreSQL `default_transaction_read_only`) for the read-only
surfaces. Also the two transaction helpers the store uses: `write_tx` (a
serialisable-enough write transaction) and `read_tx`, and the translation of "the database
cannot be used at all" errors (read-only file, missing directory, not a database, server
down) into one `StoreUnavailable` naming the database and the cause, so no command shows a
driver traceback. Must not know any table or run migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
_CONFIGURED_FLAG = "_reconciler_store_configured"
_READONLY_LABEL = "_reconciler_store_readonly_file"


class StoreUrlError(ValueError):
    """The database URL cannot be used by the store; the message names the URL and why."""


class StoreUnavailable(RuntimeError):
    """The database cannot be read or written at all (read-only, unreachable, not a
    database). The message names the database and the cause in one line."""

    def __init__(self, database: str, cause: str) -> None:
        self.database = database
        self.cause = cause
        super().__init__(f"store {database}: {cause}")


# SQLite messages that mean "this database cannot be used", with what they mean for an
# operator. Anything else (a constraint, the append-only triggers, a missing table during
# migration) stays the driver's error for the store to handle.
_SQLITE_UNAVAILABLE = (
    (
        "readonly database",
        "cannot write: the database is read-only for this process (file or directory "
        "permissions, an immutable file or a read-only mount)",
    ),
    (
        "unable to open database file",
        "cannot open the database file (its directory is missing, unwritable or not a directory)",
    ),
    ("not a database", "the file is not a SQLite database"),
    ("disk i/o error", "disk I/O error"),
    ("database or disk is full", "the disk is full"),
    ("authorization denied", "access denied"),
)
# PostgreSQL SQLSTATEs with the same meaning.
_PG_UNAVAILABLE = {
    "25006": "cannot write: the transaction is read-only (read-only server or role)",
    "53100": "the disk is full",
    "57P03": "the server is not accepting connections yet",
}


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def sqlite_file(engine: Engine) -> Path | None:
    """The SQLite database file, or None for an in-memory database or another backend."""
    if not is_sqlite(engine):
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def make_engine(url: str) -> Engine:
    """An engine for `url`, configured for the store (see module docstring)."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreUrlError(f"database URL {url!r} does not parse: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).resolve().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        else:
            # One shared connection: an in-memory database lives only as long as it does.
            engine = create_engine(
                parsed, connect_args={"check_same_thread": False}, poolclass=StaticPool
            )
    elif backend == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True)
    else:
        raise StoreUrlError(
            f"database URL {url!r}: backend {backend!r} is not supported "
            "(use sqlite:///PATH or postgresql+psycopg://...)"
        )
    return configure_engine(engine)


def readonly_sqlite_file(engine: Engine) -> str | None:
    """The SQLite file of an engine made by `make_readonly_engine`, else None."""
    return getattr(engine, _READONLY_LABEL, None)


def make_readonly_engine(url: str) -> Engine:
    """An engine that can only read the store at `url`: SQLite opened with the `mode=ro` URI
    (the file must exist; nothing is created), PostgreSQL with
    `default_transaction_read_only`. For the read-only surfaces (serve, mcp, export)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreUrlError(f"database URL {url!r} does not parse: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise StoreUrlError(
                f"database URL {url!r}: a read-only store needs a SQLite file (sqlite:///PATH)"
            )
        path = Path(database).resolve()
        ro_url = parsed.set(database=f"file:{path.as_posix()}?mode=ro", query={"uri": "true"})
        engine = create_engine(
            ro_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_on_connect_readonly)
        event.listen(engine, "begin", _sqlite_on_begin)
        setattr(engine, _READONLY_LABEL, str(path))
    elif backend == "postgresql":
        # Added to the URL's own libpq options (a search_path, say), not in their place.
        existing = parsed.query.get("options", "")
        if isinstance(existing, tuple):
            existing = " ".join(existing)
        options = f"{existing} -c default_transaction_read_only=on".strip()
        engine = create_engine(
            parsed.difference_update_query(["options"]),
            pool_pre_ping=True,
            connect_args={"options": options},
        )
    else:
        raise StoreUrlError(
            f"database URL {url!r}: backend {backend!r} is not supported "
            "(use sqlite:///PATH or postgresql+psycopg://...)"
        )
    event.listen(engine, "handle_error", _unavailable_error)
    setattr(engine, _CONFIGURED_FLAG, True)
    return engine


def _sqlite_on_connect_readonly(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # Belt and braces over mode=ro: the connection refuses writes even to temp objects.
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def configure_engine(engine: Engine) -> Engine:
    """Install the store's connection and transaction hooks on an injected engine (once)."""
    if getattr(engine, _CONFIGURED_FLAG, False):
        return engine
    if is_sqlite(engine):
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        # Connections pooled before the hooks existed would miss the pragmas.
        engine.dispose()
    elif not is_postgresql(engine):
        raise StoreUrlError(f"database backend {engine.dialect.name!r} is not supported")
    event.listen(engine, "handle_error", _unavailable_error)
    setattr(engine, _CONFIGURED_FLAG, True)
    return engine


def database_label(engine: Engine) -> str:
    """The database as an operator knows it: the SQLite file, else the URL without password."""
    readonly_file = readonly_sqlite_file(engine)
    if readonly_file is not None:
        return readonly_file
    if is_sqlite(engine) and engine.url.database:
        path = sqlite_file(engine)
        return str(path) if path is not None else engine.url.database
    return engine.url.render_as_string(hide_password=True)


def unavailable_cause(error: BaseException, *, connecting: bool = False) -> str | None:
    """What an operator should read when `error` (a DB-API exception) means the database
    cannot be used at all; None for every other error."""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is not None or type(error).__module__.startswith("psycopg"):
        if sqlstate in _PG_UNAVAILABLE:
            return _PG_UNAVAILABLE[sqlstate]
        # 42501 is also what the append-only triggers raise: only the server's own
        # "permission denied for ..." means the role cannot use the database.
        if sqlstate == "42501" and str(error).startswith("permission denied"):
            return f"permission denied: {str(error).strip().splitlines()[0]}"
        if connecting:
            first = (str(error).strip().splitlines() or ["connection failed"])[0]
            return f"cannot connect: {first}"
        return None
    message = str(error).lower()
    for fragment, cause in _SQLITE_UNAVAILABLE:
        if fragment in message:
            return f"{cause} [{str(error).strip()}]"
    return None


def _unavailable_error(context) -> None:
    if getattr(context, "is_pre_ping", False):
        return  # the pool retries a dead pooled connection itself
    error = context.original_exception
    cause = unavailable_cause(error, connecting=context.connection is None)
    if cause is not None:
        raise StoreUnavailable(database_label(context.engine), cause) from error


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # The INTENT row must be on disk before the order leaves: no relaxed fsync.
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first
    statement (BEGIN IMMEDIATE), so concurrent writers queue instead of deadlocking."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: one consistent snapshot for a query that spans statements
    (SQLite's WAL read transactions are snapshots; PostgreSQL needs REPEATABLE READ, or a
    chain verification could see a head that is newer than the rows it read)."""
    with engine.connect() as conn:
        if is_postgresql(engine):
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn
