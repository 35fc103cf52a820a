"""Issue 14, defects 2, 3 and 6: the credential store shared by separate processes.

Every test runs real child processes (``credential_worker.py``) against a real OAuth2
emulator whose refresh tokens are single-use and rotate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import DirectoryEmulator

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.emulator import Fault

WORKER = str(Path(__file__).with_name("credential_worker.py"))


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator(users=1) as running:
        running.register_client("app", client_secret="app-secret-1")
        yield running


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "home", keyring_backend=False, environ={})


def add_credential(store: CredentialStore, emulator: DirectoryEmulator, name: str) -> None:
    store.save(
        Credential(
            name=name,
            vendor="directory",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id="app",
            client_secret="app-secret-1",
            refresh_token=emulator.grant_refresh_token("app"),
        )
    )


def start_worker(
    store: CredentialStore, emulator: DirectoryEmulator, name: str, rounds: int, sync: Path | None
) -> subprocess.Popen[str]:
    args = [sys.executable, WORKER, str(store.home), emulator.base_url + "/oauth/token", name]
    args.append(str(rounds))
    if sync is not None:
        args.append(str(sync))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(worker: subprocess.Popen[str]) -> str:
    output, _ = worker.communicate(timeout=120)
    return output.strip()


def refresh_token_is_valid(emulator: DirectoryEmulator, store: CredentialStore, name: str) -> bool:
    token = store.get(name).refresh_token
    return token is not None and emulator.lookup_token(token.reveal(), kind="refresh") is not None


def wait_until(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_two_processes_saving_two_credentials_lose_no_write(
    emulator: DirectoryEmulator, store: CredentialStore, tmp_path: Path
) -> None:
    add_credential(store, emulator, "first")
    add_credential(store, emulator, "second")
    rounds = 150
    sync = tmp_path / "sync"
    sync.mkdir()
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, str(store.home), "-", name, str(rounds), str(sync)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("first", "second")
    ]
    wait_until(lambda: len(list(sync.glob("ready-*"))) == 2)
    (sync / "go").write_text("")
    assert [finish(w) for w in workers] == ["ok", "ok"]
    for name in ("first", "second"):
        token = store.get(name).access_token
        assert token is not None
        assert token.reveal() == f"{name}-{rounds - 1}"


def test_two_processes_rotating_two_credentials_lose_neither(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    add_credential(store, emulator, "first")
    add_credential(store, emulator, "second")
    workers = [start_worker(store, emulator, name, 10, None) for name in ("first", "second")]
    assert [finish(w) for w in workers] == ["ok", "ok"]
    assert len([e for e in emulator.refresh_events if e.accepted]) == 20
    # Each process's last rotation survived the other's writes.
    assert refresh_token_is_valid(emulator, store, "first")
    assert refresh_token_is_valid(emulator, store, "second")


def test_the_process_that_loses_the_race_uses_the_winners_tokens(
    emulator: DirectoryEmulator, store: CredentialStore, tmp_path: Path
) -> None:
    add_credential(store, emulator, "shared")
    # The winner holds its token request open, so the other one surely waits behind it.
    emulator.faults.add(Fault.answer_late(0.5), endpoint="oauth.token")
    sync = tmp_path / "sync"
    sync.mkdir()
    workers = [start_worker(store, emulator, "shared", 1, sync) for _ in range(2)]
    wait_until(lambda: len(list(sync.glob("ready-*"))) == 2)
    (sync / "go").write_text("")
    assert [finish(w) for w in workers] == ["ok", "ok"]
    # One refresh token was spent, once; nobody presented a spent one.
    assert [e.accepted for e in emulator.refresh_events] == [True]
    assert refresh_token_is_valid(emulator, store, "shared")


def kill_during_rotation(emulator: DirectoryEmulator, store: CredentialStore) -> None:
    """Start a rotation and kill -9 the process after the vendor rotated, before it saved."""
    emulator.faults.add(Fault.answer_late(60), endpoint="oauth.token")
    worker = start_worker(store, emulator, "shared", 1, None)
    wait_until(lambda: any(e.accepted for e in emulator.refresh_events))
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    emulator.faults.clear()


def test_a_kill_during_rotation_recovers_where_the_vendor_accepts_the_old_token_again(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    emulator.refresh_token_reuse_grace = 60.0
    add_credential(store, emulator, "shared")
    kill_during_rotation(emulator, store)
    assert finish(start_worker(store, emulator, "shared", 1, None)) == "ok"
    assert refresh_token_is_valid(emulator, store, "shared")
    assert store.interrupted_rotation("shared", store.get("shared").refresh_token.reveal()) is None  # type: ignore[union-attr]


def test_a_kill_during_rotation_where_the_vendor_cannot_recover_says_sign_in_again(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    add_credential(store, emulator, "shared")
    before = store.get("shared").refresh_token
    kill_during_rotation(emulator, store)
    assert store.get("shared").refresh_token == before
    output = finish(start_worker(store, emulator, "shared", 1, None))
    assert output.startswith("error: ")
    assert "must be signed in again" in output
    assert "interrupted" in output
    assert "oomnitza-connect auth login shared" in output
