"""`oomnitza-connect schedule show|run` against the acme test vendor over real HTTP."""

from __future__ import annotations

import email
import json
import socket

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sync_support import acme_for_the_cli, write_integration

from oomnitza_connect.cli import main
from oomnitza_connect.store.sqlite import SQLiteStore


@pytest.fixture
def acme(tmp_path, monkeypatch):
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=7, per_page=5) as emulator:
        yield emulator


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_run_once_runs_what_is_due_and_then_nothing(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    db = tmp_path / "store.db"

    shown = invoke("schedule", "show", path, "--db", db)
    assert shown.exit_code == 0, shown.output
    assert "acme-main" in shown.output
    assert "never" in shown.output
    assert "now" in shown.output

    first = invoke("schedule", "run", "--once", path, "--db", db)
    assert first.exit_code == 0, first.output
    assert "acme-main: succeeded (created 7" in first.output

    # A daily schedule that just ran is not due again.
    second = invoke("schedule", "run", "--once", path, "--db", db)
    assert second.exit_code == 0
    assert "nothing is due" in second.output
    with SQLiteStore(db) as store:
        assert len(store.list_sessions(integration="acme-main")) == 1
        assert store.count_people() == 7


def test_manual_integrations_never_run_by_schedule(tmp_path, acme):
    path = write_integration(tmp_path, 'schedule = "manual"\n', base_url=acme.base_url)
    # `schedule` must sit before the [settings] table to be a top-level key.
    text = path.read_text().replace('schedule = "manual"\n', "")
    path.write_text(text.replace("contacts = ", 'schedule = "manual"\ncontacts = ', 1))
    result = invoke("schedule", "run", "--once", path, "--db", tmp_path / "s.db")
    assert result.exit_code == 0
    assert "nothing is due" in result.output


def test_launched_integrations_are_used_when_no_file_is_given(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    db = tmp_path / "store.db"
    assert invoke("schedule", "run", "--once", "--db", db).exit_code == 2  # nothing launched
    launched = invoke("integrations", "launch", path, "--no-run", "--db", db)
    assert launched.exit_code == 0, launched.output
    result = invoke("schedule", "run", "--once", "--db", db)
    assert result.exit_code == 0, result.output
    assert "acme-main: succeeded" in result.output


def test_bad_schedule_is_a_configuration_error(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    path.write_text(path.read_text().replace("contacts = ", 'schedule = "often"\ncontacts = ', 1))
    result = CliRunner().invoke(main, ["schedule", "show", str(path), "--db", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "acme.toml" in result.output
    assert "'schedule'" in result.output


def test_a_failed_run_emails_the_contacts_and_exits_1(tmp_path, acme, monkeypatch):
    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_PORT", str(port))
        wrong = "acme-wrong-token-0123456789"
        monkeypatch.setenv(
            "OOMNITZA_CONNECT_CREDENTIAL_ACME",
            json.dumps({"vendor": "acme", "kind": "api_key", "token": wrong}),
        )
        path = write_integration(tmp_path, base_url=acme.base_url)
        result = invoke("schedule", "run", "--once", path, "--db", tmp_path / "store.db")
    finally:
        controller.stop()

    assert result.exit_code == 1
    assert "acme-main: failed" in result.output
    assert len(received) == 1
    recipients, message = received[0]
    assert recipients == ["it@example.com"]
    assert "Sync of 'acme-main' failed" in message["Subject"]
    assert wrong not in message.get_payload()
    # The email's command finds the session in the store the scheduler used.
    text = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert f"--db {tmp_path / 'store.db'}" in text
