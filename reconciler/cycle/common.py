"""What every kind of cycle shares: outcomes, errors, account selection, the snapshot, limits,
ledger breaks and the reports directory check.

Responsible for turning failures into the outcomes the CLI maps to exit codes (`CycleError`
exit 1, `Refused` exit 3) and for the steps plan, drift-report and apply cycles have in
common. Recording a cycle in the store and its report is `reconciler.cycle.record`. Must not
print or prompt, and must not send orders (that is `reconciler.apply`). See ARCHITECTURE.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.apply.gates import GateResult
from reconciler.broker import Broker
from reconciler.broker.contracts import held_lock_problems
from reconciler.broker.errors import BrokerError, LockMismatch
from reconciler.decide.changes import account_documents, document_changes, merge_documents
from reconciler.decide.drift import LedgerBreak, ledger_breaks
from reconciler.decide.risk import EffectiveLimits, effective_limits
from reconciler.decide.steady import quote_candidates, with_prices
from reconciler.model.actual import ActualState, ContractInfo, SnapshotError
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState, Instrument, UnknownAccountError
from reconciler.model.plan import Plan, without_instruments
from reconciler.model.ports import BrokerPort, CycleStorePort, TradingPort
from reconciler.model.report import CycleReport, OrderRow
from reconciler.model.settings import Settings

Progress = Callable[[str], None]


class CycleError(Exception):
    """The cycle could not finish (gateway down, snapshot incomplete, bad input). Exit 1.

    `report` is the recorded cycle's report when the cycle had begun in the store."""

    def __init__(self, message: str, *, report: CycleReport | None = None) -> None:
        self.report = report
        super().__init__(message)


class Refused(Exception):
    """Apply refused before sending anything: a gate, a stale plan or a held lock. Exit 3.

    `report` is the recorded cycle's report when the cycle had begun in the store."""

    def __init__(self, reasons: Sequence[str], *, report: CycleReport | None = None) -> None:
        self.reasons = list(reasons)
        self.report = report
        super().__init__("; ".join(self.reasons))


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan
    actual: ActualState
    # Change lines against the last recorded cycle (None: no account has one to compare with).
    desired_changes: Sequence[str] | None
    lock_mismatches: Sequence[str] = ()
    report: CycleReport | None = None  # a recorded cycle's (the drift report's)


@dataclass(frozen=True)
class ApplyOutcome:
    plan: Plan
    dry_run: bool
    gates: list[GateResult]
    report: CycleReport
    approved: bool = True
    status: str = "ok"  # see reconciler.model.outcome

    @property
    def orders(self) -> tuple[OrderRow, ...]:
        return self.report.orders


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
    broker: BrokerPort,
    desired: DesiredState,
    accounts: Sequence[str],
    *,
    price_margin: float | None = None,
) -> tuple[Mapping[str, ContractInfo], ActualState, list[str]]:
    """Resolve the targets and take the snapshot. With `price_margin` (steady state) the
    snapshot takes no quotes; live quotes are asked only for the instruments that are not
    clearly inside their band (`decide.steady`), the rest keep their portfolio price."""
    missing = [a for a in accounts if a not in broker.managed_accounts]
    if missing:
        raise CycleError(
            f"account(s) {', '.join(missing)} not managed by this gateway "
            f"(it manages {', '.join(broker.managed_accounts) or 'none'})"
        )
    try:
        # The committed lock is trusted within the cycle (no contract-details request per
        # entry); held positions carry their contract and are checked against it below.
        resolved = await broker.resolve(
            target_instruments(desired, accounts), lock=desired.lock, trust_lock=True
        )
        # No session reports lock mismatches as data: Broker.resolve raises LockMismatch.
        mismatches: list[str] = []
        if price_margin:
            actual = await broker.snapshot(accounts, resolved, quotes=False)
            portfolios = desired.portfolios_for(accounts)
            wanted = quote_candidates(portfolios, actual, resolved, price_margin)
            live = await broker.quotes([actual.contracts[c] for c in sorted(wanted)
                                        if c in actual.contracts])
            actual = with_prices(actual, live, wanted)
        else:
            actual = await broker.snapshot(accounts, resolved)
        held = [p for state in actual.accounts.values() for p in state.positions]
        problems = held_lock_problems(desired.lock, held)
        if problems:
            raise LockMismatch(problems)
    except SnapshotError as exc:
        raise CycleError(f"broker snapshot incomplete, nothing planned: {exc}") from exc
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    return resolved, actual, mismatches


def limits_for(
    desired: DesiredState, settings: Settings, halt_reason: str | None
) -> dict[str, EffectiveLimits]:
    return {
        name: effective_limits(policy, settings.risk_env, halt=halt_reason)
        for name, policy in desired.risk_policies.items()
    }


def desired_changes_since_applied(
    desired: DesiredState, plan: Plan, store: CycleStorePort | None
) -> list[str] | None:
    """What changed since the last recorded cycle of each planned account, in YAML words;
    None when no account has a recorded cycle to compare with."""
    before, after = [], []
    for account, snapshot in plan.desired_snapshot.items():
        previous = store.last_applied_desired_snapshot(account) if store is not None else None
        if previous is not None:
            before.append(account_documents(previous))
            after.append(account_documents(snapshot))
    if not before:
        return None
    return document_changes(merge_documents(*before), merge_documents(*after))


def detect_breaks(
    store: CycleStorePort | None, actual: ActualState, accounts: Sequence[str]
) -> list[LedgerBreak]:
    """Ledger breaks per account against the latest recorded position snapshot."""
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
    return without_instruments(
        plan,
        {
            (b.account, b.con_id): {"ledger": b.expected, "broker": b.actual, "conId": b.con_id}
            for b in breaks
        },
    )


async def connect(settings: Settings, *, readonly: bool, clock: Clock) -> TradingPort[Any]:
    try:
        return await Broker.connect(settings, readonly=readonly, clock=clock)
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc


def unwritable_reason(directory: str) -> str | None:
    """None when files can be created in `directory` (made if missing); else why not.

    Creates and removes a probe file: permission bits alone do not tell (root ignores them;
    a read-only mount or an immutable directory does not show in them).
    """
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
