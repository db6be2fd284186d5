"""The background ledger writer: order, group commits, durability of INTENTs, failures."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from reconciler.model.plan import order_ref
from reconciler.store import DuplicateIntent


def planned(leg: int) -> dict:
    """An order as the executor writes it with its INTENT (the fields the store requires)."""
    return {"leg": leg, "account": "DU0000001", "symbol": "VTI", "con_id": 12345,
            "side": "BUY", "quantity": 10.0, "order_type": "MKT"}


def kinds_on_disk(raw: sqlite3.Connection) -> list[tuple[str, str | None]]:
    return raw.execute("SELECT kind, order_ref FROM order_events ORDER BY seq").fetchall()


def test_deferred_events_are_written_in_the_order_asked_and_the_chain_verifies(store):
    refs = [order_ref("p1", leg) for leg in range(3)]
    store.record_intents([(planned(leg), ref) for leg, ref in enumerate(refs)],
                         plan_id="p1", cycle_id=None)
    for ref in refs:
        store.append_event_later("ACK", order_ref=ref, account="DU0000001", payload={"n": 1})
    store.append_event_later("FILL", order_ref=refs[0], account="DU0000001", payload={})
    events = store.recent_events(limit=10)  # a read waits for the deferred writes
    assert [(e.kind, e.order_ref) for e in sorted(events, key=lambda e: e.seq)] == [
        *(("INTENT", r) for r in refs), *(("ACK", r) for r in refs), ("FILL", refs[0])
    ]
    assert store.verify_ledger().ok


def test_record_intents_returns_only_once_every_intent_is_on_disk(sqlite_store, raw_sqlite):
    sqlite_store.append_event_later("STATUS", payload={"warm": "the writer is running"})
    refs = [order_ref("p2", leg) for leg in range(5)]
    sqlite_store.record_intents([(planned(leg), ref) for leg, ref in enumerate(refs)],
                                plan_id="p2", cycle_id=None)
    # Read around the store, by another connection: what an order may rely on is committed.
    on_disk = [ref for kind, ref in kinds_on_disk(raw_sqlite) if kind == "INTENT"]
    assert on_disk == refs


def test_a_failing_intent_batch_commits_none_of_its_intents(sqlite_store, raw_sqlite):
    ref = order_ref("p3", 0)
    sqlite_store.record_intent(planned(0), order_ref=ref, plan_id="p3", cycle_id=None)
    sqlite_store.append_event_later("STATUS", payload={})  # the writer is running
    with pytest.raises(DuplicateIntent):
        sqlite_store.record_intents(
            [(planned(1), order_ref("p3", 1)), (planned(0), ref)], plan_id="p3", cycle_id=None
        )
    intents = [r for kind, r in kinds_on_disk(raw_sqlite) if kind == "INTENT"]
    assert intents == [ref]  # leg 1 was not committed either: it must not be sent


def test_a_deferred_write_that_failed_surfaces_at_the_next_flush_and_not_again(store):
    store.append_event_later("STATUS", payload={"ok": 1})
    store._defer(lambda conn: conn.exec_driver_sql("SELECT * FROM no_such_table"))
    store.append_event_later("STATUS", payload={"ok": 2})
    with pytest.raises(Exception, match="no_such_table"):
        store.flush()
    store.flush()
    # The failing job's savepoint undid it alone: the events around it are committed.
    assert [e.payload for e in store.recent_events(limit=5)] == [{"ok": 2}, {"ok": 1}]


def test_deferred_writes_share_transactions(sqlite_store):
    gate = threading.Event()
    sqlite_store._defer(lambda conn: gate.wait(5))  # holds the writer while the rest queue
    for n in range(50):
        sqlite_store.append_event_later("STATUS", payload={"n": n})
    gate.set()
    sqlite_store.flush()
    writer = sqlite_store.writer
    assert writer.jobs_written == 51
    assert writer.transactions <= 3


def test_a_fill_recorded_later_is_recorded_once_with_its_partial_event(store):
    ref = order_ref("p4", 0)
    store.record_intent(planned(0), order_ref=ref, plan_id="p4", cycle_id=None)
    fill = dict(exec_id="E1", order_ref=ref, account="DU0000001", shares=10, price=250.0)
    store.record_fill_later(partial_event={"exec_id": "E1"}, **fill)
    store.record_fill_later(partial_event={"exec_id": "E1"}, **fill, commission=1.0)
    kinds = [e.kind for e in store.order_events(ref)]
    assert kinds == ["INTENT", "PARTIAL"]
    [recorded] = store.list_fills()
    assert recorded.commission == 1.0  # the repeat brought the commission, recorded once


def test_a_job_failing_after_its_event_leaves_the_chain_whole_for_the_jobs_after_it(store):
    from reconciler.store import ledger

    gate = threading.Event()
    store._defer(lambda conn: gate.wait(5))  # the jobs below share one transaction

    def append_then_fail(conn):
        ledger.append_event(conn, at=store._now(), kind="STATUS", payload={"undone": True})
        raise RuntimeError("after its event")

    store.append_event_later("STATUS", payload={"n": 1})
    store._defer(append_then_fail)
    store.append_event_later("STATUS", payload={"n": 2})
    gate.set()
    with pytest.raises(RuntimeError, match="after its event"):
        store.flush()
    assert [e.payload for e in store.recent_events(limit=5)] == [{"n": 2}, {"n": 1}]
    assert store.verify_ledger().ok
