"""The apply cycle: gates, lock, recovery, snapshot, plan (or check a saved plan), execute,
drift after, report.

Responsible for sequencing the apply steps over one broker session and one store and for
recording the cycle whatever happens. Must not print or prompt: approval and progress go
through callbacks the caller supplies. See ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.apply.executor import Executor, OrderOutcome, not_sent_outcome, recover
from reconciler.apply.gates import GateInputs, GateResult, evaluate_gates, refused
from reconciler.apply.journal import record_late_fills
from reconciler.apply.orphans import find_orphans
from reconciler.apply.recovery import record_inflight_fills
from reconciler.broker.errors import BrokerError
from reconciler.cycle.common import (
    ApplyOutcome,
    CycleError,
    Progress,
    Refused,
    check_reports_dir,
    connect,
    detect_breaks,
    limits_for,
    resolve_and_snapshot,
    selected_accounts,
    skip_breaks,
    target_instruments,
)
from reconciler.cycle.record import RecordedCycle, ReportFacts, account_balances
from reconciler.cycle.window import window_decisions
from reconciler.decide.drift import FillDelta, LedgerBreak, state_after_fills
from reconciler.decide.planner import build_plan, new_plan_id
from reconciler.decide.risk import RiskContext, recheck_plan
from reconciler.decide.staleness import StalenessTolerance, stale_reasons
from reconciler.model import outcome
from reconciler.model.actual import ActualState, ContractInfo
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState, TradingWindow
from reconciler.model.plan import Plan, order_ref, to_dict, with_warnings
from reconciler.model.ports import LockLease, StorePort, TradingPort
from reconciler.model.report import OrderRow, WindowRow, gate_rows
from reconciler.model.settings import Settings, settings_warnings
from reconciler.model.status import EventKind
from reconciler.store import LockHeld, StoreUnavailable
from reconciler.util.logs import get_logger
from reconciler.util.process import holder_is_dead, holder_name

log = get_logger("reconciler.cycle.apply")


def _trading_states(desired: DesiredState, accounts: Sequence[str]) -> dict[str, str]:
    states = {}
    for portfolio in desired.portfolios:
        if portfolio.account in accounts:
            policy = desired.risk_policies.get(portfolio.risk_policy)
            states[portfolio.account] = policy.trading_state if policy else "HALTED"
    return states


def _gate_inputs(
    desired: DesiredState,
    settings: Settings,
    accounts: Sequence[str],
    managed: Sequence[str] | None,
    halt_reason: str | None,
) -> GateInputs:
    return GateInputs(
        settings=settings,
        accounts=accounts,
        managed_accounts=managed,
        git_commit=desired.git_commit,
        git_dirty=desired.git_dirty,
        git_problem=desired.git_problem,
        halt_reason=halt_reason,
        trading_states=_trading_states(desired, accounts),
    )


async def apply_cycle(
    desired: DesiredState,
    settings: Settings,
    *,
    clock: Clock,
    store: StorePort,
    plan_file: Plan | None = None,
    approve: Callable[[Plan], bool] = lambda _plan: False,
    progress: Progress = lambda _msg: None,
    accounts: Sequence[str] | None = None,
    tolerance: StalenessTolerance = StalenessTolerance(),
    reports_dir: str | None = None,
    warnings: Sequence[str] = (),
    window: TradingWindow | None = None,
    lock_timeout: float = 0.0,
    connecting: Awaitable[TradingPort[Any]] | None = None,
) -> ApplyOutcome:
    """Plan (or check a saved plan), pass the gates, take the lock, execute, report.

    `lock_timeout` seconds are waited for an account lock another writer holds (0: refuse at
    once), like Terraform's -lock-timeout. `connecting`: a connection already on its way
    (the CLI starts it before reading the desired state and the store); by default the
    cycle connects once it is recorded.

    With `window` (the Schedule's guard minutes) nothing is sent unless every instrument
    with an order is inside its market window (`reconciler.cycle.window`); the plan is still
    recorded and reported, with the reasons, as status outside-window. None: no window
    (interactive apply, `run --ignore-window`).

    Raises `Refused` (exit 3) before anything is sent when a gate refuses, the saved plan is
    stale or another writer holds an account; `CycleError` (exit 1) when the world could not
    be read or the cycle failed. The cycle is recorded in the store and reported either way;
    The settings' warnings (typo'd variables, unapplied overrides) and any extra `warnings` go into its report.
    """
    if plan_file is not None:
        chosen = [a.account for a in plan_file.accounts]
        unknown = [a for a in chosen if desired.portfolio_for(a) is None]
        if unknown:
            raise Refused(
                [f"plan is for account(s) {', '.join(unknown)} the desired state no longer has"]
            )
    else:
        chosen = selected_accounts(desired, accounts)
    try:
        cycle = RecordedCycle.begin(
            store,
            "apply",
            desired,
            settings,
            chosen,
            clock=clock,
            reports_dir=reports_dir,
            warnings=(*settings_warnings(settings), *warnings),
        )
    except StoreUnavailable as exc:
        raise CycleError(
            f"cannot record the cycle in the {exc}; nothing was sent (apply never trades "
            "without its write-ahead ledger)"
        ) from exc
    with cycle.finishing() as facts:
        check_reports_dir(reports_dir)  # before the first order, not after the last
        run = _ApplyRun(desired, settings, clock, store, chosen, facts, progress)
        run.window = window
        run.lock_timeout = lock_timeout
        run.connecting = connecting
        applied = await run.run(plan_file, approve, tolerance)
        facts.status = applied.status
    report = cycle.report
    assert report is not None  # set when `finishing` finished the cycle
    return ApplyOutcome(
        applied.plan, applied.dry_run, applied.gates, report, applied.approved, applied.status
    )


# How often a waiting apply (--lock-timeout) tries the lock again.
LOCK_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class _Applied:
    """How an apply that ran to its end went; its report is built when the cycle finishes."""

    plan: Plan
    dry_run: bool
    gates: list[GateResult]
    approved: bool
    status: str


class _ApplyRun:
    """The steps of one apply cycle, sharing its broker session, store and report facts."""

    broker: TradingPort[Any]  # connected at the start of `run`
    resolved: Mapping[str, ContractInfo]

    def __init__(
        self,
        desired: DesiredState,
        settings: Settings,
        clock: Clock,
        store: StorePort,
        accounts: Sequence[str],
        facts: ReportFacts,
        progress: Progress,
    ) -> None:
        self.desired = desired
        self.settings = settings
        self.clock = clock
        self.store = store
        self.accounts = accounts
        self.cycle_id = facts.cycle_id
        self.facts = facts
        self.progress = progress
        self.window: TradingWindow | None = None
        self.lock_timeout = 0.0
        self.connecting: Awaitable[TradingPort[Any]] | None = None

    async def run(
        self,
        plan_file: Plan | None,
        approve: Callable[[Plan], bool],
        tolerance: StalenessTolerance,
    ) -> _Applied:
        halt = self.store.current_halt()
        self.halt_reason = halt.reason if halt else None
        if self.connecting is None:
            self.broker = await connect(
                self.settings, readonly=not self.settings.orders_enabled, clock=self.clock
            )
        else:
            try:
                self.broker = await self.connecting
            except BrokerError as exc:
                raise CycleError(str(exc)) from exc
        try:
            gates = self._check_gates()
            with await self._wait_for_lock():
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
        self.facts.gates = gate_rows(gates, self.settings.orders_enabled)
        bad = refused(gates)
        for gate in bad:
            log.warning("gate refused", gate=gate.name, detail=gate.detail)
        if bad:
            raise Refused([g.render() for g in bad])
        return gates

    async def _wait_for_lock(self) -> LockLease:
        """The lock, waiting up to `lock_timeout` seconds while another writer holds it:
        the holder releases it when it finishes (no event reaches this process, so poll)."""
        deadline = time.monotonic() + self.lock_timeout
        waiting = False
        while True:
            try:
                return self._lock()
            except Refused:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                if not waiting:
                    self.progress(f"waiting up to {self.lock_timeout:g}s for the account lock")
                    waiting = True
                await asyncio.sleep(min(LOCK_POLL_SECONDS, left))

    def _lock(self) -> LockLease:
        # The lease outlives the longest order TTL; a live holder keeps its OS-level lock
        # anyway, so the lease only matters once the holder is gone.
        longest = max((p.execution.ttl_seconds for p in self.desired.portfolios), default=0.0)
        try:
            handle = self.store.account_lock(
                self.accounts, holder=holder_name(), ttl_seconds=longest + 600
            )
        except LockHeld as exc:
            raise Refused([f"lock held: {exc}"]) from exc
        self.facts.lock_id = handle.lock_id
        return handle

    def _refuse_if_already_applied(self, plan: Plan) -> None:
        """A saved plan is applied at most once: its orderRefs are already in the ledger."""
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
                ]
            )

    def _recheck_risk(self, plan: Plan, actual: ActualState, fresh: Plan) -> Plan:
        """A saved plan passes every risk check again, against what binds now: the limits
        and snapshot `fresh` was just planned with (git + environment + halt; positions,
        open orders, today's executions, quotes, NAV). Denied orders are not sent, clipped
        ones go out smaller; the decisions are reported and recorded like the planner's."""
        contexts, limits = {}, {}
        for account in {a.account for a in plan.accounts if a.orders}:
            portfolio = self.desired.portfolio_for(account)
            if account not in actual.accounts or portfolio is None:
                raise Refused([f"account {account} of the saved plan cannot be risk-checked now"])
            contexts[account] = RiskContext.for_account(
                actual,
                account,
                now=fresh.created_at,
                extra_contracts=self.resolved.values(),
                min_trade_notional=portfolio.min_trade_notional,
            )
            limits[account] = self.limits[portfolio.risk_policy]
        checked, decisions = recheck_plan(plan, contexts, limits)
        self.facts.risk_at_apply = [
            f"{d.action} {d.account} {d.side} {d.key}: {d.render()}" for d in decisions
        ]
        for line in self.facts.risk_at_apply:
            self.progress(f"risk check at apply: {line}")
        return checked

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

    async def _snapshot_and_plan(self, plan_id: str) -> tuple[ActualState, Plan]:
        resolved, actual, mismatches = await resolve_and_snapshot(
            self.broker,
            self.desired,
            self.accounts,
            price_margin=self.settings.portfolio_price_margin,
        )
        self.resolved = resolved
        self.facts.lock_mismatches = list(mismatches)
        self.limits = limits_for(self.desired, self.settings, self.halt_reason)
        plan = build_plan(
            self.desired,
            actual,
            resolved,
            self.limits,
            now=self.clock.now(),
            plan_id=plan_id,
            accounts=self.accounts,
        )
        return actual, with_warnings(plan, settings_warnings(self.settings))

    def _record_late_fills(self, actual: ActualState) -> None:
        """Executions of our orders the ledger lacks (e.g. reported after the order's cancel
        was confirmed) are recorded before the ledger is compared with the broker."""
        for e in record_late_fills(self.store, actual.executions, self.accounts):
            self.progress(
                f"late fill {e.order_ref}: {e.side} {e.shares:g} {e.symbol} "
                f"(execId {e.exec_id}) recorded"
            )

    def _record_breaks(self, actual: ActualState) -> list[LedgerBreak]:
        self._record_late_fills(actual)
        breaks = detect_breaks(self.store, actual, self.accounts)
        self._append_breaks(breaks, when=None, consequence="instrument skipped this cycle")
        self.facts.breaks = [b.render() for b in breaks]
        return breaks

    def _append_breaks(
        self, breaks: Sequence[LedgerBreak], *, when: str | None, consequence: str
    ) -> None:
        """One BREAK ledger event and one progress line per break."""
        for b in breaks:
            payload: dict[str, Any] = {
                "con_id": b.con_id,
                "symbol": b.symbol,
                "ledger": b.expected,
                "broker": b.actual,
            }
            if when is not None:
                payload["when"] = when
            self.store.append_event(EventKind.BREAK, account=b.account, payload=payload)
            log.warning(
                "ledger break",
                account=b.account,
                instrument=b.symbol,
                ledger=b.expected,
                broker=b.actual,
                when=when or "before planning",
                consequence=consequence,
            )
            self.progress(f"break {b.render()}{' ' + when if when else ''}: {consequence}")

    async def _locked(
        self,
        gates: list[GateResult],
        plan_file: Plan | None,
        approve: Callable[[Plan], bool],
        tolerance: StalenessTolerance,
    ) -> _Applied:
        self._close_abandoned_cycles()
        if self.settings.orders_enabled:
            self.facts.recovery = await recover(
                self.broker, self.store, self.accounts, clock=self.clock, progress=self.progress
            )
        actual, fresh = await self._snapshot_and_plan(new_plan_id(self.clock.now()))
        self.facts.balances_before = account_balances(actual, self.accounts)
        if self.settings.orders_enabled:
            # From the snapshot's open orders, completed orders and executions: asking the
            # gateway for them a second time just before would be duplicate requests.
            self._refuse_orphans(actual)
        breaks = self._record_breaks(actual)
        fresh = skip_breaks(fresh, breaks)
        if plan_file is not None:
            self._refuse_if_already_applied(plan_file)
            reasons = stale_reasons(
                plan_file, actual, self.desired.content_hash, self.clock.now(), tolerance
            )
            if reasons:
                self.facts.stale_reasons = reasons
                raise Refused([f"plan {plan_file.plan_id} is stale: " + "; ".join(reasons)])
            plan = self._recheck_risk(skip_breaks(plan_file, breaks), actual, fresh)
        else:
            plan = fresh
        self.facts.plan = plan
        self.store.record_plan(_plan_json(plan))
        self.store.record_actual_state(self.cycle_id, actual)
        self.store.record_denials(self.cycle_id, plan.plan_id, plan.decisions)
        outside = await self._outside_window(plan, actual)
        approved = plan_file is not None or not plan.orders or approve(plan)
        dry_run = not self.settings.orders_enabled
        outcomes = await self._execute(plan, actual, approved, dry_run, outside)
        orders = [o.to_dict() for o in outcomes]
        self.facts.orders = [OrderRow.from_dict(o) for o in orders]
        status = self._settle(plan, approved, dry_run, orders, outside)
        if approved and not dry_run and not outside:
            if outcomes:
                await self._drift_after(plan, actual, outcomes)
            for account, snapshot in fresh.desired_snapshot.items():
                self.store.record_desired_snapshot(account, self.cycle_id, snapshot)
        return _Applied(plan, dry_run, gates, approved, status)

    async def _outside_window(self, plan: Plan, actual: ActualState) -> list[str]:
        """Why the plan's orders may not go out now: each traded instrument outside its
        market window. Empty when they may (or when this cycle checks no window)."""
        if self.window is None or not plan.orders:
            return []
        contracts = {info.con_id: info for info in self.resolved.values()}
        contracts.update(actual.contracts)
        await self._hours_of_traded(plan, contracts)
        traded = list({o.con_id: contracts.get(o.con_id) for o in plan.orders}.items())
        unknown = [con_id for con_id, info in traded if info is None]
        decisions = window_decisions(
            self.clock.now(), [info for _, info in traded if info is not None], self.window
        )
        self.facts.window = [WindowRow.from_dict(d.to_dict()) for d in decisions]
        closed = [d.render() for d in decisions if not d.open]
        closed += [
            f"conId {c}: no contract details, so no window; nothing is sent" for c in unknown
        ]
        for line in closed:
            self.progress(f"outside the trading window: {line}")
        return closed

    async def _hours_of_traded(self, plan: Plan, contracts: dict[int, ContractInfo]) -> None:
        """Contract details (liquidHours, time zone) for traded instruments taken from the
        trusted lockfile, which has no hours: asked by conId, so their lock entries are
        verified against the gateway as well (a mismatch stops the cycle)."""
        traded = {o.con_id for o in plan.orders}
        keys = {
            key
            for key, info in self.resolved.items()
            if info.con_id in traded and not contracts[info.con_id].liquid_hours
        }
        wanted = [i for i in target_instruments(self.desired, self.accounts) if i.key in keys]
        if not wanted:
            return
        try:
            fresh = await self.broker.resolve(wanted, lock=self.desired.lock)
        except BrokerError as exc:
            raise CycleError(str(exc)) from exc
        contracts.update({info.con_id: info for info in fresh.values()})

    def _settle(
        self,
        plan: Plan,
        approved: bool,
        dry_run: bool,
        orders: list[dict[str, Any]],
        outside: list[str],
    ) -> str:
        """The cycle's status, its counts and its one-line result, from what happened."""
        not_closed = outcome.drift_not_closed(plan)
        counts = outcome.order_counts(orders)
        status = outcome.apply_status(
            planned=len(plan.orders),
            approved=approved,
            dry_run=dry_run,
            orders=orders,
            not_closed=not_closed,
            outside_window=bool(outside),
        )
        self.facts.counts = counts
        self.facts.drift_not_closed = not_closed
        if dry_run:
            self.facts.would_send = len(plan.orders)
        self.facts.result = outcome.apply_result(status, counts, not_closed, outside)
        return status

    def _refuse_orphans(self, actual: ActualState) -> None:
        """Report rc- orders the broker has and the ledger lacks; refuse while any works."""
        orphans = find_orphans(
            actual.open_orders,
            actual.completed_orders,
            actual.executions,
            self.store,
            self.accounts,
        )
        if not orphans:
            return
        self.facts.orphan_orders = [o.render() for o in orphans]
        for o in orphans:
            self.progress(f"unknown to the ledger: {o.render()}")
        working = [o for o in orphans if o.working]
        why = (
            f"{len(orphans)} order(s) with a reconciler orderRef at the broker are not in the "
            f"ledger of {self.store.url}: the store was lost, replaced or is not the one that "
            "sent them (or another reconciler trades these accounts)"
        )
        if not working:
            self.facts.notes.append(why + "; none is still working")
            return
        raise Refused(
            [
                why
                + f"; {len(working)} still working ("
                + ", ".join(o.order_ref for o in working)
                + "), so a new plan would put the same trades in flight twice. Cancel them "
                "(reconcile halt --reason ... --cancel-open, then resume) or point "
                "RECONCILER_DB_URL at the store that sent them"
            ]
        )

    async def _execute(
        self,
        plan: Plan,
        actual: ActualState,
        approved: bool,
        dry_run: bool,
        outside: list[str],
    ) -> list[OrderOutcome]:
        # The cycle's result line is `_settle`'s, from the outcomes returned here.
        if not plan.orders or not approved:
            return []
        if outside:
            return [
                not_sent_outcome(plan.plan_id, o, "outside the trading window") for o in plan.orders
            ]
        if dry_run:
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
        self.facts.notes += executor.notes
        return outcomes

    async def _drift_after(
        self, plan: Plan, actual: ActualState, outcomes: Sequence[OrderOutcome]
    ) -> None:
        """What is left to do after the orders, from this cycle's contracts and quotes, the
        fills received and one positions request (no second snapshot)."""
        try:
            positions = await self.broker.positions(self.accounts)
        except BrokerError as exc:
            raise CycleError(f"positions after the apply could not be read: {exc}") from exc
        by_ref = {order_ref(plan.plan_id, o.leg): o for o in plan.orders}
        fills = [
            FillDelta(
                account=o.account,
                con_id=by_ref[o.order_ref].con_id,
                currency=by_ref[o.order_ref].currency,
                side=o.side,
                shares=float(f["shares"]),
                price=float(f["price"]),
                commission=float(f.get("commission") or 0.0),
            )
            for o in outcomes
            if o.order_ref in by_ref
            for f in o.fills
        ]
        after = state_after_fills(actual, positions, fills, now=self.clock.now())
        after_plan = with_warnings(
            build_plan(
                self.desired,
                after,
                self.resolved,
                self.limits,
                now=self.clock.now(),
                plan_id=plan.plan_id + "-after",
                accounts=self.accounts,
            ),
            settings_warnings(self.settings),
        )
        self.facts.plan_after = after_plan
        self.facts.balances_after = account_balances(after, self.accounts)
        # Fills of orders still unresolved (earlier cycles', or ours of unknown outcome) are
        # recorded first, so the check below compares the broker with everything it reported.
        try:
            await record_inflight_fills(self.broker, self.store, self.accounts)
        except BrokerError as exc:  # then a break below may be one of ours arriving late
            self.progress(f"fills of unresolved orders not read ({exc})")
        self._record_late_fills(after)
        # A position the ledger cannot explain is a break, never absorbed: the snapshot of an
        # account with a break is not recorded, so the next cycle checks against the last
        # snapshot the ledger agrees with (and late fills of ours, once recorded, explain it).
        breaks = detect_breaks(self.store, after, self.accounts)
        self._append_breaks(
            breaks, when="after apply", consequence="position snapshot not recorded"
        )
        self.facts.breaks_after = [b.render() for b in breaks]
        self.facts.notes.extend(
            f"{b.render()} after apply: the position snapshot was not recorded" for b in breaks
        )
        broken = {b.account for b in breaks}
        for account, state in sorted(after.accounts.items()):
            if account not in broken:
                self.store.record_position_snapshot(self.cycle_id, account, state.positions)


def _plan_json(plan: Plan) -> dict[str, Any]:
    return json.loads(json.dumps(to_dict(plan), default=str))
