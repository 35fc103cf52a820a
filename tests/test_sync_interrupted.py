"""A sync killed with SIGKILL mid-run leaves a consistent store, and a rerun converges."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.models import SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration

TESTS = Path(__file__).parent
USERS = 1500


def people_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM people").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def final_state(db: Path) -> list[tuple]:
    """Everything a run decides, without the timestamps that differ between runs."""
    with SQLiteStore(db) as store:
        people = sorted(
            (
                p.sync_value,
                tuple(
                    sorted((k, repr(v)) for k, v in p.fields.items() if k != "connector_sync_time")
                ),
                p.vanished_from,
            )
            for p in store.iter_people()
        )
        keys = store._db.execute(
            "SELECT k.field, k.value, p.sync_value FROM person_keys k "
            "JOIN people p ON p.id = k.person_id ORDER BY 1, 2"
        ).fetchall()
        sources = store._db.execute(
            "SELECT s.integration, s.vendor_user_id, p.sync_value, s.vanished "
            "FROM person_sources s JOIN people p ON p.id = s.person_id ORDER BY 2"
        ).fetchall()
    return [people, keys, sources]


@pytest.mark.slow
@pytest.mark.serial  # kills real processes at moments a busy machine moves
def test_kill_9_mid_run_then_rerun_converges_to_a_clean_run(tmp_path):
    killed_db = tmp_path / "killed.db"
    clean_db = tmp_path / "clean.db"
    with (
        register_plugin(AcmePlugin(per_page=20), name="acme-test"),
        AcmeEmulator(users=USERS, page_delay=0.01) as emulator,
    ):
        integration = write_integration(tmp_path)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "0",
        }
        child = subprocess.Popen(
            [
                sys.executable,
                str(TESTS / "sync_support.py"),
                str(killed_db),
                emulator.base_url,
                str(integration),
                "40",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while people_count(killed_db) < 200:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child sync never committed a batch"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL

        # Only whole batches were committed, together with the session's counts.
        with SQLiteStore(killed_db) as store:
            killed_session = store.list_sessions()[0]
            assert killed_session.status == SyncStatus.RUNNING
            assert 0 < store.count_people() < USERS
            assert store.count_people() == killed_session.counts.created
            assert store.count_people() % 40 == 0

        settings = load_integration(integration)
        with SQLiteStore(killed_db) as store:
            rerun = run_sync(
                settings, credential=credential(emulator.base_url), store=store, batch_size=40
            )
            assert rerun.status == SyncStatus.SUCCEEDED
            assert rerun.counts.created == USERS - killed_session.counts.created
            assert rerun.counts.unchanged == killed_session.counts.created
            assert store.get_session(killed_session.id).status == SyncStatus.INTERRUPTED
        with SQLiteStore(clean_db) as store:
            clean = run_sync(
                settings, credential=credential(emulator.base_url), store=store, batch_size=40
            )
            assert clean.counts.created == USERS

    assert final_state(killed_db) == final_state(clean_db)
