"""One writer per account: an OS-level lock proves the holder is alive (a file lock next to
the SQLite file, a session advisory lock on PostgreSQL), a lease row names it; stale leases
are taken over, the operator can unlock. The same rules on every backend."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert
from store_worker import Worker

from reconciler.store import LockHeld, LockLost
from reconciler.store.models import Lease


@pytest.fixture
def holder_process(store, backend):
    worker = Worker("hold", backend.url, "DU0000001", "apply-by-worker")
    lock_id = worker.expect("HELD")
    yield worker, lock_id
    worker.kill()


def test_a_second_process_is_refused_naming_the_holder_until_the_holder_releases(
    store, holder_process
):
    worker, lock_id = holder_process
    [lease] = store.lock_holders()
    assert (lease.account, lease.lock_id, lease.holder) == ("DU0000001", lock_id, "apply-by-worker")
    assert lease.pid == worker.pid

    with pytest.raises(LockHeld) as caught:
        store.account_lock(["DU0000001"], "apply-by-test")
    held = caught.value
    assert (held.account, held.lock_id, held.acquired_at) == (
        "DU0000001",
        lock_id,
        lease.acquired_at,
    )
    assert "apply-by-worker" in held.holder and f"pid {worker.pid}" in held.holder
    assert f"reconcile unlock {lock_id}" in str(held)

    # A lock over several accounts takes none of them when one is held...
    with pytest.raises(LockHeld, match="DU0000001"):
        store.account_lock(["DU0000002", "DU0000001", "DU0000003"], "apply-by-test")
    assert [h.account for h in store.lock_holders()] == ["DU0000001"]
    # ...and the other accounts stay free.
    with store.account_lock(["DU0000002", "DU0000003"], "apply-by-test") as other:
        assert other.accounts == ("DU0000002", "DU0000003")

    worker.send("release")
    worker.expect("RELEASED")
    assert worker.wait() == 0
    assert store.lock_holders() == []
    with store.account_lock(["DU0000001"], "apply-by-test") as handle:
        assert [h.lock_id for h in store.lock_holders()] == [handle.lock_id]
    assert store.lock_holders() == []


def test_the_lease_of_a_crashed_holder_is_taken_over(store, holder_process):
    worker, old_lock_id = holder_process
    worker.send("crash")
    assert worker.wait() == 0
    assert [h.lock_id for h in store.lock_holders()] == [old_lock_id]  # left behind
    with store.account_lock(["DU0000001"], "apply-by-test") as handle:
        assert handle.lock_id != old_lock_id
        assert [h.holder for h in store.lock_holders()] == ["apply-by-test"]


def test_an_expired_lease_is_still_refused_while_its_holder_runs(store, holder_process):
    _, lock_id = holder_process
    [lease] = store.lock_holders()
    store.clock.set(lease.expires_at + dt.timedelta(seconds=1))
    with pytest.raises(LockHeld, match="may be hung") as caught:
        store.account_lock(["DU0000001"], "apply-by-test")
    assert caught.value.lock_id == lock_id
    assert store.lock_holders()[0].expired is True


def _lease_from_another_host(store, *, ttl: float) -> str:
    now = store.clock.now()
    with store.engine.begin() as conn:
        conn.execute(
            insert(Lease).values(
                name="account:DU0000001",
                account="DU0000001",
                lock_id="remote0001",
                holder="apply on the other box",
                host="other-host.example",
                pid=4242,
                acquired_at=now,
                renewed_at=now,
                expires_at=now + dt.timedelta(seconds=ttl),
            )
        )
    return "remote0001"


def test_a_lease_whose_holder_cannot_be_checked_blocks_until_it_expires(store):
    lock_id = _lease_from_another_host(store, ttl=300)
    with pytest.raises(LockHeld) as caught:
        store.account_lock(["DU0000001"], "apply-by-test")
    assert caught.value.lock_id == lock_id and "other-host.example" in caught.value.holder
    store.clock.advance(299)
    with pytest.raises(LockHeld):
        store.account_lock(["DU0000001"], "apply-by-test")
    store.clock.advance(1)
    assert store.lock_holders()[0].expired is True
    with store.account_lock(["DU0000001"], "apply-by-test") as handle:
        assert [h.lock_id for h in store.lock_holders()] == [handle.lock_id]


def test_unlock_removes_the_lease_and_records_who_did_it(store):
    lock_id = _lease_from_another_host(store, ttl=300)
    assert store.unlock(lock_id, who="ops@desk") is True
    assert store.unlock(lock_id, who="ops@desk") is False
    assert store.lock_holders() == []
    [event] = store.recent_events()
    assert event.kind == "UNLOCK"
    assert event.payload["lock_id"] == lock_id and event.payload["who"] == "ops@desk"
    assert event.payload["accounts"] == ["DU0000001"]
    with store.account_lock(["DU0000001"], "apply-by-test"):
        pass


def test_renew_extends_the_lease_and_fails_once_the_operator_unlocked_it(store):
    with store.account_lock(["DU0000001"], "apply-by-test", ttl_seconds=60) as handle:
        store.clock.advance(50)
        expires = handle.renew()
        assert expires == store.clock.now() + dt.timedelta(seconds=60)
        assert store.lock_holders()[0].expires_at == expires
        assert store.unlock(handle.lock_id)
        with pytest.raises(LockLost, match="unlocked"):
            handle.renew()


def test_in_process_second_acquirer_is_refused_too(store):
    with store.account_lock("DU0000001", "first"), pytest.raises(LockHeld, match="first"):
        store.account_lock("DU0000001", "second")
