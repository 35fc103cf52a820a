"""Failure notifications: email an integration's contacts when a sync goes wrong.

SMTP settings come from environment variables so that no secret sits in an
integration file:

``OOMNITZA_CONNECT_SMTP_HOST`` (required to send), ``OOMNITZA_CONNECT_SMTP_PORT``
(default 25, or 587 with STARTTLS), ``OOMNITZA_CONNECT_SMTP_USERNAME``,
``OOMNITZA_CONNECT_SMTP_PASSWORD``, ``OOMNITZA_CONNECT_SMTP_STARTTLS`` (``1``
to upgrade the connection; certificates are always verified),
``OOMNITZA_CONNECT_SMTP_SSL`` (``1`` for implicit TLS),
``OOMNITZA_CONNECT_SMTP_FROM`` (default ``oomnitza-connect@localhost``).

Besides email, ``OOMNITZA_CONNECT_NOTIFY_WEBHOOK`` (one URL, or several separated
by commas) receives every notice as a JSON POST, for chat tools and in-app
notifications: ``{"event": "run_failed" | "run_missed" | "run_overdue" |
"run_not_started", "integration", "vendor", "subject", "text", "session_id",
"status", ...}``. Webhook URLs must be https (plain http only to this machine).
Chat webhooks (Slack, Teams, Discord) carry their secret in the path, so a
webhook is only ever named by its scheme and host, and its path and query are
scrubbed from every log line like any other secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..errors import ConfigurationError, NotificationError, OomnitzaConnectError
from ..models import IntegrationSettings, SyncSession, SyncStatus
from ..redaction import Secret, redact

__all__ = [
    "WEBHOOK_ENV",
    "NotificationError",
    "SmtpSettings",
    "build_failure_message",
    "forget_not_run",
    "notify_failure",
    "notify_late_runs",
    "notify_not_run",
    "post_webhooks",
    "send_notice",
    "should_notify",
    "smtp_missing_note",
    "webhook_urls",
]

WEBHOOK_ENV = "OOMNITZA_CONNECT_NOTIFY_WEBHOOK"
WEBHOOK_TIMEOUT = 10.0

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
    configured: logged at INFO, since the command reporting the run says it once,
    see :func:`smtp_missing_note`).

    :param store_path: the store holding *session*, named in the email's
        ``sessions show`` command when it is not the default one.
    :raises NotificationError: the SMTP server refused or could not be reached.
    """
    if not should_notify(session):
        return False
    posted = post_webhooks(_failure_event(integration, session))
    to = list(recipients if recipients is not None else integration.contacts)
    if not to:
        log.info("integration %s failed but has no contacts to notify", integration.name)
        return posted
    settings = smtp or SmtpSettings.from_environment()
    if settings is None:
        log.info(
            "integration %s failed but OOMNITZA_CONNECT_SMTP_HOST is not set; "
            "contacts were not emailed",
            integration.name,
        )
        return posted
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


def smtp_missing_note(integration: IntegrationSettings, session: SyncSession) -> str | None:
    """Return a one-line note when *session*'s contacts could not be emailed for want of SMTP.

    ``None`` when there was nothing to tell, no contacts to tell it to, or an SMTP
    host is set.
    """
    if not should_notify(session) or not integration.contacts:
        return None
    if SmtpSettings.from_environment() is not None:
        return None
    return "contacts not emailed: OOMNITZA_CONNECT_SMTP_HOST is not set"


def _failure_event(integration: IntegrationSettings, session: SyncSession) -> dict[str, Any]:
    outcome = "failed" if session.status is SyncStatus.FAILED else "completed with errors"
    counts = session.counts
    return {
        "event": "run_failed",
        "integration": integration.name,
        "vendor": integration.vendor,
        "subject": f"[oomnitza-connect] Sync of '{integration.name}' {outcome}",
        "text": redact(
            f"The {integration.vendor} integration '{integration.name}' {outcome}"
            + (f": {session.message}" if session.message else ".")
        ),
        "session_id": session.id,
        "status": session.status.value,
        "counts": {
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "skipped": counts.skipped,
            "failed": counts.failed,
        },
        "errors": [
            {"vendor_user_id": e.vendor_user_id, "reason": redact(e.reason)}
            for e in session.errors[:MAX_ERRORS_IN_MESSAGE]
        ],
    }


def webhook_urls(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the webhook URLs notices are posted to (``$OOMNITZA_CONNECT_NOTIFY_WEBHOOK``)."""
    env = os.environ if environ is None else environ
    urls = [url.strip() for url in env.get(WEBHOOK_ENV, "").split(",") if url.strip()]
    for url in urls:
        _remember_webhook_secret(url)
    return urls


def _remember_webhook_secret(url: str) -> None:
    # Wrapping the path and the query as secrets makes the log filter scrub them
    # wherever they turn up (urllib3's debug line "POST /services/T0/B0/... 200",
    # an exception's text), not only in the lines written here.
    parts = urlsplit(url)
    for secret in (parts.path, parts.query, parts.password or ""):
        if secret.strip("/"):
            Secret(secret)


def webhook_host(url: str) -> str:
    """Return how a webhook is named in messages: its scheme and host, never its path."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{parts.scheme or '?'}://{host}" + (f":{port}" if port else "")


def post_webhooks(event: Mapping[str, Any], urls: Sequence[str] | None = None) -> bool:
    """POST *event* as JSON to every webhook; return whether one accepted it.

    A webhook that fails is logged by its scheme and host only (a chat webhook's
    path is its secret) and does not stop the others or the email.
    """
    from ..transport.http import check_transport_security

    targets = list(urls) if urls is not None else webhook_urls()
    if not targets:
        return False
    import requests

    body = json.dumps(event, default=str)
    delivered = False
    for url in targets:
        _remember_webhook_secret(url)
        where = webhook_host(url)
        try:
            check_transport_security(url, vendor="webhook", allow_insecure_http=False)
            response = requests.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=WEBHOOK_TIMEOUT,
            )
        except (OomnitzaConnectError, requests.RequestException) as exc:
            log.error("the webhook %s was not reached: %s", redact(where), type(exc).__name__)
            continue
        if response.status_code >= 300:
            log.error("the webhook %s answered HTTP %s", redact(where), response.status_code)
            continue
        delivered = True
    return delivered


def send_notice(
    contacts: Sequence[str],
    event: Mapping[str, Any],
    *,
    smtp: SmtpSettings | None = None,
) -> bool:
    """Tell *contacts* (email) and the webhooks about *event* (``subject`` and ``text``).

    :returns: whether any channel took it.
    :raises NotificationError: the SMTP server refused or could not be reached.
    """
    posted = post_webhooks(event)
    settings = smtp or SmtpSettings.from_environment()
    to = list(contacts)
    if not to or settings is None:
        if not posted:
            log.info("%s (no contacts, SMTP host or webhook: nobody was told)", event["subject"])
        return posted
    message = EmailMessage()
    message["Subject"] = str(event["subject"])
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    message.set_content(redact(str(event["text"])) + "\n")
    try:
        _send(settings, message, to)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotificationError(
            f"could not email {len(to)} contact(s) through {settings.host}:{settings.port}: "
            f"{exc.__class__.__name__}: {redact(str(exc))}"
        ) from None
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


MISSED_AFTER = timedelta(minutes=30)
"""How late a scheduled run may start before the contacts hear it was missed."""


def notify_late_runs(
    ledger: Any,
    state_file: Path,
    *,
    now: datetime | None = None,
    missed_after: timedelta = MISSED_AFTER,
) -> list[str]:
    """Tell the contacts of launched integrations whose run was missed or is past 24 hours.

    Each notice is sent once: what was told is remembered in *state_file*
    (a small JSON file), so a scheduler started from cron every few minutes
    does not repeat itself. ``schedule run`` calls this on every cycle; Celery
    mode does the same in beat.

    :returns: the subjects of the notices sent (or logged, with nobody to tell).
    """
    from ..distributed.schedule import missed_runs, overdue_sessions

    now = now or datetime.now(UTC)
    try:
        told: dict[str, str] = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        told = {}
    launched = {entry.name: entry for entry in ledger.list_integrations(active_only=True)}
    notices: list[tuple[str, Any, dict[str, Any]]] = []
    for entry, due in missed_runs(ledger, now, missed_after):
        when = due.isoformat(timespec="minutes")
        notices.append(
            (
                f"missed:{entry.name}:{due.isoformat()}",
                entry,
                {
                    "event": "run_missed",
                    "integration": entry.name,
                    "vendor": entry.vendor,
                    "subject": f"[oomnitza-connect] The run of '{entry.name}' due at {when} "
                    "did not start",
                    "text": f"The run of integration '{entry.name}' (schedule "
                    f"'{entry.schedule}') was due at {when} and had not started "
                    f"{missed_after.total_seconds() / 60:.0f} minutes later. Check that "
                    "'oomnitza-connect schedule run' (or its cron entry) is running.",
                    "due_at": due.isoformat(),
                },
            )
        )
    for session in overdue_sessions(ledger, now, launched):
        entry = launched[session.integration]
        notices.append(
            (
                f"overdue:{session.id}",
                entry,
                {
                    "event": "run_overdue",
                    "integration": entry.name,
                    "vendor": entry.vendor,
                    "subject": f"[oomnitza-connect] The run of '{entry.name}' has not "
                    "completed within 24 hours",
                    "text": f"Sync session {session.id} of integration '{entry.name}' started "
                    f"at {session.started_at.isoformat(timespec='minutes')} and has not "
                    f"completed. See 'oomnitza-connect sessions show {session.id}'.",
                    "session_id": session.id,
                    "status": session.status.value,
                },
            )
        )
    subjects: list[str] = []
    for key, entry, event in notices:
        if key in told:
            continue
        try:
            send_notice(entry.contacts, event)
        except NotificationError as exc:
            log.error("could not notify the contacts of %s: %s", entry.name, exc)
            continue  # tried again on the next cycle
        told[key] = now.isoformat()
        log.warning("%s", event["subject"])
        subjects.append(str(event["subject"]))
    if subjects:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(told, indent=1, sort_keys=True), encoding="utf-8")
    return subjects


def _read_told(state_file: Path) -> dict[str, str]:
    try:
        told: dict[str, str] = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return told if isinstance(told, dict) else {}


def _write_told(state_file: Path, told: Mapping[str, str]) -> None:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(told, indent=1, sort_keys=True), encoding="utf-8")


def _not_run_prefix(name: str) -> str:
    return f"not-run:{name}:"


def notify_not_run(
    name: str,
    vendor: str,
    contacts: Sequence[str],
    problem: str,
    *,
    state_file: Path,
    now: datetime | None = None,
) -> bool:
    """Tell *name*'s contacts (and the webhooks) that its due run did not start, and why.

    The file is missing, invalid or a draft, or its credential cannot be used.
    Each distinct problem is told once (remembered in *state_file*, like the late-run
    notices), so a scheduler that reports the integration at every due time, or a
    cron entry running ``schedule run --once`` every few minutes, does not repeat
    itself; :func:`forget_not_run` clears it once the integration runs again.

    :returns: whether a notice was sent now.
    :raises NotificationError: the SMTP server refused or could not be reached
        (nothing is remembered, so the next report tries again).
    """
    digest = hashlib.sha256(problem.encode("utf-8")).hexdigest()[:16]
    key = _not_run_prefix(name) + digest
    told = _read_told(state_file)
    if key in told:
        return False
    event = {
        "event": "run_not_started",
        "integration": name,
        "vendor": vendor,
        "subject": f"[oomnitza-connect] The run of '{name}' did not start",
        "text": redact(
            f"The scheduled run of integration '{name}' did not start: {problem}\n"
            "Fix the integration's file; the scheduler reads it again at its next run."
        ),
        "problem": redact(problem),
    }
    send_notice(contacts, event)
    told[key] = (now or datetime.now(UTC)).isoformat()
    _write_told(state_file, told)
    return True


def forget_not_run(name: str, state_file: Path) -> None:
    """Forget the "did not start" notices of *name*, so a later problem is told again."""
    told = _read_told(state_file)
    kept = {key: when for key, when in told.items() if not key.startswith(_not_run_prefix(name))}
    if len(kept) != len(told):
        _write_told(state_file, kept)
