"""The README's demo syncs the Talkdesk emulator too and runs one of its presets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oomnitza_connect.plugins import LOAD_ENTRY_POINTS_ENV
from oomnitza_connect.store.sqlite import SQLiteStore

CLI = str(Path(sys.executable).with_name("oomnitza-connect"))


def test_the_demo_syncs_talkdesk_and_runs_a_preset(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if k != LOAD_ENTRY_POINTS_ENV}
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [CLI, "demo", "--users", "60", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Talkdesk emulator at http://127.0.0.1:" in out
    assert "Preset Get User Details for " in out
    assert "TalkDesk User Id = " in out
    with SQLiteStore(db) as store:
        sessions = [s for s in store.list_sessions() if s.vendor == "talkdesk"]
        people = store.count_people(vendor="talkdesk")
        runs = [s for s in sessions if s.status.value == "succeeded"]
    assert len(sessions) == len(runs) == 2
    assert people == 60  # inactive users are people too
    assert {s.counts.created for s in sessions} == {0, 60}
