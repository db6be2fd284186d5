"""Is a saved plan still the plan for the world as it is now? (pure)

Responsible for comparing a `Plan` with a fresh `ActualState` and the current desired-state
hash, and naming every reason the plan is stale: positions or open orders changed, NAV or a
quote moved past a tolerance, the plan is older than its limit, the desired state changed.
Must not talk to the broker or decide what to do about staleness (apply refuses).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconciler.model.actual import ActualState, fingerprint_parts
from reconciler.model.plan import Plan


@dataclass(frozen=True)
class StalenessTolerance:
    max_age_seconds: float = 300.0
    nav_fraction: float = 0.005  # NAV may move 0.5% before the plan is stale
    quote_fraction: float = 0.01  # an ordered instrument's price may move 1%


def stale_reasons(
    plan: Plan,
    actual: ActualState,
    desired_hash: str,
    now: dt.datetime,
    tolerance: StalenessTolerance = StalenessTolerance(),
) -> list[str]:
    reasons: list[str] = []
    age = (now - plan.created_at).total_seconds()
    if age > tolerance.max_age_seconds:
        reasons.append(f"plan is {age:.0f}s old (limit {tolerance.max_age_seconds:.0f}s)")
    if age < -5:
        reasons.append(f"plan was created {-age:.0f}s in the future (clock skew?)")
    if desired_hash != plan.desired_hash:
        reasons.append(
            f"desired state changed (plan {plan.desired_hash[:12]}, now {desired_hash[:12]})"
        )
    parts = fingerprint_parts(actual)
    if plan.fingerprint_parts:
        if parts["positions"] != plan.fingerprint_parts.get("positions"):
            reasons.append("positions changed since the plan")
        if parts["open_orders"] != plan.fingerprint_parts.get("open_orders"):
            reasons.append("open orders changed since the plan")
    for account, nav_then in plan.nav.items():
        state = actual.accounts.get(account)
        if state is None:
            reasons.append(f"account {account} is missing from the snapshot")
            continue
        if (
            nav_then
            and abs(state.net_liquidation - nav_then) / abs(nav_then) > tolerance.nav_fraction
        ):
            reasons.append(
                f"NAV of {account} moved {nav_then:,.2f} -> {state.net_liquidation:,.2f} "
                f"(> {tolerance.nav_fraction:.2%})"
            )
    ordered = {o.con_id for o in plan.orders}
    for con_id in sorted(ordered):
        then = plan.quotes.get(str(con_id), {})
        price_then = then.get("reference_price")
        quote = actual.quotes.get(con_id)
        price_now = quote.reference_price if quote else None
        symbol = then.get("symbol", str(con_id))
        if price_now is None:
            reasons.append(f"no usable quote now for {symbol}")
            continue
        if price_then and abs(price_now - price_then) / price_then > tolerance.quote_fraction:
            reasons.append(
                f"{symbol} moved {price_then:.4g} -> {price_now:.4g} (> {tolerance.quote_fraction:.2%})"
            )
    return reasons
