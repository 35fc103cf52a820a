"""The README demo syncs the Webex emulator (twice) and runs the User Role preset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oomnitza_connect.plugins import LOAD_ENTRY_POINTS_ENV
from oomnitza_connect.store.sqlite import SQLiteStore

CLI = str(Path(sys.executable).with_name("oomnitza-connect"))


def test_the_demo_syncs_webex_and_runs_user_role(tmp_path) -> None:
    db = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if k != LOAD_ENTRY_POINTS_ENV}
    env["COLUMNS"] = "160"
    result = subprocess.run(
        [CLI, "demo", "--vendor", "webex", "--users", "30", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Webex emulator at http://127.0.0.1:" in out
    assert "Preset User Role for " in out
    assert "HTTP 200" in out
    with SQLiteStore(db) as store:
        sessions = list(reversed(store.list_sessions()))
        people = store.count_people(vendor="webex")
        runs = [run for run in store.iter_workflow_runs() if run.preset == "User Role"]
        accounts = list(store.iter_saas_users(vendor="webex"))
    assert [s.vendor for s in sessions] == ["webex", "webex"]
    first, second = sessions
    assert first.status.value == second.status.value == "succeeded"
    assert first.counts.created == people > 0
    assert first.counts.skipped > 0  # the bots
    assert (second.counts.created, second.counts.updated) == (0, 0)
    assert len(runs) == 1
    assert runs[0].ok
    assert any("status" in account.fields for account in accounts)
