"""The cycle report: one JSON-able dict per cycle, and its Markdown rendering (pure).

Responsible for the report's shape (desired commit, gates, drift before and after, orders and
outcomes, denials, transaction-cost analysis, duration, errors) and for rendering it. Must not
write files, talk to the broker or the store, or print; `cycle` decides where it goes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from reconciler.model.outcome import summary_line
from reconciler.model.plan import Plan
from reconciler.render.plan import _md_table, _money, _pct, _pts, _qty

REPORT_FORMAT = "ib-reconciler/cycle-report"


def new_report(
    cycle_id: int, kind: str, started: dt.datetime, desired, settings, accounts: Sequence[str]
) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        "cycle_id": cycle_id,
        "kind": kind,
        "started_at": started.isoformat(),
        "status": "running",
        "mode": settings.trading_mode,
        "orders_enabled": settings.orders_enabled,
        "accounts": list(accounts),
        "desired": {
            "hash": desired.content_hash,
            "git_commit": desired.git_commit,
            "git_dirty": desired.git_dirty,
            "directory": desired.directory,
        },
        "gates": [],
        "plan_id": None,
        "drift_before": [],
        "drift_after": [],
        "orders": [],
        "denials": [],
        "errors": [],
        "notes": [],
    }


def gate_rows(gates, orders_enabled: bool) -> list[dict[str, Any]]:
    """The gates for the report: name, passed, detail and the word shown for the result.

    With orders disabled the ORDERS_ENABLED gate lets the cycle run, but as a dry run: the
    report says so rather than "pass"."""
    rows = []
    for g in gates:
        result = "pass" if g.passed else "REFUSED"
        if g.name == "ORDERS_ENABLED" and not orders_enabled:
            result = "dry run: orders disabled"
        rows.append({"name": g.name, "passed": g.passed, "detail": g.detail, "result": result})
    return rows


def _gate_result(gate: dict[str, Any]) -> str:
    return gate.get("result") or ("pass" if gate.get("passed") else "REFUSED")


def _drift(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "account": r.account,
            "key": r.key,
            "status": r.status,
            "quantity": r.quantity,
            "price": r.price,
            "current_weight": r.current_weight,
            "target_weight": r.target_weight,
            "drift": r.drift,
            "in_band": r.in_band,
        }
        for a in plan.accounts
        for r in a.drift
    ]


def add_plan(report: dict[str, Any], plan: Plan) -> None:
    report["plan_id"] = plan.plan_id
    report["planned_orders"] = len(plan.orders)
    report["totals"] = plan.totals
    report["drift_before"] = _drift(plan)
    report["denials"] = [
        {
            "account": d.account,
            "key": d.key,
            "side": d.side,
            "code": d.code,
            "action": d.action,
            "detail": d.render(),
        }
        for d in plan.decisions
    ]


def add_drift_after(report: dict[str, Any], plan_after: Plan) -> None:
    report["drift_after"] = _drift(plan_after)
    report["remaining_orders_after"] = len(plan_after.orders)


def outcome_line(report: dict[str, Any]) -> str:
    """'7 order(s): 0 filled, 0 partly filled, 7 rejected, ...' from an apply report."""
    counts = report.get("counts") or {}
    if report.get("status") == "dry-run":
        return f"{report.get('would_send', 0)} order(s) would have been sent (dry run)"
    return summary_line(counts)


def tca(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Transaction-cost rows: arrival price (quote at plan time) vs fills, commissions."""
    rows = []
    for o in report.get("orders", []):
        if not o.get("filled"):
            continue
        rows.append(
            {
                "order_ref": o["order_ref"],
                "key": o["key"],
                "side": o["side"],
                "filled": o["filled"],
                "arrival_price": o.get("arrival_price"),
                "avg_price": o.get("avg_price"),
                "slippage_bps": o.get("slippage_bps"),
                "est_commission": o.get("est_commission"),
                "commission": o.get("commission"),
            }
        )
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    d = report.get("desired", {})
    lines = [
        f"# Cycle {report.get('cycle_id')} ({report.get('kind')}): {report.get('status')}",
        "",
        f"- Started {report.get('started_at')}, finished {report.get('finished_at', '-')}, "
        f"{report.get('duration_seconds', '-')} s",
        f"- Mode {report.get('mode')}, orders {'enabled' if report.get('orders_enabled') else 'DISABLED (dry run)'}",
        f"- Desired state `{(d.get('hash') or '-')[:12]}` at commit `{(d.get('git_commit') or '-')[:10]}`"
        + (" (dirty)" if d.get("git_dirty") else ""),
        f"- Accounts: {', '.join(report.get('accounts', []))}",
        f"- Plan `{report.get('plan_id') or '-'}`; result: {report.get('result', '-')}",
    ]
    if report.get("counts"):
        lines.append(f"- Orders: {outcome_line(report)}")
    if report.get("report_files_error"):
        lines.append(f"- {report['report_files_error']}")
    if report.get("lock_id"):
        lines.append(f"- Lock `{report['lock_id']}`")
    if report.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report["errors"]]
    if report.get("gates"):
        lines += ["", "## Gates", ""]
        lines += [
            _md_table(
                ["Gate", "Result", "Detail"],
                [[g["name"], _gate_result(g), g["detail"]] for g in report["gates"]],
            )
        ]
    if report.get("window"):
        lines += ["", "## Trading window", ""]
        lines += [
            _md_table(
                ["Instrument", "Exchange", "Calendar", "Open", "Why"],
                [
                    [
                        w["key"],
                        w["exchange"],
                        w["calendar"] or "-",
                        "yes" if w["open"] else "NO",
                        w["reason"],
                    ]
                    for w in report["window"]
                ],
            )
        ]
    if report.get("orphan_orders"):
        lines += ["", "## Orders at the broker unknown to the ledger", ""]
        lines += [f"- `{o}`" for o in report["orphan_orders"]]
    if report.get("recovery"):
        lines += ["", "## Recovery of earlier orders", ""]
        lines += [f"- `{r.get('order_ref')}`: {r.get('resolution')}" for r in report["recovery"]]
    for title, key in (("Drift before", "drift_before"), ("Drift after", "drift_after")):
        rows = report.get(key) or []
        if rows:
            lines += ["", f"## {title}", ""]
            lines += [
                _md_table(
                    ["Account", "Instrument", "Qty", "Weight", "Target", "Drift pts", "Band"],
                    [
                        [
                            r["account"],
                            r["key"],
                            _qty(r["quantity"]),
                            _pct(r["current_weight"]),
                            _pct(r["target_weight"]),
                            _pts(r["drift"]),
                            "unmanaged"
                            if r["status"] == "unmanaged"
                            else ("in" if r["in_band"] else "OUT"),
                        ]
                        for r in rows
                    ],
                )
            ]
    if report.get("orders"):
        lines += ["", "## Orders", ""]
        lines += [
            _md_table(
                [
                    "Ref",
                    "Account",
                    "Side",
                    "Qty",
                    "Instrument",
                    "Outcome",
                    "Filled",
                    "Avg price",
                    "Message",
                ],
                [
                    [
                        o["order_ref"],
                        o["account"],
                        o["side"],
                        _qty(o["quantity"]),
                        o["key"],
                        o["status"],
                        _qty(o["filled"]),
                        _money(o.get("avg_price"), 4),
                        o.get("message") or "",
                    ]
                    for o in report["orders"]
                ],
            )
        ]
    if report.get("denials"):
        lines += ["", "## Risk decisions", ""]
        lines += [
            f"- **{x['action']}** `{x['key']}` {x['side']}: `{x['detail']}`"
            for x in report["denials"]
        ]
    rows = tca(report)
    if rows:
        lines += ["", "## Transaction costs", ""]
        lines += [
            _md_table(
                [
                    "Ref",
                    "Instrument",
                    "Side",
                    "Filled",
                    "Arrival",
                    "Avg fill",
                    "Slippage bps",
                    "Est. comm.",
                    "Comm.",
                ],
                [
                    [
                        r["order_ref"],
                        r["key"],
                        r["side"],
                        _qty(r["filled"]),
                        _money(r["arrival_price"], 4),
                        _money(r["avg_price"], 4),
                        "-" if r["slippage_bps"] is None else f"{r['slippage_bps']:.2f}",
                        _money(r["est_commission"]),
                        _money(r["commission"]),
                    ]
                    for r in rows
                ],
            )
        ]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"
