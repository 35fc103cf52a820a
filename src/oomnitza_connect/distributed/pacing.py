"""Rate budgets shared by every worker: one token bucket per vendor account, in Redis.

A process keeps a vendor's budget with :class:`~oomnitza_connect.ratelimit.RequestPacer`;
twenty processes each keeping it would send twenty times the budget. Here every
request to one vendor account (``vendor:credential``) reserves its slot from one
bucket in Redis, atomically (a Lua script, so two workers never take the same
token), and the Redis server's clock is the only clock, so workers on machines
whose clocks differ still agree.

A ``Retry-After`` seen by one worker pauses the whole account: the script
keeps a "paused until" time next to the buckets, and every reservation waits
for it.

The arithmetic is the local bucket's (:mod:`oomnitza_connect.transport.ratelimit`):
the declared rate less the same safety margin and a negative balance as the
queue of reservations. The burst keeps the margin too (one request fewer from
a burst of two or more): requests from many processes leave in a burst but
reach the vendor with their own delays, and a vendor counting a burst in a
short window would otherwise see the next slot's request inside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..models import RateBudget
from ..transport.ratelimit import FALLBACK_ENDPOINT, RequestPacer, budget_rate

__all__ = [
    "KEY_PREFIX",
    "RedisTokenBucket",
    "SharedRequestPacer",
    "shared_pacer_factory",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "oomnitza-connect:rate"

# KEYS[1]: the bucket (a hash of tokens and the time they were counted);
# KEYS[2]: the account's pause (milliseconds since the epoch, Redis time).
# ARGV: tokens per millisecond, capacity. Returns the wait in milliseconds.
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
if now > updated then
  tokens = math.min(capacity, tokens + (now - updated) * rate)
  updated = now
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated))
-- An idle bucket is full again after capacity / rate; keep it a while longer.
local full_after = math.ceil((capacity - tokens) / rate)
redis.call('PEXPIRE', KEYS[1], full_after + 60000)
local wait = 0
if tokens < 0 then
  wait = math.ceil(-tokens / rate)
end
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now + wait then
  wait = paused - now
end
return wait
"""

# KEYS[1]: the account's pause; ARGV[1]: the pause in milliseconds. Never shortens one.
_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], tostring(until_ms), 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""


def _burst_with_margin(burst: int) -> int:
    return max(1, min(burst - 1, int(burst * 0.9))) if burst > 1 else 1


class RedisTokenBucket:
    """One endpoint's bucket of one vendor account, kept in Redis.

    :param client: a ``redis.Redis`` client.
    :param key: the bucket's key.
    :param pause_key: the account's pause key.
    :param rate_per_second: tokens added per second.
    :param capacity: the burst.
    """

    def __init__(
        self,
        client: Any,
        key: str,
        pause_key: str,
        rate_per_second: float,
        capacity: int,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("a rate budget needs a positive rate")
        self.key = key
        self.pause_key = pause_key
        self.rate = rate_per_second
        self.capacity = max(capacity, 1)
        self._reserve = client.register_script(_RESERVE)

    def reserve(self) -> float:
        """Take one token and return how many seconds to wait before using it."""
        wait_ms = self._reserve(
            keys=[self.key, self.pause_key], args=[repr(self.rate / 1000.0), self.capacity]
        )
        return int(wait_ms) / 1000.0


class SharedRequestPacer(RequestPacer):
    """A :class:`RequestPacer` whose buckets and pauses live in Redis.

    :param client: a ``redis.Redis`` client.
    :param account: the vendor account the budgets belong to (``slack:acme``).
    :param budgets: the budgets to keep.
    """

    def __init__(
        self,
        client: Any,
        account: str,
        budgets: Iterable[RateBudget] = (),
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 60.0,
    ) -> None:
        budgets = tuple(budgets)
        super().__init__((), sleep=sleep, max_wait=max_wait)
        self.account = account
        self.client = client
        self.pause_key = f"{KEY_PREFIX}:{account}:paused"
        self._pause = client.register_script(_PAUSE)
        self._shared: dict[str, RedisTokenBucket] = {
            budget.endpoint: RedisTokenBucket(
                client,
                f"{KEY_PREFIX}:{account}:{budget.endpoint}",
                self.pause_key,
                budget_rate(budget),
                _burst_with_margin(budget.burst),
            )
            for budget in budgets
        }

    def bucket_for(self, endpoint: str) -> Any:
        return self._shared.get(endpoint) or self._shared.get(FALLBACK_ENDPOINT)

    def wait_for_turn(self, endpoint: str) -> float:
        bucket = self.bucket_for(endpoint)
        delay = bucket.reserve() if bucket is not None else self._paused_for()
        delay = max(delay, self._quota_delay())
        if delay > 0:
            self._sleep(delay)
        return delay

    def _paused_for(self) -> float:
        # An endpoint without a budget still honours the account's pause.
        raw = self.client.pttl(self.pause_key)
        if raw is None or int(raw) <= 1000:
            return 0.0
        return (int(raw) - 1000) / 1000.0

    def pause(self, seconds: float) -> None:
        """Hold every worker's requests to this account for *seconds* (a Retry-After)."""
        if seconds <= 0:
            return
        self._pause(keys=[self.pause_key], args=[int(seconds * 1000)])
        log.info("%s: every worker pauses %.1f s (the vendor asked to wait)", self.account, seconds)


def shared_pacer_factory(
    client: Any,
    overrides: Mapping[str, Iterable[RateBudget]] | None = None,
) -> Callable[..., RequestPacer]:
    """Return a pacer factory for :func:`oomnitza_connect.ratelimit.use_pacer_factory`.

    :param client: a ``redis.Redis`` client shared by the process.
    :param overrides: vendor -> budgets that replace the plugin's declared ones
        for the endpoints they name (a plan with a higher limit, an emulator).
    """
    replaced = {vendor: tuple(budgets) for vendor, budgets in (overrides or {}).items()}

    def make(
        vendor: str,
        account: str | None,
        budgets: tuple[RateBudget, ...],
        *,
        sleep: Callable[[float], None],
        max_wait: float,
    ) -> RequestPacer:
        if not budgets:
            # Pacing is off for this client (the token endpoint, pace_requests=False).
            return RequestPacer((), sleep=sleep, max_wait=max_wait)
        chosen = {budget.endpoint: budget for budget in budgets}
        chosen.update({budget.endpoint: budget for budget in replaced.get(vendor, ())})
        return SharedRequestPacer(
            client, account or vendor, chosen.values(), sleep=sleep, max_wait=max_wait
        )

    return make
