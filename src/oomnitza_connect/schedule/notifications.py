"""Failure notifications: email an integration's contacts when a sync goes wrong.

SMTP settings come from environment variables so that no secret sits in an
integration file:

``OOMNITZA_CONNECT_SMTP_HOST`` (required to send), ``OOMNITZA_CONNECT_SMTP_PORT``
(default 25, or 587 with STARTTLS), ``OOMNITZA_CONNECT_SMTP_USERNAME``,
``OOMNITZA_CONNECT_SMTP_PASSWORD``, ``OOMNITZA_CONNECT_SMTP_STARTTLS`` (``1``
to upgrade the connection; certificates are always verified),
``OOMNITZA_CONNECT_SMTP_SSL`` (``1`` for implicit TLS),
``OOMNITZA_CONNECT_SMTP_FROM`` (default ``oomnitza-connect@localhost``).
"""

from __future__ import annotations

import logging
import os
import shlex
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage

import attrs

from ..errors import ConfigurationError, NotificationError
from ..models import IntegrationSettings, SyncSession, SyncStatus
from ..redaction import Secret, redact

__all__ = [
    "NotificationError",
    "SmtpSettings",
    "build_failure_message",
    "notify_failure",
    "should_notify",
]

log = logging.getLogger(__name__)

# How many record errors an email lists before saying "and N more".
MAX_ERRORS_IN_MESSAGE = 20
NOTIFY_STATUSES = frozenset({SyncStatus.FAILED, SyncStatus.COMPLETED_WITH_ERRORS})


@attrs.frozen
class SmtpSettings:
    host: str
    port: int = 25
    username: str | None = None
    password: Secret | None = None
    starttls: bool = False
    implicit_tls: bool = False
    sender: str = "oomnitza-connect@localhost"
    ca_bundle: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings | None:
        """Read the settings from the environment; ``None`` when no host is set."""
        env = os.environ if environ is None else environ
        host = env.get("OOMNITZA_CONNECT_SMTP_HOST")
        if not host:
            return None
        starttls = env.get("OOMNITZA_CONNECT_SMTP_STARTTLS", "") == "1"
        implicit_tls = env.get("OOMNITZA_CONNECT_SMTP_SSL", "") == "1"
        default_port = 465 if implicit_tls else 587 if starttls else 25
        raw_port = env.get("OOMNITZA_CONNECT_SMTP_PORT", str(default_port))
        try:
            port = int(raw_port)
        except ValueError:
            raise ConfigurationError(
                f"bad value {raw_port!r}",
                key_path="OOMNITZA_CONNECT_SMTP_PORT",
                allowed="a port number",
            ) from None
        password = env.get("OOMNITZA_CONNECT_SMTP_PASSWORD")
        return cls(
            host=host,
            port=port,
            username=env.get("OOMNITZA_CONNECT_SMTP_USERNAME") or None,
            password=Secret(password) if password else None,
            starttls=starttls,
            implicit_tls=implicit_tls,
            sender=env.get("OOMNITZA_CONNECT_SMTP_FROM", "oomnitza-connect@localhost"),
            ca_bundle=env.get("OOMNITZA_CONNECT_SMTP_CA_BUNDLE") or None,
        )


def should_notify(session: SyncSession) -> bool:
    """Return whether *session* ended in a way the contacts must hear about."""
    return not session.test_run and session.status in NOTIFY_STATUSES


def build_failure_message(
    integration: IntegrationSettings,
    session: SyncSession,
    *,
    sender: str,
    store_path: str | None = None,
) -> EmailMessage:
    """Compose the email telling *integration*'s contacts what went wrong.

    :param store_path: the store the session is in, when it is not the default
        one, so that the "sessions show" command in the email finds it.
    """
    outcome = "failed" if session.status is SyncStatus.FAILED else "completed with errors"
    message = EmailMessage()
    message["Subject"] = f"[oomnitza-connect] Sync of '{integration.name}' {outcome}"
    message["From"] = sender
    message["To"] = ", ".join(integration.contacts)
    counts = session.counts
    lines = [
        f"The {integration.vendor} integration '{integration.name}' {outcome}.",
        "",
        f"Session:  {session.id}",
        f"Started:  {session.started_at.isoformat()}",
        f"Ended:    {session.ended_at.isoformat() if session.ended_at else 'unknown'}",
        f"Status:   {session.status.value}",
        (
            f"Counts:   created {counts.created}, updated {counts.updated}, "
            f"unchanged {counts.unchanged}, skipped {counts.skipped}, failed {counts.failed}"
        ),
    ]
    if session.message:
        lines += ["", f"Error: {session.message}"]
    if session.errors:
        lines += ["", "Records that failed:"]
        for error in session.errors[:MAX_ERRORS_IN_MESSAGE]:
            who = error.vendor_user_id or "(no id)"
            lines.append(f"  - {who}: {error.reason}")
        hidden = len(session.errors) - MAX_ERRORS_IN_MESSAGE
        if hidden > 0:
            lines.append(f"  … and {hidden} more")
    where = f" --db {shlex.quote(store_path)}" if store_path else ""
    lines += ["", f"Details: oomnitza-connect sessions show {session.id}{where}"]
    # The body quotes vendor error text; scrub anything secret that slipped in.
    message.set_content(redact("\n".join(lines)) + "\n")
    return message


def notify_failure(
    integration: IntegrationSettings,
    session: SyncSession,
    *,
    smtp: SmtpSettings | None = None,
    recipients: Sequence[str] | None = None,
    store_path: str | None = None,
) -> bool:
    """Email the integration's contacts if *session* failed.

    Returns True when a message was sent, False when there was nothing to
    send (the run succeeded, it was a test run, no contacts, or no SMTP host
    configured: that last case is logged as a warning).

    :param store_path: the store holding *session*, named in the email's
        ``sessions show`` command when it is not the default one.
    :raises NotificationError: the SMTP server refused or could not be reached.
    """
    if not should_notify(session):
        return False
    to = list(recipients if recipients is not None else integration.contacts)
    if not to:
        log.warning("integration %s failed but has no contacts to notify", integration.name)
        return False
    settings = smtp or SmtpSettings.from_environment()
    if settings is None:
        log.warning(
            "integration %s failed but OOMNITZA_CONNECT_SMTP_HOST is not set; "
            "contacts were not notified",
            integration.name,
        )
        return False
    message = build_failure_message(
        integration, session, sender=settings.sender, store_path=store_path
    )
    message.replace_header("To", ", ".join(to))
    try:
        _send(settings, message, to)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotificationError(
            f"could not email {len(to)} contact(s) of integration '{integration.name}' "
            f"through {settings.host}:{settings.port}: {exc.__class__.__name__}: {redact(str(exc))}"
        ) from None
    log.info("notified %d contact(s) of integration %s", len(to), integration.name)
    return True


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    # Verified TLS only; a private CA is an explicit option, never "no checks".
    return ssl.create_default_context(cafile=settings.ca_bundle)


def _send(settings: SmtpSettings, message: EmailMessage, to: Sequence[str]) -> None:
    if settings.password and not (settings.starttls or settings.implicit_tls):
        # smtplib would log in over plain SMTP and send the password in the clear.
        raise NotificationError(
            f"refusing to send the SMTP password to {settings.host}:{settings.port} over an "
            "unencrypted connection; set OOMNITZA_CONNECT_SMTP_STARTTLS=1 (STARTTLS) or "
            "OOMNITZA_CONNECT_SMTP_SSL=1 (implicit TLS)"
        )
    client: smtplib.SMTP
    if settings.implicit_tls:
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=_tls_context(settings)
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.starttls:
            client.starttls(context=_tls_context(settings))
        if settings.username and settings.password:
            client.login(settings.username, settings.password.reveal())
        client.send_message(message, to_addrs=list(to))
