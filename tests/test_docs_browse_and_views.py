"""The store for people who would rather look than read: people_view, DataFrames, browse."""

from __future__ import annotations

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
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

import oomnitza_connect as oc

CUSTOM = '\n[[mapping]]\ntarget = "Acme Login"\nsource = "login"\nunique = true\n'


@pytest.fixture
def synced_store(tmp_path):
    with (
        oc.plugins.register_plugin(AcmePlugin(per_page=4), name="acme-test"),
        AcmeEmulator(users=6) as acme,
    ):
        settings = oc.load_integration(write_integration(tmp_path, CUSTOM, base_url=acme.base_url))
        db = tmp_path / "people.db"
        with oc.open_store(db) as store:
            session = oc.run_sync(settings, credential=credential(), store=store)
            assert session.counts.created == 6
        yield db


def test_people_view_has_one_column_per_field(synced_store):
    db = sqlite3.connect(synced_store)
    cursor = db.execute("SELECT * FROM people_view ORDER BY id")
    columns = [c[0] for c in cursor.description]
    rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert {"email", "username", "role", "Acme Login", "vendors", "vanished_from"} <= set(columns)
    assert "fields" not in columns
    assert rows[0]["email"] == "user1@example.com"
    assert rows[0]["Acme Login"] == "user1"
    assert rows[0]["vendors"] == "acme"
    assert rows[0]["vanished_from"] is None
    # Plain SQL works without json_extract.
    (count,) = db.execute("SELECT count(*) FROM people_view WHERE vendors = 'acme'").fetchone()
    assert count == 6


def test_to_dataframe_of_people_has_one_column_per_field(synced_store):
    with oc.open_store(synced_store) as store:
        frame = oc.to_dataframe(store.iter_people())
    assert len(frame) == 6
    assert {"email", "username", "Acme Login", "sync_value"} <= set(frame.columns)
    assert "fields" not in frame.columns
    assert frame.loc[0, "Acme Login"] == "user1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_browse_serves_people_on_loopback(synced_store):
    port = _free_port()
    browse = Path(sys.executable).with_name("oomnitza-connect")
    process = subprocess.Popen(
        [str(browse), "browse", "--db", str(synced_store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}/people/people_view.json?_shape=objects"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "Datasette did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        rows = answer.json()["rows"]
        assert sorted(row["email"] for row in rows) == [f"user{i}@example.com" for i in range(1, 7)]
        page = requests.get(f"http://127.0.0.1:{port}/people/people_view", timeout=5)
        assert page.status_code == 200
        assert "user1@example.com" in page.text
        assert "oomnitza-connect store" in requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
