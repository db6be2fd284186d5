"""The event ledger is append-only, hash-chained, serialised across processes, and
`verify_ledger` names the first row that was edited or deleted (on every backend)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from store_worker import Worker

ZEROS = "0" * 64


def _append_five(store):
    return [
        store.append_event(
            "STATUS", order_ref=f"rc-p-00{i}", account="DU0000001", payload={"i": i, "note": "ok"}
        )
        for i in range(1, 6)
    ]


def test_appended_events_form_a_chain_that_verifies(store, clock):
    events = _append_five(store)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == ZEROS
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(events))
    result = store.verify_ledger()
    assert (result.ok, result.checked, result.first_bad_seq) == (True, 5, None)


def test_row_hash_follows_the_documented_formula(store, clock):
    event = store.append_event(
        "ACK", order_ref="rc-x-001", account="DU0000001", payload={"perm_id": 7, "price": 1.5}
    )
    document = json.dumps(
        {
            "seq": 1,
            "at": "2025-01-02T14:30:00.000000+00:00",
            "kind": "ACK",
            "order_ref": "rc-x-001",
            "account": "DU0000001",
            "payload": {"perm_id": 7, "price": 1.5},
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert event.row_hash == hashlib.sha256((ZEROS + document).encode()).hexdigest()


def test_an_edited_row_is_detected_and_named(store, backend):
    _append_five(store)
    backend.tamper(
        store,
        "order_events",
        'UPDATE order_events SET payload = \'{"i":3,"note":"forged"}\' WHERE seq = 3',
    )
    result = store.verify_ledger()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.checked == 2
    assert "seq=3" in result.reason and "edited" in result.reason


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(store, backend):
    _append_five(store)
    forged_hash = "f" * 64
    backend.tamper(
        store,
        "order_events",
        f"UPDATE order_events SET kind = 'FILL', row_hash = '{forged_hash}' WHERE seq = 2",
    )
    result = store.verify_ledger()
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_a_deleted_row_is_detected_and_named(store, backend):
    _append_five(store)
    backend.tamper(store, "order_events", "DELETE FROM order_events WHERE seq = 3")
    result = store.verify_ledger()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "seq=3 is missing" in result.reason and "deleted" in result.reason


def test_a_deleted_last_row_is_detected_through_the_chain_head(store, backend):
    _append_five(store)
    backend.tamper(store, "order_events", "DELETE FROM order_events WHERE seq = 5")
    result = store.verify_ledger()
    assert (result.ok, result.checked, result.first_bad_seq) == (False, 4, 5)
    assert "missing" in result.reason


@pytest.mark.parametrize(
    ("table", "update_sql", "delete_sql"),
    [
        ("order_events", "UPDATE order_events SET kind = 'FILL'", "DELETE FROM order_events"),
        ("fills", "UPDATE fills SET shares = 999", "DELETE FROM fills"),
        ("halts", "UPDATE halts SET reason = 'nothing happened'", "DELETE FROM halts"),
    ],
)
def test_update_delete_and_truncate_of_append_only_tables_are_refused_by_triggers(
    store, backend, clock, table, update_sql, delete_sql
):
    _append_five(store)
    store.record_fill(
        exec_id="e1",
        order_ref=None,
        account="DU0000001",
        con_id=1,
        symbol="VTI",
        side="BUY",
        shares=1,
        price=10.0,
        time=clock.now(),
    )
    store.halt("test", "ops")
    statements = [update_sql, delete_sql]
    if backend.has_truncate:
        statements.append(f"TRUNCATE {table}")
    for sql in statements:
        with (
            pytest.raises(DatabaseError, match=f"table {table} is append-only"),
            store.engine.begin() as conn,
        ):
            conn.execute(text(sql))
    assert store.verify_ledger().ok
    assert (len(store.recent_events()), len(store.list_fills())) == (6, 1)  # five and the halt


def test_a_plain_sqlite_client_is_refused_too(sqlite_store, raw_sqlite):
    _append_five(sqlite_store)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw_sqlite.execute("DELETE FROM order_events WHERE seq = 1")


def test_concurrent_appends_from_two_processes_keep_one_valid_chain(store, backend):
    per_worker = 25
    workers = [Worker("append", backend.url, str(per_worker), tag) for tag in ("a", "b")]
    try:
        for worker in workers:
            worker.expect("READY")
        for worker in workers:
            worker.send("GO")
        for worker in workers:
            worker.expect("DONE")
        assert [worker.wait() for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()
    result = store.verify_ledger()
    assert (result.ok, result.checked) == (True, 2 * per_worker)
    events = store.recent_events(limit=1000)
    assert sorted(e.seq for e in events) == list(range(1, 2 * per_worker + 1))
    for tag in ("a", "b"):
        mine = sorted((e for e in events if e.payload["tag"] == tag), key=lambda e: e.seq)
        assert [e.payload["i"] for e in mine] == list(range(per_worker))


def test_a_payload_that_is_not_plain_json_is_refused(store):
    with pytest.raises(ValueError, match="not plain JSON"):
        store.append_event("STATUS", payload={"x": object()})
    assert store.verify_ledger().checked == 0


@pytest.mark.parametrize("kind", ["fill", "FILLED", "CANCELED", "INTNET", ""])
def test_an_unknown_event_kind_is_refused_and_nothing_is_stored(store, kind):
    with pytest.raises(ValueError, match="unknown ledger event kind"):
        store.append_event(kind, payload={})
    assert store.verify_ledger().checked == 0


def test_every_known_event_kind_is_stored_as_its_plain_name(store):
    from reconciler.model.status import EventKind

    for kind in EventKind:
        store.append_event(kind, payload={})
    assert store.verify_ledger().checked == len(EventKind)
    kinds = [e.kind for e in sorted(store.recent_events(limit=100), key=lambda e: e.seq)]
    assert kinds == [k.value for k in EventKind]
    assert all(type(k) is str for k in kinds)


def test_payload_datetimes_are_stored_as_iso_utc(store):
    at = dt.datetime(2025, 1, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    event = store.append_event("STATUS", payload={"when": at})
    assert event.payload == {"when": "2025-01-02T14:30:00+00:00"}
    assert store.recent_events()[0].payload == event.payload
