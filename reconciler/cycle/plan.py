"""Read-only cycles: `plan` (snapshot, diff, plan, risk) and the scheduled drift report
(selfHeal: false), which records and reports a plan without sending anything.

Must not place, modify or cancel orders; connects read-only. See ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.cycle.common import (
    CycleError,
    PlanOutcome,
    check_reports_dir,
    connect,
    desired_changes_since_applied,
    detect_breaks,
    finish_cycle,
    limits_for,
    resolve_and_snapshot,
    selected_accounts,
    skip_breaks,
)
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState
from reconciler.model.plan import with_warnings
from reconciler.model.ports import BrokerPort, StorePort
from reconciler.model.settings import Settings, settings_warnings
from reconciler.util.process import holder_name


async def plan_cycle(
    desired: DesiredState,
    settings: Settings,
    *,
    clock: Clock,
    store: StorePort | None = None,
    accounts: Sequence[str] | None = None,
    broker: BrokerPort | None = None,
) -> PlanOutcome:
    """Snapshot, diff, plan and risk. Sends nothing; connects read-only."""
    from reconciler.decide.planner import build_plan, new_plan_id

    chosen = selected_accounts(desired, accounts)
    own = broker is None
    if broker is None:
        broker = await connect(settings, readonly=True, clock=clock)
    try:
        resolved, actual, mismatches = await resolve_and_snapshot(broker, desired, chosen)
    finally:
        if own:
            await broker.disconnect()
    halt = store.current_halt() if store is not None else None
    now = clock.now()
    plan = build_plan(
        desired,
        actual,
        resolved,
        limits_for(desired, settings, halt.reason if halt else None),
        now=now,
        plan_id=new_plan_id(now),
        accounts=chosen,
    )
    plan = with_warnings(
        skip_breaks(plan, detect_breaks(store, actual, chosen)), settings_warnings(settings)
    )
    return PlanOutcome(
        plan, actual, desired_changes_since_applied(desired, plan, store), mismatches
    )


async def drift_report_cycle(
    desired: DesiredState,
    settings: Settings,
    *,
    clock: Clock,
    store: StorePort,
    accounts: Sequence[str] | None = None,
    reports_dir: str | None = None,
) -> PlanOutcome:
    """A scheduled cycle that only reports drift (selfHeal: false): plan, record, report.

    Sends nothing; recorded in the store as a `plan` cycle with its report, like an apply.
    """
    from reconciler.render import cycle_report as cyclereport

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
        check_reports_dir(reports_dir)  # the report is what this cycle is for
        outcome = await plan_cycle(desired, settings, clock=clock, store=store, accounts=chosen)
    except Exception as exc:
        report.update(status="error", errors=[str(exc)])
        finish_cycle(store, cycle_id, report, clock, reports_dir)
        if isinstance(exc, CycleError):
            raise
        raise CycleError(f"cycle {cycle_id} failed: {type(exc).__name__}: {exc}") from exc
    cyclereport.add_plan(report, outcome.plan)
    for account, snapshot in outcome.plan.desired_snapshot.items():
        store.record_desired_snapshot(account, cycle_id, snapshot)
    report.update(status="ok", result="drift report only (selfHeal: false); nothing sent")
    finish_cycle(store, cycle_id, report, clock, reports_dir)
    return outcome
