"""The plan as a pull-request comment (Markdown, Atlantis/Terraform style).

Responsible for the document a reviewer reads before merging a change to the desired state:
a header (desired commit, trading mode, whether orders are enabled, what a merge will do under
the Schedule's `selfHeal`), one count line per account and overall, the desired-state changes,
per account the orders with their reasons, the risk verdicts (code and detail) and the notes
in their own section, and the summary once. Large plans collapse per account in `<details>`
and the whole comment stays under GitHub's comment limit (65,536 characters), pointing at the
JSON artifact when something had to be left out. Pure: values in, a string out; must not read
files, print or decide anything a reviewer must trust (the planner did).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.plan import AccountPlan, Plan

# GitHub refuses a comment body longer than this many characters.
GITHUB_COMMENT_LIMIT = 65_536
# Room kept under the limit for the truncation notice and anything a CI step appends.
_BUDGET = GITHUB_COMMENT_LIMIT - 2_000
# Above this many orders, risk verdicts and notes in the whole plan, accounts collapse.
COLLAPSE_ABOVE = 40


@dataclass(frozen=True)
class ScheduleFacts:
    """What a merge triggers: one Schedule's name, selfHeal and accounts (empty: all)."""

    name: str
    self_heal: bool
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommentContext:
    """What the plan itself does not know but a reviewer needs: where it will run and how."""

    trading_mode: str = "paper"
    orders_enabled: bool = False
    # None: not known (a saved plan shown later); (): the desired state has no Schedule.
    schedules: tuple[ScheduleFacts, ...] | None = None
    # Desired-state change lines and what they were compared with (None: not compared).
    changes: tuple[str, ...] = ()
    changes_against: str | None = None
    # The JSON plan artifact (`plan --out FILE`), pointed at when the comment is truncated.
    artifact: str | None = None


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def account_counts(account: AccountPlan) -> dict[str, int]:
    """Orders to buy and to sell, denied and clipped verdicts, managed instruments in band."""
    return {
        "buy": sum(1 for o in account.orders if o.side == "BUY"),
        "sell": sum(1 for o in account.orders if o.side == "SELL"),
        "denied": sum(1 for d in account.decisions if d.action == "deny"),
        "clipped": sum(1 for d in account.decisions if d.action == "clip"),
        "in_band": sum(1 for r in account.drift if r.status != "unmanaged" and r.in_band),
    }


def counts_line(counts: dict[str, int]) -> str:
    """`3 to buy, 1 to sell, 1 denied, 2 clipped, 12 in band`."""
    return (
        f"{counts['buy']:,} to buy, {counts['sell']:,} to sell, {counts['denied']:,} denied, "
        f"{counts['clipped']:,} clipped, {counts['in_band']:,} in band"
    )


def plan_counts(plan: Plan) -> dict[str, int]:
    total = dict.fromkeys(("buy", "sell", "denied", "clipped", "in_band"), 0)
    for account in plan.accounts:
        for key, value in account_counts(account).items():
            total[key] += value
    return total


def merge_effect(plan: Plan, context: CommentContext) -> str:
    """What merging this change does, from the Schedules' selfHeal and the order switch."""
    accounts = {a.account for a in plan.accounts}
    relevant = [s for s in context.schedules or () if not s.accounts or accounts & set(s.accounts)]
    dry = "" if context.orders_enabled else " (ORDERS_ENABLED is false here: that is a dry run)"
    if not relevant:
        return (
            "no Schedule covers these accounts: nothing runs by itself; orders are sent only "
            f"by `reconcile apply`{dry}."
        )
    parts = []
    for schedule in relevant:
        if schedule.self_heal:
            parts.append(
                f"Schedule `{schedule.name}` has `selfHeal: true`: its next cycle inside the "
                f"trading window applies a fresh plan like this one{dry}"
            )
        else:
            parts.append(
                f"Schedule `{schedule.name}` has `selfHeal: false`: the timer only reports "
                "drift; nothing is sent until someone runs `reconcile apply`"
            )
    return "; ".join(parts) + "."


def _header(plan: Plan, context: CommentContext) -> list[str]:
    from reconciler.render.plan import _short

    commit = (
        f"commit `{_short(plan.git_commit, 10)}`"
        + (" **with uncommitted changes**" if plan.git_dirty else "")
        if plan.git_commit
        else "not in git"
    )
    mode = "**LIVE**" if context.trading_mode == "live" else "paper"
    orders = "enabled" if context.orders_enabled else "disabled (apply is a dry run)"
    t = plan.totals
    on_merge = (
        [] if context.schedules is None else [f"| On merge | {merge_effect(plan, context)} |"]
    )
    return [
        "| | |",
        "|---|---|",
        f"| Desired state | {commit}, content `{_short(plan.desired_hash)}` |",
        f"| Mode | {mode}, orders {orders} |",
        *on_merge,
        f"| Broker snapshot | {plan.snapshot_time.strftime('%Y-%m-%d %H:%M:%S')} UTC, "
        f"fingerprint `{_short(plan.actual_fingerprint)}` |",
        f"| Plan | `{plan.plan_id}`: {t['orders']:,} order(s), turnover "
        f"{_money(t['turnover'])}, est. commission {_money(t['est_commission'])} |",
        *_price_sources_row(plan),
    ]


def _price_sources_row(plan: Plan) -> list[str]:
    from reconciler.render.plan import price_sources

    sources = price_sources(plan)
    return [] if sources is None else [f"| Prices | {sources.removeprefix('Prices: ')} |"]


def _counts_section(plan: Plan) -> list[str]:
    lines = ["#### Counts", ""]
    for account in plan.accounts:
        lines.append(
            f"- `{account.account}` ({account.portfolio}): {counts_line(account_counts(account))}"
        )
    lines.append(f"- **Overall**: {counts_line(plan_counts(plan))}")
    return lines


def _changes_section(plan: Plan, context: CommentContext) -> list[str]:
    against, changes = context.changes_against, context.changes
    if against is None and plan.desired_changes:
        against = plan.desired_changes.get("against")
        changes = tuple(plan.desired_changes.get("changes", ()))
    if against is None:
        return []
    lines = [f"#### Desired-state changes (against {against})", ""]
    if not changes:
        return [*lines, "None."]
    return lines + [f"- {_code_free(c)}" for c in changes]


def _code_free(text: str) -> str:
    """Text from the plan as Markdown: no raw HTML, no cell breaks inside a table."""
    return text.replace("<", "&lt;").replace("|", "\\|")


@dataclass(frozen=True)
class _Detail:
    """How much of an account to show: drift table or not, orders up to `max_rows`."""

    drift: bool = True
    max_rows: int | None = None


def _account_section(account: AccountPlan, detail: _Detail, collapse: bool) -> list[str]:
    from reconciler.render.plan import (
        DRIFT_COLUMNS,
        NUMERIC_COLUMNS,
        ORDER_COLUMNS,
        _account_title,
        _drift_rows,
        _md_table,
        _order_rows,
    )

    counts = counts_line(account_counts(account))
    body: list[str] = []
    if account.orders:
        rows = _order_rows(account)
        shown = rows if detail.max_rows is None else rows[: detail.max_rows]
        body += ["**Orders**", "", _md_table(ORDER_COLUMNS, shown, NUMERIC_COLUMNS), ""]
        if len(shown) < len(rows):
            body += [f"_{len(rows) - len(shown):,} more order(s) in the JSON plan artifact._", ""]
    else:
        body += ["No orders for this account.", ""]
    if account.decisions:
        decisions = [
            [d.action, d.key, d.side, d.code, _detail(d)]
            for d in account.decisions
        ]
        shown = decisions if detail.max_rows is None else decisions[: detail.max_rows]
        body += ["**Risk verdicts**", ""]
        body += [_md_table(["Verdict", "Instrument", "Side", "Code", "Detail"], shown), ""]
        if len(shown) < len(decisions):
            body += [f"_{len(decisions) - len(shown):,} more verdict(s) in the JSON plan artifact._", ""]
    if account.notes:
        notes = list(account.notes)
        shown_notes = notes if detail.max_rows is None else notes[: detail.max_rows]
        body += ["**Notes**", ""]
        body += [f"- {_code_free(n)}" for n in shown_notes]
        if len(shown_notes) < len(notes):
            body.append(f"- _{len(notes) - len(shown_notes):,} more note(s) in the JSON plan artifact._")
        body.append("")
    if detail.drift:
        body += [
            f"<details><summary>Drift table ({len(account.drift):,} instrument(s))</summary>",
            "",
            _md_table(DRIFT_COLUMNS, _drift_rows(account), NUMERIC_COLUMNS),
            "",
            "</details>",
            "",
        ]
    title = _account_title(account)
    if collapse:
        return [
            f"<details><summary><b>{title}</b>: {counts}</summary>",
            "",
            *body,
            "</details>",
            "",
        ]
    return [f"#### {title}", "", f"{counts}.", "", *body]


def _number(value: object) -> str:
    """Detail values with thousands separators (`max=10,000`), other values as they are."""
    from reconciler.model.plan import _fmt

    if isinstance(value, bool) or not isinstance(value, int | float):
        return _fmt(value)
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 1000 else _fmt(value)


def _detail(decision) -> str:
    items = [f"{k}={_number(v)}" for k, v in decision.detail.items()]
    return "`" + " ".join(items) + "`" if items else "-"


def render_comment(plan: Plan, context: CommentContext | None = None) -> str:
    """The whole comment, under GitHub's size limit (see the module docstring)."""
    from reconciler.render.plan import _md_warnings, plan_summary

    context = context or CommentContext()
    t = plan.totals
    head = [
        f"### ib-reconciler plan: {counts_line(plan_counts(plan))}",
        "",
        f"**{plan_summary(plan)}**",
        "",
        *_header(plan, context),
        *_md_warnings(plan.warnings),
        "",
        *_counts_section(plan),
        "",
    ]
    changes = _changes_section(plan, context)
    if changes:
        head += [*changes, ""]
    busy = t["orders"] + len(plan.decisions) + sum(len(a.notes) for a in plan.accounts)
    collapse = busy > COLLAPSE_ABOVE
    # Most detail first; then without drift tables; then fewer rows per table until it fits.
    levels = [_Detail(), _Detail(drift=False)]
    levels += [_Detail(drift=False, max_rows=n) for n in (200, 100, 50, 20, 10, 5, 0)]
    for level in levels:
        body: list[str] = []
        for account in plan.accounts:
            body += _account_section(account, level, collapse)
        truncated = level != levels[0]
        tail = _truncation_notice(context, level) if truncated else _artifact_line(context)
        document = "\n".join([*head, *body, *tail]).rstrip() + "\n"
        if len(document) <= _BUDGET:
            return document
    # Even the bare header does not fit (thousands of accounts): cut it, keep the pointer.
    notice = "\n".join(_truncation_notice(context, levels[-1]))
    return document[: _BUDGET - len(notice) - 2] + "\n\n" + notice + "\n"


def _artifact_line(context: CommentContext) -> list[str]:
    if not context.artifact:
        return []
    return ["---", f"Full plan (JSON artifact): `{context.artifact}`."]


def _truncation_notice(context: CommentContext, level: _Detail) -> list[str]:
    what = "drift tables" if level.max_rows is None else "drift tables and table rows"
    where = (
        f"the JSON plan artifact `{context.artifact}`"
        if context.artifact
        else "the JSON plan (`reconcile plan --out plan.json`)"
    )
    return [
        "---",
        "> [!NOTE]",
        f"> This comment leaves out {what} to stay under GitHub's "
        f"{GITHUB_COMMENT_LIMIT:,}-character limit; every order is in {where}.",
    ]
