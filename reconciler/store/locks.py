"""One writer per account: an OS-level lock plus a lease row that names the holder.

Responsible for taking, renewing and releasing the per-account writer locks behind
`Store.account_lock`, the operator's `unlock`, and listing holders. Two layers:

- the OS-level lock proves the holder is alive and cannot be stolen: a non-blocking file lock
  per account next to the SQLite file (released by the kernel when the process dies), or a
  PostgreSQL session advisory lock on a dedicated connection (released when the session
  ends);
- the lease row (table `locks`) says who holds it, since when and until when, for `status`,
  and guards against a holder that lost its OS lock without noticing (a dropped PostgreSQL
  session). A lease is taken over only when its OS lock is free and the lease is expired, or
  its holder is provably gone (same host, process not running), or the operator unlocked it.

Must not block waiting for a lock (a second writer is refused at once with `LockHeld`) and
must not decide what the holder does with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import socket
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from reconciler.model.clock import Clock
from reconciler.store.engine import is_postgresql, read_tx, sqlite_file, write_tx
from reconciler.store.models import Lease
from reconciler.util.polling import poll_until
from reconciler.util.process import process_alive

DEFAULT_TTL_SECONDS = 300.0
LEASES = Lease.__table__


class LockHeld(Exception):
    """Another live writer holds an account; names the holder and how to clear it."""

    def __init__(
        self,
        *,
        account: str,
        holder: str,
        lock_id: str | None,
        acquired_at: dt.datetime | None,
        expires_at: dt.datetime | None = None,
        detail: str = "",
    ) -> None:
        self.account = account
        self.holder = holder
        self.lock_id = lock_id
        self.acquired_at = acquired_at
        self.expires_at = expires_at
        since = f" since {acquired_at.isoformat()}" if acquired_at else ""
        until = f", lease until {expires_at.isoformat()}" if expires_at else ""
        hint = f"; if that writer is gone, run `reconcile unlock {lock_id}`" if lock_id else ""
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"account {account} is locked by {holder}{since}{until}"
            f" [lock {lock_id or 'unknown'}]{more}{hint}"
        )


class LockLost(Exception):
    """The lease was unlocked by the operator, taken over, or its OS lock went away."""


@dataclass(frozen=True)
class LockInfo:
    account: str
    lock_id: str
    holder: str
    host: str
    pid: int
    acquired_at: dt.datetime
    renewed_at: dt.datetime
    expires_at: dt.datetime
    expired: bool


def lease_name(account: str) -> str:
    return f"account:{account}"


def advisory_key(account: str) -> int:
    digest = hashlib.sha256(f"reconciler-account:{account}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _safe_file_stem(account: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", account) and not account.startswith("."):
        return account
    return "h-" + hashlib.sha256(account.encode()).hexdigest()[:32]


class _FileLocks:
    """Non-blocking file locks, one file per account, next to the SQLite database."""

    def __init__(self, lock_dir: Path) -> None:
        self._dir = lock_dir
        self._held: list[filelock.BaseFileLock] = []

    def try_acquire(self, account: str) -> bool:
        self._dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(
            self._dir / f"{_safe_file_stem(account)}.lock", timeout=0, thread_local=False
        )
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            return False
        self._held.append(lock)
        return True

    def alive(self) -> bool:
        return all(lock.is_locked for lock in self._held)

    def release_all(self) -> None:
        while self._held:
            self._held.pop().release(force=True)


class _AdvisoryLocks:
    """PostgreSQL session advisory locks on one dedicated connection held for the duration."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._keys: list[int] = []

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def try_acquire(self, account: str) -> bool:
        key = advisory_key(account)
        got = (
            self._connection()
            .execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            .scalar_one()
        )
        if got:
            self._keys.append(key)
        return bool(got)

    def alive(self) -> bool:
        if self._conn is None:
            return not self._keys
        try:
            self._conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def release_all(self) -> None:
        conn, self._conn = self._conn, None
        keys, self._keys = self._keys, []
        if conn is None:
            return
        try:
            for key in keys:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        except Exception:
            # A session we cannot talk to must not go back to the pool still holding locks.
            conn.invalidate()
        finally:
            conn.close()


class LockHandle:
    """A held writer lock over one or more accounts; use as a context manager."""

    def __init__(
        self,
        *,
        engine: Engine,
        clock: Clock,
        lock_id: str,
        accounts: tuple[str, ...],
        holder: str,
        ttl_seconds: float,
        os_locks: _FileLocks | _AdvisoryLocks,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.lock_id = lock_id
        self.accounts = accounts
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self._os_locks = os_locks
        self._released = False

    def renew(self, ttl_seconds: float | None = None) -> dt.datetime:
        """Extend the lease; raises LockLost if it is no longer ours. Returns the new expiry."""
        if self._released:
            raise LockLost(f"lock {self.lock_id} was already released")
        if not self._os_locks.alive():
            raise LockLost(f"lock {self.lock_id}: the OS-level lock was lost")
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        now = self._clock.now()
        expires = now + dt.timedelta(seconds=ttl)
        with write_tx(self._engine) as conn:
            result = conn.execute(
                update(Lease)
                .where(Lease.lock_id == self.lock_id)
                .values(renewed_at=now, expires_at=expires)
            )
            if result.rowcount != len(self.accounts):
                raise LockLost(
                    f"lock {self.lock_id}: the lease is gone (unlocked by an operator or taken "
                    "over); stop writing"
                )
        return expires

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            with write_tx(self._engine) as conn:
                conn.execute(delete(Lease).where(Lease.lock_id == self.lock_id))
        finally:
            self._os_locks.release_all()

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def lock_dir_for(engine: Engine) -> Path:
    db_file = sqlite_file(engine)
    if db_file is not None:
        return db_file.with_name(db_file.name + ".locks")
    return Path(tempfile.gettempdir()) / f"reconciler-memory-db-{os.getpid()}-{id(engine)}.locks"


def acquire(
    engine: Engine,
    clock: Clock,
    accounts: Sequence[str],
    holder: str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
) -> LockHandle:
    wanted = tuple(sorted(set(accounts)))
    if not wanted:
        raise ValueError("account_lock needs at least one account")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds={ttl_seconds} must be positive")
    os_locks: _FileLocks | _AdvisoryLocks = (
        _AdvisoryLocks(engine) if is_postgresql(engine) else _FileLocks(lock_dir_for(engine))
    )
    try:
        for account in wanted:
            if not os_locks.try_acquire(account) and not _retry_after_dead_holder(
                engine, os_locks, account
            ):
                raise _held_from_lease(engine, clock, account, detail="its process is running")
        lock_id = uuid.uuid4().hex[:16]
        now = clock.now()
        host, pid = socket.gethostname(), os.getpid()
        with write_tx(engine) as conn:
            for account in wanted:
                lease = conn.execute(
                    select(LEASES).where(LEASES.c.name == lease_name(account))
                ).first()
                if lease is not None:
                    if not _may_take_over(lease, now, host):
                        raise _lock_held(lease, detail="lease not expired")
                    conn.execute(delete(Lease).where(Lease.name == lease.name))
                conn.execute(
                    insert(Lease).values(
                        name=lease_name(account),
                        account=account,
                        lock_id=lock_id,
                        holder=holder,
                        host=host,
                        pid=pid,
                        acquired_at=now,
                        renewed_at=now,
                        expires_at=now + dt.timedelta(seconds=ttl_seconds),
                    )
                )
    except BaseException:
        os_locks.release_all()
        raise
    return LockHandle(
        engine=engine,
        clock=clock,
        lock_id=lock_id,
        accounts=wanted,
        holder=holder,
        ttl_seconds=ttl_seconds,
        os_locks=os_locks,
    )


def _may_take_over(lease: Any, now: dt.datetime, host: str) -> bool:
    if lease.expires_at <= now:
        return True
    return lease.host == host and (lease.pid == os.getpid() or not process_alive(lease.pid))


def _lock_held(lease: Any, *, detail: str = "") -> LockHeld:
    return LockHeld(
        account=lease.account,
        holder=f"{lease.holder} (pid {lease.pid} on {lease.host})",
        lock_id=lease.lock_id,
        acquired_at=lease.acquired_at,
        expires_at=lease.expires_at,
        detail=detail,
    )


LEASE_WRITE_GRACE_SECONDS = 2.0
DEAD_HOLDER_GRACE_SECONDS = 5.0


def _retry_after_dead_holder(engine: Engine, os_locks, account: str) -> bool:
    """PostgreSQL frees a dead session's advisory lock only once it notices the closed
    connection, a moment after the process died. When the lease names a process on this
    host that is gone, try again for a few seconds instead of refusing at once."""
    with read_tx(engine) as conn:
        lease = conn.execute(select(LEASES).where(LEASES.c.name == lease_name(account))).first()
    if lease is None or lease.host != socket.gethostname() or process_alive(lease.pid):
        return False
    # Waiting on the server to reap the dead session: there is no event to wait on.
    return bool(
        poll_until(
            lambda: os_locks.try_acquire(account),
            timeout=DEAD_HOLDER_GRACE_SECONDS,
            interval=0.05,
        )
    )


def _held_from_lease(engine: Engine, clock: Clock, account: str, *, detail: str) -> LockHeld:
    # The winner writes its lease row just after taking the OS lock; give it a moment so
    # the refusal can name the holder instead of "unknown".
    def read_lease():
        with read_tx(engine) as conn:
            return conn.execute(select(LEASES).where(LEASES.c.name == lease_name(account))).first()

    # Polling another process's commit: there is no cross-process event to wait on.
    lease = poll_until(read_lease, timeout=LEASE_WRITE_GRACE_SECONDS, interval=0.05)
    if lease is None:
        return LockHeld(
            account=account,
            holder="an unknown process (no lease row yet)",
            lock_id=None,
            acquired_at=None,
            detail=detail,
        )
    if lease.expires_at <= clock.now():
        detail = "lease expired but its process still holds the lock: it may be hung"
    return _lock_held(lease, detail=detail)


def unlock(conn: Connection, lock_id: str) -> list[LockInfo]:
    """Remove the lease rows of `lock_id` (inside the caller's transaction); returns them."""
    rows = conn.execute(select(LEASES).where(LEASES.c.lock_id == lock_id)).all()
    if rows:
        conn.execute(delete(Lease).where(Lease.lock_id == lock_id))
    return [_info(lease, None) for lease in rows]


def holders(engine: Engine, clock: Clock) -> list[LockInfo]:
    now = clock.now()
    with read_tx(engine) as conn:
        rows = conn.execute(select(LEASES).order_by(LEASES.c.account)).all()
        return [_info(lease, now) for lease in rows]


def _info(lease: Any, now: dt.datetime | None) -> LockInfo:
    return LockInfo(
        account=lease.account,
        lock_id=lease.lock_id,
        holder=lease.holder,
        host=lease.host,
        pid=lease.pid,
        acquired_at=lease.acquired_at,
        renewed_at=lease.renewed_at,
        expires_at=lease.expires_at,
        expired=now is not None and lease.expires_at <= now,
    )
