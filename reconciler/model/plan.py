"""The plan: a value and a file (Terraform style).

Responsible for the plan artifact's types (`Plan`, `PlannedOrder`, `RiskDecision`,
`DriftRow`, `AccountPlan`), its versioned JSON form (`to_dict`/`from_dict`, `dumps`/`loads`)
and the deterministic `order_ref` of a leg. Must not compute plans (that is `planner` and
`risk`), talk to a broker or print.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class DriftRow:
    """One instrument of one account, before any order: where it is against its target."""

    account: str
    key: str
    symbol: str
    con_id: int | None
    status: str  # managed | unmanaged | missing-price
    quantity: float
    price: float | None
    market_value: float | None  # base currency
    current_weight: float | None
    target_weight: float | None
    target_quantity: float | None
    drift: float | None  # current_weight - target_weight (weight points)
    in_band: bool
    in_flight: float = 0.0  # signed remaining quantity of open orders already working


@dataclass(frozen=True)
class PlannedOrder:
    leg: int
    account: str
    key: str
    symbol: str
    con_id: int
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    side: str  # BUY | SELL
    quantity: float
    order_type: str
    limit_price: float | None
    time_in_force: str
    ttl_seconds: float
    outside_rth: bool
    arrival_price: float  # the reference price the order was sized with
    est_notional: float  # base currency, always positive
    est_commission: float
    reason: str  # which target and which drift
    # The portfolio's minTradeNotional (base currency): the executor never shrinks the order
    # below it. Optional so that plan files written before it existed still load.
    min_trade_notional: float = 0.0

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True)
class RiskDecision:
    """A risk check's verdict on one order: clipped to fit, or denied."""

    code: str  # SCREAMING_SNAKE, e.g. NOTIONAL_EXCEEDS_MAX_PER_ORDER
    action: str  # clip | deny
    account: str
    key: str
    side: str
    requested_quantity: float
    allowed_quantity: float
    detail: Mapping[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        kv = " ".join(f"{k}={_fmt(v)}" for k, v in self.detail.items())
        return f"{self.code}: {kv}".rstrip(": ").rstrip()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.2f}"
    return str(value)


@dataclass(frozen=True)
class AccountPlan:
    account: str
    portfolio: str
    risk_policy: str
    base_currency: str
    net_liquidation: float
    capital: float
    drift: tuple[DriftRow, ...]
    orders: tuple[PlannedOrder, ...]
    decisions: tuple[RiskDecision, ...]
    notes: tuple[str, ...] = ()

    @property
    def turnover(self) -> float:
        return sum(o.est_notional for o in self.orders)


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: dt.datetime
    desired_hash: str
    git_commit: str | None
    git_dirty: bool | None
    actual_fingerprint: str
    fingerprint_parts: Mapping[str, str]
    snapshot_time: dt.datetime
    quotes: Mapping[str, Mapping[str, Any]]  # conId (str) -> {symbol, bid, ask, last, time, ...}
    nav: Mapping[str, float]  # account -> NAV at plan time
    accounts: tuple[AccountPlan, ...]
    desired_snapshot: Mapping[str, Any] = field(default_factory=dict)
    version: int = PLAN_FORMAT_VERSION

    @property
    def orders(self) -> tuple[PlannedOrder, ...]:
        return tuple(o for a in self.accounts for o in a.orders)

    @property
    def decisions(self) -> tuple[RiskDecision, ...]:
        return tuple(d for a in self.accounts for d in a.decisions)

    @property
    def has_changes(self) -> bool:
        return bool(self.orders)

    @property
    def totals(self) -> dict[str, float]:
        return {
            "orders": len(self.orders),
            "turnover": round(sum(o.est_notional for o in self.orders), 2),
            "est_commission": round(sum(o.est_commission for o in self.orders), 2),
            "denials": sum(1 for d in self.decisions if d.action == "deny"),
            "clips": sum(1 for d in self.decisions if d.action == "clip"),
        }


def order_ref(plan_id: str, leg: int) -> str:
    """Deterministic orderRef for a leg of a plan: the key that makes apply idempotent."""
    return f"rc-{plan_id}-{leg:03d}"


# ---------------------------------------------------------------- JSON form


def _flat(value: Any) -> dict[str, Any]:
    """A flat frozen dataclass as a dict; faster than dataclasses.asdict's deep copy."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def to_dict(plan: Plan) -> dict[str, Any]:
    accounts = []
    for a in plan.accounts:
        body = _flat(a)
        body["drift"] = [_flat(r) for r in a.drift]
        body["orders"] = [_flat(o) for o in a.orders]
        body["decisions"] = [{**_flat(d), "detail": dict(d.detail)} for d in a.decisions]
        body["notes"] = list(a.notes)
        accounts.append(body)
    body = _flat(plan)
    body.update(
        created_at=plan.created_at.isoformat(),
        snapshot_time=plan.snapshot_time.isoformat(),
        fingerprint_parts=dict(plan.fingerprint_parts),
        quotes={k: dict(v) for k, v in plan.quotes.items()},
        nav=dict(plan.nav),
        accounts=accounts,
        desired_snapshot=dict(plan.desired_snapshot),
        totals=plan.totals,
        # Flat views across accounts, for readers that want every order or denial at once;
        # `accounts` stays the source the plan is loaded from.
        orders=[o for a in accounts for o in a["orders"]],
        decisions=[d for a in accounts for d in a["decisions"]],
    )
    return {"format": "ib-reconciler/plan", **body}


def from_dict(data: Mapping[str, Any]) -> Plan:
    if data.get("format") != "ib-reconciler/plan":
        raise ValueError("not an ib-reconciler plan file (missing format marker)")
    if data.get("version") != PLAN_FORMAT_VERSION:
        raise ValueError(
            f"plan format version {data.get('version')!r} is not supported "
            f"(this reconciler reads version {PLAN_FORMAT_VERSION})"
        )
    accounts = tuple(
        AccountPlan(
            account=a["account"],
            portfolio=a["portfolio"],
            risk_policy=a["risk_policy"],
            base_currency=a["base_currency"],
            net_liquidation=a["net_liquidation"],
            capital=a["capital"],
            drift=tuple(DriftRow(**r) for r in a["drift"]),
            orders=tuple(PlannedOrder(**o) for o in a["orders"]),
            decisions=tuple(RiskDecision(**d) for d in a["decisions"]),
            notes=tuple(a.get("notes", ())),
        )
        for a in data["accounts"]
    )
    return Plan(
        plan_id=data["plan_id"],
        created_at=dt.datetime.fromisoformat(data["created_at"]),
        desired_hash=data["desired_hash"],
        git_commit=data.get("git_commit"),
        git_dirty=data.get("git_dirty"),
        actual_fingerprint=data["actual_fingerprint"],
        fingerprint_parts=data.get("fingerprint_parts", {}),
        snapshot_time=dt.datetime.fromisoformat(data["snapshot_time"]),
        quotes=data.get("quotes", {}),
        nav=data.get("nav", {}),
        accounts=accounts,
        desired_snapshot=data.get("desired_snapshot", {}),
        version=data["version"],
    )


def dumps(plan: Plan) -> str:
    # Indented for review in a PR; very large plans are written compactly (several times
    # faster and smaller) since nobody reads them by eye.
    indent = 2 if len(plan.orders) + sum(len(a.drift) for a in plan.accounts) < 5000 else None
    return json.dumps(to_dict(plan), indent=indent, default=str)


def loads(text: str) -> Plan:
    return from_dict(json.loads(text))


def without_instruments(
    plan: Plan, skipped: Mapping[tuple[str, int], Mapping[str, Any]], code: str = "LEDGER_BREAK"
) -> Plan:
    """The same plan with no orders for the (account, conId) pairs in `skipped`.

    Each dropped order becomes a denial with `code` and the given detail, so the report says
    why it was not sent. Used for instruments whose ledger and broker disagree.
    """
    if not skipped:
        return plan
    accounts = []
    for a in plan.accounts:
        kept = tuple(o for o in a.orders if (o.account, o.con_id) not in skipped)
        dropped = [o for o in a.orders if (o.account, o.con_id) in skipped]
        decisions = a.decisions + tuple(
            RiskDecision(
                code=code,
                action="deny",
                account=o.account,
                key=o.key,
                side=o.side,
                requested_quantity=o.quantity,
                allowed_quantity=0.0,
                detail=dict(skipped[(o.account, o.con_id)]),
            )
            for o in dropped
        )
        accounts.append(dataclasses.replace(a, orders=kept, decisions=decisions))
    return dataclasses.replace(plan, accounts=tuple(accounts))
