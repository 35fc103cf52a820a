"""SIGTERM (systemctl stop, docker stop) stops a sync like Ctrl-C: session interrupted, exit 143.

A real child process running the CLI, a real signal, a real SQLite store and the
acme emulator over loopback HTTP. And ``browse``, whose Datasette child stops first.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sync_support import TOKEN, AcmeEmulator, write_integration

from oomnitza_connect.models import SyncStatus
from oomnitza_connect.store.sqlite import SQLiteStore

TESTS = Path(__file__).parent


def running_sessions(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(
                "SELECT count(*) FROM sync_sessions WHERE status = 'running'"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the store is still being created


@pytest.mark.slow
@pytest.mark.serial  # signals a real process while it syncs
@pytest.mark.parametrize("command", [["sync"], ["schedule", "run"]])
def test_sigterm_marks_the_session_interrupted_and_exits_143(tmp_path, command):
    db = tmp_path / "store.db"
    # Slow pages: the sync is still listing users when the signal comes.
    with AcmeEmulator(users=4000, page_delay=0.05) as emulator:
        path = write_integration(tmp_path, base_url=emulator.base_url)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "0",
            "OOMNITZA_CONNECT_HOME": str(tmp_path / "home"),
            "OOMNITZA_CONNECT_CREDENTIAL_ACME": json.dumps(
                {"vendor": "acme", "kind": "api_key", "token": TOKEN}
            ),
        }
        env.pop("OOMNITZA_CONNECT_DB", None)
        env.pop("OOMNITZA_CONNECT_SMTP_HOST", None)
        child = subprocess.Popen(
            [sys.executable, str(TESTS / "cli_child.py"), *command, str(path), "--db", str(db)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while running_sessions(db) == 0:
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the child never started its sync"
                time.sleep(0.05)
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 143, (out, err)
    assert err.decode().strip().splitlines()[-1] == "Terminated."
    with SQLiteStore(db) as store:
        (session,) = store.list_sessions(integration="acme-main")
        assert session.status == SyncStatus.INTERRUPTED
        assert "SIGTERM" in (session.message or "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
@pytest.mark.serial  # signals real processes
@pytest.mark.parametrize(
    ("signum", "whole_group", "code", "said"),
    [
        (signal.SIGTERM, False, 143, "Terminated."),  # systemctl stop, docker stop, kill
        (signal.SIGINT, True, 130, "Interrupted."),  # Ctrl-C at a terminal: both get it
        (signal.SIGINT, False, 130, "Interrupted."),  # kill -INT of the command alone
    ],
    ids=["sigterm", "ctrl-c", "sigint"],
)
def test_a_stopped_browse_stops_datasette_cleanly_first(tmp_path, signum, whole_group, code, said):
    pytest.importorskip("datasette")
    db = tmp_path / "store.db"
    SQLiteStore(db).close()
    port = _free_port()
    browse = Path(sys.executable).with_name("oomnitza-connect")
    # Its own process group, Datasette in it too: once the command has ended, an empty
    # group means Datasette ended with it.
    process = subprocess.Popen(
        [str(browse), "browse", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OOMNITZA_CONNECT_HOME": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "Datasette did not start"
                time.sleep(0.2)
        if whole_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        out, _ = process.communicate(timeout=60)
        assert _group_is_gone(process.pid), out
    finally:
        if not _group_is_gone(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    assert process.returncode == code, out
    assert out.strip().splitlines()[-1] == said
    # Datasette's server shut down as it does on its own signal, not killed.
    assert "Finished server process" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_a_signal_while_the_browse_child_starts_still_stops_it(monkeypatch):
    # SIGTERM between the fork and Popen's return: the child is stopped all the same.
    from oomnitza_connect.cli import browse_commands

    started: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def popen_then_signal(*args, **kwargs):
        child = popen(*args, **kwargs)
        started.append(child)
        os.kill(os.getpid(), signal.SIGTERM)
        return child

    monkeypatch.setattr(browse_commands.subprocess, "Popen", popen_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    begun = time.monotonic()
    status, stopped_by = browse_commands._serve(sleeper)
    assert stopped_by == signal.SIGTERM
    assert status == -signal.SIGTERM
    assert started[0].poll() is not None
    assert time.monotonic() - begun < 30
    assert signal.getsignal(signal.SIGTERM) is before
