"""``oomnitza-connect emulator intercom`` serves on its own; ``demo`` syncs Intercom too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from click.testing import CliRunner
from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.cli import main
from oomnitza_connect.plugins import LOAD_ENTRY_POINTS_ENV
from oomnitza_connect.store.sqlite import SQLiteStore

CLI = str(Path(sys.executable).with_name("oomnitza-connect"))


def _installed_env() -> dict[str, str]:
    return {**os.environ, LOAD_ENTRY_POINTS_ENV: "1", "COLUMNS": "160"}


def test_the_emulator_command_serves_until_interrupted(tmp_path) -> None:
    command = [
        sys.executable, "-c", "from oomnitza_connect.cli import main; main()",
        "emulator", "intercom", "--users", "25", "--port", "0", "--seed", "5",
        "--token", "dG9rOmNsaS10ZXN0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_installed_env()
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        printed = dict(line.strip().split(": ", 1) for line in lines[1:5] if ": " in line)
        base_url = printed["base URL"]
        assert printed["token"] == "dG9rOmNsaS10ZXN0"
        assert base_url.startswith("http://127.0.0.1:")
        answer = requests.get(
            f"{base_url}/admins",
            headers={"Authorization": f"Bearer {printed['token']}", "Intercom-Version": "2.11"},
            timeout=5,
        )
        assert answer.status_code == 200
        assert len(answer.json()["admins"]) == 25
        limit, remaining = (
            int(answer.headers[f"X-RateLimit-{name}"]) for name in ("Limit", "Remaining")
        )
        assert remaining < limit
        variable, _, value = lines[6].strip().removeprefix("export ").partition("=")
        store = CredentialStore(tmp_path, keyring_backend=False, environ={variable: value[1:-1]})
        credential = store.get("intercom-emulator")
        assert credential.token.reveal() == "dG9rOmNsaS10ZXN0"
        assert credential.base_url == base_url
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors


def test_the_demo_syncs_the_intercom_emulator(tmp_path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [CLI, "demo", "--vendor", "intercom", "--users", "30", "--db", str(db)],
        capture_output=True,
        text=True,
        env=_installed_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Intercom emulator at http://127.0.0.1:" in result.stdout
    # The person's Intercom ID feeds the preset's {{intercom_admin_id}}.
    assert "Preset Get Admin Details for " in result.stdout
    assert "HTTP 200" in result.stdout
    with SQLiteStore(db) as store:
        sessions = [s for s in store.list_sessions() if s.vendor == "intercom"]
        people = store.count_people(vendor="intercom")
    assert len(sessions) == 2
    assert {s.status.value for s in sessions} == {"succeeded"}
    assert people == 30
    assert sorted(s.counts.created for s in sessions) == [0, 30]


def test_auth_test_prints_the_workspace_name_and_region(
    intercom_plugin_registered, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    with IntercomEmulator(users=3, seed=8, region="EU", enforce_rate_limits=False) as emulator:
        CredentialStore(tmp_path / "home", keyring_backend=False, environ={}).save(
            emulator.test_credential(name="intercom")
        )
        result = CliRunner().invoke(
            main, ["auth", "test", "intercom", "--setting", "Intercom.Region=EU"]
        )
        as_json = CliRunner().invoke(
            main, ["auth", "test", "intercom", "--setting", "Intercom.Region=EU", "--json"]
        )
        wrong = CliRunner().invoke(
            main,
            ["auth", "test", "intercom", "--setting", "Intercom.Region=US",
             "--base-url", emulator.region_url("US")],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    identity = json.loads(as_json.output)["identity"]
    assert identity["workspace"] == "Emulated Workspace 8"
    assert identity["region"] == "EU"
    assert "Credential 'intercom' works with Intercom." in result.output
    # Without --json: plain key/value lines, no JSON.
    assert "  workspace     Emulated Workspace 8" in result.output
    assert "{" not in result.output
    assert wrong.exit_code != 0
    assert "Intercom.Region" in wrong.output
    assert emulator.token not in wrong.output
