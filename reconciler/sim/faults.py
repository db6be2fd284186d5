"""Fault injection switches for the simulated gateway (set from a scenario or by tests).

Responsible for holding which faults are active and small pure decisions about them (does
this symbol get rejected, has this client exceeded its message rate), and for sequencing the
connectivity blip. Must not know the gateway or send anything itself: the gateway consults
these switches where a real gateway would fail, and gives the blip one capability, a
function that tells every connected client a system message (see ARCHITECTURE.md at the
repository root).

Faults:
- drop_after_messages: close a client's connection after it sent N API messages (the
  handshake and startApi are not counted).
- drop_after_orders: accept the Kth placeOrder (counted across clients), then close that
  connection before any acknowledgement is sent.
- withhold_acks: orders are accepted and work, but openOrder/orderStatus/execDetails for them
  are never pushed live (reqOpenOrders, reqExecutions and completed orders still tell the truth).
- rejected_symbols: new orders for these symbols are rejected with error 201.
- connectivity(kind): `await sim.faults.connectivity_blip()` sends 1100 then 1102 (or 1101);
  `lose_connectivity()` / `restore_connectivity(1101|1102)` do the two halves separately.
  While the link is down (`link_down`), a client that connects is sent 1100 after startApi.
- pacing_limit: more than this many messages within one second from a client gets error 100
  and the connection is closed (handshake and startApi are not counted). None disables it.
- no_market_data: True or a set of symbols; market data requests get error 354.
- delayed_only: live requests get warning 10167, marketDataType 3 and delayed ticks (66-76).
- stale_symbols: for these symbols the simulator has no fresh quote: a snapshot carries only
  the close (no bid/ask/last) and streams never update, so the client sees no usable price.
- withhold_position_end: reqPositions gets its positions but never positionEnd (the client's
  positions request times out).
- ignore_requests: incoming message ids the gateway silently never answers (e.g. {7}: the
  executions request times out).
- duplicate_exec_details: every live fill's execDetails + commissionReport is sent twice
  (same execId), as gateways do after reconnects.
- duplicate_order_status: every live orderStatus is sent twice (gateways repeat them).
- empty_positions: True or a set of accounts; reqPositions(+Multi) reports no positions for
  them (the account values still show what is held): an empty report is not "flat".
- late_fill_on_cancel: a cancel of a working order is answered PendingCancel, then one more
  fill arrives (up to the instrument's liquidity), then the rest is Cancelled (202).
- fill_after_cancel: a cancel of a working order is confirmed (Cancelled, 202) at once, and
  one more fill that was on its way (up to the instrument's liquidity) is reported just
  after it: an execution of an order already Cancelled, as IB may send.
- unknown_on_cancel: every cancel is answered 10147 (order id not found) and changes nothing:
  the order keeps working, as when a gateway lost track of a client's order ids.
- duplicate_id_on_order: the Kth placeOrder (counted across clients) is answered 103
  (duplicate order id) and not accepted, as when an id was already used by another session.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass, field

CONNECTIVITY_LOST = "Connectivity between IB and Trader Workstation has been lost."
CONNECTIVITY_RESTORED = {
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
}


@dataclass
class Faults:
    drop_after_messages: int | None = None
    drop_after_orders: int | None = None
    withhold_acks: bool = False
    rejected_symbols: set[str] = field(default_factory=set)
    pacing_limit: int | None = None
    no_market_data: bool | set[str] = False
    delayed_only: bool = False
    stale_symbols: set[str] = field(default_factory=set)
    duplicate_exec_details: bool = False
    withhold_position_end: bool = False
    duplicate_order_status: bool = False
    empty_positions: bool | set[str] = False
    late_fill_on_cancel: bool = False
    fill_after_cancel: bool = False
    unknown_on_cancel: bool = False
    duplicate_id_on_order: int | None = None
    ignore_requests: set[int] = field(default_factory=set)
    orders_seen: int = 0
    link_down: bool = False  # between 1100 and 1101/1102
    # (code, text) -> sent as an error with id -1 to every connected client; set by the gateway
    notify_clients: Callable[[int, str], None] | None = field(
        default=None, repr=False, compare=False
    )

    def reject_symbol(self, symbol: str) -> None:
        self.rejected_symbols.add(symbol.upper())

    def clear(self) -> None:
        """Switch every fault off."""
        self.drop_after_messages = None
        self.drop_after_orders = None
        self.withhold_acks = False
        self.rejected_symbols = set()
        self.pacing_limit = None
        self.no_market_data = False
        self.delayed_only = False
        self.stale_symbols = set()
        self.duplicate_exec_details = False
        self.withhold_position_end = False
        self.duplicate_order_status = False
        self.empty_positions = False
        self.late_fill_on_cancel = False
        self.fill_after_cancel = False
        self.unknown_on_cancel = False
        self.duplicate_id_on_order = None
        self.ignore_requests = set()

    def market_data_missing(self, symbol: str) -> bool:
        if isinstance(self.no_market_data, bool):
            return self.no_market_data
        return symbol.upper() in self.no_market_data

    def positions_hidden(self, account: str) -> bool:
        if isinstance(self.empty_positions, bool):
            return self.empty_positions
        return account in self.empty_positions

    def is_stale(self, symbol: str) -> bool:
        return symbol.upper() in self.stale_symbols

    async def connectivity_blip(self, restored: int = 1102, duration: float = 0.05) -> None:
        """Send 1100 (connectivity lost) to every client, then `restored` (1101 or 1102)."""
        if restored not in (1101, 1102):
            raise ValueError("restored must be 1101 (data lost) or 1102 (data kept)")
        self.lose_connectivity()
        await asyncio.sleep(duration)
        self.restore_connectivity(restored)

    def lose_connectivity(self) -> None:
        """Send 1100 to every client; clients connecting until restored are sent it too."""
        if self.notify_clients is None:
            raise RuntimeError("faults are not attached to a running gateway")
        self.link_down = True
        self.notify_clients(1100, CONNECTIVITY_LOST)

    def restore_connectivity(self, restored: int = 1102) -> None:
        """Send 1101 (data lost) or 1102 (data kept) to every client."""
        if restored not in (1101, 1102):
            raise ValueError("restored must be 1101 (data lost) or 1102 (data kept)")
        if self.notify_clients is None:
            raise RuntimeError("faults are not attached to a running gateway")
        self.link_down = False
        self.notify_clients(restored, CONNECTIVITY_RESTORED[restored])

    def update(self, spec: dict) -> None:
        """Apply a scenario's `faults:` mapping (camelCase keys as in the schema)."""
        if "dropAfterMessages" in spec:
            self.drop_after_messages = spec["dropAfterMessages"]
        if "dropAfterOrders" in spec:
            self.drop_after_orders = spec["dropAfterOrders"]
        if "withholdAcks" in spec:
            self.withhold_acks = bool(spec["withholdAcks"])
        if "rejectSymbols" in spec:
            self.rejected_symbols = {s.upper() for s in spec["rejectSymbols"]}
        if "pacingLimit" in spec:
            self.pacing_limit = spec["pacingLimit"]
        if "noMarketData" in spec:
            value = spec["noMarketData"]
            self.no_market_data = value if isinstance(value, bool) else {s.upper() for s in value}
        if "delayedOnly" in spec:
            self.delayed_only = bool(spec["delayedOnly"])
        if "staleQuotes" in spec:
            self.stale_symbols = {s.upper() for s in spec["staleQuotes"]}
        if "duplicateExecDetails" in spec:
            self.duplicate_exec_details = bool(spec["duplicateExecDetails"])
        if "withholdPositionEnd" in spec:
            self.withhold_position_end = bool(spec["withholdPositionEnd"])
        if "duplicateOrderStatus" in spec:
            self.duplicate_order_status = bool(spec["duplicateOrderStatus"])
        if "emptyPositions" in spec:
            value = spec["emptyPositions"]
            self.empty_positions = value if isinstance(value, bool) else set(value)
        if "lateFillOnCancel" in spec:
            self.late_fill_on_cancel = bool(spec["lateFillOnCancel"])
        if "fillAfterCancel" in spec:
            self.fill_after_cancel = bool(spec["fillAfterCancel"])
        if "unknownOnCancel" in spec:
            self.unknown_on_cancel = bool(spec["unknownOnCancel"])
        if "duplicateIdOnOrder" in spec:
            self.duplicate_id_on_order = spec["duplicateIdOnOrder"]
        if "ignoreRequests" in spec:
            self.ignore_requests = {int(i) for i in spec["ignoreRequests"]}


class RateWindow:
    """Messages seen from one client in the last second (sliding window)."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def add(self, now: float) -> int:
        self._times.append(now)
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        return len(self._times)
