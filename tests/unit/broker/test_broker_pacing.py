"""The sliding-window pacer and the paced sender, with an injected clock (no sockets)."""

from __future__ import annotations

import pytest

from reconciler.broker.pacing import PacedSender, SlidingWindowPacer, message_kind


def sends_in_any_window(times: list[float], window: float) -> int:
    """Most sends within any half-open interval [t, t + window)."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def drain(pacer: SlidingWindowPacer, count: int, start: float = 0.0) -> list[float]:
    """Send `count` messages as early as the pacer allows; their send times."""
    now, times = start, []
    while len(times) < count:
        wait = pacer.delay(now)
        if wait:
            now += wait
            continue
        pacer.record(now)
        times.append(now)
    return times


def test_pacer_at_45_per_second_never_lets_46_into_any_second():
    times = drain(SlidingWindowPacer(45), 400)
    assert sends_in_any_window(times, 1.0) == 45


def test_pacer_spreads_a_second_over_its_eighths_instead_of_one_burst():
    times = drain(SlidingWindowPacer(45), 100)
    assert sends_in_any_window(times, 0.125) == 6  # ceil(45 / 8)
    assert times[:7] == [0.0] * 6 + [0.125]


def test_pacer_sustains_the_configured_rate():
    times = drain(SlidingWindowPacer(45), 451)
    assert times[-1] == pytest.approx(10.0, abs=0.2)  # 450 more at 45/s after the first


def test_pacer_capacity_counts_what_may_leave_now():
    pacer = SlidingWindowPacer(40)
    assert pacer.capacity(0.0) == 5
    for _ in range(3):
        pacer.record(0.0)
    assert pacer.capacity(0.0) == 2
    assert pacer.capacity(0.125) == 5
    assert pacer.delay(0.0) == 0.0


def test_pacer_refuses_a_rate_above_ibs_limit():
    with pytest.raises(ValueError, match="<= 50"):
        SlidingWindowPacer(51)


class FakeClient:
    """Stands in for the client library's socket writer (not one of our modules)."""

    def __init__(self) -> None:
        self.MaxRequests = 45
        self.sent: list[str] = []

    def sendMsg(self, msg):
        self.sent.append(msg)


class ManualTimers:
    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[tuple[float, object]] = []

    def call_later(self, delay, callback):
        self.pending.append((self.now + delay, callback))

    def advance_to_next(self) -> None:
        self.pending.sort(key=lambda p: p[0])
        at, callback = self.pending.pop(0)
        self.now = at
        callback()


def test_paced_sender_queues_beyond_the_window_and_counts_by_kind():
    client, timers = FakeClient(), ManualTimers()
    sender = PacedSender(
        client, SlidingWindowPacer(45), now=lambda: timers.now, call_later=timers.call_later,
        unanswered_limit=None,  # the window alone here; the stall guard has its own tests
    )
    assert client.MaxRequests == 0  # the library's own throttle is off
    for i in range(8):
        client.sendMsg(f"3\0{i}\0")  # placeOrder
    client.sendMsg("1\0x\0")  # reqMktData
    assert len(client.sent) == 6 and sender.queued == 3
    assert sender.capacity() == 0
    timers.advance_to_next()
    assert len(client.sent) == 9 and sender.queued == 0
    assert sender.message_counts == {"placeOrder": 8, "reqMktData": 1}
    assert sender.pacing_waits == 1
    assert [m.split("\0")[1] for m in client.sent] == [*map(str, range(8)), "x"]  # in order


def _guarded(client: FakeClient, timers: ManualTimers) -> PacedSender:
    return PacedSender(
        client, SlidingWindowPacer(45), now=lambda: timers.now, call_later=timers.call_later
    )


def test_paced_sender_when_gateway_is_silent_then_holds_after_four_unanswered_messages():
    client, timers = FakeClient(), ManualTimers()
    sender = _guarded(client, timers)
    for i in range(6):
        client.sendMsg(f"3\0{i}\0")
    assert len(client.sent) == 4 and sender.queued == 2
    assert sender.capacity() == 0
    assert sender.stall_waits == 1


def test_paced_sender_when_gateway_answers_then_what_was_held_leaves():
    client, timers = FakeClient(), ManualTimers()
    sender = _guarded(client, timers)
    for i in range(6):
        client.sendMsg(f"3\0{i}\0")
    timers.now = 0.01
    sender.received(b"\x00\x00\x00\x05hello")
    timers.advance_to_next()  # the flush the answer scheduled
    assert len(client.sent) == 6 and sender.queued == 0


def test_paced_sender_when_held_then_callers_are_told_to_ask_again_soon():
    client, timers = FakeClient(), ManualTimers()
    sender = _guarded(client, timers)
    for i in range(4):
        client.sendMsg(f"3\0{i}\0")
    timers.now = 0.2  # the pacer's window allows more; the guard does not
    assert sender.capacity() == 0
    assert 0 < sender.delay() <= 0.005
    sender.received(b"answer")
    assert sender.capacity() > 0 and sender.delay() == 0.0


def test_paced_sender_when_gateway_stays_silent_then_the_hold_ends_after_stall_hold():
    client, timers = FakeClient(), ManualTimers()
    sender = _guarded(client, timers)
    for i in range(6):
        client.sendMsg(f"3\0{i}\0")
    timers.advance_to_next()
    assert timers.now == pytest.approx(0.25)
    assert sender.queued == 0
    assert len(client.sent) == 6  # requests that get no answer still go, slowly


class AnsweringClient(FakeClient):
    """A gateway that answers every message as soon as it is written."""

    sender: PacedSender | None = None

    def sendMsg(self, msg):
        super().sendMsg(msg)
        if self.sender is not None:
            self.sender.received(b"answer")


def test_paced_sender_when_every_message_is_answered_then_only_the_window_paces():
    client, timers = AnsweringClient(), ManualTimers()
    sender = client.sender = _guarded(client, timers)
    for i in range(100):
        client.sendMsg(f"1\0{i}\0")
    while sender.queued:
        timers.advance_to_next()
    assert sender.stall_waits == 0
    assert len(client.sent) == 100


def test_message_kind_names_known_ids_and_keeps_unknown_ones():
    assert message_kind("61\0001\0") == "reqPositions"
    assert message_kind("123\0") == "msg123"
