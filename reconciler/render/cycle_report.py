"""The cycle report in Markdown (pure): the file written next to the JSON after every cycle.

Responsible for rendering a `CycleReport` as Markdown a reviewer understands in seconds: the
outcome first, then what changed (each trade with its reason, fill, slippage and commission,
totals bought and sold), NAV, cash and drift before and after per account, and what needs
attention (refusals, errors, risk denials, ledger breaks, warnings); gates collapse to one
line when all pass; the detail (drift tables, windows, recovery, costs, the cycle's facts)
follows. Also the one-line order outcome the CLI shows. The report's shape and its
JSON form are `reconciler.model.report`. Must not write files, talk to the broker or the
store, or print; `cycle` decides where it goes.
"""

from __future__ import annotations

from reconciler.model.outcome import DRY_RUN, summary_line
from reconciler.model.report import CycleReport, GateRow, OrderRow
from reconciler.render.plan import _md_table, _money, _pct, _pts, _qty


def outcome_line(report: CycleReport) -> str:
    """'7 order(s): 0 filled, 0 partly filled, 7 rejected, ...' from an apply report."""
    if report.status == DRY_RUN:
        return f"{report.would_send or 0} order(s) would have been sent (dry run)"
    return summary_line(report.counts.as_mapping() if report.counts else {})


def _gate_result(gate: GateRow) -> str:
    return gate.result or ("pass" if gate.passed else "REFUSED")


_NOT_SENT_TITLES = {
    DRY_RUN: "Orders that would have been sent (dry run: nothing was sent)",
    "outside-window": "Orders planned (outside the trading window: nothing was sent)",
    "not-approved": "Orders planned (not approved: nothing was sent)",
}


def _attention(report: CycleReport) -> list[str]:
    """What a reviewer must not miss: refusals, errors, denials, breaks, orphans, warnings."""
    items: list[str] = []
    refused_gates = [g for g in report.gates if not g.passed]
    items += [f"**Gate {g.name} refused**: {g.detail}" for g in refused_gates]
    if refused_gates:
        pass  # the refusal's errors are these gates, rendered: said once above
    elif report.status in ("refused", "error"):
        items += [f"**{report.status.upper()}**: {e}" for e in report.errors]
    else:
        items += [f"**Error**: {e}" for e in report.errors]
    items += [
        f"**Risk {'denied' if x.action == 'deny' else x.action}** {x.account} {x.side} "
        f"`{x.key}`: `{x.detail}`"
        for x in report.denials
    ]
    for title, lines in (
        ("Ledger break", report.breaks),
        ("Ledger break after apply", report.breaks_after),
        ("Order at the broker unknown to the ledger", report.orphan_orders),
        ("Stale plan", report.stale_reasons),
    ):
        items += [f"**{title}**: `{line}`" for line in lines or ()]
    if report.drift_not_closed:
        items.append(
            "**Drift not closed** (no allowed order): " + ", ".join(report.drift_not_closed)
        )
    if report.report_files_error:
        items.append(f"**Report files**: {report.report_files_error}")
    items += [f"**Warning**: {w}" for w in report.warnings]
    return items


def _trades(report: CycleReport) -> list[str]:
    orders = report.orders
    title = _NOT_SENT_TITLES.get(report.status, "What changed")
    not_sent = report.status in _NOT_SENT_TITLES
    if report.plan_orders:  # a drift report: what a selfHeal cycle would do
        orders, not_sent = report.plan_orders, True
        title = "Orders a selfHeal cycle would send (drift report: nothing was sent)"
    if not orders:
        return []
    lines = ["", f"## {title}", ""]
    if not_sent:
        lines.append(
            _md_table(
                ["Ref", "Account", "Side", "Qty", "Instrument", "Reason"],
                [
                    [o.order_ref, o.account, o.side, _qty(o.quantity), o.key, o.reason or "-"]
                    for o in orders
                ],
            )
        )
        return lines
    lines.append(
        _md_table(
            [
                "Ref",
                "Account",
                "Side",
                "Instrument",
                "Filled / qty",
                "Outcome",
                "Avg price",
                "Slippage bps",
                "Commission",
                "Reason",
            ],
            [
                [
                    o.order_ref,
                    o.account,
                    o.side,
                    o.key,
                    f"{_qty(o.filled)} / {_qty(o.quantity)}",
                    _outcome_word(o) + (f": {o.message}" if o.message else ""),
                    _money(o.avg_price, 4),
                    "-" if o.slippage_bps is None else f"{o.slippage_bps:+.2f}",
                    _money(o.commission) if o.filled else "-",
                    o.reason or "-",
                ]
                for o in report.orders
            ],
        )
    )
    for t in report.traded:
        lines += [
            "",
            f"{t.account}: bought {_money(t.bought)} {t.currency}, sold {_money(t.sold)} "
            f"{t.currency}, commission {_money(t.commission)} ({t.orders_filled} order(s) "
            "with fills).",
        ]
    return lines


_OUTCOME_WORDS = {
    "FILLED": "filled",
    "PARTIAL_CANCELLED": "PARTLY filled",
    "CANCELLED": "CANCELLED",
    "REJECTED": "REJECTED",
    "NOT_SENT": "not sent",
    "UNKNOWN": "UNKNOWN",
}


def _outcome_word(order: OrderRow) -> str:
    if order.status not in ("FILLED", "PARTIAL_CANCELLED") and order.filled:
        return "PARTLY filled"
    return _OUTCOME_WORDS.get(order.status, order.status)


def _accounts(report: CycleReport) -> list[str]:
    balances = {b.account: b for b in report.balances or ()}
    drift = {d.account: d for d in report.drift}
    if not balances and not drift:
        return []
    # Without a snapshot after the orders (dry run, nothing sent) there is no "after" column.
    after = any(b.nav_after is not None for b in balances.values()) or any(
        d.out_of_band_after is not None for d in drift.values()
    )
    rows = []
    for account in report.accounts:
        b, d = balances.get(account), drift.get(account)
        row = [account, b.currency if b else "-", _money(b.nav_before if b else None)]
        row += [_money(b.nav_after if b else None)] if after else []
        row += [_money(b.cash_before if b else None)]
        row += [_money(b.cash_after if b else None)] if after else []
        row += [_band(d.max_drift_before, d.out_of_band_before) if d else "-"]
        row += [_band(d.max_drift_after, d.out_of_band_after) if d else "-"] if after else []
        rows.append(row)
    columns = (
        [
            *("Account", "Ccy", "NAV before", "NAV after", "Cash before", "Cash after"),
            *("Drift before", "Drift after"),
        ]
        if after
        else ["Account", "Ccy", "NAV", "Cash", "Drift"]
    )
    return [
        "",
        "## Accounts",
        "",
        _md_table(columns, rows),
        "",
        "Drift: largest distance from target in weight points, and how many instruments are "
        "out of band.",
    ]


def _band(max_drift: float | None, out_of_band: int | None) -> str:
    if out_of_band is None:
        return "-"
    return f"max {_pts(max_drift).lstrip('+') if max_drift is not None else '-'} pts, " + (
        "all in band" if not out_of_band else f"{out_of_band} OUT of band"
    )


def _gates(report: CycleReport) -> list[str]:
    if not report.gates:
        return []
    table = _md_table(
        ["Gate", "Result", "Detail"],
        [[g.name, _gate_result(g), g.detail] for g in report.gates],
    )
    if not report.gates_passed:
        return ["", "## Gates", "", table]
    dry = [g for g in report.gates if g.result != "pass"]
    line = f"All {len(report.gates)} gates passed" + (
        f" ({'; '.join(f'{g.name}: {g.result}' for g in dry)})" if dry else ""
    )
    return [
        "",
        "## Gates",
        "",
        line + ".",
        "",
        "<details><summary>Gate details</summary>",
        "",
        table,
        "",
        "</details>",
    ]


def _drift_tables(report: CycleReport) -> list[str]:
    lines: list[str] = []
    for title, rows in (("Drift before", report.drift_before), ("Drift after", report.drift_after)):
        if rows:
            lines += ["", f"## {title}", ""]
            lines += [
                _md_table(
                    ["Account", "Instrument", "Qty", "Weight", "Target", "Drift pts", "Band"],
                    [
                        [
                            r.account,
                            r.key,
                            _qty(r.quantity),
                            _pct(r.current_weight),
                            _pct(r.target_weight),
                            _pts(r.drift),
                            "unmanaged"
                            if r.status == "unmanaged"
                            else ("in" if r.in_band else "OUT"),
                        ]
                        for r in rows
                    ],
                )
            ]
    return lines


def _tca(report: CycleReport) -> list[str]:
    tca = report.tca
    if not tca:
        return []
    return [
        "",
        "## Transaction costs",
        "",
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
                    r.order_ref,
                    r.key,
                    r.side,
                    _qty(r.filled),
                    _money(r.arrival_price, 4),
                    _money(r.avg_price, 4),
                    "-" if r.slippage_bps is None else f"{r.slippage_bps:.2f}",
                    _money(r.est_commission),
                    _money(r.commission),
                ]
                for r in tca
            ],
        ),
    ]


def render_markdown(report: CycleReport) -> str:
    """Outcome first, then what changed, the accounts, anything that needs attention; the
    detail (gates, drift tables, windows, recovery, costs, the cycle's facts) below."""
    d = report.desired
    lines = [f"# Cycle {report.cycle_id} ({report.kind}): {report.status}", ""]
    lines.append(f"**{report.headline}**")
    if (
        report.counts
        and report.planned_orders
        and report.status != DRY_RUN
        and outcome_line(report) not in report.headline
    ):
        lines += ["", f"Orders: {outcome_line(report)}."]
    attention = _attention(report)
    if attention:
        lines += ["", "## Needs attention", ""] + [f"- {a}" for a in attention]
    lines += _trades(report)
    lines += _accounts(report)
    lines += _gates(report)
    lines += _drift_tables(report)
    if report.window:
        lines += ["", "## Trading window", ""]
        lines += [
            _md_table(
                ["Instrument", "Exchange", "Calendar", "Open", "Why"],
                [
                    [w.key, w.exchange, w.calendar or "-", "yes" if w.open else "NO", w.reason]
                    for w in report.window
                ],
            )
        ]
    if report.recovery:
        lines += ["", "## Recovery of earlier orders", ""]
        lines += [f"- `{r.get('order_ref')}`: {r.get('resolution')}" for r in report.recovery]
    if report.risk_at_apply:
        lines += ["", "## Risk checks at apply", ""] + [f"- {r}" for r in report.risk_at_apply]
    lines += _tca(report)
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    lines += [
        "",
        "## Cycle",
        "",
        f"- Started {report.started_at.isoformat()}, finished {report.finished_at.isoformat()}, "
        f"{report.duration_seconds} s",
        f"- Mode {report.mode}, orders {'enabled' if report.orders_enabled else 'DISABLED (dry run)'}",
        f"- Desired state `{(d.hash or '-')[:12]}` at commit `{(d.git_commit or '-')[:10]}`"
        + (" (dirty)" if d.git_dirty else ""),
        f"- Accounts: {', '.join(report.accounts)}",
        f"- Plan `{report.plan_id or '-'}`; result: {report.result or '-'}",
    ]
    if report.lock_id:
        lines.append(f"- Lock `{report.lock_id}`")
    return "\n".join(lines) + "\n"
