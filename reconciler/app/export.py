"""`reconcile export`: the store's orders, fills, ledger events, cycles and position snapshots
as CSV, JSON or Parquet, for reconciliation with the broker's statements.

Responsible for the one documented column layout of each export (`SCHEMAS`: the same columns
in every format; Parquet uses exactly these Arrow types), turning store views into those rows
and writing them. Reads the store only (the caller opens it read-only). Must not write to the
store, connect to a gateway or import an IB client library; pyarrow is imported only for
Parquet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

KINDS = ("orders", "fills", "events", "cycles", "positions")
FORMATS = ("csv", "json", "parquet")

# Column name -> Arrow type name ("string", "int64", "float64", "bool", "timestamp": UTC,
# microseconds). CSV and JSON carry the same columns: timestamps as ISO 8601 UTC text, empty
# (CSV) or null (JSON) for a missing value.
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "orders": (
        ("order_ref", "string"),
        ("plan_id", "string"),
        ("cycle_id", "int64"),
        ("leg", "int64"),
        ("account", "string"),
        ("con_id", "int64"),
        ("symbol", "string"),
        ("side", "string"),
        ("quantity", "float64"),
        ("order_type", "string"),
        ("limit_price", "float64"),
        ("arrival_price", "float64"),
        ("est_notional", "float64"),
        ("created_at", "timestamp"),
        ("status", "string"),
        ("filled_quantity", "float64"),
        ("avg_fill_price", "float64"),
    ),
    "fills": (
        ("exec_id", "string"),
        ("order_ref", "string"),
        ("account", "string"),
        ("con_id", "int64"),
        ("symbol", "string"),
        ("side", "string"),
        ("shares", "float64"),
        ("price", "float64"),
        ("time", "timestamp"),
        ("commission", "float64"),
        ("commission_currency", "string"),
        ("perm_id", "int64"),
    ),
    "events": (
        ("seq", "int64"),
        ("at", "timestamp"),
        ("kind", "string"),
        ("order_ref", "string"),
        ("account", "string"),
        ("payload", "string"),  # canonical JSON text, as hashed in the chain
        ("prev_hash", "string"),
        ("row_hash", "string"),
    ),
    "cycles": (
        ("id", "int64"),
        ("kind", "string"),
        ("status", "string"),
        ("started_at", "timestamp"),
        ("finished_at", "timestamp"),
        ("accounts", "string"),  # comma-separated
        ("desired_hash", "string"),
        ("git_commit", "string"),
        ("git_dirty", "bool"),
        ("plan_id", "string"),
        ("result", "string"),
        ("error", "string"),
        ("report", "string"),  # the cycle report as JSON text
    ),
    "positions": (
        ("account", "string"),
        ("snapshot_id", "int64"),
        ("cycle_id", "int64"),
        ("at", "timestamp"),
        ("con_id", "int64"),
        ("symbol", "string"),
        ("quantity", "float64"),
        ("avg_cost", "float64"),
    ),
}


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def to_row(kind: str, view: Any) -> dict[str, Any]:
    """One export row (native Python values: datetimes stay datetimes) from a store view."""
    if kind == "events":
        payload = view.payload
        return {
            "seq": view.seq,
            "at": view.at,
            "kind": view.kind,
            "order_ref": view.order_ref,
            "account": view.account,
            "payload": payload if isinstance(payload, str) else _json_text(dict(payload)),
            "prev_hash": view.prev_hash,
            "row_hash": view.row_hash,
        }
    if kind == "cycles":
        report = view.report if isinstance(view.report, Mapping) else None
        return {
            "id": view.id,
            "kind": view.kind,
            "status": view.status,
            "started_at": view.started_at,
            "finished_at": view.finished_at,
            "accounts": ",".join(view.accounts),
            "desired_hash": view.desired_hash,
            "git_commit": view.git_commit,
            "git_dirty": view.git_dirty,
            "plan_id": view.plan_id or (report or {}).get("plan_id"),
            "result": None if report is None else report.get("result"),
            "error": view.error,
            "report": _json_text(view.report),
        }
    values = view.as_dict()
    return {name: values.get(name) for name, _ in SCHEMAS[kind]}


def rows(kind: str, views: Iterable[Any]) -> list[dict[str, Any]]:
    return [to_row(kind, v) for v in views]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value


def write_csv(kind: str, records: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([name for name, _ in SCHEMAS[kind]])
    for record in records:
        writer.writerow(["" if record[n] is None else _plain(record[n]) for n, _ in SCHEMAS[kind]])
    return buffer.getvalue().encode("utf-8")


def write_json(kind: str, records: list[dict[str, Any]]) -> bytes:
    plain = [{n: _plain(r[n]) for n, _ in SCHEMAS[kind]} for r in records]
    return (json.dumps(plain, indent=2) + "\n").encode("utf-8")


def arrow_schema(kind: str):
    """The Parquet (Arrow) schema of an export: the documented contract of its columns."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([pa.field(name, types[t], nullable=True) for name, t in SCHEMAS[kind]])


def write_parquet(kind: str, records: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records, schema=arrow_schema(kind))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def export(
    store: Any,
    kind: str,
    fmt: str,
    *,
    account: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[bytes, int]:
    """The export of `kind` in `fmt` and its row count. `since` is inclusive, `until`
    exclusive; times are those of the row (order created, fill executed, event appended,
    cycle started, snapshot taken)."""
    if kind not in KINDS:
        raise ValueError(f"unknown export {kind!r} (one of {', '.join(KINDS)})")
    records = rows(kind, store.rows_between(kind, account=account, since=since, until=until))
    writer = {"csv": write_csv, "json": write_json, "parquet": write_parquet}[fmt]
    return writer(kind, records), len(records)
