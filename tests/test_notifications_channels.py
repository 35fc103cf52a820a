"""Issue 14, notifications: contacts hear of a failed run (from `sync` too), of a run not
completed within 24 hours and of a missed scheduled run, by email (a real aiosmtpd server)
and by webhook (a real HTTP receiver on loopback)."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sync_support import TOKEN, acme_for_the_cli, write_integration

from oomnitza_connect.cli import main
from oomnitza_connect.schedule.notifications import WEBHOOK_ENV, notify_late_runs
from oomnitza_connect.store.base import IntegrationEntry, SyncPlan
from oomnitza_connect.store.sqlite import SQLiteStore


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


class Receiver:
    """A webhook receiver: records every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        received = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, Receiver]]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    receiver = Receiver()
    monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_PORT", str(port))
    monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
    try:
        yield inbox, receiver
    finally:
        receiver.close()
        controller.stop()


def test_a_failed_sync_tells_the_contacts_by_email_and_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: tuple[Inbox, Receiver]
) -> None:
    inbox, receiver = channels
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=30, per_page=10) as emulator:
        # acme_for_the_cli clears the SMTP host; this test wants it.
        monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
        emulator.fail_after_page = 1
        path = write_integration(tmp_path, base_url=emulator.base_url)
        db = tmp_path / "x.db"
        result = CliRunner().invoke(main, ["sync", str(path), "--db", str(db)])
    assert result.exit_code == 1, result.output
    ((to, message),) = inbox.messages
    assert to == ["it@example.com"]
    assert "failed" in message["Subject"]
    assert str(db) in message.get_payload(decode=True).decode()
    (event,) = receiver.events
    assert event["event"] == "run_failed"
    assert event["integration"] == "acme-main"
    assert event["status"] == "failed"
    assert event["session_id"]
    for text in (message.as_string(), json.dumps(event)):
        assert TOKEN not in text


def test_a_successful_sync_tells_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: tuple[Inbox, Receiver]
) -> None:
    inbox, receiver = channels
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=5, per_page=10) as emulator:
        monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
        path = write_integration(tmp_path, base_url=emulator.base_url)
        result = CliRunner().invoke(main, ["sync", str(path), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 0, result.output
    assert inbox.messages == []
    assert receiver.events == []


def test_missed_and_overdue_runs_are_told_once(
    tmp_path: Path, channels: tuple[Inbox, Receiver]
) -> None:
    inbox, receiver = channels
    launched = datetime.now(UTC)
    with SQLiteStore(tmp_path / "x.db") as store:
        for name in ("late-one", "stuck-one"):
            store.save_integration(
                IntegrationEntry(
                    name=name,
                    vendor="acme",
                    active=True,
                    schedule="daily",
                    contacts=(f"{name}@example.com",),
                    launched_at=launched,
                )
            )
        stuck = store.start_session(
            SyncPlan(integration="stuck-one", vendor="acme", sync_key="email")
        )
        later = launched + timedelta(days=2)
        state = tmp_path / "notices.json"
        subjects = notify_late_runs(store, state, now=later)
        again = notify_late_runs(store, state, now=later + timedelta(minutes=5))
    assert again == []
    assert any("late-one" in s and "did not start" in s for s in subjects)
    assert any("stuck-one" in s and "24 hours" in s for s in subjects)
    events = {(e["event"], e["integration"]) for e in receiver.events}
    assert ("run_missed", "late-one") in events
    assert ("run_overdue", "stuck-one") in events
    overdue = next(e for e in receiver.events if e["event"] == "run_overdue")
    assert overdue["session_id"] == stuck.id
    recipients = sorted(to[0] for to, _ in inbox.messages)
    assert "late-one@example.com" in recipients
    assert "stuck-one@example.com" in recipients
    assert len(inbox.messages) == len(receiver.events) == len(subjects)


def test_schedule_run_tells_of_a_missed_run_before_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: tuple[Inbox, Receiver]
) -> None:
    _, receiver = channels
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=5, per_page=10) as emulator:
        path = write_integration(tmp_path, base_url=emulator.base_url)
        db = tmp_path / "x.db"
        runner = CliRunner()
        result = runner.invoke(
            main, ["integrations", "launch", str(path), "--db", str(db), "--no-run"]
        )
        assert result.exit_code == 0, result.output
        with SQLiteStore(db) as store:
            (entry,) = store.list_integrations(active_only=True)
            import attrs

            store.save_integration(
                attrs.evolve(entry, launched_at=datetime.now(UTC) - timedelta(days=3))
            )
        result = runner.invoke(main, ["schedule", "run", "--once", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert [e["event"] for e in receiver.events] == ["run_missed"]
    assert "acme-main: succeeded" in result.output


class RefusingReceiver(Receiver):
    """A chat webhook that answers 500: its secret is the URL's path."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                paths.append(self.path)
                self.send_response(500)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server.RequestHandlerClass = Handler
        self.url = self.url.replace("/hook", path)


def test_a_webhook_is_named_by_its_host_never_its_secret_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    secret_path = "/services/T0000/B0000/SuperSecretWebhookPath123?token=QuerySecret9"
    refusing = RefusingReceiver(secret_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens once the probe is closed
    unreachable = (
        f"http://hooker:PasswordSecret7@127.0.0.1:{closed_port}/T1/B1/AnotherSecretPath456"
    )
    secrets = [
        "SuperSecretWebhookPath123",
        "QuerySecret9",
        "PasswordSecret7",
        "AnotherSecretPath456",
    ]
    try:
        with acme_for_the_cli(tmp_path / "home", monkeypatch, users=30, per_page=10) as emulator:
            monkeypatch.setenv(WEBHOOK_ENV, f"{refusing.url}, {unreachable}")
            emulator.fail_after_page = 1
            path = write_integration(tmp_path, base_url=emulator.base_url)
            with caplog.at_level(logging.DEBUG):
                result = CliRunner().invoke(
                    main, ["--debug", "sync", str(path), "--db", str(tmp_path / "x.db")]
                )
    finally:
        refusing.close()
    assert result.exit_code == 1, result.output
    assert refusing.paths == [secret_path]
    port = refusing.server.server_address[1]
    assert f"the webhook http://127.0.0.1:{port} answered HTTP 500" in caplog.text
    assert f"the webhook http://127.0.0.1:{closed_port} was not reached" in caplog.text
    # urllib3's own debug lines name the request's path: scrubbed too.
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in result.output
