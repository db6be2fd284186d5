"""Another program on the same gateway and account (not the reconciler): an ib_async client
that places one order and returns once the gateway acknowledged it.

Must not sleep as synchronisation: it waits for the acknowledgement with a deadline.
"""

from __future__ import annotations

from apply_helpers import ACCOUNT
from waiting import wait_until_async

FOREIGN_CLIENT_ID = 77


async def place_order(
    host: str,
    port: int,
    symbol: str,
    quantity: float,
    limit: float,
    *,
    action: str = "BUY",
    wait_for: tuple[str, ...] = ("PreSubmitted", "Submitted", "Filled"),
) -> None:
    """A LMT order with orderRef `manual-<symbol>` from client 77; returns once its status is
    one of `wait_for`."""
    import ib_async

    ib = ib_async.IB()
    await ib.connectAsync(host, port, clientId=FOREIGN_CLIENT_ID, timeout=10)
    try:
        [contract] = await ib.qualifyContractsAsync(ib_async.Stock(symbol, "SMART", "USD"))
        order = ib_async.LimitOrder(
            action, quantity, limit, account=ACCOUNT, orderRef=f"manual-{symbol}"
        )
        trade = ib.placeOrder(contract, order)
        await wait_until_async(
            lambda: trade.orderStatus.status in wait_for,
            timeout=10,
            what=f"the manual {symbol} order's acknowledgement",
        )
    finally:
        ib.disconnect()
