"""Rendering of plans and cycle reports: text tables for a terminal, Markdown, JSON.

Responsible for turning `Plan` values and cycle-report dicts into strings. Pure: takes values,
returns text. Must not compute anything a reviewer would need to trust (that is the planner's
job), read files, talk to the broker, or print.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from reconciler.model.plan import AccountPlan, Plan, dumps


def _money(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def _qty(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}"


def _short(sha: str | None, n: int = 12) -> str:
    return (sha or "-")[:n]


def plan_header(plan: Plan) -> str:
    git = "not in git"
    if plan.git_commit:
        git = f"git {_short(plan.git_commit, 10)}" + (" (dirty)" if plan.git_dirty else "")
    return (
        f"Plan {plan.plan_id}: desired {_short(plan.desired_hash)} ({git}), "
        f"snapshot {plan.snapshot_time.strftime('%Y-%m-%d %H:%M:%SZ')}"
    )


def price_sources(plan: Plan) -> str | None:
    """Where the plan's prices came from, when not every one is a live quote (steady state:
    instruments clearly inside their band are valued at their portfolio market price)."""
    sources = [q.get("price_source", "live") for q in plan.quotes.values()]
    portfolio = sum(1 for s in sources if s == "portfolio")
    if not portfolio:
        return None
    return (
        f"Prices: {len(sources) - portfolio} live quote(s); {portfolio} portfolio market "
        "price(s) for instruments clearly inside their band (never used to price an order)"
    )


def unresolved_drift(plan: Plan) -> list[str]:
    """Managed instruments outside their band (account:key), whatever the orders."""
    return [
        f"{r.account}:{r.key}"
        for a in plan.accounts
        for r in a.drift
        if r.status != "unmanaged" and not r.in_band
    ]


def plan_summary(plan: Plan) -> str:
    t = plan.totals
    if not t["orders"]:
        outside = unresolved_drift(plan)
        if outside:
            return (
                f"No orders planned, but {len(outside)} managed instrument(s) stay outside their "
                f"band ({', '.join(outside)}): see the risk decisions and notes of each account."
            )
        return "No changes. Every managed instrument is inside its band."
    return (
        f"Plan: {t['orders']} order(s), turnover {_money(t['turnover'])}, "
        f"est. commission {_money(t['est_commission'])}; "
        f"{t['denials']} denied, {t['clips']} clipped."
    )


def _drift_rows(account: AccountPlan) -> list[list[str]]:
    rows = []
    for r in account.drift:
        band = "in" if r.in_band else "OUT"
        if r.status == "unmanaged":
            band = "unmanaged"
        rows.append(
            [
                r.key,
                _qty(r.quantity),
                _money(r.price),
                _money(r.market_value),
                _pct(r.current_weight),
                _pct(r.target_weight),
                _pts(r.drift),
                band,
                _qty(r.in_flight) if r.in_flight else "",
            ]
        )
    return rows


DRIFT_COLUMNS = [
    "Instrument",
    "Qty",
    "Price",
    "Value",
    "Weight",
    "Target",
    "Drift pts",
    "Band",
    "In flight",
]
ORDER_COLUMNS = ["Leg", "Side", "Qty", "Instrument", "Type", "Limit", "Notional", "Reason"]


def _order_rows(account: AccountPlan) -> list[list[str]]:
    return [
        [
            str(o.leg),
            o.side,
            _qty(o.quantity),
            o.key,
            o.order_type,
            _money(o.limit_price, 4 if (o.limit_price or 0) < 1 else 2),
            _money(o.est_notional),
            o.reason,
        ]
        for o in account.orders
    ]


def _account_title(a: AccountPlan) -> str:
    return (
        f"Account {a.account}: portfolio {a.portfolio}, NAV {_money(a.net_liquidation)} "
        f"{a.base_currency}, capital {_money(a.capital)}, policy {a.risk_policy}"
    )


# Colours on a terminal only (the CLI decides: never piped, never with NO_COLOR).
_SIDE_STYLES = {"BUY": "green", "SELL": "magenta"}


def render_plan_text(plan: Plan, *, width: int = 120, color: bool = False) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color)
    console.print(plan_header(plan), highlight=False)
    if plan.desired_changes:
        changes = plan.desired_changes.get("changes") or ["none"]
        console.print()
        console.print(
            f"Desired-state changes (against {plan.desired_changes.get('against')}):",
            style="bold",
            highlight=False,
        )
        for change in changes:
            console.print(f"  {change}", highlight=False, markup=False)
    sources = price_sources(plan)
    if sources:
        console.print(sources, highlight=False)
    for account in plan.accounts:
        console.print()
        console.print(_account_title(account), style="bold", highlight=False)
        drift = Table(title="Drift", title_justify="left", show_edge=False, pad_edge=False)
        for c in DRIFT_COLUMNS:
            drift.add_column(c, justify="left" if c in ("Instrument", "Band") else "right")
        for row in _drift_rows(account):
            drift.add_row(*row, style="red" if row[7] == "OUT" else None)
        console.print(drift)
        if account.orders:
            orders = Table(title="Orders", title_justify="left", show_edge=False, pad_edge=False)
            for c in ORDER_COLUMNS:
                orders.add_column(
                    c, justify="right" if c in ("Leg", "Qty", "Limit", "Notional") else "left"
                )
            for row in _order_rows(account):
                orders.add_row(*row, style=_SIDE_STYLES.get(row[1]))
            console.print(orders)
        else:
            console.print("No orders for this account.", highlight=False)
        for d in account.decisions:
            console.print(
                f"  {d.action.upper():5} {d.key} {d.side}: {d.render()}",
                style="yellow" if d.action == "clip" else "red",
                highlight=False,
                markup=False,
            )
        for note in account.notes:
            console.print(f"  note: {note}", highlight=False, markup=False)
    console.print()
    console.print(plan_summary(plan), style="bold", highlight=False)
    return buffer.getvalue().rstrip() + "\n"


# Columns holding numbers: right-aligned in every table (terminal and Markdown).
NUMERIC_COLUMNS = frozenset(
    {"Leg", "Qty", "Price", "Value", "Weight", "Target", "Drift pts", "In flight", "Limit",
     "Notional"}
)


def _md_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[str] = frozenset()
) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    rule = "|" + "|".join("---:" if c in right else "---" for c in columns) + "|"
    out = ["| " + " | ".join(columns) + " |", rule]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def render_plan_markdown(plan: Plan, context: Any = None) -> str:
    """A pull-request comment (see `reconciler.render.comment`)."""
    from reconciler.render.comment import render_comment

    return render_comment(plan, context)


def _md_warnings(warnings: Sequence[str]) -> list[str]:
    """A GitHub alert block, so that a reviewer cannot miss it in the pull request."""
    if not warnings:
        return []
    lines = ["", "> [!WARNING]", f"> **Configuration warnings ({len(warnings)})**", ">"]
    return lines + [f"> - {w}" for w in warnings]


def render_plan(plan: Plan, fmt: str, **kwargs: Any) -> str:
    if fmt == "json":
        return dumps(plan) + "\n"
    if fmt == "markdown":
        return render_plan_markdown(plan, kwargs.get("context"))
    return render_plan_text(plan, color=kwargs.get("color", False))


def render_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
