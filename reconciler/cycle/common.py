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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.apply.gates import GateResult
from reconciler.model.actual import ActualState, ContractInfo, SnapshotError
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState, Instrument, UnknownAccountError
from reconciler.model.plan import Plan
from reconciler.model.ports import BrokerPort, CycleStorePort, TradingPort
from reconciler.model.settings import Settings

if TYPE_CHECKING:
    from reconciler.decide.drift import LedgerBreak
    from reconciler.decide.risk import EffectiveLimits

Progress = Callable[[str], None]
log = logging.getLogger("reconciler.cycle")


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
    status: str = "ok"  # see reconciler.model.outcome


def target_instruments(
    desired: DesiredState, accounts: Sequence[str] | None = None
) -> list[Instrument]:
    seen: dict[str, Instrument] = {}
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


async def resolve_and_snapshot(
    broker: BrokerPort, desired: DesiredState, accounts: Sequence[str]
) -> tuple[Mapping[str, ContractInfo], ActualState, list[str]]:
    from reconciler.broker.errors import BrokerError

    missing = [a for a in accounts if a not in broker.managed_accounts]
    if missing:
        raise CycleError(
            f"account(s) {', '.join(missing)} not managed by this gateway "
            f"(it manages {', '.join(broker.managed_accounts) or 'none'})"
        )
    try:
        resolved = await broker.resolve(target_instruments(desired, accounts), lock=desired.lock)
        # No session reports lock mismatches as data: Broker.resolve raises LockMismatch.
        mismatches: list[str] = []
        actual = await broker.snapshot(accounts, resolved)
    except SnapshotError as exc:
        raise CycleError(f"broker snapshot incomplete, nothing planned: {exc}") from exc
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    return resolved, actual, mismatches


def limits_for(
    desired: DesiredState, settings: Settings, halt_reason: str | None
) -> dict[str, EffectiveLimits]:
    from reconciler.decide.risk import effective_limits

    return {
        name: effective_limits(policy, settings.risk_env, halt=halt_reason)
        for name, policy in desired.risk_policies.items()
    }


def desired_changes_since_applied(
    desired: DesiredState, plan: Plan, store: CycleStorePort | None
) -> dict[str, list[str]]:
    from reconciler.decide.drift import desired_changes

    changes: dict[str, list[str]] = {}
    for account, snapshot in plan.desired_snapshot.items():
        previous = store.last_applied_desired_snapshot(account) if store is not None else None
        if previous is not None:
            changes[account] = desired_changes(previous, snapshot)
    return changes


def detect_breaks(
    store: CycleStorePort | None, actual: ActualState, accounts: Sequence[str]
) -> list[LedgerBreak]:
    """Ledger breaks per account against the latest recorded position snapshot."""
    from reconciler.decide.drift import ledger_breaks

    if store is None:
        return []
    found: list[LedgerBreak] = []
    for account in accounts:
        since = store.last_snapshot_at(account)
        state = actual.accounts.get(account)
        if since is None or state is None:
            continue  # no earlier snapshot: nothing the ledger could contradict
        rows = store.latest_positions(account)  # none when that snapshot was flat
        last = {
            r.con_id: (r.symbol, r.quantity) for r in rows if r.con_id is not None and r.quantity
        }
        broker = {p.con_id: (p.symbol, p.quantity) for p in state.positions if p.quantity}
        found += ledger_breaks(account, last, store.net_fills_since(account, since), broker)
    return found


def skip_breaks(plan: Plan, breaks: Iterable[LedgerBreak]) -> Plan:
    from reconciler.model.plan import without_instruments

    return without_instruments(
        plan,
        {
            (b.account, b.con_id): {"ledger": b.expected, "broker": b.actual, "conId": b.con_id}
            for b in breaks
        },
    )


async def connect(settings: Settings, *, readonly: bool, clock: Clock) -> TradingPort[Any]:
    from reconciler.broker import Broker
    from reconciler.broker.errors import BrokerError

    try:
        return await Broker.connect(settings, readonly=readonly, clock=clock)
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc


def finish_cycle(
    store: CycleStorePort,
    cycle_id: int,
    report: dict[str, Any],
    clock: Clock,
    reports_dir: str | None,
) -> None:
    """Close the cycle in the store with its outcome and write its report files.

    The store's record comes first and does not depend on the files: a report that cannot be
    written (full disk, a directory that became read-only) is logged as an error and noted in
    the stored report, and the cycle is still closed with its true status, so the next cycle
    runs.
    """
    from reconciler.render import cycle_report as cyclereport

    finished = clock.now()
    report["finished_at"] = finished.isoformat()
    started = dt.datetime.fromisoformat(report["started_at"])
    report["duration_seconds"] = round((finished - started).total_seconds(), 3)
    report["tca"] = cyclereport.tca(report)
    if reports_dir:
        try:
            report["files"] = write_report_files(report, reports_dir)
        except OSError as exc:
            cause = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
            report["files"] = []
            report["report_files_error"] = (
                f"report files not written to {reports_dir} ({cause}); the report is in the "
                "store (reconcile show cycles)"
            )
            log.error("cycle %s: %s", cycle_id, report["report_files_error"])
    try:
        store.finish_cycle(
            cycle_id,
            report["status"],
            report=report,
            error="; ".join(report.get("errors", [])) or None,
        )
    except ValueError as exc:  # closed by someone else (operator, recovery): keep theirs
        log.warning("cycle %s not recorded: %s", cycle_id, exc)


def unwritable_reason(directory: str) -> str | None:
    """None when files can be created in `directory` (made if missing); else why not.

    Creates and removes a probe file: permission bits alone do not tell (root ignores them;
    a read-only mount or an immutable directory does not show in them).
    """
    import tempfile
    from pathlib import Path

    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return None


def check_reports_dir(reports_dir: str | None) -> None:
    """Raise CycleError, before anything is sent, when the reports directory is unusable."""
    if not reports_dir:
        return
    why = unwritable_reason(reports_dir)
    if why is not None:
        raise CycleError(
            f"reports directory {reports_dir} is not writable ({why}); nothing was sent. "
            "Fix it or point RECONCILER_REPORTS_DIR at a writable directory"
        )


def write_report_files(report: dict[str, Any], reports_dir: str) -> list[str]:
    """Write the cycle report as JSON and Markdown; each file replaced atomically."""
    import json
    from pathlib import Path

    from reconciler.render import cycle_report as cyclereport
    from reconciler.util.files import atomic_write

    directory = Path(reports_dir)
    stem = (
        f"{report['started_at'][:19].replace(':', '').replace('-', '')}-cycle{report['cycle_id']}"
    )
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    report["files"] = [str(json_path), str(md_path)]
    atomic_write(json_path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    atomic_write(md_path, cyclereport.render_markdown(report))
    return report["files"]
