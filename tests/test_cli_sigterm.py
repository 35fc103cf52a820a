"""SIGTERM (systemctl stop, docker stop) stops a sync like Ctrl-C: session interrupted, exit 143.

A real child process running the CLI, a real signal, a real SQLite store and the
acme emulator over loopback HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
