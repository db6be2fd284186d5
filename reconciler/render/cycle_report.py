"""The cycle report in Markdown (pure): the file written next to the JSON after every cycle.

Responsible for rendering a `CycleReport` (desired commit, gates, drift before and after,
orders and outcomes, denials, transaction-cost analysis, duration, errors, warnings) as
Markdown, and for the one-line order outcome the CLI also shows. The report's shape and its
JSON form are `reconciler.model.report`. Must not write files, talk to the broker or the
store, or print; `cycle` decides where it goes.
"""

from __future__ import annotations

from reconciler.model.outcome import DRY_RUN, summary_line
from reconciler.model.report import CycleReport, GateRow
from reconciler.render.plan import _md_table, _money, _pct, _pts, _qty


def outcome_line(report: CycleReport) -> str:
    """'7 order(s): 0 filled, 0 partly filled, 7 rejected, ...' from an apply report."""
    if report.status == DRY_RUN:
        return f"{report.would_send or 0} order(s) would have been sent (dry run)"
    return summary_line(report.counts.as_mapping() if report.counts else {})


def _gate_result(gate: GateRow) -> str:
    return gate.result or ("pass" if gate.passed else "REFUSED")


def render_markdown(report: CycleReport) -> str:
    d = report.desired
    lines = [
        f"# Cycle {report.cycle_id} ({report.kind}): {report.status}",
        "",
        f"- Started {report.started_at.isoformat()}, finished {report.finished_at.isoformat()}, "
        f"{report.duration_seconds} s",
        f"- Mode {report.mode}, orders {'enabled' if report.orders_enabled else 'DISABLED (dry run)'}",
        f"- Desired state `{(d.hash or '-')[:12]}` at commit `{(d.git_commit or '-')[:10]}`"
        + (" (dirty)" if d.git_dirty else ""),
        f"- Accounts: {', '.join(report.accounts)}",
        f"- Plan `{report.plan_id or '-'}`; result: {report.result or '-'}",
    ]
    if report.counts:
        lines.append(f"- Orders: {outcome_line(report)}")
    if report.report_files_error:
        lines.append(f"- {report.report_files_error}")
    if report.lock_id:
        lines.append(f"- Lock `{report.lock_id}`")
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    if report.errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report.errors]
    if report.gates:
        lines += ["", "## Gates", ""]
        lines += [
            _md_table(
                ["Gate", "Result", "Detail"],
                [[g.name, _gate_result(g), g.detail] for g in report.gates],
            )
        ]
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
    if report.orphan_orders:
        lines += ["", "## Orders at the broker unknown to the ledger", ""]
        lines += [f"- `{o}`" for o in report.orphan_orders]
    if report.recovery:
        lines += ["", "## Recovery of earlier orders", ""]
        lines += [f"- `{r.get('order_ref')}`: {r.get('resolution')}" for r in report.recovery]
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
    if report.orders:
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
                        o.order_ref,
                        o.account,
                        o.side,
                        _qty(o.quantity),
                        o.key,
                        o.status,
                        _qty(o.filled),
                        _money(o.avg_price, 4),
                        o.message or "",
                    ]
                    for o in report.orders
                ],
            )
        ]
    if report.denials:
        lines += ["", "## Risk decisions", ""]
        lines += [f"- **{x.action}** `{x.key}` {x.side}: `{x.detail}`" for x in report.denials]
    tca = report.tca
    if tca:
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
            )
        ]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
