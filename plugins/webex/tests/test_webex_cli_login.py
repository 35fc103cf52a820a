"""``auth login`` end to end against the standalone emulator, as a user runs it.

Three real processes: ``oomnitza-connect emulator webex``, then the commands it
prints (``credentials add`` and ``auth login``), then ``auth test``. The test
plays the browser: it fetches the authorize URL ``auth login`` prints, and the
emulator's redirect lands on the login's loopback listener.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

CLI = [sys.executable, "-c", "from oomnitza_connect.cli import main; main()"]


def _environment(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "1",
        "OOMNITZA_CONNECT_HOME": str(home),
        "OOMNITZA_CONNECT_KEYRING": "0",
        # 'auth login' prints the URL and then waits: unbuffered, or the URL stays in a buffer.
        "PYTHONUNBUFFERED": "1",
    }
    for name in list(env):
        if name.startswith("OOMNITZA_CONNECT_CREDENTIAL_"):
            del env[name]
    return env


@pytest.fixture
def standalone_emulator(tmp_path) -> Iterator[list[str]]:
    """The lines ``oomnitza-connect emulator webex`` prints, up to its login commands."""
    env = _environment(tmp_path)
    process = subprocess.Popen(
        [*CLI, "emulator", "webex", "--users", "12", "--port", "0", "--seed", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].strip().startswith("oomnitza-connect auth login"):
            line = process.stdout.readline()
            assert line, f"the emulator stopped early: {lines}"
            lines.append(line.rstrip("\n"))
        yield lines
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors


def _printed(lines: list[str]) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in lines if ": " in line and not line[0].isspace())


def test_the_emulator_prints_its_oauth_app(standalone_emulator) -> None:
    lines = standalone_emulator
    printed = _printed(lines)
    base_url = printed["base URL"]
    assert printed["authorize URL"] == f"{base_url}/authorize"
    assert printed["token URL"] == f"{base_url}/access_token"
    assert printed["client id"].startswith("C")
    assert len(printed["client secret"]) >= 32
    assert printed["client auth method"] == "client_secret_post"
    assert "spark-admin:people_read" in printed["scopes"].split()
    assert printed["redirect URI"].startswith("http://127.0.0.1:PORT/callback")
    # The token endpoint knows that client and secret (a wrong code, not a wrong client).
    refused = requests.post(
        printed["token URL"],
        data={
            "grant_type": "authorization_code",
            "code": "not-a-code",
            "client_id": printed["client id"],
            "client_secret": printed["client secret"],
            "redirect_uri": "http://127.0.0.1:1/callback",
        },
        timeout=5,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_auth_login_completes_against_the_standalone_emulator(
    standalone_emulator, tmp_path
) -> None:
    lines = standalone_emulator
    printed = _printed(lines)
    commands = [line.strip() for line in lines[lines.index("log in with:") + 1 :]]
    export, add, login = commands
    variable, _, secret = export.removeprefix("export ").partition("=")
    env = _environment(tmp_path)
    env[variable] = shlex.split(secret)[0]
    assert secret == printed["client secret"]  # the secret goes through the environment only

    added = subprocess.run(
        [*CLI, *shlex.split(add)[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    name = shlex.split(login)[-1]

    logging_in = subprocess.Popen(
        [*CLI, *shlex.split(login)[1:], "--port", "0", "--no-browser", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    browser: dict[str, Any] = {}
    try:
        assert logging_in.stdout is not None
        url = ""
        while not url:
            line = logging_in.stdout.readline()
            assert line, "auth login ended before printing the authorize URL"
            if line.strip().startswith(printed["authorize URL"]):
                url = line.strip()

        def follow() -> None:
            # What a browser does: the emulator approves and redirects to the loopback URI.
            browser["answer"] = requests.get(url, timeout=10)

        opener = threading.Thread(target=follow)
        opener.start()
        out, errors = logging_in.communicate(timeout=40)
        opener.join(10)
    finally:
        if logging_in.poll() is None:
            logging_in.kill()
    assert logging_in.returncode == 0, errors
    assert f"Tokens saved in credential '{name}'" in out
    assert browser["answer"].status_code == 200
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url

    shown = subprocess.run(
        [*CLI, "credentials", "show", name, "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert printed["client secret"] not in shown.stdout
    tested = subprocess.run(
        [*CLI, "auth", "test", name, "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stderr
    identity = json.loads(tested.stdout)["identity"]
    assert identity["email"].endswith("@webex-2.example.com")
    assert identity["type"] == "person"


def test_the_json_description_carries_the_oauth_app(tmp_path) -> None:
    process = subprocess.Popen(
        [*CLI, "emulator", "webex", "--users", "3", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(tmp_path),
    )
    try:
        assert process.stdout is not None
        data = json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    oauth = data["oauth"]
    credential = oauth["credential"]
    assert credential["kind"] == "oauth2_authorization_code"
    assert credential["authorize_url"] == data["base_url"] + "/authorize"
    assert credential["token_url"] == data["base_url"] + "/access_token"
    assert credential["client_id"]
    assert credential["client_secret"]
    assert oauth["redirect_uri"] == "http://127.0.0.1:PORT/callback"
    assert oauth["login_commands"][-1] == f"oomnitza-connect auth login {credential['name']}"
