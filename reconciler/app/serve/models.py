"""Pydantic response models of the read-only status API (they are its OpenAPI contract).

Responsible for the shape of every JSON response of `reconcile serve`; the checked-in
schemas/openapi.json is generated from these. Must not query the store or compute anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str


class GatewayHealth(BaseModel):
    checked: bool = Field(description="False when serve runs without --health-gateway.")
    reachable: bool | None = None
    detail: str


class StoreHealth(BaseModel):
    readable: bool
    database: str
    detail: str


class LedgerHealth(BaseModel):
    verified: bool
    events: int
    detail: str


class AccountHealth(BaseModel):
    account: str
    last_success_at: dt.datetime | None = Field(
        description="When the last cycle that ended with exit code 0 finished."
    )
    age_seconds: float | None


class HealthResponse(BaseModel):
    healthy: bool = Field(
        description="Store readable, ledger verified, gateway reachable if checked."
    )
    checked_at: dt.datetime
    gateway: GatewayHealth
    store: StoreHealth
    ledger: LedgerHealth
    accounts: list[AccountHealth]


class HaltOut(BaseModel):
    at: dt.datetime
    reason: str
    who: str
    cancel_open: bool


class LockOut(BaseModel):
    account: str
    lock_id: str
    holder: str
    host: str
    pid: int
    acquired_at: dt.datetime
    expires_at: dt.datetime
    expired: bool


class CycleSummary(BaseModel):
    id: int
    kind: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    accounts: list[str]
    plan_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    result: str | None
    error: str | None
    orders: int


class StatusAccount(BaseModel):
    account: str
    last_cycle: CycleSummary | None
    drift: str = Field(description="Drift summary of the last cycle, e.g. '1 of 4 outside band'.")
    lock: LockOut | None
    unresolved_intents: int
    positions_at: dt.datetime | None


class StatusResponse(BaseModel):
    trading_mode: str
    orders_enabled: bool
    halt: HaltOut | None
    accounts: list[StatusAccount]


class DriftRow(BaseModel):
    key: str
    status: str
    quantity: float | None = None
    price: float | None = None
    current_weight: float | None = None
    target_weight: float | None = None
    drift: float | None = None
    in_band: bool | None = None


class PositionOut(BaseModel):
    account: str
    snapshot_id: int
    cycle_id: int | None
    at: dt.datetime
    con_id: int | None
    symbol: str
    quantity: float
    avg_cost: float | None


class TargetOut(BaseModel):
    key: str
    target_weight: float | None
    target_quantity: float | None


class PlannedOrderOut(BaseModel):
    leg: int | None = None
    account: str
    key: str | None = None
    symbol: str
    side: str
    quantity: float
    order_type: str | None = None
    limit_price: float | None = None
    est_notional: float | None = None
    reason: str | None = None


class RiskDecisionOut(BaseModel):
    account: str | None = None
    key: str | None = None
    code: str
    action: str
    side: str | None = None
    requested_quantity: float | None = None
    allowed_quantity: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class PlanSummary(BaseModel):
    plan_id: str
    created_at: dt.datetime | None
    orders: list[PlannedOrderOut]
    decisions: list[RiskDecisionOut]


class AccountResponse(BaseModel):
    account: str
    targets: list[TargetOut]
    actual: list[PositionOut]
    drift: list[DriftRow] = Field(description="After the last cycle (before, if it sent nothing).")
    last_cycle: CycleSummary | None
    last_plan: PlanSummary | None


class CyclesPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[CycleSummary]


class CycleDetail(BaseModel):
    cycle: CycleSummary
    report: dict[str, Any] | None = Field(
        description="The cycle report (format ib-reconciler/cycle-report)."
    )


class PlanResponse(BaseModel):
    plan: dict[str, Any] = Field(description="The plan artifact (format ib-reconciler/plan).")


class OrderOut(BaseModel):
    order_ref: str
    plan_id: str | None
    cycle_id: int | None
    leg: int | None
    account: str
    con_id: int | None
    symbol: str
    side: str
    quantity: float
    order_type: str | None
    limit_price: float | None
    arrival_price: float | None
    est_notional: float | None
    created_at: dt.datetime
    status: str = Field(description="Kind of the order's latest ledger event.")
    filled_quantity: float
    avg_fill_price: float | None


class FillOut(BaseModel):
    exec_id: str
    order_ref: str | None
    account: str
    con_id: int | None
    symbol: str | None
    side: str | None
    shares: float
    price: float
    time: dt.datetime | None
    commission: float | None
    commission_currency: str | None
    perm_id: int | None


class DenialOut(BaseModel):
    id: int
    cycle_id: int | None
    plan_id: str | None
    account: str
    key: str
    code: str
    action: str = Field(description="deny or clip")
    side: str | None
    requested_quantity: float | None
    allowed_quantity: float | None
    detail: dict[str, Any]
    at: dt.datetime
