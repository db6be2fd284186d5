"""What every kind of cycle shares: outcomes, errors, account selection, the snapshot, limits,
ledger breaks and the recorded-cycle bookkeeping.

Responsible for turning failures into the outcomes the CLI maps to exit codes (`CycleError`
exit 1, `Refused` exit 3) and for the steps plan, drift-report and apply cycles have in
common. Must not print or prompt, and must not send orders (that is `reconciler.apply`).
See ARCHITECTURE.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.apply.gates import GateResult
from reconciler.model.actual import ActualState, SnapshotError
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState, UnknownAccountError
from reconciler.model.plan import Plan
from reconciler.model.settings import Settings

Progress = Callable[[str], None]


class CycleError(Exception):
    """The cycle could not finish (gateway down, snapshot incomplete, bad input). Exit 1."""


class Refused(Exception):
    """Apply refused before sending anything: a gate, a stale plan or a held lock. Exit 3."""

    def __init__(self, reasons: Sequence[str], *, report: Mapping[str, Any] | None = None) -> None:
        self.reasons = list(reasons)
        self.report = dict(report or {})
        super().__init__("; ".join(self.reasons))


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan
    actual: ActualState
    desired_changes: Mapping[str, list[str]]
    lock_mismatches: Sequence[str] = ()


@dataclass
class ApplyOutcome:
    plan: Plan
    dry_run: bool
    gates: list[GateResult]
    report: dict[str, Any]
    orders: list[dict[str, Any]] = field(default_factory=list)
    approved: bool = True


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: str | None) -> bool:
    """True only when `holder` (host:pid) is a process on this host that no longer runs;
    a holder on another host, or one we cannot parse, is never presumed dead."""
    host, _, pid = (holder or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def target_instruments(desired: DesiredState, accounts: Sequence[str] | None = None):
    seen = {}
    for portfolio in desired.portfolios:
        if accounts and portfolio.account not in accounts:
            continue
        for target in portfolio.targets:
            seen.setdefault(target.instrument.key, target.instrument)
    return list(seen.values())


def selected_accounts(desired: DesiredState, accounts: Sequence[str] | None) -> list[str]:
    """The accounts a cycle works on, by `DesiredState.portfolios_for` (the one rule)."""
    try:
        return [p.account for p in desired.portfolios_for(accounts)]
    except UnknownAccountError as exc:
        raise CycleError(str(exc)) from exc


async def resolve_and_snapshot(broker, desired: DesiredState, accounts: Sequence[str]):
    from reconciler.broker.errors import BrokerError

    missing = [a for a in accounts if a not in broker.managed_accounts]
    if missing:
        raise CycleError(
            f"account(s) {', '.join(missing)} not managed by this gateway "
            f"(it manages {', '.join(broker.managed_accounts) or 'none'})"
        )
    try:
        resolved = await broker.resolve(target_instruments(desired, accounts), lock=desired.lock)
        mismatches = list(getattr(broker, "lock_mismatches", []) or [])
        actual = await broker.snapshot(accounts, resolved)
    except SnapshotError as exc:
        raise CycleError(f"broker snapshot incomplete, nothing planned: {exc}") from exc
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    return resolved, actual, mismatches


def limits_for(desired: DesiredState, settings: Settings, halt_reason: str | None):
    from reconciler.decide.risk import effective_limits

    return {
        name: effective_limits(policy, settings.risk_env, halt=halt_reason)
        for name, policy in desired.risk_policies.items()
    }


def desired_changes_since_applied(desired: DesiredState, plan: Plan, store) -> dict[str, list[str]]:
    from reconciler.decide.drift import desired_changes

    changes: dict[str, list[str]] = {}
    for account, snapshot in plan.desired_snapshot.items():
        previous = store.last_applied_desired_snapshot(account) if store is not None else None
        if previous is not None:
            changes[account] = desired_changes(previous, snapshot)
    return changes


def detect_breaks(store, actual: ActualState, accounts: Sequence[str]):
    """Ledger breaks per account against the latest recorded position snapshot."""
    from reconciler.decide.drift import ledger_breaks

    if store is None:
        return []
    found = []
    for account in accounts:
        rows = store.latest_positions(account)
        state = actual.accounts.get(account)
        if not rows or state is None:
            continue  # no earlier snapshot: nothing the ledger could contradict
        since = rows[0].at
        last = {
            r.con_id: (r.symbol, r.quantity) for r in rows if r.con_id is not None and r.quantity
        }
        broker = {p.con_id: (p.symbol, p.quantity) for p in state.positions if p.quantity}
        found += ledger_breaks(account, last, store.net_fills_since(account, since), broker)
    return found


def skip_breaks(plan: Plan, breaks) -> Plan:
    from reconciler.model.plan import without_instruments

    return without_instruments(
        plan,
        {
            (b.account, b.con_id): {"ledger": b.expected, "broker": b.actual, "conId": b.con_id}
            for b in breaks
        },
    )


async def connect(settings: Settings, *, readonly: bool, clock: Clock):
    from reconciler.broker import Broker
    from reconciler.broker.errors import BrokerError

    try:
        return await Broker.connect(settings, readonly=readonly, clock=clock)
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc


def finish_cycle(store, cycle_id: int, report: dict, clock: Clock, reports_dir: str | None) -> None:
    from reconciler.render import cycle_report as cyclereport

    finished = clock.now()
    report["finished_at"] = finished.isoformat()
    started = dt.datetime.fromisoformat(report["started_at"])
    report["duration_seconds"] = round((finished - started).total_seconds(), 3)
    report["tca"] = cyclereport.tca(report)
    if reports_dir:
        report["files"] = write_report_files(report, reports_dir)
    try:
        store.finish_cycle(
            cycle_id,
            report["status"],
            report=report,
            error="; ".join(report.get("errors", [])) or None,
        )
    except ValueError as exc:  # closed by someone else (operator, recovery): keep theirs
        logging.getLogger("reconciler.cycle").warning("cycle %s not recorded: %s", cycle_id, exc)


def write_report_files(report: dict, reports_dir: str) -> list[str]:
    """Write the cycle report as JSON and Markdown; each file replaced atomically."""
    import json
    from pathlib import Path

    from reconciler.render import cycle_report as cyclereport

    directory = Path(reports_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stem = (
        f"{report['started_at'][:19].replace(':', '').replace('-', '')}-cycle{report['cycle_id']}"
    )
    paths = {directory / f"{stem}.json": None, directory / f"{stem}.md": None}
    json_path, md_path = list(paths)
    report["files"] = [str(json_path), str(md_path)]
    for path, text in (
        (json_path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"),
        (md_path, cyclereport.render_markdown(report)),
    ):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return report["files"]
