"""Real Celery workers (several processes) against a real Redis and the Slack emulator.

Few and fast on purpose: one fleet of two workers with two processes each is
started per test module, and every scenario uses it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from celery import Celery
from oomnitza_connect_slack.emulator import SlackEmulator

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.distributed.locking import lock_holder
from oomnitza_connect.models import SyncStatus
from oomnitza_connect.store.base import IntegrationEntry
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.testing.emulator import Fault

# A fleet of real Celery workers and beat: never beside another fleet or kill test.
pytestmark = [pytest.mark.slow, pytest.mark.serial]

USERS = 24
PAGE_SIZE = 6
# The emulator refuses more than this; the workers are told the same budget.
USERS_LIST_LIMIT = (240, 4)
INTEGRATIONS = ("tenant-a", "tenant-b", "tenant-c", "tenant-d")
RUN_LEASE = 3.0
CLI = str(Path(sys.executable).parent / "oomnitza-connect")


def integration_toml(name: str) -> str:
    return f"""\
name = "{name}"
vendor = "slack"
credential = "slack-fleet"
sync_key = "email"
default_role = "Employee"
schedule = "manual"

[settings]
"Slack.PageSize" = "{PAGE_SIZE}"
"Slack.LastLogins" = "off"
"""


class Fleet:
    def __init__(self, root: Path, redis_url: str, emulator: SlackEmulator) -> None:
        self.root = root
        self.redis_url = redis_url
        self.emulator = emulator
        self.ledger = root / "ledger.db"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "OOMNITZA_CONNECT_HOME": str(root / "home"),
            "OOMNITZA_CONNECT_KEYRING": "0",
            # pytest turns entry-point loading off for its own process only.
            "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "1",
            "OOMNITZA_CONNECT_RUN_LEASE": str(RUN_LEASE),
        }
        self.client = Celery("fleet-test", broker=redis_url, backend=redis_url)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def start(self, count: int = 2, concurrency: int = 2) -> None:
        rate, burst = USERS_LIST_LIMIT
        for index in range(count):
            log = open(self.root / f"worker-{index}.log", "wb")  # noqa: SIM115
            self.workers.append(
                subprocess.Popen(
                    [
                        CLI, "worker",
                        "--redis", self.redis_url,
                        "--ledger", str(self.ledger),
                        "--concurrency", str(concurrency),
                        "--rate-budget", f"slack:users.list={rate}/{burst}",
                        "--hostname", f"fleet{index}@%h",
                        "--loglevel", "INFO",
                        "--without-heartbeat", "--without-gossip", "--without-mingle",
                    ],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = self.client.control.ping(timeout=1.0) or []
            if len(replies) >= count:
                return
        raise AssertionError("the workers did not come up:\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.root.glob("*.log"))

    def stop(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.client.close()

    def run(self, name: str, **kwargs: object):
        return self.client.send_task("oomnitza_connect.run_integration", args=[name], kwargs=kwargs)

    def sessions(self, name: str):
        with SQLiteStore(self.ledger) as ledger:
            return sorted(
                ledger.list_sessions(integration=name, limit=None), key=lambda s: s.started_at
            )

    def wait_for(self, condition, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.logs()}")


@pytest.fixture(scope="module")
def fleet(redis_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    client = redis.Redis.from_url(redis_server.url_for(9))
    client.flushdb()
    emulator = SlackEmulator(users=USERS, seed=3, rate_limits={"users.list": USERS_LIST_LIMIT})
    emulator.start()
    fleet = Fleet(root, redis_server.url_for(9), emulator)
    CredentialStore(root / "home", keyring_backend=False, environ={}).save(
        emulator.test_credential("slack-fleet")
    )
    with SQLiteStore(fleet.ledger) as ledger:
        for name in INTEGRATIONS:
            path = root / f"{name}.toml"
            path.write_text(integration_toml(name))
            # What `integrations launch FILE --no-run` records.
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
    fleet.start()
    yield fleet
    fleet.stop()
    emulator.stop()
    client.close()


def test_a_fleet_runs_every_integration_within_one_shared_budget(fleet):
    before = len([r for r in fleet.emulator.requests if r.endpoint == "users.list"])
    results = [fleet.run(name) for name in INTEGRATIONS]
    summaries = [result.get(timeout=120) for result in results]
    assert [s["status"] for s in summaries] == ["succeeded"] * len(INTEGRATIONS)
    # Four processes on two workers kept the one budget of the account: the
    # emulator, enforcing the same limit, never had to say 429.
    assert fleet.emulator.rate_limited_count == 0
    calls = [r for r in fleet.emulator.requests if r.endpoint == "users.list"][before:]
    assert len(calls) >= len(INTEGRATIONS) * (USERS // PAGE_SIZE)
    with SQLiteStore(fleet.ledger) as ledger:
        people = list(ledger.iter_people())
    expected = {
        u["profile"]["email"].lower()
        for u in map(fleet.emulator.user, fleet.emulator.user_ids())
        if u and u["profile"].get("email") and not u["is_bot"] and not u.get("deleted")
    }
    assert {p.fields["email"].lower() for p in people} >= expected


def test_an_overlapping_run_is_recorded_as_skipped_and_caught_up(fleet):
    name = "tenant-b"
    done_before = [s for s in fleet.sessions(name) if s.status == SyncStatus.SUCCEEDED]
    # Each page takes a while, so the first run is still going when the second arrives.
    fleet.emulator.faults.add(Fault.slow(0.5), endpoint="users.list", times=USERS // PAGE_SIZE)
    first = fleet.run(name)
    fleet.wait_for(lambda: lock_holder(redis.Redis.from_url(fleet.redis_url), name), "the lock")
    second = fleet.run(name)
    assert second.get(timeout=60)["status"] == "skipped"
    assert first.get(timeout=60)["status"] == "succeeded"
    # The skipped run is not lost: one follow-up runs after the first ends.
    fleet.wait_for(
        lambda: (
            len([s for s in fleet.sessions(name) if s.status == SyncStatus.SUCCEEDED])
            == len(done_before) + 2
        ),
        "the follow-up run",
    )
    skipped = [s for s in fleet.sessions(name) if s.status == SyncStatus.SKIPPED]
    assert len(skipped) == 1
    assert "still going" in skipped[0].message
    assert not [s for s in fleet.sessions(name) if s.status == SyncStatus.RUNNING]


def test_a_killed_worker_leaves_its_session_interrupted_and_the_run_resumes(fleet):
    name = "tenant-c"
    fleet.emulator.faults.add(Fault.slow(1.0), endpoint="users.list", times=USERS // PAGE_SIZE)
    fleet.run(name)
    client = redis.Redis.from_url(fleet.redis_url)
    holder = fleet.wait_for(lambda: lock_holder(client, name), "the run to start")
    fleet.wait_for(
        lambda: [s for s in fleet.sessions(name) if s.status == SyncStatus.RUNNING], "its session"
    )
    os.kill(holder["pid"], signal.SIGKILL)  # the worker process dies mid-run
    # Celery delivers the task again; it waits out the dead run's lease, marks
    # its session interrupted and syncs.
    fleet.wait_for(
        lambda: [s for s in fleet.sessions(name) if s.status == SyncStatus.INTERRUPTED],
        "the dead run to be marked interrupted",
    )
    fleet.wait_for(
        lambda: (
            fleet.sessions(name)[-1].status == SyncStatus.SUCCEEDED
            and not [s for s in fleet.sessions(name) if s.status == SyncStatus.RUNNING]
        ),
        "the resumed run",
    )
    assert fleet.emulator.rate_limited_count == 0
