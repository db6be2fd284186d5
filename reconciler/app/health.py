"""`reconcile health`: is the gateway reachable and is this process configured safely?

Responsible for one health check: handshake, server time and clock skew, managed accounts,
trading mode and the gates that can be judged without a desired state; optionally the seeds'
sanity-cancel (a far-from-market paper order placed and cancelled). Returns a JSON-able dict
with `healthy` and human lines. Must not print.
"""

from __future__ import annotations

from typing import Any

from reconciler.apply.gates import (
    GateInputs,
    gate_allowed_accounts,
    gate_live_override_file,
    gate_mode_matches_account_kind,
    gate_orders_enabled,
    gate_trading_mode,
)
from reconciler.model.accounts import is_paper_account
from reconciler.model.clock import SystemClock
from reconciler.model.settings import Settings

MAX_CLOCK_SKEW_SECONDS = 30.0


async def run_health(
    settings: Settings, *, check_orders: bool = False, account: str | None = None
) -> dict[str, Any]:
    """The broker's health check (handshake, server time, accounts), the gates that can be
    judged without a desired state and, on request, the paper test order; as a JSON-able
    dict with `healthy` and one human line per check."""
    from reconciler.broker.errors import BrokerError
    from reconciler.broker.health import check_orders as paper_order_round_trip
    from reconciler.broker.health import health

    lines: list[str] = []
    result: dict[str, Any] = {
        "gateway": f"{settings.gateway_host}:{settings.gateway_port}",
        "mode": settings.trading_mode,
        "orders_enabled": settings.orders_enabled,
        "healthy": False,
        "lines": lines,
    }
    report = await health(settings, clock=SystemClock())
    if not report.handshake_ok:
        lines.append(f"FAIL connect {result['gateway']}: {report.error}")
        result["error"] = report.error
        return result
    healthy = True
    latency_ms = (report.connect_latency or 0.0) * 1000
    lines.append(
        f"OK   connected to {result['gateway']} in {latency_ms:.0f} ms (client id {report.client_id})"
    )
    if report.server_time is None:
        healthy = False
        lines.append(f"FAIL server time: {report.error}")
    else:
        skew = abs(report.clock_skew or 0.0)
        result["server_time"] = report.server_time.isoformat()
        result["clock_skew_seconds"] = round(skew, 3)
        ok = skew <= MAX_CLOCK_SKEW_SECONDS
        healthy &= ok
        lines.append(
            f"{'OK  ' if ok else 'FAIL'} server time {report.server_time:%Y-%m-%d %H:%M:%S} UTC (skew {skew:.1f}s)"
        )
    managed = list(report.managed_accounts)
    result["accounts"] = managed
    if managed:
        lines.append(f"OK   managed accounts: {', '.join(managed)}")
    else:
        healthy = False
        lines.append("FAIL managed accounts: the gateway reports none")
    inputs = GateInputs(settings, managed, managed, None, None, None, {})
    gates = [
        g(inputs)
        for g in (
            gate_trading_mode,
            gate_orders_enabled,
            gate_live_override_file,
            gate_allowed_accounts,
            gate_mode_matches_account_kind,
        )
    ]
    result["gates"] = [g.__dict__ for g in gates]
    for g in gates:
        lines.append(("OK   " if g.passed else "WARN ") + f"{g.name}: {g.detail}")
    if check_orders:
        target = account or (managed[0] if managed else None)
        if not is_paper_account(target):
            healthy = False
            lines.append(
                f"FAIL check-orders: refused on {target or 'no account'} (paper accounts only)"
            )
        else:
            try:
                check = await paper_order_round_trip(settings, target)
                lines.append(f"{'OK  ' if check.ok else 'FAIL'} check-orders on {target}: {check}")
                result["check_orders"] = str(check)
                healthy &= check.ok
            except BrokerError as exc:
                healthy = False
                lines.append(f"FAIL check-orders on {target}: {exc}")
    result["healthy"] = healthy
    lines.append("healthy" if healthy else "NOT healthy")
    return result
