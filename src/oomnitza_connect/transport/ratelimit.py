"""Proactive pacing: keep to a vendor's published rate so it never has to say 429.

A plugin declares :class:`~oomnitza_connect.models.RateBudget`\\ s; the HTTP
client asks :class:`RequestPacer` for permission before each request. Each
endpoint has a token bucket (``"*"`` is the fallback for endpoints without a
budget of their own); a request that finds the bucket empty reserves the next
slot and sleeps until it comes, so concurrent callers (presets run bulk calls
on threads) queue up fairly instead of racing.

Vendors that report their remaining quota (Intercom's ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset``) slow the pacer down further when the quota is
nearly used up: the remaining calls are spread over the time left until the
reset.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from ..errors import ConfigurationError
from ..models import RateBudget

__all__ = [
    "FALLBACK_ENDPOINT",
    "RATE_BUDGET_FORMAT",
    "PacerFactory",
    "RequestPacer",
    "TokenBucket",
    "budget_rate",
    "make_pacer",
    "merge_budgets",
    "parse_rate_budget",
    "use_pacer_factory",
    "window_limit",
]

FALLBACK_ENDPOINT = "*"

RATE_BUDGET_FORMAT = "ENDPOINT=PER_MINUTE[/BURST], e.g. users.list=100/5 or *=600"
_BUDGET_TEXT = re.compile(
    r"^\s*(?P<endpoint>[^=\s]+)\s*=\s*(?P<rate>\d+(?:\.\d+)?)\s*(?:/\s*(?P<burst>\d+))?\s*$"
)


def parse_rate_budget(
    text: str, *, key_path: str | None = None, file: str | None = None
) -> RateBudget:
    """Read ``users.list=100/5`` (100 requests a minute, bursts of 5) as a :class:`RateBudget`.

    It is how a user states the budget their vendor plan grants, in an
    integration file (``rate_budgets``) or on the command line (``--rate-budget``).

    :raises ConfigurationError: the text is not ``ENDPOINT=PER_MINUTE[/BURST]``
        with a positive rate and burst.
    """
    match = _BUDGET_TEXT.match(text)
    if match is None or float(match["rate"]) <= 0 or (match["burst"] and int(match["burst"]) < 1):
        raise ConfigurationError(
            f"bad rate budget {text!r}", file=file, key_path=key_path, allowed=RATE_BUDGET_FORMAT
        )
    return RateBudget(match["endpoint"], float(match["rate"]), burst=int(match["burst"] or 1))


def merge_budgets(
    declared: Iterable[RateBudget], overrides: Iterable[RateBudget]
) -> tuple[RateBudget, ...]:
    """The plugin's *declared* budgets with each endpoint *overrides* names replaced (or added).

    A later override of the same endpoint wins, so the command line can
    replace what an integration file says.
    """
    merged = {budget.endpoint: budget for budget in declared}
    for budget in overrides:
        merged[budget.endpoint] = budget
    return tuple(merged.values())


# Requests leave the client spaced by the declared interval, but arrive at the
# vendor with network jitter; keeping a little under the limit absorbs it.
_SAFETY_MARGIN = 0.10


def budget_rate(budget: RateBudget) -> float:
    """Return the requests per second a pacer keeps to for *budget* (its rate less the margin)."""
    return budget.requests_per_minute / 60.0 * (1 - _SAFETY_MARGIN)


def window_limit(budget: RateBudget) -> int:
    """The most requests any 60-second stretch may hold under *budget* (less the margin)."""
    return max(math.floor(budget.requests_per_minute * (1 - _SAFETY_MARGIN)), 1)


class TokenBucket:
    """A thread-safe token bucket that hands out reservations.

    :param rate_per_second: tokens added per second.
    :param capacity: the most tokens held at once (the burst).
    """

    def __init__(
        self,
        rate_per_second: float,
        capacity: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        window_limit: int | None = None,
        window: float = 60.0,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("a rate budget needs a positive rate")
        self.rate = rate_per_second
        self.capacity = max(capacity, 1)
        self._clock = clock
        self._tokens = float(self.capacity)
        self._updated = clock()
        self._lock = threading.Lock()
        self.window = window
        self.window_limit = max(window_limit, 1) if window_limit is not None else None
        # When each of the last window_limit reservations may be used, in order.
        self._slots: deque[float] = deque(maxlen=self.window_limit or 1)

    def reserve(self) -> float:
        """Take one token and return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            # A negative balance is a queue of reservations: the caller waits
            # until the refill covers its place in it.
            slot = now if self._tokens >= 0 else now - self._tokens / self.rate
            if self.window_limit is not None:
                # A full bucket plus a minute of refill would let burst + rate
                # requests into the first minute; the window keeps every stretch
                # of `window` seconds to `window_limit` requests, from the start.
                if self._slots:
                    slot = max(slot, self._slots[-1])
                if len(self._slots) >= self.window_limit:
                    slot = max(slot, self._slots[0] + self.window)
                self._slots.append(slot)
            return slot - now


class RequestPacer:
    """Spaces requests per endpoint according to rate budgets.

    :param budgets: the budgets to keep; an empty tuple paces nothing.
    :param sleep: how to wait (tests inject a recorder).
    :param clock: a monotonic clock.
    :param wall_clock: the epoch clock used for ``X-RateLimit-Reset``.
    :param max_wait: the longest single pause taken for a reported quota.
    """

    def __init__(
        self,
        budgets: Iterable[RateBudget] = (),
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_wait: float = 60.0,
    ) -> None:
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self.max_wait = max_wait
        self._buckets: dict[str, TokenBucket] = {}
        for budget in budgets:
            self._buckets[budget.endpoint] = TokenBucket(
                budget_rate(budget),
                budget.burst,
                clock=clock,
                window_limit=window_limit(budget),
            )
        self._quota_lock = threading.Lock()
        self._quota_next_slot = 0.0
        self._quota_interval = 0.0
        self._quota_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hear that the vendor asked to wait *seconds* (a Retry-After).

        The client retrying the request waits anyway; a pacer shared by
        several processes (:mod:`oomnitza_connect.distributed.pacing`) also
        holds back the others' requests to the same account.
        """

    def bucket_for(self, endpoint: str) -> TokenBucket | None:
        return self._buckets.get(endpoint) or self._buckets.get(FALLBACK_ENDPOINT)

    def wait_for_turn(self, endpoint: str) -> float:
        """Block until a request to *endpoint* may go out; return the seconds waited."""
        delay = 0.0
        bucket = self.bucket_for(endpoint)
        if bucket is not None:
            delay = bucket.reserve()
        delay = max(delay, self._quota_delay())
        if delay > 0:
            self._sleep(delay)
        return delay

    def _quota_delay(self) -> float:
        with self._quota_lock:
            now = self._clock()
            if now >= self._quota_until or self._quota_interval <= 0:
                return 0.0
            slot = max(now, self._quota_next_slot)
            self._quota_next_slot = slot + self._quota_interval
            return min(slot - now, self.max_wait)

    def observe_quota(self, remaining: int, limit: int | None, reset_epoch: float | None) -> None:
        """Slow down when a vendor reports its quota nearly used up.

        With less than a tenth of the quota (and at most 10 calls) left, the
        remaining calls are spread evenly until *reset_epoch*; with none left,
        the next call waits for the reset.
        """
        threshold = 10 if limit is None else max(1, min(10, limit // 10))
        if remaining > threshold or reset_epoch is None:
            return
        seconds_left = min(max(reset_epoch - self._wall_clock(), 0.0), self.max_wait)
        if seconds_left <= 0:
            return
        with self._quota_lock:
            now = self._clock()
            self._quota_until = now + seconds_left
            if remaining <= 0:
                self._quota_interval = seconds_left
                self._quota_next_slot = max(self._quota_next_slot, now + seconds_left)
            else:
                self._quota_interval = seconds_left / (remaining + 1)
                self._quota_next_slot = max(self._quota_next_slot, now + self._quota_interval)


PacerFactory = Callable[..., RequestPacer]
"""``factory(vendor, account, budgets, *, sleep, max_wait)`` returns the pacer of one client."""

_pacer_factory: PacerFactory | None = None


def use_pacer_factory(factory: PacerFactory | None) -> None:
    """Make every HTTP client built from now on in this process get its pacer from *factory*.

    Celery workers install one whose budgets are shared through Redis;
    ``None`` goes back to a pacer of each client's own.
    """
    global _pacer_factory
    _pacer_factory = factory


def make_pacer(
    vendor: str,
    account: str | None,
    budgets: tuple[RateBudget, ...],
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_wait: float = 60.0,
) -> RequestPacer:
    """Return the pacer for a client of *vendor* drawing on *account*'s budgets.

    :param account: the vendor account (``vendor:credential``) whose budget
        the requests count against; clients of one account share it when a
        shared pacer factory is installed.
    """
    if _pacer_factory is not None:
        return _pacer_factory(vendor, account, budgets, sleep=sleep, max_wait=max_wait)
    return RequestPacer(budgets, sleep=sleep, max_wait=max_wait)
