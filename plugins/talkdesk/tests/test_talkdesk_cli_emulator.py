"""``oomnitza-connect emulator talkdesk`` runs on its own and prints a credential that works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from oomnitza_connect.config import structure
from oomnitza_connect.connectors import Connector
from oomnitza_connect.models import Credential


def test_the_emulator_command_prints_a_working_key_pair_credential(connector: Connector) -> None:
    env = {**os.environ, "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "1"}
    command = [
        sys.executable, "-c", "from oomnitza_connect.cli import main; main()",
        "emulator", "talkdesk", "--users", "25", "--port", "0", "--seed", "5",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("export "):
            line = process.stdout.readline()
            assert line, f"the emulator stopped early: {lines}"
            lines.append(line.strip())
        printed = dict(line.split(": ", 1) for line in lines if ": " in line)
        assert printed["test credential"] == "kind=oauth2_client_credentials"
        settings = dict(pair.split("=", 1) for pair in printed["settings"].split())
        assert settings == {"Talkdesk.Subdomain": "emulated5", "Talkdesk.Region": "US"}
        exported = json.loads(lines[-1].split("=", 1)[1].strip("'"))
        assert exported["client_auth_method"] == "private_key_jwt"
        assert exported["key_id"]
        credential = structure({"name": "cli", **exported}, Credential)
        with connector.authenticate(credential, settings) as session:
            assert len(list(connector.list_users(session))) == 25
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
