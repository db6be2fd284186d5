"""Pacing of the messages sent to the gateway, and counting them by kind.

Responsible for `SlidingWindowPacer` (at most `rate` messages in ANY `window` seconds, and
at most an eighth of that in any eighth of the window, so the stream stays smooth instead of
bursting a whole second's budget at once) and `PacedSender`, which puts the pacer in front of
the client library's socket writes: every API message of the session (requests, orders,
cancels) waits its turn there, and is counted by kind; it also stops sending while the
gateway has fallen silent with a few of our messages unanswered (`UNANSWERED_LIMIT`), so that
a gateway catching up on a backlog never counts more than its limit in a second. Values in, decisions out: the clock is
injected. Must not interpret messages beyond their leading message id.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

# IB disconnects a client that sends more than 50 messages in any second (error 100).
IB_MESSAGE_LIMIT = 50.0
DEFAULT_MESSAGE_RATE = 45.0
# Sub-windows per window: bursts are at most rate / SLOTS messages per window / SLOTS.
SLOTS = 8
# A gateway counts a message when it reads it. One that stops reading for a moment (busy,
# descheduled) and then reads its backlog at once counts that backlog inside one second: at
# 45/s a pause of about 0.1 s is enough to exceed 50. So the sender keeps at most this many
# messages ahead of the gateway's last sign of life (any data it sent), and then waits for it
# to speak, for at most STALL_HOLD seconds (some requests get no answer), before the next.
UNANSWERED_LIMIT = 4
STALL_HOLD = 0.25
STALL_POLL = 0.005  # how often a caller waiting on `delay()` asks again during a hold

# Outgoing message ids of the TWS API (EClient), named in the counts.
MESSAGE_KINDS = {
    "1": "reqMktData",
    "2": "cancelMktData",
    "3": "placeOrder",
    "4": "cancelOrder",
    "5": "reqOpenOrders",
    "6": "reqAccountUpdates",
    "7": "reqExecutions",
    "8": "reqIds",
    "9": "reqContractDetails",
    "15": "reqAutoOpenOrders",
    "16": "reqAllOpenOrders",
    "17": "reqManagedAccts",
    "49": "reqCurrentTime",
    "58": "reqGlobalCancel",
    "59": "reqMarketDataType",
    "61": "reqPositions",
    "62": "reqAccountSummary",
    "64": "cancelPositions",
    "71": "startApi",
    "76": "reqAccountUpdatesMulti",
    "77": "cancelAccountUpdatesMulti",
    "99": "reqCompletedOrders",
}


def message_kind(msg: str) -> str:
    """The name of an encoded API message's kind (its first field is the message id)."""
    head = msg.split("\0", 1)[0]
    return MESSAGE_KINDS.get(head, f"msg{head}")


class SlidingWindowPacer:
    """At most `rate` sends in any `window` seconds (and ceil(rate / SLOTS) in any
    window / SLOTS), judged from the send times it recorded; the clock is the caller's."""

    def __init__(self, rate: float = DEFAULT_MESSAGE_RATE, *, window: float = 1.0) -> None:
        if not 0 < rate <= IB_MESSAGE_LIMIT:
            raise ValueError(f"message rate {rate:g}/s must be > 0 and <= {IB_MESSAGE_LIMIT:g}")
        self.rate = rate
        self.window = window
        self.limit = max(1, int(rate * window))
        self.slot = window / SLOTS
        self.slot_limit = max(1, math.ceil(self.limit / SLOTS))
        self._sent: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def delay(self, now: float) -> float:
        """Seconds until one more message may be sent (0.0: now)."""
        self._forget(now)
        sent = self._sent
        wait = 0.0
        if len(sent) >= self.limit:
            wait = sent[-self.limit] + self.window - now
        if len(sent) >= self.slot_limit:
            wait = max(wait, sent[-self.slot_limit] + self.slot - now)
        return max(0.0, wait)

    def capacity(self, now: float) -> int:
        """How many messages may be sent at `now` without waiting."""
        self._forget(now)
        sent = self._sent
        in_slot = sum(1 for t in reversed(sent) if t > now - self.slot)
        return max(0, min(self.limit - len(sent), self.slot_limit - in_slot))

    def record(self, now: float) -> None:
        self._sent.append(now)


class PacedSender:
    """Sits in front of a client library's `sendMsg`: queues messages, lets each out when
    the pacer allows and counts them by kind (`message_counts`) and the times the queue had
    to wait for the window (`pacing_waits`) or for a silent gateway (`stall_waits`; the
    connection calls `received` whenever the gateway sends data). The library's own throttle
    is switched off."""

    def __init__(
        self,
        client: Any,
        pacer: SlidingWindowPacer,
        *,
        now: Callable[[], float],
        call_later: Callable[[float, Callable[[], None]], Any],
        unanswered_limit: int | None = UNANSWERED_LIMIT,
        stall_hold: float = STALL_HOLD,
    ) -> None:
        self.pacer = pacer
        self._now = now
        self._call_later = call_later
        self._send = client.sendMsg
        self._queue: deque[str] = deque()
        self._waiting = False  # a flush is scheduled for when the window allows
        self._timer: Any = None
        self._unanswered_limit = unanswered_limit
        self._stall_hold = stall_hold
        self._unanswered = 0  # messages sent since the gateway last sent anything
        self._held_since: float | None = None
        self.message_counts: dict[str, int] = {}
        self.pacing_waits = 0
        self.stall_waits = 0
        client.MaxRequests = 0  # the library's throttle off: this sender paces
        client.sendMsg = self.send

    @property
    def queued(self) -> int:
        return len(self._queue)

    def capacity(self) -> int:
        """Messages that could leave now without waiting (0 while some are queued)."""
        if self._queue:
            return 0
        return min(self.pacer.capacity(self._now()), self._allowance(self._now()))

    def delay(self) -> float:
        """Seconds until the next message could leave (0.0: now), or until it is worth
        asking again while the stall guard waits for the gateway (which may speak any time)."""
        now = self._now()
        held = self._hold(now)
        wait = max(self.pacer.delay(now), min(held, STALL_POLL))
        return max(wait, 1e-3) if self._queue else wait

    def send(self, msg: str | None) -> None:
        if msg:
            self._queue.append(msg)
        if not self._waiting:
            self._flush()

    def received(self, *_: Any) -> None:
        """The gateway sent something: it is reading and answering, so what was held may go."""
        self._unanswered = 0
        self._held_since = None
        if self._waiting and self._queue:
            self._schedule(0.0)

    def _allowance(self, now: float) -> int:
        """How many more may leave before the gateway shows a sign of life."""
        if self._unanswered_limit is None:
            return 1 << 30
        if self._held_since is not None and now - self._held_since >= self._stall_hold:
            # No answer within the hold: the requests may be ones that get none.
            self._unanswered = 0
            self._held_since = None
        return max(0, self._unanswered_limit - self._unanswered)

    def _hold(self, now: float) -> float:
        """Seconds the stall guard still holds the next message (0.0: it does not)."""
        if self._allowance(now) > 0:
            return 0.0
        if self._held_since is None:
            self._held_since = now
        return max(0.0, self._held_since + self._stall_hold - now)

    def _schedule(self, delay: float) -> None:
        cancel = getattr(self._timer, "cancel", None)
        if cancel is not None:
            cancel()
        self._waiting = True
        self._timer = self._call_later(delay, self._flush)

    def _flush(self) -> None:
        self._waiting = False
        self._timer = None
        while self._queue:
            now = self._now()
            held = self._hold(now)
            if held > 0:
                self.stall_waits += 1
                self._schedule(held)
                return
            wait = self.pacer.delay(now)
            if wait > 0:
                self.pacing_waits += 1
                self._schedule(wait)
                return
            msg = self._queue.popleft()
            self.pacer.record(now)
            self._unanswered += 1
            kind = message_kind(msg)
            self.message_counts[kind] = self.message_counts.get(kind, 0) + 1
            self._send(msg)
