"""``oomnitza-connect emulator webex`` runs on its own and prints a credential that works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests

from oomnitza_connect.auth.credentials import CredentialStore


def test_the_emulator_command_serves_until_interrupted(tmp_path) -> None:
    env = {**os.environ, "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "1"}
    command = [
        sys.executable, "-c", "from oomnitza_connect.cli import main; main()",
        "emulator", "webex", "--users", "25", "--port", "0", "--seed", "5",
        "--token", "emu-pat-cli-test-token",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        assert lines[0].strip() == "webex emulator serving 25 users"
        printed = dict(line.strip().split(": ", 1) for line in lines[1:5] if ": " in line)
        base_url = printed["base URL"]
        assert printed["token"] == "emu-pat-cli-test-token"
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        answer = requests.get(
            f"{base_url}/people",
            params={"max": 100},
            headers={"Authorization": f"Bearer {printed['token']}"},
            timeout=5,
        )
        assert answer.status_code == 200
        assert len(answer.json()["items"]) == 25
        variable, _, value = lines[6].strip().removeprefix("export ").partition("=")
        store = CredentialStore(tmp_path, keyring_backend=False, environ={variable: value[1:-1]})
        credential = store.get("webex-emulator")
        assert credential.token.reveal() == "emu-pat-cli-test-token"
        assert credential.base_url == base_url
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors
