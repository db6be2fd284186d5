"""Cycle reports and facts as values, for the observe tests: only what each test varies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reconciler.model.report import CycleReport, DecisionRow, DesiredRef, DriftLine, OrderRow
from reconciler.observe.facts import CycleFacts

ACCOUNT = "DU0000001"
START = dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC)


def drift(
    key: str, current: float, target: float, *, in_band: bool = False, status: str = "managed"
) -> DriftLine:
    return DriftLine(ACCOUNT, key, status, 10.0, 50.0, current, target, current - target, in_band)


def order(leg: int, key: str, status: str, *, side: str = "BUY", filled: float = 0.0) -> OrderRow:
    return OrderRow(f"rc-plan-{leg:03d}", leg, ACCOUNT, key, side, 10.0, status, filled=filled)


def deny(
    key: str, code: str = "NOTIONAL_EXCEEDS_MAX_PER_ORDER", action: str = "deny"
) -> DecisionRow:
    return DecisionRow(ACCOUNT, key, "BUY", code, action, f"{code}: max=2000")


def report(**changes: Any) -> CycleReport:
    values: dict[str, Any] = dict(
        cycle_id=7,
        kind="apply",
        started_at=START,
        finished_at=START + dt.timedelta(seconds=12.5),
        status="ok",
        mode="paper",
        orders_enabled=True,
        accounts=(ACCOUNT,),
        desired=DesiredRef("abc", None, None, None),
    )
    values.update(changes)
    return CycleReport(**values)


def facts(**changes: Any) -> CycleFacts:
    return CycleFacts.of_report(report(**changes))
