"""The append-only, SHA-256 hash-chained event ledger (order_events).

Responsible for the event kinds, the canonical JSON and hash formula, appending one event
inside a caller's write transaction (serialised through the locked `ledger_head` row, so
two processes never fork the chain) and verifying the whole chain. Must not update or
delete events (there is no such path; database triggers refuse it too) and must not open
its own transactions: the store decides what commits together.

Hash formula (reproducible by an auditor with any SHA-256 and JSON tool):

    row_hash = sha256_hex(prev_hash + canonical({"seq": seq, "at": at, "kind": kind,
                                                  "order_ref": order_ref, "account": account,
                                                  "payload": payload}))

where `canonical` is JSON with sorted keys, separators "," and ":", UTF-8, no NaN; `at` is
the ISO 8601 UTC time with microseconds ("2025-01-02T14:30:00.000000+00:00"); `prev_hash` of
the first row (seq 1) is 64 zeros; the stored `payload` column is canonical(payload).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from reconciler.model.status import FINAL_EVENT_KINDS, EventKind
from reconciler.store.models import GENESIS_HASH, LedgerHead, OrderEvent, to_jsonable

UTC = dt.UTC

INTENT = EventKind.INTENT
ACK = EventKind.ACK
REJ = EventKind.REJ
PARTIAL = EventKind.PARTIAL
FILL = EventKind.FILL
CANCEL = EventKind.CANCEL
PNL_SNAPSHOT = EventKind.PNL_SNAPSHOT
RESOLVED = EventKind.RESOLVED
BREAK = EventKind.BREAK
STATUS = EventKind.STATUS
HALT = EventKind.HALT
RESUME = EventKind.RESUME
UNLOCK = EventKind.UNLOCK

KNOWN_KINDS = frozenset(EventKind)
# Key of `Connection.info` under which a writer transaction keeps the ledger head it locked.
HEAD_CACHE = "reconciler_ledger_head"
# An order with one of these after its INTENT has a known, final outcome.
FINAL_KINDS = tuple(str(kind) for kind in sorted(FINAL_EVENT_KINDS))


# Built once and executed with a parameter dict: a statement built per event with its values
# inlined costs SQLAlchemy more CPU (coercing and cache-keying every value) than the insert.
_EVENTS = cast(Table, OrderEvent.__table__)
_HEAD = cast(Table, LedgerHead.__table__)
_INSERT_EVENT = insert(_EVENTS)
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.row_hash).where(_HEAD.c.id == 1).with_for_update()
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == 1)


@dataclass(frozen=True)
class EventRow:
    seq: int
    at: dt.datetime
    kind: str
    order_ref: str | None
    account: str | None
    payload: Mapping[str, Any]
    prev_hash: str
    row_hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str


def canonical_json(value: Any) -> str:
    """The one JSON spelling of `value` that the hashes are computed over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def iso_utc(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r} in the ledger")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def compute_row_hash(
    prev_hash: str,
    *,
    seq: int,
    at: dt.datetime,
    kind: str,
    order_ref: str | None,
    account: str | None,
    payload: Any,
) -> str:
    document = canonical_json(
        {
            "seq": seq,
            "at": iso_utc(at),
            "kind": kind,
            "order_ref": order_ref,
            "account": account,
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + document).encode("utf-8")).hexdigest()


def check_kind(kind: str) -> str:
    """The kind as stored, or ValueError for anything outside `EventKind` (a typo would
    otherwise be stored and never count as final)."""
    try:
        return str(EventKind(kind))
    except ValueError:
        known = ", ".join(sorted(EventKind))
        raise ValueError(f"unknown ledger event kind {kind!r} (known: {known})") from None


def append_event(
    conn: Connection,
    *,
    at: dt.datetime,
    kind: str,
    payload: Mapping[str, Any],
    order_ref: str | None = None,
    account: str | None = None,
) -> EventRow:
    """Append one event inside the caller's write transaction; the head row lock serialises
    appenders (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the lock)."""
    check_kind(kind)
    try:
        plain = to_jsonable(dict(payload))
        payload_text = canonical_json(plain)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{kind} event payload is not plain JSON: {exc}") from None
    at = at.astimezone(UTC)
    # Inside the background writer's transaction the head, once read (and locked), is kept
    # on the connection: this transaction is then its only writer until it commits.
    cache = conn.info.get(HEAD_CACHE)
    if cache is not None and "head" in cache:
        head_seq, head_hash = cache["head"]
    else:
        head = conn.execute(_LOCK_HEAD).one()
        head_seq, head_hash = head.seq, head.row_hash
    seq = head_seq + 1
    row_hash = compute_row_hash(
        head_hash,
        seq=seq,
        at=at,
        kind=kind,
        order_ref=order_ref,
        account=account,
        payload=plain,
    )
    conn.execute(
        _INSERT_EVENT,
        {
            "seq": seq,
            "at": at,
            "kind": kind,
            "order_ref": order_ref,
            "account": account,
            "payload": payload_text,
            "prev_hash": head_hash,
            "row_hash": row_hash,
        },
    )
    if cache is None:
        conn.execute(_UPDATE_HEAD, {"seq": seq, "row_hash": row_hash})
    else:
        cache["head"] = (seq, row_hash)  # written once, by `write_cached_head`, at the end
    return EventRow(seq, at, kind, order_ref, account, plain, head_hash, row_hash)


def write_cached_head(conn: Connection) -> None:
    """Store the head a writer transaction kept on its connection (before it commits)."""
    cache = conn.info.get(HEAD_CACHE)
    if cache and "head" in cache:
        seq, row_hash = cache["head"]
        conn.execute(_UPDATE_HEAD, {"seq": seq, "row_hash": row_hash})


def row_to_event(row: Any) -> EventRow:
    return EventRow(
        seq=row.seq,
        at=row.at,
        kind=row.kind,
        order_ref=row.order_ref,
        account=row.account,
        payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
        row_hash=row.row_hash,
    )


EVENT_COLUMNS = (
    OrderEvent.seq,
    OrderEvent.at,
    OrderEvent.kind,
    OrderEvent.order_ref,
    OrderEvent.account,
    OrderEvent.payload,
    OrderEvent.prev_hash,
    OrderEvent.row_hash,
)


def verify_chain(conn: Connection, *, batch: int = 2000) -> VerifyResult:
    """Walk the chain in seq order; the first broken link is named with its seq and why."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    rows = conn.execute(
        select(*EVENT_COLUMNS).order_by(OrderEvent.seq).execution_options(yield_per=batch)
    )
    for row in rows:
        problem = _check_row(row, expected_seq, prev_hash)
        if problem is not None:
            bad_seq, reason = problem
            return VerifyResult(False, checked, bad_seq, reason)
        checked += 1
        expected_seq = row.seq + 1
        prev_hash = row.row_hash
    head = conn.execute(select(LedgerHead.seq, LedgerHead.row_hash)).all()
    if len(head) != 1:
        return VerifyResult(False, checked, None, f"ledger_head has {len(head)} rows, not 1")
    last_seq = expected_seq - 1
    if head[0].seq > last_seq:
        return VerifyResult(
            False,
            checked,
            last_seq + 1,
            f"rows seq={last_seq + 1}..{head[0].seq} are missing: the head says the chain "
            f"ends at seq={head[0].seq} but the last row is seq={last_seq} (rows deleted)",
        )
    if head[0].seq != last_seq or head[0].row_hash != prev_hash:
        return VerifyResult(
            False,
            checked,
            last_seq or None,
            f"ledger_head (seq={head[0].seq}) does not match the last row (seq={last_seq})",
        )
    return VerifyResult(True, checked, None, f"{checked} events, chain intact")


def _check_row(row: Any, expected_seq: int, prev_hash: str) -> tuple[int, str] | None:
    if row.seq != expected_seq:
        if row.seq > expected_seq:
            missing = (
                f"seq={expected_seq}"
                if row.seq == expected_seq + 1
                else f"seq={expected_seq}..{row.seq - 1}"
            )
            return expected_seq, (
                f"row {missing} is missing (deleted): seq={row.seq} follows seq={expected_seq - 1}"
            )
        return row.seq, f"row seq={row.seq} is out of order (expected seq={expected_seq})"
    if row.prev_hash != prev_hash:
        return row.seq, (
            f"row seq={row.seq}: prev_hash does not match the row_hash of seq={row.seq - 1} "
            "(a row was replaced, deleted or re-hashed)"
        )
    try:
        payload = json.loads(row.payload)
    except ValueError:
        return row.seq, f"row seq={row.seq}: payload is not valid JSON (edited)"
    if canonical_json(payload) != row.payload:
        return row.seq, f"row seq={row.seq}: payload is not in canonical form (edited)"
    expected_hash = compute_row_hash(
        prev_hash,
        seq=row.seq,
        at=row.at,
        kind=row.kind,
        order_ref=row.order_ref,
        account=row.account,
        payload=payload,
    )
    if expected_hash != row.row_hash:
        return row.seq, (
            f"row seq={row.seq} ({row.kind} {row.order_ref or '-'}): content does not match "
            "its row_hash (edited after it was written)"
        )
    return None
