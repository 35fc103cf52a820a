"""Issue 14, acceptance finding: under a declared budget no sliding window of a minute ever
holds more requests than the budget less the documented 10 % margin, first minute included."""

from __future__ import annotations

import pytest

from oomnitza_connect.models import RateBudget
from oomnitza_connect.transport.ratelimit import RequestPacer, window_limit


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("per_minute", "burst"), [(20, 5), (20, 20), (50, 10), (2.5, 2), (300, 1), (1000, 100)]
)
def test_no_minute_holds_more_than_the_budget_less_the_margin(
    per_minute: float, burst: int
) -> None:
    budget = RateBudget("users.list", per_minute, burst=burst)
    fake = FakeTime()
    pacer = RequestPacer([budget], sleep=fake.sleep, clock=fake.clock)
    sent: list[float] = []
    for _ in range(int(per_minute * 3) + burst + 5):
        pacer.wait_for_turn("users.list")
        sent.append(fake.now)
    allowed = window_limit(budget)
    assert allowed <= per_minute * 0.9
    for index, start in enumerate(sent):
        in_window = sum(1 for t in sent[index:] if t < start + 60.0)
        assert in_window <= allowed, (
            f"{in_window} requests in the minute from {start - 1000:.1f} s (allowed {allowed})"
        )


def test_the_burst_still_goes_out_at_once() -> None:
    fake = FakeTime()
    pacer = RequestPacer([RateBudget("x", 20, burst=5)], sleep=fake.sleep, clock=fake.clock)
    for _ in range(5):
        assert pacer.wait_for_turn("x") == 0.0


def test_twenty_calls_under_twenty_per_minute_take_more_than_a_minute() -> None:
    # The acceptance run: 20 users.list calls landed in 56.7 s against 20 per minute.
    fake = FakeTime()
    pacer = RequestPacer(
        [RateBudget("users.list", 20, burst=3)], sleep=fake.sleep, clock=fake.clock
    )
    start = fake.now
    for _ in range(20):
        pacer.wait_for_turn("users.list")
    assert fake.now - start >= 60.0
