"""Real Celery workers sharing a real PostgreSQL ledger (``worker --ledger postgresql://``).

The integrations write people into a SQLite destination; every session is in
PostgreSQL. A worker killed mid-run is marked ``interrupted`` by the run that
takes over, even when the dead session claims another machine: the run lock,
not a pid, says no other run of the integration is alive.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from oomnitza_connect_slack.emulator import SlackEmulator
from test_distributed_celery import PAGE_SIZE, USERS, USERS_LIST_LIMIT, Fleet, integration_toml

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.distributed.locking import lock_holder
from oomnitza_connect.models import SyncStatus
from oomnitza_connect.store.base import IntegrationEntry
from oomnitza_connect.store.postgres import PostgresLedger
from oomnitza_connect.testing.emulator import Fault

pytestmark = pytest.mark.slow

INTEGRATIONS = ("pg-a", "pg-b")


class PostgresFleet(Fleet):
    def __init__(self, root: Path, redis_url: str, emulator: SlackEmulator, url: str) -> None:
        super().__init__(root, redis_url, emulator)
        self.ledger = url  # type: ignore[assignment]

    def sessions(self, name: str) -> list[Any]:
        with PostgresLedger(str(self.ledger)) as ledger:
            return sorted(
                ledger.list_sessions(integration=name, limit=None), key=lambda s: s.started_at
            )


@pytest.fixture(scope="module")
def pg_fleet(redis_server, postgres_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("pgfleet")
    client = redis.Redis.from_url(redis_server.url_for(10))
    client.flushdb()
    url = postgres_server.create_database("celery_fleet")
    emulator = SlackEmulator(users=USERS, seed=4, rate_limits={"users.list": USERS_LIST_LIMIT})
    emulator.start()
    fleet = PostgresFleet(root, redis_server.url_for(10), emulator, url)
    CredentialStore(root / "home", keyring_backend=False, environ={}).save(
        emulator.test_credential("slack-fleet")
    )
    with PostgresLedger(url) as ledger:
        for name in INTEGRATIONS:
            path = root / f"{name}.toml"
            path.write_text(
                integration_toml(name)
                + f'\n[destination]\ntype = "sqlite"\npath = "{root / "people.db"}"\n'
            )
            ledger.save_integration(
                IntegrationEntry(
                    name=name,
                    vendor="slack",
                    active=True,
                    schedule="manual",
                    source=str(path),
                    launched_at=datetime.now(UTC),
                )
            )
    fleet.start(count=1, concurrency=2)
    yield fleet
    fleet.stop()
    emulator.stop()
    client.close()


def test_workers_record_every_run_in_the_postgresql_ledger(pg_fleet):
    results = [pg_fleet.run(name) for name in INTEGRATIONS]
    summaries = [result.get(timeout=120) for result in results]
    assert [s["status"] for s in summaries] == ["succeeded"] * len(INTEGRATIONS)
    with sqlite3.connect(pg_fleet.root / "people.db") as db:
        (people,) = db.execute("SELECT count(*) FROM people").fetchone()
        (local_sessions,) = db.execute("SELECT count(*) FROM sync_sessions").fetchone()
    assert people > 0
    assert local_sessions == 0  # the runs are recorded in PostgreSQL only
    for name, summary in zip(INTEGRATIONS, summaries, strict=True):
        (session,) = pg_fleet.sessions(name)
        assert session.id == summary["session"]
        # Both integrations bring the same account's users into one destination.
        counts = session.counts
        assert counts.created + counts.updated + counts.unchanged == people
    assert pg_fleet.emulator.rate_limited_count == 0


def test_a_dead_run_of_another_machine_is_marked_interrupted_under_the_run_lock(pg_fleet):
    name = "pg-b"
    pg_fleet.emulator.faults.add(Fault.slow(1.0), endpoint="users.list", times=USERS // PAGE_SIZE)
    pg_fleet.run(name)
    client = redis.Redis.from_url(pg_fleet.redis_url)
    holder = pg_fleet.wait_for(lambda: lock_holder(client, name), "the run to start")
    running = pg_fleet.wait_for(
        lambda: [s for s in pg_fleet.sessions(name) if s.status == SyncStatus.RUNNING],
        "its session",
    )
    # As if the run were on another machine: its pid cannot be checked from here.
    with PostgresLedger(str(pg_fleet.ledger)) as ledger:
        ledger._db.execute(
            "UPDATE sync_sessions SET host = 'worker-elsewhere', pid = 1 WHERE id = %s",
            (running[0].id,),
        )
    os.kill(holder["pid"], signal.SIGKILL)
    pg_fleet.wait_for(
        lambda: [s for s in pg_fleet.sessions(name) if s.status == SyncStatus.INTERRUPTED],
        "the dead run to be marked interrupted",
    )
    pg_fleet.wait_for(
        lambda: (
            pg_fleet.sessions(name)[-1].status == SyncStatus.SUCCEEDED
            and not [s for s in pg_fleet.sessions(name) if s.status == SyncStatus.RUNNING]
        ),
        "the resumed run",
    )
