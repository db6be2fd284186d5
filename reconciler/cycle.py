"""One reconcile cycle, orchestrated: load -> connect -> recover -> snapshot -> plan -> gates
-> lock -> execute -> snapshot again -> report.

Responsible for sequencing the layers and turning their failures into the three outcomes the
CLI maps to exit codes: done (0/2), error (1, `CycleError`) and refused (3, `Refused`).
Effects happen only through the injected broker session and store. Must not print or prompt:
questions (approval) and progress go through callbacks the caller supplies.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.actual import ActualState, SnapshotError
from reconciler.clock import Clock
from reconciler.desired.model import DesiredState
from reconciler.gates import GateInputs, GateResult, evaluate_gates, refused
from reconciler.plan import Plan
from reconciler.settings import Settings
from reconciler.staleness import StalenessTolerance, stale_reasons

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
    known = list(desired.accounts)
    if not accounts:
        return known
    unknown = [a for a in accounts if a not in known]
    if unknown:
        raise CycleError(
            f"no Portfolio in the desired state for account(s) {', '.join(unknown)} "
            f"(desired state has {', '.join(known) or 'none'})"
        )
    return [a for a in known if a in accounts]


async def _resolve_and_snapshot(broker, desired: DesiredState, accounts: Sequence[str]):
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


def _limits(desired: DesiredState, settings: Settings, halt_reason: str | None):
    from reconciler.risk import effective_limits

    return {
        name: effective_limits(policy, settings.risk_env, halt=halt_reason)
        for name, policy in desired.risk_policies.items()
    }


def _desired_changes(desired: DesiredState, plan: Plan, store) -> dict[str, list[str]]:
    from reconciler.diff import desired_changes

    changes: dict[str, list[str]] = {}
    for account, snapshot in plan.desired_snapshot.items():
        previous = store.last_applied_desired_snapshot(account) if store is not None else None
        if previous is not None:
            changes[account] = desired_changes(previous, snapshot)
    return changes


def detect_breaks(store, actual: ActualState, accounts: Sequence[str]):
    """Ledger breaks per account against the latest recorded position snapshot."""
    from reconciler.diff import ledger_breaks

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
    from reconciler.plan import without_instruments

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


async def plan_cycle(
    desired: DesiredState,
    settings: Settings,
    *,
    clock: Clock,
    store=None,
    accounts: Sequence[str] | None = None,
    broker=None,
) -> PlanOutcome:
    """Snapshot, diff, plan and risk. Sends nothing; connects read-only."""
    from reconciler.planner import build_plan, new_plan_id

    chosen = selected_accounts(desired, accounts)
    own = broker is None
    if own:
        broker = await connect(settings, readonly=True, clock=clock)
    try:
        resolved, actual, mismatches = await _resolve_and_snapshot(broker, desired, chosen)
    finally:
        if own:
            await broker.disconnect()
    halt = store.current_halt() if store is not None else None
    now = clock.now()
    plan = build_plan(
        desired,
        actual,
        resolved,
        _limits(desired, settings, halt.reason if halt else None),
        now=now,
        plan_id=new_plan_id(now),
        accounts=chosen,
    )
    plan = skip_breaks(plan, detect_breaks(store, actual, chosen))
    return PlanOutcome(plan, actual, _desired_changes(desired, plan, store), mismatches)


async def drift_report_cycle(
    desired: DesiredState,
    settings: Settings,
    *,
    clock: Clock,
    store,
    accounts: Sequence[str] | None = None,
    reports_dir: str | None = None,
) -> PlanOutcome:
    """A scheduled cycle that only reports drift (selfHeal: false): plan, record, report.

    Sends nothing; recorded in the store as a `plan` cycle with its report, like an apply.
    """
    from reconciler import cyclereport

    chosen = selected_accounts(desired, accounts)
    cycle_id = store.begin_cycle(
        "plan",
        holder=holder_name(),
        accounts=chosen,
        desired_hash=desired.content_hash,
        git_commit=desired.git_commit,
        git_dirty=desired.git_dirty,
    )
    report = cyclereport.new_report(cycle_id, "plan", clock.now(), desired, settings, chosen)
    try:
        outcome = await plan_cycle(desired, settings, clock=clock, store=store, accounts=chosen)
    except Exception as exc:
        report.update(status="error", errors=[str(exc)])
        _finish(store, cycle_id, report, clock, reports_dir)
        if isinstance(exc, CycleError):
            raise
        raise CycleError(f"cycle {cycle_id} failed: {type(exc).__name__}: {exc}") from exc
    cyclereport.add_plan(report, outcome.plan)
    for account, snapshot in outcome.plan.desired_snapshot.items():
        store.record_desired_snapshot(account, cycle_id, snapshot)
    report.update(status="ok", result="drift report only (selfHeal: false); nothing sent")
    _finish(store, cycle_id, report, clock, reports_dir)
    return outcome


# ---------------------------------------------------------------- apply


def _trading_states(desired: DesiredState, accounts: Sequence[str]) -> dict[str, str]:
    states = {}
    for portfolio in desired.portfolios:
        if portfolio.account in accounts:
            policy = desired.risk_policies.get(portfolio.risk_policy)
            states[portfolio.account] = policy.trading_state if policy else "HALTED"
    return states


def _gate_inputs(desired, settings, accounts, managed, halt_reason) -> GateInputs:
    return GateInputs(
        settings=settings,
        accounts=accounts,
        managed_accounts=managed,
        git_commit=desired.git_commit,
        git_dirty=desired.git_dirty,
        halt_reason=halt_reason,
        trading_states=_trading_states(desired, accounts),
    )


async def apply_cycle(
    desired: DesiredState,
    settings: Settings,
    *,
    clock: Clock,
    store,
    plan_file: Plan | None = None,
    approve: Callable[[Plan], bool] = lambda _plan: False,
    progress: Progress = lambda _msg: None,
    accounts: Sequence[str] | None = None,
    tolerance: StalenessTolerance = StalenessTolerance(),
    reports_dir: str | None = None,
) -> ApplyOutcome:
    """Plan (or check a saved plan), pass the gates, take the lock, execute, report.

    Raises `Refused` (exit 3) before anything is sent when a gate refuses, the saved plan is
    stale or another writer holds an account; `CycleError` (exit 1) when the world could not
    be read or the cycle failed. The cycle is recorded in the store and reported either way.
    """
    from reconciler import cyclereport

    if plan_file is not None:
        chosen = [a.account for a in plan_file.accounts]
        unknown = [a for a in chosen if desired.portfolio_for(a) is None]
        if unknown:
            raise Refused(
                [f"plan is for account(s) {', '.join(unknown)} the desired state no longer has"]
            )
    else:
        chosen = selected_accounts(desired, accounts)
    cycle_id = store.begin_cycle(
        "apply",
        holder=holder_name(),
        accounts=chosen,
        desired_hash=desired.content_hash,
        git_commit=desired.git_commit,
        git_dirty=desired.git_dirty,
    )
    report = cyclereport.new_report(cycle_id, "apply", clock.now(), desired, settings, chosen)
    run = _ApplyRun(desired, settings, clock, store, chosen, cycle_id, report, progress)
    try:
        outcome = await run.run(plan_file, approve, tolerance)
    except Refused as exc:
        report.update(status="refused", errors=exc.reasons)
        _finish(store, cycle_id, report, clock, reports_dir)
        exc.report = report
        raise
    except CycleError as exc:
        report.update(status="error", errors=[str(exc)])
        _finish(store, cycle_id, report, clock, reports_dir)
        raise
    except Exception as exc:  # never leave a cycle "running": record it, then say what broke
        report.update(status="error", errors=[f"{type(exc).__name__}: {exc}"])
        _finish(store, cycle_id, report, clock, reports_dir)
        raise CycleError(f"cycle {cycle_id} failed: {type(exc).__name__}: {exc}") from exc
    report["status"] = "ok"
    _finish(store, cycle_id, report, clock, reports_dir)
    return outcome


class _ApplyRun:
    """The steps of one apply cycle, sharing its broker session, store and report."""

    def __init__(self, desired, settings, clock, store, accounts, cycle_id, report, progress):
        self.desired = desired
        self.settings = settings
        self.clock = clock
        self.store = store
        self.accounts = accounts
        self.cycle_id = cycle_id
        self.report = report
        self.progress = progress
        self.broker = None

    async def run(self, plan_file, approve, tolerance) -> ApplyOutcome:
        halt = self.store.current_halt()
        self.halt_reason = halt.reason if halt else None
        self.broker = await connect(
            self.settings, readonly=not self.settings.orders_enabled, clock=self.clock
        )
        try:
            gates = self._check_gates()
            with self._lock():
                return await self._locked(gates, plan_file, approve, tolerance)
        finally:
            await self.broker.disconnect()

    def _check_gates(self) -> list[GateResult]:
        gates = evaluate_gates(
            _gate_inputs(
                self.desired,
                self.settings,
                self.accounts,
                self.broker.managed_accounts,
                self.halt_reason,
            )
        )
        self.report["gates"] = [g.__dict__ for g in gates]
        bad = refused(gates)
        if bad:
            raise Refused([g.render() for g in bad], report=self.report)
        return gates

    def _lock(self):
        from reconciler.store import LockHeld

        # The lease outlives the longest order TTL; a live holder keeps its OS-level lock
        # anyway, so the lease only matters once the holder is gone.
        longest = max((p.execution.ttl_seconds for p in self.desired.portfolios), default=0.0)
        try:
            handle = self.store.account_lock(
                self.accounts, holder=holder_name(), ttl_seconds=longest + 600
            )
        except LockHeld as exc:
            raise Refused([f"lock held: {exc}"], report=self.report) from exc
        self.report["lock_id"] = getattr(handle, "lock_id", None)
        return handle

    def _refuse_if_already_applied(self, plan: Plan) -> None:
        """A saved plan is applied at most once: its orderRefs are already in the ledger."""
        from reconciler.plan import order_ref

        sent = [
            order_ref(plan.plan_id, o.leg)
            for o in plan.orders
            if self.store.order_events(order_ref(plan.plan_id, o.leg))
        ]
        if sent:
            raise Refused(
                [
                    f"plan {plan.plan_id} was already applied ({len(sent)} of its orders are in "
                    "the ledger, e.g. " + sent[0] + "); make a new plan"
                ],
                report=self.report,
            )

    def _close_abandoned_cycles(self) -> None:
        """Cycles of these accounts left "running" by a process on this host that has died
        are marked aborted (a live one, e.g. an apply being refused right now, is left)."""
        mine = set(self.accounts)
        for cycle in self.store.list_cycles(limit=200):
            if cycle.id == self.cycle_id or cycle.status != "running":
                continue
            if not holder_is_dead(cycle.holder):
                continue
            if mine & set(cycle.accounts):
                report = dict(cycle.report or {})
                report.update(status="aborted", aborted_by_cycle=self.cycle_id)
                self.store.finish_cycle(
                    cycle.id,
                    "aborted",
                    report=report,
                    error=f"its process ended without finishing; found by cycle {self.cycle_id}",
                )
                self.progress(f"cycle {cycle.id} was left running by a process that died: aborted")

    async def _snapshot_and_plan(self, plan_id: str):
        from reconciler.planner import build_plan

        resolved, actual, mismatches = await _resolve_and_snapshot(
            self.broker, self.desired, self.accounts
        )
        self.resolved = resolved
        self.report["lock_mismatches"] = list(mismatches)
        self.limits = _limits(self.desired, self.settings, self.halt_reason)
        plan = build_plan(
            self.desired,
            actual,
            resolved,
            self.limits,
            now=self.clock.now(),
            plan_id=plan_id,
            accounts=self.accounts,
        )
        return actual, plan

    def _record_breaks(self, actual: ActualState):
        breaks = detect_breaks(self.store, actual, self.accounts)
        for b in breaks:
            self.store.append_event(
                "BREAK",
                account=b.account,
                payload={
                    "con_id": b.con_id,
                    "symbol": b.symbol,
                    "ledger": b.expected,
                    "broker": b.actual,
                },
            )
            self.progress(f"break {b.render()}: instrument skipped this cycle")
        self.report["breaks"] = [b.render() for b in breaks]
        return breaks

    async def _locked(self, gates, plan_file, approve, tolerance) -> ApplyOutcome:
        from reconciler import cyclereport
        from reconciler.execute import recover
        from reconciler.planner import new_plan_id

        self._close_abandoned_cycles()
        if self.settings.orders_enabled:
            self.report["recovery"] = await recover(
                self.broker, self.store, self.accounts, clock=self.clock, progress=self.progress
            )
        actual, fresh = await self._snapshot_and_plan(new_plan_id(self.clock.now()))
        breaks = self._record_breaks(actual)
        fresh = skip_breaks(fresh, breaks)
        if plan_file is not None:
            self._refuse_if_already_applied(plan_file)
            reasons = stale_reasons(
                plan_file, actual, self.desired.content_hash, self.clock.now(), tolerance
            )
            if reasons:
                self.report["stale_reasons"] = reasons
                raise Refused(
                    [f"plan {plan_file.plan_id} is stale: " + "; ".join(reasons)],
                    report=self.report,
                )
            plan = skip_breaks(plan_file, breaks)
        else:
            plan = fresh
        cyclereport.add_plan(self.report, plan)
        self.store.record_plan(_plan_json(plan))
        self.store.record_position_snapshot(self.cycle_id, actual)
        self.store.record_denials(self.cycle_id, plan.plan_id, plan.decisions)
        approved = plan_file is not None or not plan.orders or approve(plan)
        dry_run = not self.settings.orders_enabled
        outcomes = await self._execute(plan, actual, approved, dry_run)
        self.report["orders"] = [o.to_dict() for o in outcomes]
        if approved and not dry_run:
            if outcomes:
                await self._drift_after(plan)
            for account, snapshot in fresh.desired_snapshot.items():
                self.store.record_desired_snapshot(account, self.cycle_id, snapshot)
        return ApplyOutcome(plan, dry_run, gates, self.report, self.report["orders"], approved)

    async def _execute(self, plan: Plan, actual: ActualState, approved: bool, dry_run: bool):
        from reconciler.execute import Executor, not_sent_outcome

        if not plan.orders:
            self.report["result"] = "nothing to do"
            return []
        if not approved:
            self.report["result"] = "not approved"
            return []
        if dry_run:
            self.report["result"] = "dry run: ORDERS_ENABLED is false, nothing was sent"
            return [not_sent_outcome(plan.plan_id, o, "dry run") for o in plan.orders]
        executor = Executor(
            plan,
            broker=self.broker,
            store=self.store,
            clock=self.clock,
            cycle_id=self.cycle_id,
            progress=self.progress,
            size_increments={c.con_id: c.size_increment for c in actual.contracts.values()},
        )
        outcomes = await executor.run()
        self.report["notes"] = executor.notes
        self.report["result"] = "applied"
        return outcomes

    async def _drift_after(self, plan: Plan) -> None:
        from reconciler import cyclereport

        after, after_plan = await self._snapshot_and_plan(plan.plan_id + "-after")
        cyclereport.add_drift_after(self.report, after_plan)
        self.store.record_position_snapshot(self.cycle_id, after)


def _plan_json(plan: Plan) -> dict:
    import json

    from reconciler.plan import to_dict

    return json.loads(json.dumps(to_dict(plan), default=str))


def _finish(store, cycle_id: int, report: dict, clock: Clock, reports_dir: str | None) -> None:
    from reconciler import cyclereport

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

    from reconciler import cyclereport

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


async def lock_instruments(desired: DesiredState, settings: Settings, *, clock: Clock):
    """Resolve every target afresh (ignoring an existing lock) into lockfile entries."""
    from reconciler.broker.contracts import lock_entries
    from reconciler.broker.errors import BrokerError

    broker = await connect(settings, readonly=True, clock=clock)
    try:
        resolved = await broker.resolve(target_instruments(desired), lock=None)
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    finally:
        await broker.disconnect()
    return lock_entries(resolved)


async def cancel_open_orders(
    settings: Settings, *, clock: Clock | None = None, timeout: float = 15.0
) -> list[str]:
    """Cancel every open order this reconciler placed (orderRef rc-...) and wait until the
    gateway no longer lists them; returns their refs. Raises CycleError naming any order
    still working at the deadline."""
    import asyncio
    import time

    from reconciler.broker.errors import BrokerError
    from reconciler.clock import SystemClock

    broker = await connect(settings, readonly=False, clock=clock or SystemClock())
    try:
        ours = [o for o in await broker.open_orders() if o.order_ref.startswith("rc-")]
        for order in ours:
            await broker.cancel_open_order(order)
        refs = {o.order_ref for o in ours}
        deadline = time.monotonic() + timeout
        while refs:
            working = {o.order_ref for o in await broker.open_orders()} & refs
            if not working:
                break
            if time.monotonic() > deadline:
                raise CycleError(f"still working after {timeout:g}s: {', '.join(sorted(working))}")
            await asyncio.sleep(0.1)  # polling the gateway's open orders, not a fixed wait
        return sorted(o.order_ref for o in ours)
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    finally:
        await broker.disconnect()
