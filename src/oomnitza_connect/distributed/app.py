"""The Celery app: a Redis broker, UTC, late acknowledgement, redbeat for beat.

Start it with ``oomnitza-connect worker`` and ``oomnitza-connect beat`` (or
``celery -A oomnitza_connect.distributed.app worker|beat`` with the same
environment, see :mod:`oomnitza_connect.distributed.config`).

Every worker process, once forked, draws its requests from the rate budgets in
Redis and reads and renews credentials' tokens through Redis
(:func:`install_shared_state`), so a fleet keeps the budgets one process would
and never spends a refresh token twice.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init

from .config import WorkerConfig

__all__ = ["app", "install_shared_state", "redis_client", "worker_config"]

log = logging.getLogger(__name__)

REFRESH_SCHEDULE_SECONDS = 60.0
"""How often beat has the periodic entries brought in line with the launched integrations."""


@cache
def worker_config() -> WorkerConfig:
    """The configuration of this process (read once from the environment)."""
    return WorkerConfig.from_environment()


@cache
def redis_client() -> Any:
    """This process's Redis client (redis-py pools its connections; one per process)."""
    import redis

    return redis.Redis.from_url(worker_config().redis_url, health_check_interval=30)


def install_shared_state() -> None:
    """Make this process pace requests and keep tokens through Redis (idempotent)."""
    from ..auth.credentials import use_default_credential_store
    from ..transport.ratelimit import use_pacer_factory
    from .credentials import RedisCredentialStore
    from .pacing import shared_pacer_factory

    config = worker_config()
    use_pacer_factory(shared_pacer_factory(redis_client(), config.rate_budgets))
    use_default_credential_store(RedisCredentialStore(redis_client()))


def _create_app() -> Celery:
    config = worker_config()
    celery_app = Celery("oomnitza_connect", include=["oomnitza_connect.distributed.tasks"])
    celery_app.conf.update(
        broker_url=config.redis_url,
        # Results are small summaries; a caller that waits for one reads it here.
        result_backend=config.redis_url,
        result_expires=7 * 24 * 3600,
        timezone="UTC",
        enable_utc=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A sync is acknowledged when it ends, so one whose worker died is
        # delivered again (the run lock keeps a redelivery from overlapping).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One long sync must not hold prefetched runs hostage.
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": 6 * 3600},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_scheduler="redbeat.RedBeatScheduler",
        redbeat_redis_url=config.redis_url,
        redbeat_redis_options={"health_check_interval": 30},
        redbeat_key_prefix="oomnitza-connect:beat:",
        # One beat at a time: a second one waits for this lock.
        redbeat_lock_timeout=int(5 * REFRESH_SCHEDULE_SECONDS),
        beat_max_loop_interval=5,
        beat_schedule={
            "oomnitza-connect:refresh-schedule": {
                "task": "oomnitza_connect.refresh_schedule",
                "schedule": REFRESH_SCHEDULE_SECONDS,
                "options": {"expires": REFRESH_SCHEDULE_SECONDS},
            }
        },
    )
    return celery_app


app = _create_app()


@worker_process_init.connect
def _share_state_in_worker(**_: Any) -> None:
    # Redis connections must not cross a fork: the cached client is made anew.
    redis_client.cache_clear()
    install_shared_state()


@worker_init.connect
def _share_state_in_solo_worker(**_: Any) -> None:
    # The solo and threads pools run tasks in the worker's own process.
    install_shared_state()


@beat_init.connect
def _refresh_at_beat_start(sender: Any = None, **_: Any) -> None:
    # The launched integrations become entries before the first tick, not a minute later.
    from .schedule import refresh_schedule

    try:
        refresh_schedule(app)
    except Exception:  # beat must start even when the ledger is briefly unreachable
        log.exception("could not refresh the schedule at beat start; retrying every minute")
