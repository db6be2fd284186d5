"""The `Store`: the one object the rest of the reconciler uses to persist and read its record.

Responsible for opening the database (creating or upgrading it), and for the writes whose
grouping matters for safety: an order row and its INTENT event commit together before the
order is sent; a halt and its ledger event commit together; fills are de-duplicated by
execId. Reads delegate to queries.py, the hash chain to ledger.py, account locks to locks.py.
Must not talk to a broker, print, or update/delete ledger rows, fills or halts.
"""

from __future__ import annotations

import atexit
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from reconciler.model.clock import Clock, SystemClock
from reconciler.store import ledger, locks, queries
from reconciler.store.engine import (
    configure_engine,
    is_postgresql,
    make_engine,
    read_tx,
    readonly_sqlite_file,
    write_tx,
)
from reconciler.store.migrate import upgrade_to_head
from reconciler.store.models import (
    Cycle,
    CycleAccount,
    DesiredSnapshot,
    Fill,
    FillCommission,
    Halt,
    OrderRow,
    PlanRow,
    PositionSnapshot,
    PositionSnapshotItem,
    RiskDenial,
    to_jsonable,
)
from reconciler.store.writer import LedgerWriter

CYCLE_KINDS = frozenset({"plan", "apply", "demo", "run", "health"})
UTC = dt.UTC


class DuplicateIntent(Exception):
    """An INTENT for this orderRef was already written: the order must not be sent again."""

    def __init__(self, order_ref: str) -> None:
        self.order_ref = order_ref
        super().__init__(
            f"orderRef {order_ref} already has an INTENT in the ledger; it is never sent twice"
        )


class PlanConflict(Exception):
    """A plan with this plan_id was recorded before with a different body."""


def _get(source: Any, name: str, default: Any = None) -> Any:
    if isinstance(source, Mapping):
        return source.get(name, default)
    return getattr(source, name, default)


def _order_body(order: Mapping[str, Any] | Any, order_ref: str) -> dict[str, Any]:
    body = to_jsonable(order)
    if not isinstance(body, dict):
        raise TypeError(f"order must be a mapping or dataclass, got {type(order).__name__}")
    missing = [f for f in ("account", "symbol", "side", "quantity") if body.get(f) is None]
    if missing:
        raise ValueError(f"order {order_ref}: missing field(s) {', '.join(missing)}")
    return body


# Built once and executed with a parameter dict: a statement built per order with its values
# inlined costs SQLAlchemy more CPU (coercing and cache-keying every value) than the insert.
_INSERT_ORDER = insert(cast(Table, OrderRow.__table__))


def _insert_intent(
    conn: Connection,
    body: dict[str, Any],
    order_ref: str,
    plan_id: str | None,
    cycle_id: int | None,
    now: dt.datetime,
) -> None:
    """The order row and its INTENT event, inside the caller's write transaction."""
    conn.execute(
        _INSERT_ORDER,
        {
            "order_ref": order_ref,
            "plan_id": plan_id,
            "cycle_id": cycle_id,
            "leg": body.get("leg"),
            "account": body["account"],
            "con_id": body.get("con_id"),
            "symbol": body["symbol"],
            "side": body["side"],
            "quantity": float(body["quantity"]),
            "order_type": body.get("order_type"),
            "limit_price": body.get("limit_price"),
            "arrival_price": body.get("arrival_price"),
            "est_notional": body.get("est_notional"),
            "created_at": now,
            "body": body,
        },
    )
    ledger.append_event(
        conn,
        at=now,
        kind=ledger.INTENT,
        order_ref=order_ref,
        account=body["account"],
        payload={"plan_id": plan_id, "cycle_id": cycle_id, "order": body},
    )


class Store:
    """Persistence for cycles, plans, orders, the event ledger, fills, positions, risk
    denials, locks and the halt switch. Synchronous; safe to share within a process."""

    def __init__(self, engine: Engine, clock: Clock, *, owns_engine: bool) -> None:
        self.engine = engine
        self.clock = clock
        self._owns_engine = owns_engine
        # Started by the first deferred write (an apply's order events); see store/writer.py.
        self._writer: LedgerWriter | None = None
        self._deferred_error: BaseException | None = None
        self._fill_insert: Any = None
        self._commission_insert: Any = None

    # ------------------------------------------------------------------ the writer

    def _ledger_writer(self) -> LedgerWriter:
        if self._writer is None:
            self._writer = LedgerWriter(self.engine)
            # A command that exits without closing the store still drains the writer and
            # closes its connections: the writer thread's SQLite connection would otherwise
            # never close, leaving the WAL unmerged beside the database file (a copy of the
            # file alone would then be older than the ledger it seems to be).
            atexit.register(
                _close_at_exit, self._writer, self.engine if self._owns_engine else None
            )
        return self._writer

    @property
    def writer(self) -> LedgerWriter | None:
        """The background writer, once an apply started it (its `busy_seconds` is the time
        it spent writing)."""
        return self._writer

    def flush(self) -> None:
        """Wait until every deferred write is committed; raise the first that failed.

        Every read and every direct write flushes first, so the store reads its own writes
        and the hash chain keeps the order in which writes were asked for."""
        if self._writer is not None:
            self._writer.flush()
        self._raise_deferred()

    def _raise_deferred(self) -> None:
        error, self._deferred_error = self._deferred_error, None
        if error is not None:
            raise error

    def _defer(self, job: Any) -> None:
        future = self._ledger_writer().submit(job)

        def keep_error(done: Any) -> None:
            error = done.exception()
            if error is not None and self._deferred_error is None:
                self._deferred_error = error

        future.add_done_callback(keep_error)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self.flush()
        with read_tx(self.engine) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self.flush()
        with write_tx(self.engine) as conn:
            yield conn

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password masked, for status output."""
        readonly_file = readonly_sqlite_file(self.engine)
        if readonly_file is not None:
            return f"sqlite:///{readonly_file}"
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _dialect_insert(self) -> Any:
        # Imported on use: the PostgreSQL dialect costs import time on SQLite-only commands.
        if is_postgresql(self.engine):
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert

    # Statements run once per fill or commission are built once per store and executed with
    # a parameter dict (see `_INSERT_ORDER`).

    def _insert_new_fill(self) -> Any:
        if self._fill_insert is None:
            table = cast(Table, Fill.__table__)
            self._fill_insert = (
                self._dialect_insert()(table)
                .on_conflict_do_nothing(index_elements=["exec_id"])
                .returning(table.c.id)
            )
        return self._fill_insert

    def _insert_new_commission(self) -> Any:
        if self._commission_insert is None:
            table = cast(Table, FillCommission.__table__)
            self._commission_insert = (
                self._dialect_insert()(table)
                .on_conflict_do_nothing(index_elements=["exec_id"])
                .returning(table.c.exec_id)
            )
        return self._commission_insert

    def _now(self) -> dt.datetime:
        return self.clock.now().astimezone(UTC)

    # ------------------------------------------------------------------ event ledger

    def append_event(
        self,
        kind: str,
        *,
        order_ref: str | None = None,
        account: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> ledger.EventRow:
        """Append one hash-chained event and commit it before returning."""
        with self._write() as conn:
            return ledger.append_event(
                conn,
                at=self._now(),
                kind=kind,
                order_ref=order_ref,
                account=account,
                payload=payload or {},
            )

    def verify_ledger(self) -> ledger.VerifyResult:
        with self._read() as conn:
            return ledger.verify_chain(conn)

    def order_events(self, order_ref: str) -> list[ledger.EventRow]:
        with self._read() as conn:
            return queries.order_events(conn, order_ref)

    def recent_events(
        self, *, account: str | None = None, limit: int = 50
    ) -> list[ledger.EventRow]:
        with self._read() as conn:
            return queries.recent_events(conn, account, limit)

    # ------------------------------------------------------------------ write-ahead orders

    def record_intent(
        self,
        order: Mapping[str, Any] | Any,
        *,
        order_ref: str,
        plan_id: str | None,
        cycle_id: int | None,
    ) -> None:
        """Write the order row and its INTENT event in one committed transaction. Call it
        before sending; if it raises, do not send. `order` is a PlannedOrder or its dict."""
        self.record_intents([(order, order_ref)], plan_id=plan_id, cycle_id=cycle_id)

    def record_intents(
        self,
        orders: Sequence[tuple[Mapping[str, Any] | Any, str]],
        *,
        plan_id: str | None,
        cycle_id: int | None,
    ) -> None:
        """`record_intent` for several (order, orderRef) pairs, committed together: when it
        returns every INTENT is durable; when it raises, none is, and none may be sent.

        While the background writer runs (an apply's order events), the INTENTs go through
        it, after the events queued before them, in the same group commit."""
        bodies = [(_order_body(order, ref), ref) for order, ref in orders]
        if not bodies:
            return
        now = self._now()

        def write(conn: Connection) -> None:
            for body, ref in bodies:
                _insert_intent(conn, body, ref, plan_id, cycle_id, now)

        try:
            if self._writer is not None:
                self._writer.run(write)  # after every write queued before it (FIFO)
                self._raise_deferred()  # an earlier write that failed stops the sending too
            else:
                with self._write() as conn:
                    write(conn)
        except IntegrityError as exc:
            for _body, ref in bodies:
                if self._order_exists(ref):
                    raise DuplicateIntent(ref) from None
            raise exc

    def _order_exists(self, order_ref: str) -> bool:
        with self._read() as conn:
            return (
                conn.execute(select(OrderRow.id).where(OrderRow.order_ref == order_ref)).first()
                is not None
            )

    def unresolved_intents(self, account: str | None = None) -> list[queries.UnresolvedIntent]:
        """Orders with an INTENT but no final outcome (FILL, CANCEL, REJ or RESOLVED) yet."""
        with self._read() as conn:
            return queries.unresolved_intents(conn, account)

    def record_fill(
        self,
        *,
        exec_id: str,
        order_ref: str | None,
        account: str,
        con_id: int | None = None,
        symbol: str | None = None,
        side: str | None = None,
        shares: float,
        price: float,
        time: dt.datetime | None = None,
        commission: float | None = None,
        commission_currency: str | None = None,
        perm_id: int | None = None,
    ) -> bool:
        """Record an execution once; False when its execId was already recorded. Missing
        con_id/symbol/side are taken from the order row of `order_ref` when there is one."""
        values = self._fill_values(
            exec_id=exec_id,
            order_ref=order_ref,
            account=account,
            con_id=con_id,
            symbol=symbol,
            side=side,
            shares=shares,
            price=price,
            time=time,
            commission=commission,
            commission_currency=commission_currency,
            perm_id=perm_id,
        )
        with self._write() as conn:
            return self._insert_fill(conn, values)

    def _fill_values(
        self,
        *,
        exec_id: str,
        order_ref: str | None,
        account: str,
        con_id: int | None = None,
        symbol: str | None = None,
        side: str | None = None,
        shares: float,
        price: float,
        time: dt.datetime | None = None,
        commission: float | None = None,
        commission_currency: str | None = None,
        perm_id: int | None = None,
    ) -> dict[str, Any]:
        if not exec_id:
            raise ValueError("a fill needs its execId")
        return dict(
            exec_id=exec_id,
            order_ref=order_ref or None,
            account=account,
            con_id=con_id,
            symbol=symbol,
            side={"BOT": "BUY", "SLD": "SELL"}.get(side or "", side),
            shares=float(shares),
            price=float(price),
            time=time,
            commission=commission,
            commission_currency=commission_currency,
            perm_id=perm_id,
            recorded_at=self._now(),
        )

    def _insert_fill(self, conn: Connection, values: dict[str, Any]) -> bool:
        order_ref = values["order_ref"]
        if order_ref and (
            values["con_id"] is None or values["symbol"] is None or values["side"] is None
        ):
            order = conn.execute(
                select(OrderRow.con_id, OrderRow.symbol, OrderRow.side).where(
                    OrderRow.order_ref == order_ref
                )
            ).first()
            if order is not None:
                values["con_id"] = (
                    values["con_id"] if values["con_id"] is not None else (order.con_id)
                )
                values["symbol"] = values["symbol"] or order.symbol
                values["side"] = values["side"] or order.side
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns rows.
        return conn.execute(self._insert_new_fill(), values).first() is not None

    def record_fill_later(
        self, *, partial_event: Mapping[str, Any] | None = None, **fill: Any
    ) -> None:
        """`record_fill` by the background writer (not durable on return: the broker keeps
        the executions, and recovery reads them back by orderRef). When the fill is new its
        PARTIAL event (`partial_event`: the payload) is appended in the same transaction; when
        it was known and carries a commission, the commission is recorded instead."""
        values = self._fill_values(**fill)
        account = fill["account"]

        def write(conn: Connection) -> None:
            if self._insert_fill(conn, dict(values)):
                if partial_event is not None:
                    ledger.append_event(
                        conn,
                        at=self._now(),
                        kind=ledger.PARTIAL,
                        order_ref=values["order_ref"],
                        account=account,
                        payload=partial_event,
                    )
            elif values["commission"] is not None:
                self._insert_commission(
                    conn, values["exec_id"], values["commission"], values["commission_currency"]
                )

        self._defer(write)

    def record_commission_later(
        self, exec_id: str, commission: float, currency: str | None = None
    ) -> None:
        """`record_commission` by the background writer."""
        self._defer(lambda conn: self._insert_commission(conn, exec_id, commission, currency))

    def append_event_later(
        self,
        kind: str,
        *,
        order_ref: str | None = None,
        account: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """`append_event` by the background writer: appended in the order asked, committed
        with the next group (any later read or direct write waits for it)."""
        ledger.check_kind(kind)
        at = self._now()
        body = dict(payload or {})
        self._defer(
            lambda conn: ledger.append_event(
                conn, at=at, kind=kind, order_ref=order_ref, account=account, payload=body
            )
        )

    def record_execution(self, execution: Any) -> bool:
        """`record_fill` from a reconciler.model.actual.Execution (or anything with its fields)."""
        return self.record_fill(
            exec_id=execution.exec_id,
            order_ref=execution.order_ref,
            account=execution.account,
            con_id=execution.con_id,
            symbol=execution.symbol,
            side=execution.side,
            shares=execution.shares,
            price=execution.price,
            time=execution.time,
            commission=getattr(execution, "commission", None),
            commission_currency=getattr(execution, "commission_currency", None),
            perm_id=getattr(execution, "perm_id", None),
        )

    def record_commission(
        self, exec_id: str, commission: float, currency: str | None = None
    ) -> bool:
        """A commission report that arrived after its execution; False if already known."""
        with self._write() as conn:
            return self._insert_commission(conn, exec_id, commission, currency)

    def _insert_commission(
        self, conn: Connection, exec_id: str, commission: float, currency: str | None
    ) -> bool:
        values = {
            "exec_id": exec_id,
            "commission": float(commission),
            "currency": currency,
            "recorded_at": self._now(),
        }
        return conn.execute(self._insert_new_commission(), values).first() is not None

    def filled_quantity(self, order_ref: str) -> float:
        with self._read() as conn:
            return queries.filled_quantity(conn, order_ref)

    # ------------------------------------------------------------------ cycles and plans

    def begin_cycle(
        self,
        kind: str,
        *,
        accounts: Sequence[str] = (),
        desired_hash: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        plan_id: str | None = None,
        gates: Any = None,
        holder: str | None = None,
    ) -> int:
        if kind not in CYCLE_KINDS:
            raise ValueError(f"cycle kind {kind!r} must be one of {sorted(CYCLE_KINDS)}")
        accounts = sorted(set(accounts))
        with self._write() as conn:
            cycle_id = conn.execute(
                insert(Cycle)
                .values(
                    started_at=self._now(),
                    kind=kind,
                    status="running",
                    desired_hash=desired_hash,
                    git_commit=git_commit,
                    git_dirty=git_dirty,
                    plan_id=plan_id,
                    accounts=accounts,
                    gates=to_jsonable(gates),
                    holder=holder,
                )
                .returning(Cycle.id)
            ).scalar_one()
            for account in accounts:
                conn.execute(insert(CycleAccount).values(cycle_id=cycle_id, account=account))
        return cycle_id

    def finish_cycle(
        self,
        cycle_id: int,
        status: str,
        report: Mapping[str, Any] | None,
        error: str | None = None,
        *,
        gates: Any = None,
        plan_id: str | None = None,
    ) -> None:
        """Close a cycle once with its outcome; a finished cycle is never rewritten."""
        changes: dict[str, Any] = {
            "finished_at": self._now(),
            "status": status,
            "report": to_jsonable(report),
            "error": error,
        }
        if gates is not None:
            changes["gates"] = to_jsonable(gates)
        if plan_id is not None:
            changes["plan_id"] = plan_id
        with self._write() as conn:
            result = conn.execute(
                update(Cycle)
                .where(Cycle.id == cycle_id, Cycle.finished_at.is_(None))
                .values(**changes)
            )
            if result.rowcount != 1:
                exists = conn.execute(select(Cycle.id).where(Cycle.id == cycle_id)).first()
                reason = "is already finished" if exists else "does not exist"
                raise ValueError(f"cycle {cycle_id} {reason}")

    def last_cycle(self, account: str | None = None) -> queries.CycleView | None:
        with self._read() as conn:
            cycles = queries.list_cycles(conn, account, 1)
        return cycles[0] if cycles else None

    def get_cycle(self, cycle_id: int) -> queries.CycleView | None:
        with self._read() as conn:
            return queries.get_cycle(conn, cycle_id)

    def record_plan(self, plan_json: Mapping[str, Any] | Any) -> str:
        """Store a plan's JSON form (reconciler.model.plan.to_dict, or a Plan); idempotent."""
        if not isinstance(plan_json, Mapping):
            from reconciler.model.plan import to_dict

            plan_json = to_dict(plan_json)
        body = to_jsonable(plan_json)
        plan_id = body.get("plan_id")
        if not plan_id:
            raise ValueError("plan JSON has no plan_id")
        created = body.get("created_at")
        created_at = dt.datetime.fromisoformat(created) if isinstance(created, str) else None
        if created_at is None or created_at.tzinfo is None:
            created_at = self._now()
        with self._write() as conn:
            existing = conn.execute(select(PlanRow.body).where(PlanRow.plan_id == plan_id)).first()
            if existing is not None:
                if existing.body != body:
                    raise PlanConflict(f"plan {plan_id} was recorded before with another body")
                return plan_id
            conn.execute(
                insert(PlanRow).values(
                    plan_id=plan_id,
                    created_at=created_at,
                    body=body,
                    desired_hash=body.get("desired_hash"),
                    actual_fingerprint=body.get("actual_fingerprint"),
                )
            )
        return plan_id

    def get_plan(self, plan_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(select(PlanRow.body).where(PlanRow.plan_id == plan_id)).first()
        return None if row is None else row.body

    def record_position_snapshot(
        self, cycle_id: int | None, account: str, positions: Iterable[Any]
    ) -> int:
        """One broker snapshot of one account (Position objects or dicts; empty means flat);
        returns its id."""
        return self._record_positions(cycle_id, account, positions)

    def record_actual_state(self, cycle_id: int | None, actual: Any) -> list[int]:
        """A position snapshot of every account in an `ActualState`, in account order."""
        return [
            self._record_positions(cycle_id, name, state.positions)
            for name, state in sorted(actual.accounts.items())
        ]

    def _record_positions(
        self, cycle_id: int | None, account: str, positions: Iterable[Any]
    ) -> int:
        items = [
            {
                "con_id": _get(p, "con_id"),
                "symbol": _get(p, "symbol"),
                "quantity": float(_get(p, "quantity")),
                "avg_cost": _get(p, "avg_cost"),
            }
            for p in positions
            if _get(p, "account", account) == account
        ]
        with self._write() as conn:
            snapshot_id = conn.execute(
                insert(PositionSnapshot)
                .values(cycle_id=cycle_id, account=account, at=self._now())
                .returning(PositionSnapshot.id)
            ).scalar_one()
            if items:
                conn.execute(
                    insert(PositionSnapshotItem),
                    [{"snapshot_id": snapshot_id, **item} for item in items],
                )
        return snapshot_id

    def record_denials(
        self, cycle_id: int | None, plan_id: str | None, decisions: Iterable[Any]
    ) -> int:
        """Risk decisions (RiskDecision objects or dicts) of a plan; returns how many."""
        now = self._now()
        rows = [
            {
                "cycle_id": cycle_id,
                "plan_id": plan_id,
                "account": _get(d, "account"),
                "key": _get(d, "key"),
                "code": _get(d, "code"),
                "action": _get(d, "action"),
                "side": _get(d, "side"),
                "requested_quantity": _get(d, "requested_quantity"),
                "allowed_quantity": _get(d, "allowed_quantity"),
                "detail": to_jsonable(dict(_get(d, "detail") or {})),
                "at": now,
            }
            for d in decisions
        ]
        if rows:
            with self._write() as conn:
                conn.execute(insert(RiskDenial), rows)
        return len(rows)

    def list_denials(
        self, *, cycle_id: int | None = None, account: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        with self._read() as conn:
            return queries.list_denials(conn, cycle_id, account, limit)

    def record_desired_snapshot(
        self, account: str, cycle_id: int | None, snapshot: Mapping[str, Any]
    ) -> None:
        with self._write() as conn:
            conn.execute(
                insert(DesiredSnapshot).values(
                    account=account,
                    cycle_id=cycle_id,
                    at=self._now(),
                    snapshot=to_jsonable(snapshot),
                )
            )

    def last_applied_desired_snapshot(self, account: str) -> dict[str, Any] | None:
        with self._read() as conn:
            return queries.last_desired_snapshot(conn, account)

    # ------------------------------------------------------------------ locks

    def account_lock(
        self,
        accounts: Sequence[str],
        holder: str,
        ttl_seconds: float = locks.DEFAULT_TTL_SECONDS,
    ) -> locks.LockHandle:
        """Take the writer lock of every account now (raises LockHeld); use with `with`."""
        if isinstance(accounts, str):
            accounts = [accounts]
        return locks.acquire(self.engine, self.clock, accounts, holder, ttl_seconds)

    def unlock(self, lock_id: str, who: str = "operator") -> bool:
        """Operator override: drop the lease `lock_id` (recorded in the ledger)."""
        with self._write() as conn:
            removed = locks.unlock(conn, lock_id)
            if not removed:
                return False
            ledger.append_event(
                conn,
                at=self._now(),
                kind=ledger.UNLOCK,
                account=None,
                order_ref=None,
                payload={
                    "lock_id": lock_id,
                    "who": who,
                    "accounts": [info.account for info in removed],
                    "holder": removed[0].holder,
                    "pid": removed[0].pid,
                    "host": removed[0].host,
                },
            )
        return True

    def lock_holders(self) -> list[locks.LockInfo]:
        return locks.holders(self.engine, self.clock)

    # ------------------------------------------------------------------ halt switch

    def halt(self, reason: str, who: str, *, cancel_open: bool = False) -> queries.HaltState:
        """Stop all trading now (out of band); recorded in the halt history and the ledger."""
        if not reason or not reason.strip():
            raise ValueError("a halt needs a reason")
        now = self._now()
        with self._write() as conn:
            halt_id = conn.execute(
                insert(Halt)
                .values(at=now, action="HALT", reason=reason, who=who, cancel_open=cancel_open)
                .returning(Halt.id)
            ).scalar_one()
            ledger.append_event(
                conn,
                at=now,
                kind=ledger.HALT,
                payload={"reason": reason, "who": who, "cancel_open": cancel_open},
            )
        return queries.HaltState(
            halt_id=halt_id, at=now, reason=reason, who=who, cancel_open=cancel_open
        )

    def resume(self, who: str, reason: str | None = None) -> bool:
        """Lift the halt; False (and nothing written) when trading was not halted."""
        now = self._now()
        with self._write() as conn:
            if queries.current_halt(conn) is None:
                return False
            conn.execute(
                insert(Halt).values(
                    at=now, action="RESUME", reason=reason, who=who, cancel_open=False
                )
            )
            ledger.append_event(
                conn, at=now, kind=ledger.RESUME, payload={"reason": reason, "who": who}
            )
        return True

    def current_halt(self) -> queries.HaltState | None:
        """The halt in force, or None. One indexed read: call it before every order.

        It does not wait for this process's deferred writes: the halt is set by the
        operator's own transaction, which a deferred order event cannot change."""
        with read_tx(self.engine) as conn:
            return queries.current_halt(conn)

    def halt_history(self, limit: int = 50) -> list[queries.HaltEvent]:
        with self._read() as conn:
            return queries.halt_history(conn, limit)

    # ------------------------------------------------------------------ operator queries

    def list_orders(self, account: str | None = None, limit: int = 50) -> list[queries.OrderView]:
        with self._read() as conn:
            return queries.list_orders(conn, account, limit)

    def list_fills(self, account: str | None = None, limit: int = 50) -> list[queries.FillView]:
        with self._read() as conn:
            return queries.list_fills(conn, account, limit)

    def list_cycles(self, account: str | None = None, limit: int = 50) -> list[queries.CycleView]:
        with self._read() as conn:
            return queries.list_cycles(conn, account, limit)

    def net_fills_since(self, account: str, since: dt.datetime) -> dict[int, float]:
        """Signed shares per conId recorded after `since`: what the ledger says moved."""
        with self._read() as conn:
            return queries.net_fills_since(conn, account, since)

    def latest_positions(
        self, account: str | None = None, limit: int | None = None
    ) -> list[queries.PositionView]:
        """Positions of each account's newest snapshot, by account and symbol; `limit` caps
        the number of rows (for `show positions --limit`)."""
        with self._read() as conn:
            rows = queries.latest_positions(conn, account)
        return rows if limit is None else rows[:limit]

    def last_snapshot_at(self, account: str) -> dt.datetime | None:
        """When the account's newest position snapshot was taken (also when it was flat,
        which `latest_positions` cannot show); None when there is none."""
        with self._read() as conn:
            return queries.last_positions_at(conn).get(account)

    def status_rows(self) -> list[queries.StatusRow]:
        """Per known account: last cycle, lock holder, halt, unresolved intents."""
        lock_by_account = {info.account: info for info in self.lock_holders()}
        with self._read() as conn:
            halt = queries.current_halt(conn)
            unresolved = queries.unresolved_counts(conn)
            positions_at = queries.last_positions_at(conn)
            return [
                queries.StatusRow(
                    account=account,
                    last_cycle=next(iter(queries.list_cycles(conn, account, 1)), None),
                    lock=lock_by_account.get(account),
                    halt=halt,
                    unresolved_intents=unresolved.get(account, 0),
                    positions_at=positions_at.get(account),
                )
                for account in queries.known_accounts(conn)
            ]

    # ------------------------------------------------------------------ read-only surfaces

    def page_cycles(
        self,
        *,
        account: str | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[queries.CycleView], int]:
        """A page of cycles (newest first) and how many match in all."""
        with read_tx(self.engine) as conn:
            return queries.page_cycles(
                conn,
                account=account,
                status=status,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )

    def rows_between(
        self,
        kind: str,
        *,
        account: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[Any]:
        """Every row of `kind` (orders, fills, events, cycles, positions) in [since, until),
        oldest first: for exports and time series."""
        reader = {
            "orders": queries.orders_between,
            "fills": queries.fills_between,
            "events": queries.events_between,
            "cycles": queries.cycles_between,
            "positions": queries.positions_between,
        }[kind]
        with read_tx(self.engine) as conn:
            return reader(conn, account, since, until)

    def recent_plans(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Recorded plan bodies, newest first."""
        with read_tx(self.engine) as conn:
            return queries.plans_between(conn, since, until, limit)


def open_store(url: str, *, clock: Clock | None = None, engine: Engine | None = None) -> Store:
    """Open (creating or upgrading) the store at `url`; an injected engine is used as is."""
    owns_engine = engine is None
    engine = make_engine(url) if engine is None else configure_engine(engine)
    try:
        upgrade_to_head(engine)
    except BaseException:
        if owns_engine:
            engine.dispose()
        raise
    return Store(engine, clock or SystemClock(), owns_engine=owns_engine)


def open_store_readonly(url: str, *, clock: Clock | None = None) -> Store:
    """Open an existing store at `url` for reading only: the database refuses writes
    (SQLite `mode=ro`, PostgreSQL `default_transaction_read_only`) and no migration runs. A
    schema other than this reconciler's head is a `SchemaError`; a missing SQLite file is
    `StoreUnavailable`."""
    from reconciler.store.engine import make_readonly_engine
    from reconciler.store.migrate import HEAD_REVISION, SchemaError, current_revision

    engine = make_readonly_engine(url)
    try:
        revision = current_revision(engine)
        if revision != HEAD_REVISION:
            raise SchemaError(
                f"the store is at schema revision {revision!r}, not {HEAD_REVISION!r}; "
                "run any writing command (plan, apply, status) once to migrate it"
                if revision is None or revision < HEAD_REVISION
                else f"the store is at schema revision {revision!r}, which this reconciler "
                "does not know; upgrade the reconciler"
            )
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, clock or SystemClock(), owns_engine=True)


__all__ = ["DuplicateIntent", "PlanConflict", "Store", "open_store", "open_store_readonly"]


def _close_at_exit(writer: LedgerWriter, engine: Engine | None) -> None:
    # Held here rather than through the Store, which may be gone while its writer thread
    # (and so the engine and its connections) lives on.
    writer.close()
    if engine is not None:
        engine.dispose()
