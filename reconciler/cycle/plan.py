"""Read-only cycles: `plan` (snapshot, diff, plan, risk) and the scheduled drift report
(selfHeal: false), which records and reports a plan without sending anything.

Must not place, modify or cancel orders; connects read-only. See ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reconciler.cycle.common import (
    PlanOutcome,
    check_reports_dir,
    connect,
    desired_changes_since_applied,
    detect_breaks,
    limits_for,
    resolve_and_snapshot,
    selected_accounts,
    skip_breaks,
)
from reconciler.cycle.record import RecordedCycle, account_balances
from reconciler.decide.changes import document_changes
from reconciler.decide.planner import build_plan, new_plan_id
from reconciler.desired.gitbase import BaseState
from reconciler.desired.snapshot import documents_of
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState
from reconciler.model.outcome import OK
from reconciler.model.plan import with_warnings
from reconciler.model.ports import BrokerPort, StorePort
from reconciler.model.settings import Settings, settings_warnings


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
    chosen = selected_accounts(desired, accounts)
    own = broker is None
    if broker is None:
        broker = await connect(settings, readonly=True, clock=clock)
    try:
        resolved, actual, mismatches = await resolve_and_snapshot(
            broker, desired, chosen, price_margin=settings.portfolio_price_margin
        )
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
    warnings: Sequence[str] = (),
) -> PlanOutcome:
    """A scheduled cycle that only reports drift (selfHeal: false): plan, record, report.

    Sends nothing; recorded in the store as a `plan` cycle with its report, like an apply.
    The settings' warnings (typo'd variables, unapplied overrides) and any extra `warnings` go into the report.
    """
    chosen = selected_accounts(desired, accounts)
    cycle = RecordedCycle.begin(
        store,
        "plan",
        desired,
        settings,
        chosen,
        clock=clock,
        reports_dir=reports_dir,
        warnings=(*settings_warnings(settings), *warnings),
    )
    with cycle.finishing() as facts:
        check_reports_dir(reports_dir)  # the report is what this cycle is for
        outcome = await plan_cycle(desired, settings, clock=clock, store=store, accounts=chosen)
        facts.plan = outcome.plan
        facts.balances_before = account_balances(outcome.actual, chosen)
        for account, snapshot in outcome.plan.desired_snapshot.items():
            store.record_desired_snapshot(account, cycle.cycle_id, snapshot)
        facts.status = OK
        facts.result = "drift report only (selfHeal: false); nothing sent"
    return replace(outcome, report=cycle.report)


def changes_against_base(desired: DesiredState, base: BaseState) -> list[str]:
    """What `desired` changes compared with the desired state at a git revision, in YAML
    words (everything reads as added when the folder did not exist there)."""
    if base.problem:
        return [f"(the desired state at {base.ref} does not load, so it cannot be compared: "
                f"{base.problem})"]
    before = documents_of(base.state) if base.state is not None else {}
    return document_changes(before, documents_of(desired))
