"""Read-side of the store: frozen views and the queries behind operator commands.

Responsible for the value types the rest of the reconciler reads (`OrderView`, `FillView`,
`CycleView`, `PositionView`, `HaltState`, `HaltEvent`, `UnresolvedIntent`, `StatusRow`) and
the SELECTs that build them, newest first. Every function takes an open connection; the
store owns transactions. Must not write anything and must not format for display (the CLI
renders these values).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select, union

from reconciler.store import ledger
from reconciler.store.locks import LockInfo
from reconciler.store.models import (
    Cycle,
    CycleAccount,
    DesiredSnapshot,
    Fill,
    FillCommission,
    Halt,
    Lease,
    OrderEvent,
    OrderRow,
    PlanRow,
    PositionSnapshot,
    PositionSnapshotItem,
    RiskDenial,
)

CYCLES = Cycle.__table__
ORDERS = OrderRow.__table__
FILLS = Fill.__table__
EVENTS = OrderEvent.__table__
HALTS = Halt.__table__


class _AsDict:
    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class OrderView(_AsDict):
    order_ref: str
    plan_id: str | None
    cycle_id: int | None
    leg: int | None
    account: str
    con_id: int | None
    symbol: str
    side: str
    quantity: float
    order_type: str | None
    limit_price: float | None
    arrival_price: float | None
    est_notional: float | None
    created_at: dt.datetime
    status: str  # kind of the order's latest ledger event
    filled_quantity: float
    avg_fill_price: float | None


@dataclass(frozen=True)
class FillView(_AsDict):
    exec_id: str
    order_ref: str | None
    account: str
    con_id: int | None
    symbol: str | None
    side: str | None
    shares: float
    price: float
    time: dt.datetime | None
    commission: float | None
    commission_currency: str | None
    perm_id: int | None


@dataclass(frozen=True)
class CycleView(_AsDict):
    id: int
    kind: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    accounts: tuple[str, ...]
    desired_hash: str | None
    git_commit: str | None
    git_dirty: bool | None
    plan_id: str | None
    gates: Any
    report: Any
    error: str | None
    holder: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class PositionView(_AsDict):
    account: str
    snapshot_id: int
    cycle_id: int | None
    at: dt.datetime
    con_id: int | None
    symbol: str
    quantity: float
    avg_cost: float | None


@dataclass(frozen=True)
class HaltState(_AsDict):
    """Trading is halted: by whom, when and why."""

    halt_id: int
    at: dt.datetime
    reason: str
    who: str
    cancel_open: bool


@dataclass(frozen=True)
class HaltEvent(_AsDict):
    id: int
    at: dt.datetime
    action: str  # HALT | RESUME
    reason: str | None
    who: str
    cancel_open: bool


@dataclass(frozen=True)
class UnresolvedIntent(_AsDict):
    """An order whose INTENT was written but whose outcome the ledger does not know yet."""

    order_ref: str
    account: str
    plan_id: str | None
    cycle_id: int | None
    leg: int | None
    symbol: str
    side: str
    quantity: float
    intent_at: dt.datetime
    last_kind: str
    filled_quantity: float
    order: dict[str, Any]


@dataclass(frozen=True)
class StatusRow(_AsDict):
    account: str
    last_cycle: CycleView | None
    lock: LockInfo | None
    halt: HaltState | None
    unresolved_intents: int
    positions_at: dt.datetime | None


def _cycle_view(row: Any) -> CycleView:
    return CycleView(
        id=row.id,
        kind=row.kind,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        accounts=tuple(row.accounts or ()),
        desired_hash=row.desired_hash,
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        plan_id=row.plan_id,
        gates=row.gates,
        report=row.report,
        error=row.error,
        holder=row.holder,
    )


def list_cycles(conn: Connection, account: str | None, limit: int) -> list[CycleView]:
    query = select(CYCLES).order_by(CYCLES.c.id.desc()).limit(limit)
    if account is not None:
        query = query.where(
            exists().where(
                and_(CycleAccount.cycle_id == CYCLES.c.id, CycleAccount.account == account)
            )
        )
    return [_cycle_view(row) for row in conn.execute(query)]


def get_cycle(conn: Connection, cycle_id: int) -> CycleView | None:
    row = conn.execute(select(CYCLES).where(CYCLES.c.id == cycle_id)).first()
    return None if row is None else _cycle_view(row)


def _fill_totals(conn: Connection, refs: Iterable[str]) -> dict[str, tuple[float, float | None]]:
    refs = list(refs)
    if not refs:
        return {}
    rows = conn.execute(
        select(
            FILLS.c.order_ref,
            func.sum(FILLS.c.shares),
            func.sum(FILLS.c.shares * FILLS.c.price),
        )
        .where(FILLS.c.order_ref.in_(refs))
        .group_by(FILLS.c.order_ref)
    )
    totals: dict[str, tuple[float, float | None]] = {}
    for ref, shares, value in rows:
        shares = float(shares or 0.0)
        totals[ref] = (shares, (float(value) / shares) if shares else None)
    return totals


def _last_kinds(conn: Connection, refs: Iterable[str]) -> dict[str, str]:
    refs = list(refs)
    if not refs:
        return {}
    last_seq = (
        select(EVENTS.c.order_ref, func.max(EVENTS.c.seq).label("seq"))
        .where(EVENTS.c.order_ref.in_(refs))
        .group_by(EVENTS.c.order_ref)
        .subquery()
    )
    rows = conn.execute(
        select(EVENTS.c.order_ref, EVENTS.c.kind).join(last_seq, EVENTS.c.seq == last_seq.c.seq)
    )
    return {ref: kind for ref, kind in rows}


def list_orders(conn: Connection, account: str | None, limit: int) -> list[OrderView]:
    query = select(ORDERS).order_by(ORDERS.c.id.desc()).limit(limit)
    if account is not None:
        query = query.where(ORDERS.c.account == account)
    rows = conn.execute(query).all()
    refs = [row.order_ref for row in rows]
    return _order_views(conn, rows, refs)


def list_fills(conn: Connection, account: str | None, limit: int) -> list[FillView]:
    query = (
        _fills_with_commissions()
        .order_by(func.coalesce(FILLS.c.time, FILLS.c.recorded_at).desc(), FILLS.c.id.desc())
        .limit(limit)
    )
    if account is not None:
        query = query.where(FILLS.c.account == account)
    return [_fill_view(row) for row in conn.execute(query)]


def net_fills_since(conn: Connection, account: str, since: dt.datetime) -> dict[int, float]:
    """Signed shares per conId of the fills recorded after `since` (BUY +, SELL -)."""
    query = select(FILLS.c.con_id, FILLS.c.side, func.sum(FILLS.c.shares)).where(
        FILLS.c.account == account, FILLS.c.recorded_at > since, FILLS.c.con_id.is_not(None)
    ).group_by(FILLS.c.con_id, FILLS.c.side)
    net: dict[int, float] = {}
    for con_id, side, shares in conn.execute(query):
        sign = -1.0 if side == "SELL" else 1.0
        net[int(con_id)] = net.get(int(con_id), 0.0) + sign * float(shares or 0.0)
    return net


def filled_quantity(conn: Connection, order_ref: str) -> float:
    total = conn.execute(
        select(func.coalesce(func.sum(FILLS.c.shares), 0.0)).where(FILLS.c.order_ref == order_ref)
    ).scalar_one()
    return float(total)


def order_events(conn: Connection, order_ref: str) -> list[ledger.EventRow]:
    rows = conn.execute(
        select(*ledger.EVENT_COLUMNS)
        .where(OrderEvent.order_ref == order_ref)
        .order_by(OrderEvent.seq)
    )
    return [ledger.row_to_event(row) for row in rows]


def recent_events(conn: Connection, account: str | None, limit: int) -> list[ledger.EventRow]:
    query = select(*ledger.EVENT_COLUMNS).order_by(OrderEvent.seq.desc()).limit(limit)
    if account is not None:
        query = query.where(OrderEvent.account == account)
    return [ledger.row_to_event(row) for row in conn.execute(query)]


def unresolved_intents(conn: Connection, account: str | None) -> list[UnresolvedIntent]:
    intent = EVENTS.alias("intent")
    final = EVENTS.alias("final")
    query = (
        select(ORDERS, intent.c.at.label("intent_at"))
        .join(intent, and_(intent.c.order_ref == ORDERS.c.order_ref, intent.c.kind == "INTENT"))
        .where(
            ~exists().where(
                and_(
                    final.c.order_ref == ORDERS.c.order_ref,
                    final.c.kind.in_(ledger.FINAL_KINDS),
                )
            )
        )
        .order_by(ORDERS.c.id)
    )
    if account is not None:
        query = query.where(ORDERS.c.account == account)
    rows = conn.execute(query).all()
    refs = [row.order_ref for row in rows]
    kinds = _last_kinds(conn, refs)
    totals = _fill_totals(conn, refs)
    return [
        UnresolvedIntent(
            order_ref=row.order_ref,
            account=row.account,
            plan_id=row.plan_id,
            cycle_id=row.cycle_id,
            leg=row.leg,
            symbol=row.symbol,
            side=row.side,
            quantity=row.quantity,
            intent_at=row.intent_at,
            last_kind=kinds.get(row.order_ref, "INTENT"),
            filled_quantity=totals.get(row.order_ref, (0.0, None))[0],
            order=dict(row.body),
        )
        for row in rows
    ]


def latest_positions(conn: Connection, account: str | None) -> list[PositionView]:
    snaps = PositionSnapshot.__table__
    items = PositionSnapshotItem.__table__
    latest = select(snaps.c.account, func.max(snaps.c.id).label("id")).group_by(snaps.c.account)
    if account is not None:
        latest = latest.where(snaps.c.account == account)
    latest_sq = latest.subquery()
    rows = conn.execute(
        select(snaps, items.c.con_id, items.c.symbol, items.c.quantity, items.c.avg_cost)
        .join(latest_sq, latest_sq.c.id == snaps.c.id)
        .join(items, items.c.snapshot_id == snaps.c.id)
        .order_by(snaps.c.account, items.c.symbol)
    )
    return [_position_view(row) for row in rows]


def last_positions_at(conn: Connection) -> dict[str, dt.datetime]:
    snaps = PositionSnapshot.__table__
    rows = conn.execute(select(snaps.c.account, func.max(snaps.c.at)).group_by(snaps.c.account))
    return {acct: at for acct, at in rows}


# Read before every order window: built once (building it is a third of the read's cost).
_LATEST_HALT_ROW = select(HALTS).order_by(HALTS.c.id.desc()).limit(1)


def current_halt(conn: Connection) -> HaltState | None:
    row = conn.execute(_LATEST_HALT_ROW).first()
    if row is None or row.action != "HALT":
        return None
    return HaltState(
        halt_id=row.id,
        at=row.at,
        reason=row.reason or "",
        who=row.who,
        cancel_open=row.cancel_open,
    )


def halt_history(conn: Connection, limit: int) -> list[HaltEvent]:
    rows = conn.execute(select(HALTS).order_by(HALTS.c.id.desc()).limit(limit))
    return [
        HaltEvent(
            id=row.id,
            at=row.at,
            action=row.action,
            reason=row.reason,
            who=row.who,
            cancel_open=row.cancel_open,
        )
        for row in rows
    ]


def last_desired_snapshot(conn: Connection, account: str) -> dict[str, Any] | None:
    table = DesiredSnapshot.__table__
    row = conn.execute(
        select(table.c.snapshot)
        .where(table.c.account == account)
        .order_by(table.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else row.snapshot


def list_denials(
    conn: Connection, cycle_id: int | None, account: str | None, limit: int
) -> list[dict[str, Any]]:
    table = RiskDenial.__table__
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if cycle_id is not None:
        query = query.where(table.c.cycle_id == cycle_id)
    if account is not None:
        query = query.where(table.c.account == account)
    return [dict(row._mapping) for row in conn.execute(query)]


def known_accounts(conn: Connection) -> list[str]:
    sources = union(
        select(CycleAccount.account),
        select(Lease.account),
        select(PositionSnapshot.account),
        select(OrderRow.account),
    ).subquery()
    return sorted(acct for (acct,) in conn.execute(select(sources.c[0])))


def unresolved_counts(conn: Connection) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for intent in unresolved_intents(conn, None):
        counts[intent.account] += 1
    return dict(counts)


# ------------------------------------------------------------------ read-only surfaces
# (serve, mcp, export): time-bounded and paged reads over whole tables.


def _between(query: Any, column: Any, since: dt.datetime | None, until: dt.datetime | None):
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def page_cycles(
    conn: Connection,
    *,
    account: str | None,
    status: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[CycleView], int]:
    """One page of cycles, newest first, and how many match in all."""
    query = select(CYCLES)
    if account is not None:
        query = query.where(
            exists().where(
                and_(CycleAccount.cycle_id == CYCLES.c.id, CycleAccount.account == account)
            )
        )
    if status is not None:
        query = query.where(CYCLES.c.status == status)
    query = _between(query, CYCLES.c.started_at, since, until)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(CYCLES.c.id.desc()).limit(limit).offset(offset))
    return [_cycle_view(row) for row in rows], int(total)


def cycles_between(
    conn: Connection,
    account: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[CycleView]:
    """Every matching cycle, oldest first."""
    query = select(CYCLES).order_by(CYCLES.c.id)
    if account is not None:
        query = query.where(
            exists().where(
                and_(CycleAccount.cycle_id == CYCLES.c.id, CycleAccount.account == account)
            )
        )
    query = _between(query, CYCLES.c.started_at, since, until)
    return [_cycle_view(row) for row in conn.execute(query)]


def orders_between(
    conn: Connection,
    account: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[OrderView]:
    """Every matching order with its latest ledger kind and fill totals, oldest first."""
    query = select(ORDERS).order_by(ORDERS.c.id)
    if account is not None:
        query = query.where(ORDERS.c.account == account)
    query = _between(query, ORDERS.c.created_at, since, until)
    rows = conn.execute(query).all()
    refs = [row.order_ref for row in rows]
    return _order_views(conn, rows, refs)


def fills_between(
    conn: Connection,
    account: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[FillView]:
    """Every matching fill (by execution time, else recording time), oldest first."""
    when = func.coalesce(FILLS.c.time, FILLS.c.recorded_at)
    query = _fills_with_commissions().order_by(when, FILLS.c.id)
    if account is not None:
        query = query.where(FILLS.c.account == account)
    query = _between(query, when, since, until)
    return [_fill_view(row) for row in conn.execute(query)]


def events_between(
    conn: Connection,
    account: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[ledger.EventRow]:
    """Every matching ledger event, in chain order."""
    query = select(*ledger.EVENT_COLUMNS).order_by(OrderEvent.seq)
    if account is not None:
        query = query.where(OrderEvent.account == account)
    query = _between(query, OrderEvent.at, since, until)
    return [ledger.row_to_event(row) for row in conn.execute(query)]


def positions_between(
    conn: Connection,
    account: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[PositionView]:
    """Every item of every matching position snapshot, by snapshot then symbol."""
    snaps = PositionSnapshot.__table__
    items = PositionSnapshotItem.__table__
    query = (
        select(snaps, items.c.con_id, items.c.symbol, items.c.quantity, items.c.avg_cost)
        .join(items, items.c.snapshot_id == snaps.c.id)
        .order_by(snaps.c.id, items.c.symbol)
    )
    if account is not None:
        query = query.where(snaps.c.account == account)
    query = _between(query, snaps.c.at, since, until)
    return [_position_view(row) for row in conn.execute(query)]


def plans_between(
    conn: Connection, since: dt.datetime | None, until: dt.datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Plan bodies, newest first."""
    table = PlanRow.__table__
    query = _between(select(table.c.body), table.c.created_at, since, until)
    query = query.order_by(table.c.created_at.desc()).limit(limit)
    return [row.body for row in conn.execute(query)]


def _order_views(conn: Connection, rows: Any, refs: list[str]) -> list[OrderView]:
    """Order rows with their last ledger event and fill totals."""
    kinds = _last_kinds(conn, refs)
    totals = _fill_totals(conn, refs)
    return [
        OrderView(
            order_ref=row.order_ref,
            plan_id=row.plan_id,
            cycle_id=row.cycle_id,
            leg=row.leg,
            account=row.account,
            con_id=row.con_id,
            symbol=row.symbol,
            side=row.side,
            quantity=row.quantity,
            order_type=row.order_type,
            limit_price=row.limit_price,
            arrival_price=row.arrival_price,
            est_notional=row.est_notional,
            created_at=row.created_at,
            status=kinds.get(row.order_ref, "UNKNOWN"),
            filled_quantity=totals.get(row.order_ref, (0.0, None))[0],
            avg_fill_price=totals.get(row.order_ref, (0.0, None))[1],
        )
        for row in rows
    ]


def _fills_with_commissions() -> Any:
    """Fills joined with a commission reported after the fill was recorded."""
    late = FillCommission.__table__
    return select(FILLS, late.c.commission.label("late_commission"), late.c.currency).outerjoin(
        late, late.c.exec_id == FILLS.c.exec_id
    )


def _fill_view(row: Any) -> FillView:
    return FillView(
        exec_id=row.exec_id,
        order_ref=row.order_ref,
        account=row.account,
        con_id=row.con_id,
        symbol=row.symbol,
        side=row.side,
        shares=row.shares,
        price=row.price,
        time=row.time,
        commission=row.commission if row.commission is not None else row.late_commission,
        commission_currency=row.commission_currency or row.currency,
        perm_id=row.perm_id,
    )


def _position_view(row: Any) -> PositionView:
    return PositionView(
        account=row.account,
        snapshot_id=row.id,
        cycle_id=row.cycle_id,
        at=row.at,
        con_id=row.con_id,
        symbol=row.symbol,
        quantity=row.quantity,
        avg_cost=row.avg_cost,
    )
