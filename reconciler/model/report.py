"""The cycle report as a value: what one recorded cycle did, built once when the cycle ends.

Responsible for the report's typed shape (desired state, gates, drift before and after,
orders and their outcomes and reasons, risk decisions, trading windows, counts, NAV and cash
before and after, transaction costs, breaks, files, errors, notes and warnings), for the
summaries a reader wants first (the headline, totals bought and sold, drift summary per
account) and for its JSON form `to_dict()`, the `ib-reconciler/cycle-report` document
(version 1, described by `schemas/cycle-report.schema.json`) the store keeps and the report
file holds. Optional members are `None`
when the cycle never got that far; they are then left out of the JSON, as they always were.
Must not do I/O, render Markdown (that is `reconciler.render.cycle_report`) or decide a
status (`reconciler.model.outcome` does). See ARCHITECTURE.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from reconciler.model.desired import DesiredState
from reconciler.model.outcome import COUNTED
from reconciler.model.plan import Plan

REPORT_FORMAT = "ib-reconciler/cycle-report"
REPORT_VERSION = 1


class _Gate(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def detail(self) -> str: ...


@dataclass(frozen=True)
class DesiredRef:
    """Which desired state the cycle ran against."""

    hash: str | None
    git_commit: str | None
    git_dirty: bool | None
    directory: str | None

    @classmethod
    def of(cls, desired: DesiredState) -> DesiredRef:
        return cls(desired.content_hash, desired.git_commit, desired.git_dirty, desired.directory)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "directory": self.directory,
        }


@dataclass(frozen=True)
class GateRow:
    """One safety gate: its name, whether it passed, why, and the word shown for it."""

    name: str
    passed: bool
    detail: str
    result: str

    @classmethod
    def of(cls, gate: _Gate, orders_enabled: bool) -> GateRow:
        # With orders disabled the ORDERS_ENABLED gate lets the cycle run, but as a dry run:
        # the report says so rather than "pass".
        result = "pass" if gate.passed else "REFUSED"
        if gate.name == "ORDERS_ENABLED" and not orders_enabled:
            result = "dry run: orders disabled"
        return cls(gate.name, gate.passed, gate.detail, result)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "result": self.result,
        }


def gate_rows(gates: Iterable[_Gate], orders_enabled: bool) -> tuple[GateRow, ...]:
    return tuple(GateRow.of(g, orders_enabled) for g in gates)


@dataclass(frozen=True)
class DriftLine:
    """One instrument of one account in a drift table (before or after the orders)."""

    account: str
    key: str
    status: str
    quantity: float
    price: float | None
    current_weight: float | None
    target_weight: float | None
    drift: float | None
    in_band: bool

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def drift_lines(plan: Plan) -> tuple[DriftLine, ...]:
    return tuple(
        DriftLine(
            r.account,
            r.key,
            r.status,
            r.quantity,
            r.price,
            r.current_weight,
            r.target_weight,
            r.drift,
            r.in_band,
        )
        for a in plan.accounts
        for r in a.drift
    )


@dataclass(frozen=True)
class DecisionRow:
    """A risk decision of the plan: an order clipped or denied, and why."""

    account: str
    key: str
    side: str
    code: str
    action: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def decision_rows(plan: Plan) -> tuple[DecisionRow, ...]:
    return tuple(
        DecisionRow(d.account, d.key, d.side, d.code, d.action, d.render()) for d in plan.decisions
    )


@dataclass(frozen=True)
class WindowRow:
    """The trading window of one traded instrument, as `decide.calendar` decided it."""

    key: str
    exchange: str
    calendar: str | None
    open: bool
    reason: str
    opens_at: str | None = None  # ISO 8601, UTC
    closes_at: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class OrderRow:
    """One planned order and how it ended (the executor's outcome, as reported)."""

    order_ref: str
    leg: int
    account: str
    key: str
    side: str
    quantity: float
    status: str  # a reconciler.model.status.OrderOutcome value
    filled: float = 0.0
    avg_price: float | None = None
    commission: float = 0.0
    est_commission: float = 0.0
    arrival_price: float | None = None
    slippage_bps: float | None = None
    perm_id: int | None = None
    message: str = ""
    fills: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""  # why the planner sent it (which target, which drift)
    currency: str | None = None

    @property
    def notional(self) -> float:
        """What the fills cost or brought in (filled x average price), in `currency`."""
        return round(self.filled * (self.avg_price or 0.0), 2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderRow:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["fills"] = tuple(dict(f) for f in data.get("fills") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["fills"] = [dict(f) for f in self.fills]
        return out


@dataclass(frozen=True)
class TcaRow:
    """Transaction cost of one filled order: arrival price (quote at plan time) vs fills."""

    order_ref: str
    key: str
    side: str
    filled: float
    arrival_price: float | None
    avg_price: float | None
    slippage_bps: float | None
    est_commission: float | None
    commission: float | None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def tca_rows(orders: Iterable[OrderRow]) -> tuple[TcaRow, ...]:
    return tuple(
        TcaRow(
            o.order_ref,
            o.key,
            o.side,
            o.filled,
            o.arrival_price,
            o.avg_price,
            o.slippage_bps,
            o.est_commission,
            o.commission,
        )
        for o in orders
        if o.filled
    )


@dataclass(frozen=True)
class AccountBalance:
    """An account's NAV and cash (base currency) at the cycle's snapshot and, when orders
    went out, at the snapshot after them (`None`: not taken)."""

    account: str
    currency: str
    nav_before: float | None
    cash_before: float | None
    nav_after: float | None = None
    cash_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TradeTotals:
    """What one account bought and sold in one currency this cycle (fills only)."""

    account: str
    currency: str
    bought: float
    sold: float
    commission: float
    orders_filled: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def trade_totals(orders: Iterable[OrderRow]) -> tuple[TradeTotals, ...]:
    sums: dict[tuple[str, str], list[float]] = {}
    for o in orders:
        if not o.filled:
            continue
        row = sums.setdefault((o.account, o.currency or "-"), [0.0, 0.0, 0.0, 0])
        row[0 if o.side == "BUY" else 1] += o.notional
        row[2] += o.commission or 0.0
        row[3] += 1
    return tuple(
        TradeTotals(account, currency, round(b, 2), round(s, 2), round(c, 2), int(n))
        for (account, currency), (b, s, c, n) in sorted(sums.items())
    )


@dataclass(frozen=True)
class DriftSummary:
    """One account's drift in one line: the largest distance from target (weight points)
    and how many managed instruments are out of band, before and after the orders."""

    account: str
    max_drift_before: float | None
    out_of_band_before: int
    max_drift_after: float | None = None
    out_of_band_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _drift_of(rows: Iterable[DriftLine], account: str) -> tuple[float | None, int]:
    mine = [r for r in rows if r.account == account and r.status != "unmanaged"]
    drifts = [abs(r.drift) for r in mine if r.drift is not None]
    return (round(max(drifts), 6) if drifts else None), sum(1 for r in mine if not r.in_band)


def drift_summary(
    accounts: Sequence[str], before: Sequence[DriftLine], after: Sequence[DriftLine]
) -> tuple[DriftSummary, ...]:
    if not before:
        return ()
    out = []
    for account in accounts:
        max_before, out_before = _drift_of(before, account)
        max_after, out_after = _drift_of(after, account) if after else (None, None)
        out.append(DriftSummary(account, max_before, out_before, max_after, out_after))
    return tuple(out)


@dataclass(frozen=True)
class OrderCounts:
    """How many orders ended in each outcome (see `reconciler.model.outcome.order_counts`)."""

    filled: int = 0
    partly_filled: int = 0
    rejected: int = 0
    cancelled: int = 0
    not_sent: int = 0
    unknown: int = 0

    @classmethod
    def from_mapping(cls, counts: Mapping[str, int]) -> OrderCounts:
        return cls(**{words.replace(" ", "_"): counts.get(words, 0) for _, words in COUNTED})

    def as_mapping(self) -> dict[str, int]:
        """{"filled": 1, "partly filled": 0, ...}: the words of the summary line."""
        return {words: getattr(self, words.replace(" ", "_")) for _, words in COUNTED}


@dataclass(frozen=True)
class CycleReport:
    """What one recorded cycle (apply, or the scheduler's drift report) did.

    Built once, when the cycle ends, from what it found out; never changed afterwards.
    `None` for an optional member means the cycle did not get that far (no snapshot, no
    settled outcome, no report files): the JSON then has no such key.
    """

    cycle_id: int
    kind: str  # apply | plan
    started_at: dt.datetime
    finished_at: dt.datetime
    status: str  # a reconciler.model.status.CycleStatus value
    mode: str
    orders_enabled: bool
    accounts: tuple[str, ...]
    desired: DesiredRef
    gates: tuple[GateRow, ...] = ()
    plan_id: str | None = None
    drift_before: tuple[DriftLine, ...] = ()
    drift_after: tuple[DriftLine, ...] = ()
    orders: tuple[OrderRow, ...] = ()
    denials: tuple[DecisionRow, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Each of these is present once the cycle got far enough to know it.
    lock_id: str | None = None
    recovery: tuple[Mapping[str, Any], ...] | None = None
    orphan_orders: tuple[str, ...] | None = None
    lock_mismatches: tuple[str, ...] | None = None
    breaks: tuple[str, ...] | None = None
    stale_reasons: tuple[str, ...] | None = None
    risk_at_apply: tuple[str, ...] | None = None
    window: tuple[WindowRow, ...] | None = None
    planned_orders: int | None = None
    totals: Mapping[str, float] | None = None
    counts: OrderCounts | None = None
    drift_not_closed: tuple[str, ...] | None = None
    would_send: int | None = None
    result: str | None = None
    remaining_orders_after: int | None = None
    breaks_after: tuple[str, ...] | None = None
    files: tuple[str, ...] | None = None
    report_files_error: str | None = None
    balances: tuple[AccountBalance, ...] | None = None
    # A drift report's (kind plan) orders a selfHeal cycle would send; none was sent.
    plan_orders: tuple[OrderRow, ...] | None = None

    @property
    def nothing_to_do(self) -> bool:
        """Completed, nothing planned, nothing denied, broken or in error: nothing to tell."""
        return (
            self.status == "ok"
            and self.planned_orders == 0
            and not self.denials
            and not self.errors
            and not self.warnings
            and not self.breaks
            and not self.breaks_after
            and not self.orphan_orders
            and not self.recovery
        )

    @property
    def gates_passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def traded(self) -> tuple[TradeTotals, ...]:
        return trade_totals(self.orders)

    @property
    def drift(self) -> tuple[DriftSummary, ...]:
        return drift_summary(self.accounts, self.drift_before, self.drift_after)

    @property
    def headline(self) -> str:
        """The outcome in one line, first thing a reader sees."""
        if self.status == "refused":
            return "REFUSED, nothing was sent: " + "; ".join(self.errors)
        if self.status == "error":
            return "FAILED: " + "; ".join(self.errors)
        if self.kind == "plan":
            n = self.planned_orders or 0
            return (
                f"drift report: {n} order(s) would bring the accounts into band; nothing sent"
                if n
                else "drift report: in band, nothing to do"
            )
        line = self.result or self.status
        denied = sum(1 for d in self.denials if d.action == "deny")
        if denied and "risk decisions" not in line:
            line += f"; {denied} order(s) DENIED by risk"
        if self.drift_not_closed and "outside their band" not in line:
            line += f"; {len(self.drift_not_closed)} instrument(s) left out of band"
        return line

    @property
    def duration_seconds(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def tca(self) -> tuple[TcaRow, ...]:
        return tca_rows(self.orders)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (`ib-reconciler/cycle-report` version 1)."""
        out: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "cycle_id": self.cycle_id,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "status": self.status,
            "mode": self.mode,
            "orders_enabled": self.orders_enabled,
            "headline": self.headline,
            "nothing_to_do": self.nothing_to_do,
            "accounts": list(self.accounts),
            "desired": self.desired.to_dict(),
            "gates": [g.to_dict() for g in self.gates],
            "gates_passed": self.gates_passed,
            "plan_id": self.plan_id,
            "drift_before": [r.to_dict() for r in self.drift_before],
            "drift_after": [r.to_dict() for r in self.drift_after],
            "orders": [o.to_dict() for o in self.orders],
            "denials": [d.to_dict() for d in self.denials],
            "errors": list(self.errors),
            "notes": list(self.notes),
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.lock_id is not None:
            out["lock_id"] = self.lock_id
        _put(out, "recovery", self.recovery, lambda rows: [dict(r) for r in rows])
        _put(out, "orphan_orders", self.orphan_orders, list)
        _put(out, "lock_mismatches", self.lock_mismatches, list)
        _put(out, "breaks", self.breaks, list)
        _put(out, "stale_reasons", self.stale_reasons, list)
        _put(out, "risk_at_apply", self.risk_at_apply, list)
        _put(out, "window", self.window, lambda rows: [w.to_dict() for w in rows])
        _put(out, "planned_orders", self.planned_orders)
        _put(out, "totals", self.totals, dict)
        _put(out, "counts", self.counts, OrderCounts.as_mapping)
        _put(out, "drift_not_closed", self.drift_not_closed, list)
        _put(out, "would_send", self.would_send)
        _put(out, "result", self.result)
        _put(out, "remaining_orders_after", self.remaining_orders_after)
        _put(out, "breaks_after", self.breaks_after, list)
        _put(out, "balances", self.balances, lambda rows: [b.to_dict() for b in rows])
        _put(out, "plan_orders", self.plan_orders, lambda rows: [o.to_dict() for o in rows])
        out["traded"] = [t.to_dict() for t in self.traded]
        out["drift_summary"] = [d.to_dict() for d in self.drift]
        out["finished_at"] = self.finished_at.isoformat()
        out["duration_seconds"] = self.duration_seconds
        out["tca"] = [r.to_dict() for r in self.tca]
        _put(out, "files", self.files, list)
        _put(out, "report_files_error", self.report_files_error)
        return out


def _put(out: dict[str, Any], key: str, value: Any, convert=lambda v: v) -> None:
    if value is not None:
        out[key] = convert(value)


def strings(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """A list of report lines as the report keeps them (None stays None: not reached)."""
    return None if values is None else tuple(values)
