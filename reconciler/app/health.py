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
from reconciler.model.clock import SystemClock
from reconciler.model.settings import Settings

MAX_CLOCK_SKEW_SECONDS = 30.0


async def run_health(
    settings: Settings, *, check_orders: bool = False, account: str | None = None
) -> dict[str, Any]:
    from reconciler.broker import Broker
    from reconciler.broker.errors import BrokerError

    clock = SystemClock()
    lines: list[str] = []
    result: dict[str, Any] = {
        "gateway": f"{settings.gateway_host}:{settings.gateway_port}",
        "mode": settings.trading_mode,
        "orders_enabled": settings.orders_enabled,
        "healthy": False,
        "lines": lines,
    }
    started = clock.now()
    try:
        broker = await Broker.connect(settings, readonly=not check_orders, clock=clock)
    except BrokerError as exc:
        lines.append(f"FAIL connect {result['gateway']}: {exc}")
        result["error"] = str(exc)
        return result
    healthy = True
    try:
        latency = (clock.now() - started).total_seconds()
        lines.append(
            f"OK   connected to {result['gateway']} in {latency * 1000:.0f} ms (client id {settings.client_id})"
        )
        server_time = await broker.server_time()
        skew = abs((server_time - clock.now()).total_seconds())
        result["server_time"] = server_time.isoformat()
        result["clock_skew_seconds"] = round(skew, 3)
        ok = skew <= MAX_CLOCK_SKEW_SECONDS
        healthy &= ok
        lines.append(
            f"{'OK  ' if ok else 'FAIL'} server time {server_time:%Y-%m-%d %H:%M:%S} UTC (skew {skew:.1f}s)"
        )
        managed = list(broker.managed_accounts)
        result["accounts"] = managed
        lines.append(f"OK   managed accounts: {', '.join(managed)}")
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
            if target is None or not target.upper().startswith("D"):
                healthy = False
                lines.append(
                    f"FAIL check-orders: refused on {target or 'no account'} (paper accounts only)"
                )
            else:
                try:
                    check = await broker.check_orders(target)
                    lines.append(f"OK   check-orders on {target}: {check}")
                    result["check_orders"] = str(check)
                except BrokerError as exc:
                    healthy = False
                    lines.append(f"FAIL check-orders on {target}: {exc}")
    finally:
        await broker.disconnect()
    result["healthy"] = healthy
    lines.append("healthy" if healthy else "NOT healthy")
    return result
