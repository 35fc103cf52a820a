"""Failure notifications go to a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from oomnitza_connect.models import (
    IntegrationSettings,
    RecordError,
    SyncCounts,
    SyncSession,
    SyncStatus,
)
from oomnitza_connect.redaction import Secret
from oomnitza_connect.schedule.notifications import (
    NotificationError,
    SmtpSettings,
    notify_failure,
    should_notify,
    smtp_missing_note,
)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, SmtpSettings]]:
    inbox = _Inbox()
    # aiosmtpd checks readiness by connecting to the port it was given, so it
    # needs a concrete free port rather than 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpSettings(host="127.0.0.1", port=port, sender="sync@example.test")
    finally:
        controller.stop()


def _integration(contacts: tuple[str, ...] = ("it@example.test", "ops@example.test")):
    return IntegrationSettings(
        name="slack-main", vendor="slack", credential="slack-bot", contacts=contacts
    )


def _session(status: SyncStatus, *, test_run: bool = False, errors: int = 0, message=None):
    return SyncSession(
        id="sess-123",
        integration="slack-main",
        vendor="slack",
        started_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
        ended_at=datetime(2026, 11, 23, 2, 1, tzinfo=UTC),
        status=status,
        test_run=test_run,
        counts=SyncCounts(created=5, failed=errors),
        errors=tuple(RecordError(f"U{i}", f"email 'x{i}' is not valid") for i in range(errors)),
        message=message,
    )


def test_failed_session_emails_every_contact(smtp_server):
    inbox, settings = smtp_server
    session = _session(SyncStatus.COMPLETED_WITH_ERRORS, errors=25)

    assert notify_failure(_integration(), session, smtp=settings) is True

    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert sorted(recipients) == ["it@example.test", "ops@example.test"]
    assert message["Subject"] == "[oomnitza-connect] Sync of 'slack-main' completed with errors"
    body = message.get_payload()
    assert "sess-123" in body
    assert "failed 25" in body
    assert "U0: email 'x0' is not valid" in body
    assert "and 5 more" in body  # 25 errors, 20 listed
    # The default store: the command needs no --db.
    assert body.replace("\r\n", "\n").endswith("oomnitza-connect sessions show sess-123\n")


def test_run_level_failure_message_is_included_without_secrets(smtp_server):
    inbox, settings = smtp_server
    token = Secret("xoxb-notify-secret-1234567890")
    session = _session(SyncStatus.FAILED, message=f"slack: invalid_auth for token {token.reveal()}")

    notify_failure(_integration(), session, smtp=settings)

    body = inbox.messages[0][1].get_payload()
    assert "invalid_auth" in body
    assert token.reveal() not in body


@pytest.mark.parametrize(
    ("status", "test_run", "expected"),
    [
        (SyncStatus.SUCCEEDED, False, False),
        (SyncStatus.FAILED, True, False),
        (SyncStatus.FAILED, False, True),
        (SyncStatus.COMPLETED_WITH_ERRORS, False, True),
    ],
)
def test_only_real_failures_notify(smtp_server, status, test_run, expected):
    inbox, settings = smtp_server
    session = _session(status, test_run=test_run)
    assert should_notify(session) is expected
    assert notify_failure(_integration(), session, smtp=settings) is expected
    assert len(inbox.messages) == (1 if expected else 0)


def test_no_contacts_or_no_smtp_host_sends_nothing_and_is_no_warning(
    smtp_server, caplog, monkeypatch
):
    inbox, settings = smtp_server
    monkeypatch.delenv("OOMNITZA_CONNECT_SMTP_HOST", raising=False)
    failed = _session(SyncStatus.FAILED)
    with caplog.at_level(logging.INFO, logger="oomnitza_connect"):
        assert notify_failure(_integration(contacts=()), failed, smtp=settings) is False
        assert notify_failure(_integration(), failed) is False
    assert inbox.messages == []
    # Said at INFO (-v), not as a raw WARNING line at the default verbosity:
    # the command that reports the run says it once, in its own words.
    assert "no contacts" in caplog.text
    assert "OOMNITZA_CONNECT_SMTP_HOST is not set" in caplog.text
    assert {r.levelno for r in caplog.records} == {logging.INFO}
    assert smtp_missing_note(_integration(), failed) == (
        "contacts not emailed: OOMNITZA_CONNECT_SMTP_HOST is not set"
    )
    assert smtp_missing_note(_integration(contacts=()), failed) is None
    assert smtp_missing_note(_integration(), _session(SyncStatus.SUCCEEDED)) is None


def test_unreachable_server_raises_a_clear_error():
    # Port 1 on loopback: nothing listens there, the connection is refused.
    settings = SmtpSettings(host="127.0.0.1", port=1, timeout=2)
    with pytest.raises(NotificationError, match=r"could not email 2 contact\(s\).*127.0.0.1:1"):
        notify_failure(_integration(), _session(SyncStatus.FAILED), smtp=settings)


def test_settings_come_from_the_environment():
    env = {
        "OOMNITZA_CONNECT_SMTP_HOST": "mail.example.test",
        "OOMNITZA_CONNECT_SMTP_STARTTLS": "1",
        "OOMNITZA_CONNECT_SMTP_USERNAME": "robot",
        "OOMNITZA_CONNECT_SMTP_PASSWORD": "smtp-password-value",
    }
    settings = SmtpSettings.from_environment(env)
    assert settings is not None
    assert (settings.host, settings.port, settings.starttls) == ("mail.example.test", 587, True)
    assert "smtp-password-value" not in repr(settings)
    assert SmtpSettings.from_environment({}) is None


def test_bad_port_names_the_variable():
    with pytest.raises(Exception, match="OOMNITZA_CONNECT_SMTP_PORT"):
        SmtpSettings.from_environment(
            {"OOMNITZA_CONNECT_SMTP_HOST": "h", "OOMNITZA_CONNECT_SMTP_PORT": "twenty-five"}
        )


def test_password_is_never_sent_over_an_unencrypted_connection():
    # smtplib logs in over plain SMTP when the server offers AUTH there; the
    # password would cross the network in the clear.
    from aiosmtpd.smtp import AuthResult

    tried: list[object] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        tried.append(auth_data)
        return AuthResult(success=True)

    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=port,
            username="sync",
            password=Secret("smtp-password-in-clear"),
            sender="sync@example.test",
        )
        with pytest.raises(NotificationError, match="STARTTLS"):
            notify_failure(_integration(), _session(SyncStatus.FAILED), smtp=settings)
    finally:
        controller.stop()
    assert tried == []
    assert inbox.messages == []
