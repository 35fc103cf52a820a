"""``oomnitza-connect emulator slack`` runs on its own and prints a credential that works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests
from click.testing import CliRunner

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.cli import main


def test_the_emulator_command_serves_until_interrupted(tmp_path) -> None:
    env = {**os.environ, "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "1"}
    command = [
        sys.executable, "-c", "from oomnitza_connect.cli import main; main()",
        "emulator", "slack", "--users", "25", "--port", "0", "--seed", "5",
        "--token", "xoxp-cli-test-token",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        printed = dict(line.strip().split(": ", 1) for line in lines[1:5] if ": " in line)
        base_url = printed["base URL"]
        assert printed["token"] == "xoxp-cli-test-token"
        assert base_url.startswith("http://127.0.0.1:")
        answer = requests.get(
            f"{base_url}/users.list",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {printed['token']}"},
            timeout=5,
        ).json()
        assert answer["ok"] is True
        assert len(answer["members"]) == 25
        # The printed export line defines a stored credential that works as is.
        variable, _, value = lines[6].strip().removeprefix("export ").partition("=")
        store = CredentialStore(tmp_path, keyring_backend=False, environ={variable: value[1:-1]})
        credential = store.get("slack-emulator")
        assert credential.token.reveal() == "xoxp-cli-test-token"
        assert credential.base_url == base_url
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors
    assert "stopped" in errors


def test_an_unknown_vendor_is_a_usage_error(slack_plugin_registered) -> None:
    result = CliRunner().invoke(main, ["emulator", "nosuchvendor"])
    assert result.exit_code == 2
    assert "no connector named 'nosuchvendor'" in result.output
    assert "slack" in result.output  # the installed ones are listed
