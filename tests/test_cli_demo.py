"""The README's main job: `oomnitza-connect demo`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from oomnitza_connect.cli import main
from oomnitza_connect.plugins import LOAD_ENTRY_POINTS_ENV
from oomnitza_connect.store.sqlite import SQLiteStore

CLI = str(Path(sys.executable).with_name("oomnitza-connect"))


def _sessions_by_age(db: Path, vendor: str | None = None):
    with SQLiteStore(db) as store:
        sessions = [s for s in reversed(store.list_sessions()) if vendor in (None, s.vendor)]
        people = store.count_people(vendor=vendor)
    return sessions, people


def test_demo_syncs_the_installed_slack_plugin_end_to_end(tmp_path):
    db = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if k != LOAD_ENTRY_POINTS_ENV}
    env["COLUMNS"] = "160"
    result = subprocess.run(
        [CLI, "demo", "--users", "40", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Slack emulator at http://127.0.0.1:" in out
    assert "Preset Get User Details for " in out
    assert "HTTP 200" in out
    # What Oomnitza received: the first record field by field, whole; roles by name too.
    assert "records; the first one, field by field:" in out
    assert '  EMAIL = "' in out
    assert "25 (Employee)" in out

    # Other installed plugins with emulators are synced too; Slack's two runs are checked here.
    sessions, people = _sessions_by_age(db, "slack")
    assert [s.vendor for s in sessions] == ["slack", "slack"]
    first, second = sessions
    assert first.status.value == second.status.value == "succeeded"
    assert first.counts.created == people > 0
    assert first.counts.skipped > 0  # bots are filtered out by the standard filters
    # Nothing changed at the vendor, so the second run writes nothing.
    assert (second.counts.created, second.counts.updated) == (0, 0)
    assert second.counts.unchanged == people


def test_demo_falls_back_to_the_generic_vendor_when_no_plugin_is_installed(tmp_path):
    # Under pytest entry points are not loaded, so no vendor plugin is installed here.
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--users", "12", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "No vendor plugin with an emulator is installed" in result.output
    sessions, people = _sessions_by_age(db)
    # The same vendor also went to the Oomnitza emulator, twice, into one portion each.
    output = " ".join(result.output.split())
    assert f"it holds {people} users and {people} SaaS users" in output
    assert "in 2 portions (each finalized: True)" in output
    first, second = sessions
    # Every generated user is accounted for: created, or filtered out/failed with a reason.
    assert first.counts.created + first.counts.skipped + first.counts.failed == 12
    assert people == first.counts.created > 0
    assert second.counts.created == 0
    assert second.counts.unchanged == people


def test_demo_recreates_the_store_each_time(tmp_path):
    db = tmp_path / "demo.db"
    for _ in range(2):
        result = CliRunner().invoke(main, ["demo", "--users", "5", "--db", str(db)])
        assert result.exit_code == 0, result.output
    sessions, people = _sessions_by_age(db)
    assert len(sessions) == 2  # the first invocation's sessions are gone
    assert people == sessions[0].counts.created


def test_the_commands_the_demo_suggests_name_the_program_where_it_is(tmp_path, monkeypatch):
    # `python3 dev.py demo` runs from .venv/, which a new user has not activated:
    # "oomnitza-connect people" would be "command not found".
    from oomnitza_connect.cli.demo_commands import _command_name

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    program = bin_dir / "oomnitza-connect"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.delenv("OOMNITZA_CONNECT_CALLER_PATH", raising=False)  # set by dev.py test
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert _command_name() == str(Path(".venv") / "bin" / "oomnitza-connect")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert _command_name() == "oomnitza-connect"
    # Run by dev.py: .venv/bin is on the demo's PATH, not on the caller's.
    monkeypatch.setenv("OOMNITZA_CONNECT_CALLER_PATH", str(tmp_path / "elsewhere"))
    assert _command_name() == str(Path(".venv") / "bin" / "oomnitza-connect")
