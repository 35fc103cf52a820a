"""Checking a pacer against an emulator's rate limit by what it decided, not by the clock.

A paced client keeps a vendor's limit by the times it lets requests go; the
requests then reach the emulator a little later each, by as much as the
machine's load delays them. A test that counts the emulator's 429s measures
that load as much as the pacer. These helpers record when the pacer let each
request go and replay those times through the emulator's own rule::

    pacer = RecordingPacer((RateBudget("users.list", 600, burst=2),))
    session.http.pacer = pacer
    ...  # list users
    assert refused_by_rate_limit((600, 2), pacer.slots["users.list"]) == []
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from ..models import RateBudget
from ..transport.ratelimit import RequestPacer
from .emulator import _SlidingWindow

__all__ = ["RecordingPacer", "refused_by_rate_limit"]


class RecordingPacer(RequestPacer):
    """A :class:`RequestPacer` that keeps the time it let each request go.

    :attr:`slots` holds, per endpoint with a budget of its own and in order,
    the clock reading each reservation was made at plus the wait the pacer
    decided for it: when it meant the request to leave.
    """

    def __init__(
        self,
        budgets: Iterable[RateBudget] = (),
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reading = threading.local()
        self._slots_lock = threading.Lock()
        self.slots: dict[str, list[float]] = {}

        def recording_clock() -> float:
            value = clock()
            readings: list[float] = getattr(self._reading, "values", [])
            readings.append(value)
            return value

        super().__init__(budgets, sleep=sleep, clock=recording_clock)

    def wait_for_turn(self, endpoint: str) -> float:
        # The first reading this thread makes is the bucket's, under its lock.
        self._reading.values = []
        delay = super().wait_for_turn(endpoint)
        readings = self._reading.values
        if readings and endpoint in self._buckets:
            with self._slots_lock:
                self.slots.setdefault(endpoint, []).append(readings[0] + delay)
        return delay


def refused_by_rate_limit(limit: tuple[float, int], times: Iterable[float]) -> list[float]:
    """Return the *times* an emulator enforcing *limit* would answer with a 429.

    :param limit: ``(requests per minute, burst)``, as in ``Emulator.rate_limits``.
    :param times: when requests arrive, in seconds on one clock (any order).
    """
    window = _SlidingWindow(*limit)
    return [moment for moment in sorted(times) if window.admit(now=moment) is not None]
