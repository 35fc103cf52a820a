"""A skipped run and the run it found going: exactly one of them runs the follow-up.

The task runs in this process against a real Redis and a SQLite ledger; the
sync itself is replaced by a recorder, and the run it found going is a lock
held here that ends at the moment that decides the race. The fleet benchmark
(benchmarks/bench_celery.py, 1,000 integrations queued twice each) found the
race: the holder ended between the skipped run's request and its second try
at the lock, took the request (queuing the follow-up), and the skipped run
went ahead as well, so the integration was synced three times.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from oomnitza_connect.distributed.locking import RunLock
from oomnitza_connect.models import IntegrationSettings, SyncSession, SyncStatus
from oomnitza_connect.store.sqlite import SQLiteStore

NAME = "tenant-race"


@pytest.fixture
def task(redis_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = redis_server.url_for(13)
    redis.Redis.from_url(url).flushdb()
    monkeypatch.setenv("OOMNITZA_CONNECT_REDIS_URL", url)
    monkeypatch.setenv("OOMNITZA_CONNECT_LEDGER", str(tmp_path / "ledger.db"))
    from oomnitza_connect import api
    from oomnitza_connect.distributed import app as app_module
    from oomnitza_connect.distributed import tasks

    app_module.worker_config.cache_clear()
    app_module.redis_client.cache_clear()
    settings = IntegrationSettings(name=NAME, vendor="slack", credential="slack-x")
    monkeypatch.setattr(tasks, "launched_integration", lambda ledger, name: settings)
    synced: list[str] = []

    def run_sync(settings: IntegrationSettings, **_: Any) -> SyncSession:
        synced.append(settings.name)
        return SyncSession(
            id=f"run-{len(synced)}",
            integration=settings.name,
            vendor=settings.vendor,
            started_at=datetime.now(UTC),
            status=SyncStatus.SUCCEEDED,
        )

    queued: list[tuple[Any, Any]] = []
    monkeypatch.setattr(api, "run_sync", run_sync)
    monkeypatch.setattr(
        tasks.run_integration,
        "apply_async",
        lambda args, kwargs=None, **options: queued.append((args, kwargs)),
    )
    tasks.synced, tasks.queued = synced, queued  # type: ignore[attr-defined]
    yield tasks
    app_module.worker_config.cache_clear()
    app_module.redis_client.cache_clear()


def _holder_ends_at_the_request(
    monkeypatch: pytest.MonkeyPatch, task: Any, *, holder_takes_it: bool
) -> RunLock:
    holder = RunLock(task.redis_client(), NAME, lease=10)
    assert holder.acquire()
    request = RunLock.request_follow_up

    def request_as_the_holder_ends(self: RunLock) -> bool:
        asked = request(self)
        holder.release()
        if holder_takes_it:
            assert holder.take_follow_up()  # the holder queues the follow-up run
        return asked

    monkeypatch.setattr(RunLock, "request_follow_up", request_as_the_holder_ends)
    return holder


def _statuses(tmp_ledger: str) -> list[str]:
    with SQLiteStore(tmp_ledger) as ledger:
        return sorted(s.status.value for s in ledger.list_sessions(integration=NAME, limit=None))


def test_a_skipped_run_whose_request_the_holder_took_does_not_sync_too(
    task: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    _holder_ends_at_the_request(monkeypatch, task, holder_takes_it=True)
    summary = task.run_integration.run(NAME)
    assert summary["status"] == "skipped"
    assert task.synced == []  # the holder's follow-up is the one more run
    assert not RunLock(task.redis_client(), NAME).follow_up_requested()
    assert RunLock(task.redis_client(), NAME).acquire()  # and the lock was let go
    assert _statuses(str(tmp_path / "ledger.db")) == ["skipped"]


def test_a_skipped_run_that_takes_its_own_request_runs_it(
    task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _holder_ends_at_the_request(monkeypatch, task, holder_takes_it=False)
    summary = task.run_integration.run(NAME)
    assert summary["status"] == "succeeded"
    assert task.synced == [NAME]
    # The request is taken, so the holder (ending now) queues nothing, and
    # this run, having found no new request, queues nothing either.
    assert not RunLock(task.redis_client(), NAME).take_follow_up()
    assert [kwargs for _, kwargs in task.queued] == [{"follow_up": True}]  # the catch-up check
