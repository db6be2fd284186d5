import asyncio

from reconciler.util.polling import poll_until, poll_until_async


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_poll_until_returns_the_first_truthy_value():
    answers = iter([None, 0, "lease"])
    clock = FakeTime()
    value = poll_until(lambda: next(answers), timeout=5, interval=0.5,
                       monotonic=clock.monotonic, sleep=clock.sleep)
    assert value == "lease"
    assert clock.sleeps == [0.5, 0.5]


def test_poll_until_when_the_deadline_passes_then_returns_the_last_falsy_value():
    clock = FakeTime()
    calls = []
    value = poll_until(lambda: calls.append(1) or None, timeout=1.0, interval=0.3,
                       monotonic=clock.monotonic, sleep=clock.sleep)
    assert value is None
    assert len(calls) == 5  # at 0, 0.3, 0.6, 0.9 and 1.0 (the last sleep is cut to the deadline)
    assert clock.now == 1.0


def test_poll_until_async_stops_as_soon_as_the_probe_answers():
    seen = []

    async def probe():
        seen.append(1)
        return len(seen) >= 3

    assert asyncio.run(poll_until_async(probe, timeout=5, interval=0)) is True
    assert len(seen) == 3
