"""What Celery workers share through a real Redis: rate budgets, run locks, tokens."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from http_support import DirectoryEmulator

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.distributed.credentials import RedisCredentialStore
from oomnitza_connect.distributed.locking import RunLock, lock_holder
from oomnitza_connect.distributed.pacing import SharedRequestPacer, shared_pacer_factory
from oomnitza_connect.models import AuthKind, Credential, RateBudget, VendorInfo
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions, HttpClient
from oomnitza_connect.transport.ratelimit import use_pacer_factory
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://api.directory.invalid",
    auth_kinds=(AuthKind.OAUTH2_AUTHORIZATION_CODE,),
)


@pytest.fixture
def client(redis_server):
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushdb()
    yield connection
    connection.close()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Timed:
    """Calls, each with the Redis server's time (the buckets' clock) just before and after.

    A reservation's wait is what is left of its slot when Redis runs the
    script; how long the test took between two calls (longer on a loaded
    machine) comes off it. The times around each call bound that exactly.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.calls: list[tuple[float, float, float]] = []

    def now(self) -> float:
        seconds, microseconds = self.client.time()
        return seconds + microseconds / 1e6

    def __call__(self, reserve) -> float:
        before = self.now()
        wait = reserve()
        self.calls.append((before, wait, self.now()))
        return wait

    def owed(self, since: int, index: int, slot: float) -> tuple[float, float]:
        """Bounds of the wait of call *index* whose slot is *slot* s after call *since* ran.

        The script counts whole milliseconds (its clock truncated, its wait
        rounded up): a millisecond either way, and one more for safety.
        """
        first_before, _, first_after = self.calls[since]
        before, _, after = self.calls[index]
        low = max(0.0, slot - (after - first_before)) - 0.003
        high = max(0.0, slot - (before - first_after)) + 0.003
        return low, high


# -- rate budgets ------------------------------------------------------------


def test_two_workers_draw_from_one_budget(client):
    # 600 a minute less the 10 % margin is 9 a second: a burst of 2 (3 less
    # the margin), then 1 every 111 ms.
    budget = RateBudget("users.list", 600, burst=3)
    first = SharedRequestPacer(client, "directory:acme", [budget], sleep=Sleeps())
    second = SharedRequestPacer(client, "directory:acme", [budget], sleep=Sleeps())
    timed = Timed(client)
    waits = [
        timed(lambda pacer=pacer: pacer.wait_for_turn("users.list"))
        for pacer in (first, second, first, second, first)
    ]
    assert waits[:2] == [0.0, 0.0]
    # Each later reservation queues behind all the others, whichever worker made
    # it: its slot is 1/9 s after the one before, counted from the first call.
    for position, wait in enumerate(waits[2:], start=1):
        low, high = timed.owed(0, position + 1, position / 9.0)
        assert low <= wait <= high, (position, wait, low, high)
    assert waits[-1] > 0.2  # unless the machine stalled for a quarter of a second
    other_account = SharedRequestPacer(client, "directory:other", [budget], sleep=Sleeps())
    assert other_account.wait_for_turn("users.list") == 0.0


def test_retry_after_seen_by_one_worker_pauses_the_others(client):
    budget = RateBudget("*", 6000, burst=100)
    seen_it = SharedRequestPacer(client, "directory:acme", [budget], sleep=Sleeps())
    other = SharedRequestPacer(client, "directory:acme", [budget], sleep=Sleeps())
    assert other.wait_for_turn("users.list") == 0.0
    timed = Timed(client)
    timed(lambda: seen_it.pause(3.0) or 0.0)
    wait = timed(lambda: other.wait_for_turn("users.list"))
    low, high = timed.owed(0, 1, 3.0)
    assert low <= wait <= high
    assert wait > 2.5
    unrelated = SharedRequestPacer(client, "directory:other", [budget], sleep=Sleeps())
    assert unrelated.wait_for_turn("users.list") == 0.0


def test_a_429_paces_every_client_of_the_account(client):
    budgets = (RateBudget("*", 6000, burst=100),)
    options = ClientOptions(budget_account="directory:acme")
    use_pacer_factory(shared_pacer_factory(client))
    try:
        with DirectoryEmulator(users=5, page_size=5) as emulator:
            emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="open")
            other_sleeps = Sleeps()
            other = HttpClient(
                "directory",
                emulator.base_url,
                options=options,
                rate_budgets=budgets,
                sleep=other_sleeps,
            )
            hit_sleeps = Sleeps()

            def hit_sleep(seconds: float) -> None:
                hit_sleeps.append(seconds)
                if len(hit_sleeps) == 1:
                    other.get_json("/open")  # another worker, during the pause
                time.sleep(seconds)

            hit = HttpClient(
                "directory",
                emulator.base_url,
                options=options,
                rate_budgets=budgets,
                sleep=hit_sleep,
            )
            hit.get_json("/open")
    finally:
        use_pacer_factory(None)
    assert hit_sleeps[0] == 1.0  # the retry waited as asked, and not twice
    assert sum(hit_sleeps[1:]) < 0.2
    assert other_sleeps
    assert other_sleeps[0] == pytest.approx(1.0, abs=0.2)
    # The 429, its retry, and the other worker's one request after the pause.
    assert len(emulator.requests) == 3


def test_budget_overrides_replace_the_declared_budget(client):
    make = shared_pacer_factory(client, {"directory": [RateBudget("users.list", 60, burst=1)]})
    pacer = make(
        "directory",
        "directory:acme",
        (RateBudget("users.list", 6000, burst=50),),
        sleep=Sleeps(),
        max_wait=60,
    )
    timed = Timed(client)
    assert timed(lambda: pacer.wait_for_turn("users.list")) == 0.0
    # 60 a minute less the margin: the second request's slot is 1/0.9 s after the first.
    wait = timed(lambda: pacer.wait_for_turn("users.list"))
    low, high = timed.owed(0, 1, 1 / 0.9)
    assert low <= wait <= high
    assert wait > 1.0


# -- run locks ------------------------------------------------------------------


def test_one_run_per_integration_and_the_lease_is_renewed(client):
    holder = RunLock(client, "acme-slack", lease=0.6, task_id="task-1")
    assert holder.acquire()
    rival = RunLock(client, "acme-slack", lease=0.6)
    time.sleep(1.5)  # well past the lease: the renewal keeps it
    assert not rival.acquire()
    assert lock_holder(client, "acme-slack")["task_id"] == "task-1"
    assert rival.request_follow_up()
    assert not rival.request_follow_up()  # many skipped runs, one follow-up
    holder.release()
    assert holder.take_follow_up()
    assert not holder.take_follow_up()
    assert rival.acquire()
    rival.release()
    assert lock_holder(client, "acme-slack") is None


def test_the_lock_of_a_killed_worker_expires_with_its_lease(client, redis_server):
    script = textwrap.dedent(
        f"""
        import sys, time, redis
        from oomnitza_connect.distributed.locking import RunLock
        lock = RunLock(redis.Redis.from_url({redis_server.url!r}), "acme-slack", lease=1.0)
        assert lock.acquire()
        print("held", flush=True)
        time.sleep(60)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "held"
        rival = RunLock(client, "acme-slack", lease=1.0)
        assert not rival.acquire()
        worker.kill()  # kill -9: no release, no more renewals
        worker.wait()
        deadline = time.monotonic() + 5
        while not rival.acquire():
            assert time.monotonic() < deadline, "the dead worker's lock never expired"
            time.sleep(0.1)
        rival.release()
    finally:
        worker.kill()
        worker.wait()


# -- credentials ------------------------------------------------------------------


def test_a_rotation_by_one_worker_is_used_by_the_other(client, tmp_path: Path):
    with DirectoryEmulator(users=5, page_size=5) as emulator:
        emulator.register_client("app", client_secret="app-secret-1")
        credential = Credential(
            name="dir",
            vendor="directory",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id="app",
            client_secret="app-secret-1",
            token_url=emulator.base_url + "/oauth/token",
            base_url=emulator.base_url,
            refresh_token=emulator.grant_refresh_token("app"),
        )
        # Two machines: each its own credential file holding the same grant.
        stores = []
        for machine in ("one", "two"):
            local = CredentialStore(tmp_path / machine, keyring_backend=False, environ={})
            local.save(credential)
            stores.append(RedisCredentialStore(client, local))
        first = open_session(
            INFO, stores[0].get("dir"), {}, ClientOptions(), credential_store=stores[0]
        )
        second = open_session(
            INFO, stores[1].get("dir"), {}, ClientOptions(), credential_store=stores[1]
        )
        with first, second:
            first.http.get_json("/echo")  # renews, spending the refresh token
            emulator.expire_all_tokens()
            # The second worker still holds the spent refresh token in memory;
            # its renewal finds the rotation in Redis instead of sending it.
            second.http.get_json("/echo")
            first.http.get_json("/echo")
        refused = [event for event in emulator.refresh_events if not event.accepted]
        assert refused == []
        assert stores[0].get("dir").refresh_token == stores[1].get("dir").refresh_token
        # The machine that renewed last also kept the tokens in its own file.
        local_copy = [store.local.get("dir").refresh_token for store in stores]
        assert stores[0].get("dir").refresh_token in local_copy


def _two_machines(
    client, tmp_path: Path, emulator: DirectoryEmulator
) -> list[RedisCredentialStore]:
    emulator.register_client("app", client_secret="app-secret-1")
    credential = Credential(
        name="dir",
        vendor="directory",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id="app",
        client_secret="app-secret-1",
        token_url=emulator.base_url + "/oauth/token",
        base_url=emulator.base_url,
        refresh_token=emulator.grant_refresh_token("app"),
    )
    stores = []
    for machine in ("one", "two"):
        local = CredentialStore(tmp_path / machine, keyring_backend=False, environ={})
        local.save(credential)
        stores.append(RedisCredentialStore(client, local))
    return stores


def test_a_rotation_interrupted_on_one_machine_is_known_on_the_others(client, tmp_path: Path):
    import requests

    from oomnitza_connect.errors import AuthenticationError

    with DirectoryEmulator(users=5, page_size=5) as emulator:
        stores = _two_machines(client, tmp_path, emulator)
        spent = stores[0].get("dir").refresh_token
        assert spent is not None
        # What a worker killed mid-rotation leaves behind: the intent recorded,
        # the vendor's rotation done, the answer never saved.
        stores[0].begin_rotation("dir", spent.reveal())
        answer = requests.post(
            emulator.base_url + "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": spent.reveal()},
            auth=("app", "app-secret-1"),
            timeout=10,
        )
        assert answer.status_code == 200
        # The other machine's own file has no intent; Redis has.
        assert stores[1].local.interrupted_rotation("dir", spent.reveal()) is None
        assert stores[1].interrupted_rotation("dir", spent.reveal()) is not None
        session = open_session(
            INFO, stores[1].get("dir"), {}, ClientOptions(), credential_store=stores[1]
        )
        with session, pytest.raises(AuthenticationError) as raised:
            session.http.get_json("/echo")
        message = str(raised.value)
        assert "must be signed in again" in message
        assert "was interrupted" in message
        assert socket_name() in message
        assert spent.reveal() not in message


def test_a_finished_rotation_clears_the_shared_intent(client, tmp_path: Path):
    with DirectoryEmulator(users=5, page_size=5) as emulator:
        stores = _two_machines(client, tmp_path, emulator)
        old = stores[0].get("dir").refresh_token
        assert old is not None
        session = open_session(
            INFO, stores[0].get("dir"), {}, ClientOptions(), credential_store=stores[0]
        )
        with session:
            session.http.get_json("/echo")  # a rotation, begun and ended
        assert client.get("oomnitza-connect:credential:dir:rotation") is None
        new = stores[1].get("dir").refresh_token
        assert new is not None
        assert new != old
        # An intent left for an older token says nothing about the current one.
        stores[0].begin_rotation("dir", old.reveal())
        assert stores[1].interrupted_rotation("dir", new.reveal()) is None
        assert stores[1].interrupted_rotation("dir", old.reveal()) is not None
        stores[1].remove("dir")
        assert client.get("oomnitza-connect:credential:dir:rotation") is None


def socket_name() -> str:
    import socket

    return socket.gethostname()
