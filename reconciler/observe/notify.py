"""Notifications: the events a finished cycle (or an operator's halt and resume) is worth
telling a person about, de-duplicated, sent through apprise.

Responsible for the events of a cycle (`cycle_events`, pure): drift seen in report-only mode
(selfHeal false, or a dry run) with the plan's summary, a refused cycle (which gate), a failed
cycle (the error), risk denials, orders rejected or left unknown, ledger breaks; for the
de-duplication decision (`due`, pure): a persisting condition (same event, same account, same
facts) notifies once per repeat period, a changed one at once, and one that cleared notifies
again when it comes back; for the state that decision needs (a small JSON file in the state
directory) and for delivery (`send`: apprise, imported only when URLs are set). Must not fail
a cycle: delivery errors are returned, never raised; must not read a clock (times come in).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.model.status import CycleStatus
from reconciler.observe.facts import CycleFacts

log = logging.getLogger("reconciler.observe.notify")

STATE_FILE = "notify-state.json"
TITLE = "ib-reconciler"
# apprise notify types, by event (info, success, warning, failure).
SEVERITY = {
    "drift": "warning",
    "refused": "failure",
    "failed": "failure",
    "denial": "warning",
    "rejected": "failure",
    "unknown": "warning",
    "break": "failure",
    "halt": "warning",
    "resume": "success",
}


@dataclass(frozen=True)
class Event:
    """One notification. `scope` names the condition it reports (e.g. `drift:DU0000001`) for
    de-duplication, with `fingerprint` the condition's facts; None: always sent."""

    kind: str
    title: str
    body: str
    scope: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class Sent:
    """The last notification of a condition: its fingerprint and when it went out."""

    fingerprint: str
    at: dt.datetime


# ------------------------------------------------------------------ events of a cycle


def _who(accounts: Sequence[str]) -> str:
    return ",".join(accounts) or "-"


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f} pts"


def _weight(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _steady(text: str) -> str:
    """A reason without the numbers that change every cycle (ids, times, counts)."""
    return re.sub(r"\d+(\.\d+)?", "#", text)


def cycle_events(facts: CycleFacts) -> list[Event]:
    """Every event one finished cycle is worth (pure); filtering by kind is the caller's."""
    events: list[Event] = []
    cycle = f"cycle {facts.report.cycle_id}" if facts.report else f"{facts.kind} cycle"
    who = _who(facts.accounts)
    if facts.status == CycleStatus.REFUSED:
        report = facts.report
        refused_gates = [g.name for g in report.gates if not g.passed] if report else []
        events.append(
            Event(
                "refused",
                f"{TITLE}: {cycle} REFUSED ({who})",
                "Nothing was sent. Refused by:\n" + "\n".join(f"- {r}" for r in facts.reasons),
                f"refused:{who}",
                ",".join(refused_gates) or _steady("; ".join(facts.reasons)),
            )
        )
    elif facts.status in (CycleStatus.ERROR, CycleStatus.ABORTED):
        events.append(
            Event(
                "failed",
                f"{TITLE}: {cycle} FAILED ({who})",
                "\n".join(facts.reasons) or "the cycle failed",
                f"failed:{who}",
                _steady("; ".join(facts.reasons)),
            )
        )
    report_only = facts.kind == "plan" or facts.status == CycleStatus.DRY_RUN
    if report_only and facts.knows_drift():
        events += _drift_events(facts)
    if facts.report is not None:
        events += _denial_events(facts)
        events += _order_events(facts)
        events += _break_events(facts)
    return events


def _drift_events(facts: CycleFacts) -> list[Event]:
    out = []
    mode = (
        "report only: selfHeal false" if facts.kind == "plan" else "dry run: ORDERS_ENABLED false"
    )
    for account, lines in sorted(facts.out_of_band().items()):
        if not lines:
            continue
        rows = [
            f"- {line.key}: weight {_weight(line.current_weight)}, target "
            f"{_weight(line.target_weight)} (drift {_pts(line.drift)})"
            for line in sorted(lines, key=lambda d: d.key)
        ]
        body = [f"{len(lines)} instrument(s) outside their band ({mode}); nothing was sent."]
        body += rows
        if facts.plan is not None:
            from reconciler.render.plan import plan_summary

            orders = [o for o in facts.plan.orders if o.account == account]
            body.append(plan_summary(facts.plan))
            body += [f"  would {o.side} {o.quantity:g} {o.key}: {o.reason}" for o in orders]
        fingerprint = ",".join(
            sorted(f"{d.key}:{'over' if (d.drift or 0) > 0 else 'under'}" for d in lines)
        )
        out.append(
            Event(
                "drift",
                f"{TITLE}: drift in {account} ({len(lines)} out of band)",
                "\n".join(body),
                f"drift:{account}",
                fingerprint,
            )
        )
    return out


def _denial_events(facts: CycleFacts) -> list[Event]:
    assert facts.report is not None
    by_account: dict[str, list[str]] = {}
    keys: dict[str, set[str]] = {}
    for d in facts.report.denials:
        if d.action != "deny" or d.code == "LEDGER_BREAK":  # a break is its own event
            continue
        by_account.setdefault(d.account, []).append(f"- {d.side} {d.key}: {d.detail}")
        keys.setdefault(d.account, set()).add(f"{d.key}:{d.side}:{d.code}")
    return [
        Event(
            "denial",
            f"{TITLE}: risk denied {len(rows)} order(s) in {account}",
            "\n".join(rows),
            f"denial:{account}",
            ",".join(sorted(keys[account])),
        )
        for account, rows in sorted(by_account.items())
    ]


def _order_events(facts: CycleFacts) -> list[Event]:
    assert facts.report is not None
    out = []
    for status, kind, word in (
        ("REJECTED", "rejected", "REJECTED"),
        ("UNKNOWN", "unknown", "left UNKNOWN"),
    ):
        orders = [o for o in facts.report.orders if o.status == status]
        if not orders:
            continue
        rows = [
            f"- {o.order_ref} {o.account} {o.side} {o.quantity:g} {o.key}"
            + (f": {o.message}" if o.message else "")
            for o in orders
        ]
        if kind == "unknown":
            rows.append("Recovery resolves them from the broker at the next cycle.")
        out.append(
            Event(
                kind,
                f"{TITLE}: {len(orders)} order(s) {word} (cycle {facts.report.cycle_id})",
                "\n".join(rows),
            )
        )
    return out


def _break_events(facts: CycleFacts) -> list[Event]:
    assert facts.report is not None
    found = [*(facts.report.breaks or ()), *(facts.report.breaks_after or ())]
    out = []
    for account in facts.accounts:
        lines = sorted({b for b in found if f"account={account} " in b})
        if lines:
            out.append(
                Event(
                    "break",
                    f"{TITLE}: LEDGER BREAK in {account}",
                    "\n".join(f"- {b}" for b in lines)
                    + "\nThe instrument is skipped until the ledger and the broker agree.",
                    f"break:{account}",
                    ",".join(lines),
                )
            )
    return out


def observed_scopes(facts: CycleFacts) -> set[str]:
    """The conditions this cycle looked at: any of them it did not report has cleared."""
    who = _who(facts.accounts)
    scopes = {f"refused:{who}", f"failed:{who}"}
    if facts.knows_drift():
        for account in facts.accounts:
            scopes |= {f"drift:{account}", f"denial:{account}", f"break:{account}"}
    return scopes


# ------------------------------------------------------------------ de-duplication


def due(
    events: Iterable[Event],
    state: Mapping[str, Sent],
    observed: Iterable[str],
    *,
    now: dt.datetime,
    repeat_seconds: float,
) -> tuple[list[Event], dict[str, Sent]]:
    """The events to send now, and the state without the conditions that cleared (pure).

    An event without a scope is always sent. One with a scope is sent when its condition is
    new, changed (another fingerprint) or last notified `repeat_seconds` ago or more. The
    caller records the events it delivered with `remember` (an undelivered one is tried
    again at the next cycle).
    """
    events = list(events)
    present = {e.scope for e in events if e.scope}
    kept = {k: v for k, v in state.items() if k in present or k not in set(observed)}
    send = []
    for event in events:
        last = kept.get(event.scope) if event.scope else None
        if (
            last is not None
            and last.fingerprint == event.fingerprint
            and (now - last.at).total_seconds() < repeat_seconds
        ):
            continue
        send.append(event)
    return send, kept


def remember(
    state: Mapping[str, Sent], delivered: Iterable[Event], now: dt.datetime
) -> dict[str, Sent]:
    out = dict(state)
    for event in delivered:
        if event.scope:
            out[event.scope] = Sent(event.fingerprint, now)
    return out


def load_state(path: Path) -> dict[str, Sent]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            scope: Sent(str(v["fingerprint"]), dt.datetime.fromisoformat(v["at"]))
            for scope, v in raw.get("conditions", {}).items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("notification state %s unreadable (%s); starting afresh", path, exc)
        return {}


def dump_state(state: Mapping[str, Sent]) -> str:
    conditions = {
        scope: {"fingerprint": s.fingerprint, "at": s.at.isoformat()}
        for scope, s in sorted(state.items())
    }
    return json.dumps({"version": 1, "conditions": conditions}, indent=2) + "\n"


# ------------------------------------------------------------------ delivery


def send(urls: Sequence[str], event: Event) -> str | None:
    """Deliver `event` to every URL; None when all took it, else why not. Never raises."""
    try:
        import apprise

        sender = apprise.Apprise()
        bad = [u for u in urls if not sender.add(u)]
        if bad:
            return f"{len(bad)} notification URL(s) not understood by apprise"
        kind = getattr(apprise.NotifyType, SEVERITY.get(event.kind, "info").upper())
        ok = sender.notify(
            title=event.title,
            body=event.body,
            notify_type=kind,
            body_format=apprise.NotifyFormat.TEXT,
        )
    except Exception as exc:  # a notifier must never take the cycle down with it
        return f"{type(exc).__name__}: {exc}"
    return None if ok else "delivery failed (see the apprise log lines above)"
