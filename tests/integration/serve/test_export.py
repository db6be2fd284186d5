"""`reconcile export` round trips: what is exported (CSV, JSON, Parquet) equals what the store
of one real apply holds, and Parquet files carry the documented schema."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json

import pytest

KINDS = ("orders", "fills", "events", "cycles", "positions")


@pytest.mark.parametrize("kind", KINDS)
def test_parquet_export_has_the_documented_schema_and_the_store_s_rows(kind, readonly_store):
    import pyarrow.parquet as pq

    from reconciler.app.export import arrow_schema, export

    data, count = export(readonly_store, kind, "parquet")
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.equals(arrow_schema(kind), check_metadata=False)
    stored = readonly_store.rows_between(kind)
    assert table.num_rows == count == len(stored) > 0


def test_exported_orders_and_fills_carry_the_store_s_values(applied, readonly_store, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "fills.parquet"
    result = applied.reconcile("export", "fills", "--format", "parquet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert b"Exported 7 fills row(s)" in result.stderr
    fills = {row["exec_id"]: row for row in pq.read_table(out).to_pylist()}
    for fill in readonly_store.list_fills(limit=100):
        row = fills[fill.exec_id]
        assert (row["shares"], row["price"], row["commission"]) == (
            fill.shares,
            fill.price,
            fill.commission,
        )
        assert row["time"] == fill.time

    orders = json.loads(applied.reconcile("export", "orders", "--format", "json").stdout)
    by_ref = {o["order_ref"]: o for o in orders}
    for order in readonly_store.list_orders(limit=100):
        row = by_ref[order.order_ref]
        assert (row["side"], row["quantity"], row["status"]) == (
            order.side,
            order.quantity,
            order.status,
        )
        assert row["created_at"] == order.created_at.isoformat()


def test_csv_export_filters_by_account_and_time(applied, readonly_store):
    rows = list(
        csv.DictReader(
            io.StringIO(
                applied.reconcile("export", "positions", "--account", "DU0000002").stdout.decode()
            )
        )
    )
    stored = readonly_store.rows_between("positions", account="DU0000002")
    assert len(rows) == len(stored) > 0 and {r["account"] for r in rows} == {"DU0000002"}
    from reconciler.app.export import export

    old = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    events, count = export(readonly_store, "events", "csv", until=old)
    assert count == 0
    assert events.decode().splitlines() == [
        "seq,at,kind,order_ref,account,payload,prev_hash,row_hash"
    ]
    cycles = list(
        csv.DictReader(io.StringIO(export(readonly_store, "cycles", "csv", since=old)[0].decode()))
    )
    assert [(c["id"], c["status"]) for c in cycles] == [("1", "ok")]


def test_exported_events_keep_the_hash_chain(readonly_store):
    from reconciler.app.export import export

    events = json.loads(export(readonly_store, "events", "json")[0])
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(b["prev_hash"] == a["row_hash"] for a, b in itertools.pairwise(events))
    assert len(events) == readonly_store.verify_ledger().checked


def test_export_with_a_bad_time_exits_1_naming_the_flag(applied):
    result = applied.reconcile("export", "fills", "--since", "yesterday")
    assert result.returncode == 1
    assert b"--since 'yesterday'" in result.stderr


def test_export_never_creates_a_store(applied, tmp_path):
    missing = tmp_path / "absent" / "reconciler.db"
    result = applied.reconcile(
        "export", "orders", env={"RECONCILER_DB_URL": f"sqlite:///{missing}"}
    )
    assert result.returncode == 1 and b"read-only" in result.stderr
    assert not missing.exists()
