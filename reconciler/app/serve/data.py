"""What the read-only surfaces (status API, dashboard, MCP server) show, read from the store.

Responsible for turning store views, cycle reports and plan bodies into plain dicts (the
shapes of serve/models.py) and for the dashboard's time series, all derived from what the
store records: drift before/after from each cycle report, commission from fills, slippage
from fills against their order's arrival price, NAV from each recorded plan and cash as NAV
minus the market value of the plan's positions. Must not write to the store, connect to a
gateway or format HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.app.exit_codes import EXIT_OK, exit_code_for_status
from reconciler.model.plan import document_decisions, document_orders, document_rows
from reconciler.render.views import drift_summary

UTC = dt.UTC


def report_of(view: Any) -> dict[str, Any]:
    return view.report if isinstance(view.report, Mapping) else {}


def cycle_summary(view: Any) -> dict[str, Any]:
    report = report_of(view)
    return {
        "id": view.id,
        "kind": view.kind,
        "status": view.status,
        "started_at": view.started_at,
        "finished_at": view.finished_at,
        "accounts": list(view.accounts),
        "plan_id": view.plan_id or report.get("plan_id"),
        "git_commit": view.git_commit,
        "git_dirty": view.git_dirty,
        "result": report.get("result"),
        "error": view.error,
        "orders": len(report.get("orders") or []),
    }


def _lock(info: Any) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "account": info.account,
        "lock_id": info.lock_id,
        "holder": info.holder,
        "host": info.host,
        "pid": info.pid,
        "acquired_at": info.acquired_at,
        "expires_at": info.expires_at,
        "expired": info.expired,
    }


def _halt(halt: Any) -> dict[str, Any] | None:
    if halt is None:
        return None
    return {"at": halt.at, "reason": halt.reason, "who": halt.who, "cancel_open": halt.cancel_open}


def status(store: Any, settings: Any) -> dict[str, Any]:
    rows = store.status_rows()
    return {
        "trading_mode": settings.trading_mode,
        "orders_enabled": settings.orders_enabled,
        "halt": _halt(store.current_halt()),
        "accounts": [
            {
                "account": row.account,
                "last_cycle": None if row.last_cycle is None else cycle_summary(row.last_cycle),
                "drift": drift_summary(
                    None if row.last_cycle is None else report_of(row.last_cycle), row.account
                ),
                "lock": _lock(row.lock),
                "unresolved_intents": row.unresolved_intents,
                "positions_at": row.positions_at,
            }
            for row in rows
        ],
    }


def known_accounts(store: Any) -> list[str]:
    return [row.account for row in store.status_rows()]


def last_success(store: Any, account: str) -> Any | None:
    """The newest cycle of `account` that ended with exit code 0."""
    offset = 0
    while True:
        page, total = store.page_cycles(account=account, limit=50, offset=offset)
        for cycle in page:
            if cycle.finished_at is not None and exit_code_for_status(cycle.status) == EXIT_OK:
                return cycle
        offset += len(page)
        if not page or offset >= total:
            return None


def health(store: Any, now: dt.datetime, gateway: Mapping[str, Any]) -> dict[str, Any]:
    """The /health body. `gateway` is {"checked", "reachable", "detail"}."""
    try:
        accounts = known_accounts(store)
        store_part = {"readable": True, "database": store.url, "detail": "read ok"}
    except Exception as exc:  # the store is the thing being checked: report, never raise
        accounts = []
        store_part = {"readable": False, "database": store.url, "detail": str(exc)}
    ledger_part = {"verified": False, "events": 0, "detail": "store not readable"}
    account_parts = []
    if store_part["readable"]:
        try:
            result = store.verify_ledger()
        except Exception as exc:  # the ledger is the thing being checked: report, never raise
            ledger_part = {"verified": False, "events": 0, "detail": str(exc)}
        else:
            ledger_part = {"verified": result.ok, "events": result.checked, "detail": result.reason}
        for account in accounts:
            cycle = last_success(store, account)
            at = None if cycle is None else cycle.finished_at
            account_parts.append(
                {
                    "account": account,
                    "last_success_at": at,
                    "age_seconds": None if at is None else round((now - at).total_seconds(), 3),
                }
            )
    healthy = (
        store_part["readable"]
        and ledger_part["verified"]
        and (not gateway["checked"] or bool(gateway["reachable"]))
    )
    return {
        "healthy": healthy,
        "checked_at": now,
        "gateway": dict(gateway),
        "store": store_part,
        "ledger": ledger_part,
        "accounts": account_parts,
    }


def latest_plan(store: Any, account: str | None = None) -> dict[str, Any] | None:
    """The newest recorded plan (that covers `account`, when given), as stored: a plan
    document of the format version it was written in (read with the `document_*` helpers of
    reconciler.model.plan, which read every version)."""
    for body in store.recent_plans(limit=200):
        if account is None or any(a.get("account") == account for a in _plan_accounts(body)):
            return body
    return None


def _plan_accounts(body: Any) -> list[Mapping[str, Any]]:
    """A stored plan's accounts (any format version); none when the body is malformed."""
    accounts = body.get("accounts") if isinstance(body, Mapping) else None
    return [a for a in accounts if isinstance(a, Mapping)] if isinstance(accounts, list) else []


def plan_summary(body: Mapping[str, Any], account: str | None = None) -> dict[str, Any]:
    def mine(row: Mapping[str, Any]) -> bool:
        return account is None or row.get("account") == account

    created = body.get("created_at")
    return {
        "plan_id": body.get("plan_id", ""),
        "created_at": dt.datetime.fromisoformat(created) if isinstance(created, str) else None,
        "orders": [
            {
                "leg": o.get("leg"),
                "account": o.get("account", ""),
                "key": o.get("key"),
                "symbol": o.get("symbol", ""),
                "side": o.get("side", ""),
                "quantity": o.get("quantity", 0.0),
                "order_type": o.get("order_type"),
                "limit_price": o.get("limit_price"),
                "est_notional": o.get("est_notional"),
                "reason": o.get("reason"),
            }
            for o in document_orders(body)
            if mine(o)
        ],
        "decisions": [
            {
                "account": d.get("account"),
                "key": d.get("key"),
                "code": d.get("code", ""),
                "action": d.get("action", ""),
                "side": d.get("side"),
                "requested_quantity": d.get("requested_quantity"),
                "allowed_quantity": d.get("allowed_quantity"),
                "detail": dict(d.get("detail") or {}),
            }
            for d in document_decisions(body)
            if mine(d)
        ],
    }


def drift_rows(report: Mapping[str, Any], account: str, which: str) -> list[dict[str, Any]]:
    return [dict(r) for r in report.get(which) or [] if r.get("account") == account]


def current_drift(report: Mapping[str, Any], account: str) -> list[dict[str, Any]]:
    """After the cycle, or before it when it measured nothing after."""
    return drift_rows(report, account, "drift_after") or drift_rows(report, account, "drift_before")


def account_detail(store: Any, account: str) -> dict[str, Any] | None:
    cycles = store.list_cycles(account=account, limit=1)
    positions = store.latest_positions(account=account)
    plan = latest_plan(store, account)
    if not cycles and not positions and plan is None and account not in known_accounts(store):
        return None
    report = report_of(cycles[0]) if cycles else {}
    targets: list[dict[str, Any]] = []
    if plan is not None:
        for acct in _plan_accounts(plan):
            if acct.get("account") == account:
                targets = [
                    {
                        "key": r.get("key", ""),
                        "target_weight": r.get("target_weight"),
                        "target_quantity": r.get("target_quantity"),
                    }
                    for r in document_rows(acct, "drift")
                    if r.get("status") != "unmanaged"
                ]
    drift_fields = (
        "key",
        "status",
        "quantity",
        "price",
        "current_weight",
        "target_weight",
        "drift",
        "in_band",
    )
    return {
        "account": account,
        "targets": targets,
        "actual": [p.as_dict() for p in positions],
        "drift": [
            {f: r.get(f) for f in drift_fields}
            | {"key": r.get("key", ""), "status": r.get("status", "managed")}
            for r in current_drift(report, account)
        ],
        "last_cycle": cycle_summary(cycles[0]) if cycles else None,
        "last_plan": None if plan is None else plan_summary(plan, account),
    }


# ------------------------------------------------------------------ dashboard series (pure)


def weights(report: Mapping[str, Any], account: str) -> list[dict[str, Any]]:
    """Per instrument of the last cycle: target weight and actual weight before and after."""
    before = {r.get("key"): r for r in drift_rows(report, account, "drift_before")}
    after = {r.get("key"): r for r in drift_rows(report, account, "drift_after")}
    keys = list(dict.fromkeys([*before, *after]))
    rows = []
    for key in keys:
        b, a = before.get(key, {}), after.get(key, {})
        rows.append(
            {
                "key": key,
                "status": (a or b).get("status", "managed"),
                "target": (a or b).get("target_weight"),
                "before": b.get("current_weight"),
                "after": a.get("current_weight"),
                "drift_after": a.get("drift", b.get("drift")),
                "in_band_after": a.get("in_band", b.get("in_band")),
            }
        )
    return rows


def _epoch(when: dt.datetime | None) -> float | None:
    return None if when is None else when.astimezone(UTC).timestamp()


def drift_series(cycles: Iterable[Any], account: str) -> dict[str, Any]:
    """Drift (weight points) per instrument over time: each cycle's drift before it at its
    start and after it at its end. {"t": [epoch seconds], "series": {key: [drift|None]}}."""
    points: list[tuple[float, dict[str, float | None]]] = []
    for cycle in cycles:
        report = report_of(cycle)
        for which, at in (("drift_before", cycle.started_at), ("drift_after", cycle.finished_at)):
            rows = drift_rows(report, account, which)
            if rows and at is not None:
                points.append((_epoch(at) or 0.0, {r.get("key"): r.get("drift") for r in rows}))
    points.sort(key=lambda p: p[0])
    keys = sorted({k for _, values in points for k in values if k is not None})
    return {
        "t": [t for t, _ in points],
        "series": {k: [values.get(k) for _, values in points] for k in keys},
    }


def cost_series(orders: Iterable[Any], fills: Iterable[Any]) -> dict[str, list[float]]:
    """Cumulative commission and slippage (in account currency) at each fill's time.
    Slippage of a fill: (fill price - its order's arrival price) x shares, signed so that
    paying more on a buy or receiving less on a sell is a positive cost."""
    arrival = {o.order_ref: o.arrival_price for o in orders}
    t: list[float] = []
    commission: list[float] = []
    slippage: list[float] = []
    total_commission = total_slippage = 0.0
    for fill in sorted(fills, key=lambda f: (_epoch(f.time) or 0.0, f.exec_id)):
        total_commission += fill.commission or 0.0
        ref_price = arrival.get(fill.order_ref)
        if ref_price is not None:
            sign = -1.0 if fill.side == "SELL" else 1.0
            total_slippage += sign * (fill.price - ref_price) * fill.shares
        t.append(_epoch(fill.time) or 0.0)
        commission.append(round(total_commission, 6))
        slippage.append(round(total_slippage, 6))
    return {"t": t, "commission": commission, "slippage": slippage}


def cash_nav_series(plans: Iterable[Mapping[str, Any]], account: str) -> dict[str, list[float]]:
    """NAV and cash per recorded plan of `account`, oldest first. Cash is the plan's net
    liquidation minus the market value of every position it saw (managed or not)."""
    points = []
    for body in plans:
        for acct in _plan_accounts(body):
            if acct.get("account") != account or acct.get("net_liquidation") is None:
                continue
            when = body.get("snapshot_time") or body.get("created_at")
            if not isinstance(when, str):
                continue
            nav = float(acct["net_liquidation"])
            invested = sum(
                float(r.get("market_value") or 0.0) for r in document_rows(acct, "drift")
            )
            points.append((dt.datetime.fromisoformat(when).timestamp(), nav, nav - invested))
    points.sort()
    return {
        "t": [p[0] for p in points],
        "nav": [p[1] for p in points],
        "cash": [round(p[2], 6) for p in points],
    }


def dashboard(store: Any, account: str) -> dict[str, Any] | None:
    """Everything the account page shows: tables and chart data."""
    detail = account_detail(store, account)
    if detail is None:
        return None
    cycles = store.rows_between("cycles", account=account)
    last_report = report_of(cycles[-1]) if cycles else {}
    orders = store.rows_between("orders", account=account)
    fills = store.rows_between("fills", account=account)
    return {
        **detail,
        "cycles": [cycle_summary(c) for c in reversed(cycles)],
        "charts": {
            "weights": weights(last_report, account),
            "drift": drift_series(cycles, account),
            "costs": cost_series(orders, fills),
            "cash_nav": cash_nav_series(reversed(store.recent_plans(limit=500)), account),
        },
    }
