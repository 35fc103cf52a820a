"""What a worker and beat need to know, read from the environment.

Celery forks its worker processes and beat runs apart from them; the
environment is what all of them share. ``oomnitza-connect worker`` and
``oomnitza-connect beat`` set these from their options.

``OOMNITZA_CONNECT_REDIS_URL``
    The Redis server: the broker, the run locks, the shared rate budgets and
    tokens, and beat's schedule (default ``redis://127.0.0.1:6379/0``).
``OOMNITZA_CONNECT_LEDGER``
    Where sessions, record errors and integrations are kept: a
    ``postgresql://`` URL when workers run on several machines, or a SQLite
    file (default: the same file ``sync`` uses).
``OOMNITZA_CONNECT_RATE_BUDGETS``
    Budgets that replace a plugin's declared ones, for a plan with a higher
    limit: ``vendor:endpoint=PER_MINUTE[/BURST]``, separated by commas
    (``slack:users.list=100/5,slack:*=600``).
``OOMNITZA_CONNECT_RUN_LEASE``
    Seconds a dead worker keeps an integration locked, at most (default 60).
``OOMNITZA_CONNECT_MISSED_AFTER``
    Minutes after which a scheduled run that did not start is reported as
    missed (default 30).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import attrs

from ..errors import ConfigurationError
from ..models import RateBudget

__all__ = [
    "LEDGER_ENV",
    "MISSED_AFTER_ENV",
    "RATE_BUDGETS_ENV",
    "REDIS_URL_ENV",
    "RUN_LEASE_ENV",
    "WorkerConfig",
    "parse_rate_budgets",
]

REDIS_URL_ENV = "OOMNITZA_CONNECT_REDIS_URL"
LEDGER_ENV = "OOMNITZA_CONNECT_LEDGER"
RATE_BUDGETS_ENV = "OOMNITZA_CONNECT_RATE_BUDGETS"
RUN_LEASE_ENV = "OOMNITZA_CONNECT_RUN_LEASE"
MISSED_AFTER_ENV = "OOMNITZA_CONNECT_MISSED_AFTER"

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_BUDGET = re.compile(
    r"^(?P<vendor>[A-Za-z0-9_.-]+):(?P<endpoint>[^=\s]+)="
    r"(?P<rate>\d+(?:\.\d+)?)(?:/(?P<burst>\d+))?$"
)
_BUDGET_FORMAT = "vendor:endpoint=PER_MINUTE[/BURST], separated by commas"


def parse_rate_budgets(
    text: str, *, key_path: str = RATE_BUDGETS_ENV
) -> dict[str, list[RateBudget]]:
    """Parse ``slack:users.list=100/5,slack:*=600`` into vendor -> budgets."""
    budgets: dict[str, list[RateBudget]] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        match = _BUDGET.match(part)
        if match is None or float(match["rate"]) <= 0:
            raise ConfigurationError(
                f"bad rate budget {part!r}", key_path=key_path, allowed=_BUDGET_FORMAT
            )
        budgets.setdefault(match["vendor"], []).append(
            RateBudget(match["endpoint"], float(match["rate"]), burst=int(match["burst"] or 1))
        )
    return budgets


def _shown_ledger(ledger: str | None) -> str | None:
    from ..store.postgres import is_postgres_url, redact_url

    return redact_url(ledger) if ledger and is_postgres_url(ledger) else ledger


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigurationError(f"bad value {raw!r}", key_path=name, allowed="a positive number")
    return value


@attrs.frozen
class WorkerConfig:
    """The settings every worker process and beat share."""

    redis_url: str = DEFAULT_REDIS_URL
    ledger: str | None = attrs.field(default=None, repr=lambda url: repr(_shown_ledger(url)))
    """A ``postgresql://`` URL or a SQLite path; ``None`` is the default SQLite file."""
    rate_budgets: Mapping[str, tuple[RateBudget, ...]] = attrs.field(factory=dict)
    run_lease: float = 60.0
    missed_after_minutes: float = 30.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        env = os.environ if environ is None else environ
        budgets = parse_rate_budgets(env.get(RATE_BUDGETS_ENV, ""))
        return cls(
            redis_url=env.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL,
            ledger=env.get(LEDGER_ENV) or None,
            rate_budgets={vendor: tuple(found) for vendor, found in budgets.items()},
            run_lease=_number(env, RUN_LEASE_ENV, 60.0),
            missed_after_minutes=_number(env, MISSED_AFTER_ENV, 30.0),
        )
