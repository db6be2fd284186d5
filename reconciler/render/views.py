"""Display views of store rows for operator commands (pure).

Responsible for turning the store's status, cycle, order, fill and position rows into flat
dicts with readable values for `reconcile status` and `reconcile show ...`. Must not query
the store, print, or decide anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return "-" if value is None else str(value)


def drift_summary(report: Mapping[str, Any] | None, account: str) -> str:
    """'2 of 4 outside band (max 3.10 pts)' from the latest drift in a cycle report; 'unknown'
    instead of a maximum when an instrument had no price."""
    if not report:
        return "-"
    rows = [
        r
        for r in (report.get("drift_after") or report.get("drift_before") or [])
        if r.get("account") == account and r.get("status") != "unmanaged"
    ]
    if not rows:
        return "-"
    unknown = [r for r in rows if r.get("status", "managed") != "managed" or r.get("drift") is None]
    outside = [r for r in rows if not r.get("in_band") and r not in unknown]
    if unknown:
        # A missing price means the drift is not known: never a "max" that looks measured.
        why = ", ".join(f"{r.get('key')} {r.get('status', 'no drift')}" for r in unknown)
        return (
            f"{len(outside)} of {len(rows)} outside band, {len(unknown)} unknown ({why}); "
            "max unknown"
        )
    worst = max((abs(r["drift"]) for r in rows), default=0.0)
    return f"{len(outside)} of {len(rows)} outside band (max {worst * 100:.2f} pts)"


def status_view(row: Any) -> dict[str, Any]:
    """One line of `reconcile status` from the store's status row."""
    cycle = row.last_cycle
    lock = row.lock
    return {
        "account": row.account,
        "last_cycle": "-" if cycle is None else f"{cycle.id} {cycle.kind} {cycle.status}",
        "finished": "-" if cycle is None else _when(cycle.finished_at or cycle.started_at),
        "result": "-" if cycle is None else str((cycle.report or {}).get("result", "-")),
        "drift": drift_summary(None if cycle is None else cycle.report, row.account),
        "lock": "-"
        if lock is None
        else f"{lock.lock_id} by {lock.holder}" + (" (expired)" if lock.expired else ""),
        "halt": "-" if row.halt is None else row.halt.reason,
        "unresolved": row.unresolved_intents,
    }


def cycle_view(cycle: Any) -> dict[str, Any]:
    """One line of `reconcile show cycles` (the full report stays in the store and files)."""
    report = cycle.report or {}
    duration = report.get("duration_seconds")
    return {
        "id": cycle.id,
        "kind": cycle.kind,
        "status": cycle.status,
        "started": _when(cycle.started_at),
        "duration_s": "-" if duration is None else duration,
        "accounts": ",".join(cycle.accounts),
        "plan": cycle.plan_id or report.get("plan_id") or "-",
        "commit": (cycle.git_commit or "-")[:10] + (" dirty" if cycle.git_dirty else ""),
        "orders": len(report.get("orders", [])),
        "result": report.get("result", "; ".join(report.get("errors", [])) or "-"),
    }


def _num(value: Any) -> Any:
    """A quantity: thousands separators, decimals only when it has them."""
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return "-" if value is None else value


def _price(value: Any) -> Any:
    """A price or an amount: always the same decimals, so a right-aligned column lines up."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:,.4f}"
    return "-" if value is None else value


def order_view(row: Any) -> dict[str, Any]:
    return {
        "order_ref": row.order_ref,
        "created": _when(row.created_at),
        "account": row.account,
        "side": row.side,
        "quantity": _num(row.quantity),
        "symbol": row.symbol,
        "type": row.order_type or "-",
        "limit": _price(row.limit_price),
        "arrival": _price(row.arrival_price),
        "outcome": row.status,
        "filled": _num(row.filled_quantity),
        "avg_price": _price(row.avg_fill_price),
    }


def fill_view(row: Any) -> dict[str, Any]:
    return {
        "exec_id": row.exec_id,
        "time": _when(row.time),
        "order_ref": row.order_ref or "-",
        "account": row.account,
        "side": row.side,
        "shares": _num(row.shares),
        "symbol": row.symbol,
        "price": _price(row.price),
        "commission": _price(row.commission),
    }


def position_view(row: Any) -> dict[str, Any]:
    return {
        "account": row.account,
        "at": _when(row.at),
        "cycle": row.cycle_id,
        "symbol": row.symbol,
        "con_id": row.con_id,
        "quantity": _num(row.quantity),
        "avg_cost": _price(row.avg_cost),
    }
