"""Operator actions that talk to the gateway outside a cycle: resolving instruments for the
lockfile and cancelling the reconciler's open orders (the kill switch's `--cancel-open`).

Must not plan or place orders. See ARCHITECTURE.md.
"""

from __future__ import annotations

from reconciler.cycle.common import CycleError, connect, target_instruments
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState
from reconciler.model.settings import Settings


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
    from reconciler.model.clock import SystemClock

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
