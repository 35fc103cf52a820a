"""Beat's entries follow the launched integrations; missed and long runs are notified.

Every launched integration whose schedule is not ``manual`` is one redbeat
entry (``oomnitza-connect:beat:integration:NAME``) that sends
``oomnitza_connect.run_integration``. The entries live in Redis, so beat keeps
no schedule file and a restarted beat (or one on another machine) carries on
where the last one was.

``daily``, ``weekly``, ``daily at HH:MM`` and cron expressions become Celery
``crontab`` schedules in UTC; ``every N minutes|hours`` becomes an interval.

Notifications in this mode (the embedded scheduler sends the same from its loop):

- **missed**: the schedule said a run was due more than
  ``OOMNITZA_CONNECT_MISSED_AFTER`` minutes ago (30 by default) and none has
  started since (beat was down, or no worker took the run from the queue);
- **over 24 hours**: a session has been ``running`` for more than a day.

Each is sent once (remembered in Redis) to the integration's contacts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from ..models import SyncStatus
from ..schedule.scheduler import Schedule, parse_schedule

__all__ = [
    "ENTRY_PREFIX",
    "celery_schedule",
    "missed_runs",
    "notify_overdue",
    "overdue_sessions",
    "refresh_schedule",
]

log = logging.getLogger(__name__)

ENTRY_PREFIX = "integration:"
_KNOWN_ENTRIES = "oomnitza-connect:beat:integrations"
_NOTIFIED = "oomnitza-connect:notified"
OVERDUE_AFTER = timedelta(hours=24)
_REMEMBER_NOTICE = 14 * 24 * 3600


def celery_schedule(schedule: Schedule) -> Any:
    """Return the Celery schedule for *schedule* (``None`` when manual)."""
    from celery.schedules import crontab
    from celery.schedules import schedule as every

    if schedule.interval is not None:
        return every(schedule.interval)
    if schedule.cron is None:
        return None
    minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


def refresh_schedule(app: Any) -> dict[str, str]:
    """Create, update and remove entries so they match the launched integrations.

    :returns: integration name -> its schedule text, for every entry kept.
    """
    from redbeat import RedBeatSchedulerEntry

    from .app import redis_client
    from .tasks import open_ledger

    client = redis_client()
    wanted: dict[str, str] = {}
    with open_ledger() as ledger:
        entries = ledger.list_integrations(active_only=True)
    for entry in entries:
        try:
            schedule = parse_schedule(entry.schedule, file=entry.source)
        except Exception as exc:
            log.error("integration %s: not scheduled: %s", entry.name, exc)
            continue
        if schedule.manual:
            continue
        wanted[entry.name] = schedule.text
        name = ENTRY_PREFIX + entry.name
        key = app.conf.redbeat_key_prefix + name
        try:
            existing = RedBeatSchedulerEntry.from_key(key, app=app)
        except KeyError:
            existing = None
        signature = schedule.text
        if existing is not None and existing.kwargs.get("schedule_text") == signature:
            continue  # unchanged: keep its last-run time
        RedBeatSchedulerEntry(
            name,
            "oomnitza_connect.run_integration",
            celery_schedule(schedule),
            args=(entry.name,),
            kwargs={"schedule_text": signature},
            app=app,
        ).save()
        log.info("integration %s: scheduled %s", entry.name, signature)
        client.sadd(_KNOWN_ENTRIES, entry.name)
    for raw in client.smembers(_KNOWN_ENTRIES):
        known = raw.decode() if isinstance(raw, bytes) else str(raw)
        if known in wanted:
            continue
        key = app.conf.redbeat_key_prefix + ENTRY_PREFIX + known
        with contextlib.suppress(KeyError):
            RedBeatSchedulerEntry.from_key(key, app=app).delete()
        client.srem(_KNOWN_ENTRIES, known)
        log.info("integration %s: no longer launched; its schedule entry was removed", known)
    return wanted


def _last_started(ledger: Any, name: str) -> datetime | None:
    for session in ledger.list_sessions(integration=name, limit=10):
        if not session.test_run:
            started: datetime = session.started_at
            return started if started.tzinfo else started.replace(tzinfo=UTC)
    return None


def missed_runs(ledger: Any, now: datetime, missed_after: timedelta) -> list[tuple[Any, datetime]]:
    """Return ``(integration entry, due time)`` of each scheduled run that did not start in time."""
    found = []
    for entry in ledger.list_integrations(active_only=True):
        try:
            due = _missed(ledger, entry, now, missed_after)
        except Exception as exc:
            # One integration's schedule or sessions must not hide the others' missed runs.
            log.info("integration %s: missed runs not checked: %s", entry.name, exc)
            continue
        if due is not None:
            found.append((entry, due))
    return found


def _missed(ledger: Any, entry: Any, now: datetime, missed_after: timedelta) -> datetime | None:
    # A bad schedule is reported where the integration is run (or scheduled in beat).
    schedule = parse_schedule(entry.schedule)
    if schedule.manual:
        return None
    since = _last_started(ledger, entry.name) or entry.launched_at
    if since is None:
        return None
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    due = schedule.next_run(since)
    if due is not None and due < now - missed_after:
        return due
    return None


def overdue_sessions(ledger: Any, now: datetime, names: Iterable[str]) -> list[Any]:
    """Return the sessions of *names* still running more than 24 hours after they started."""
    late = []
    for name in names:
        for session in ledger.list_sessions(integration=name, limit=10):
            started = (
                session.started_at
                if session.started_at.tzinfo
                else session.started_at.replace(tzinfo=UTC)
            )
            if session.status == SyncStatus.RUNNING and now - started > OVERDUE_AFTER:
                late.append(session)
    return late


def _notice(contacts: Iterable[str], subject: str, body: str) -> bool:
    from ..redaction import redact
    from ..schedule.notifications import SmtpSettings, _send

    to = list(contacts)
    settings = SmtpSettings.from_environment()
    if not to or settings is None:
        log.warning("%s (no contacts or no SMTP host: nobody was told)", subject)
        return False
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    message.set_content(redact(body) + "\n")
    _send(settings, message, to)
    return True


def notify_overdue(now: datetime | None = None) -> list[str]:
    """Email the contacts of missed runs and of runs past 24 hours, once each.

    :returns: the subjects of the notices decided on (sent, or logged when
        there is nobody to send them to).
    """
    from .app import redis_client, worker_config
    from .tasks import open_ledger

    client = redis_client()
    now = now or datetime.now(UTC)
    missed_after = timedelta(minutes=worker_config().missed_after_minutes)
    subjects: list[str] = []
    with open_ledger() as ledger:
        launched = {entry.name: entry for entry in ledger.list_integrations(active_only=True)}
        notices: list[tuple[str, Any, str, str]] = []
        for entry, due in missed_runs(ledger, now, missed_after):
            notices.append(
                (
                    f"missed:{entry.name}:{due.isoformat()}",
                    entry,
                    f"oomnitza-connect: integration {entry.name} missed its run due at "
                    f"{due.isoformat(timespec='minutes')}",
                    f"The run of integration '{entry.name}' (schedule '{entry.schedule}') "
                    f"was due at {due.isoformat(timespec='minutes')} and had not started "
                    f"{missed_after.total_seconds() / 60:.0f} minutes later.\n"
                    "Check that beat is running once and that workers take tasks from "
                    "the queue: `oomnitza-connect beat`, `oomnitza-connect worker`.",
                )
            )
        for session in overdue_sessions(ledger, now, launched):
            entry = launched[session.integration]
            notices.append(
                (
                    f"overdue:{session.id}",
                    entry,
                    f"oomnitza-connect: integration {entry.name} has been running for more "
                    "than 24 hours",
                    f"Sync session {session.id} of integration '{entry.name}' started at "
                    f"{session.started_at.isoformat(timespec='minutes')} and has not "
                    "completed.\nIf its worker died, the next run marks it interrupted and "
                    f"resumes: `oomnitza-connect sessions show {session.id}`.",
                )
            )
    for key, entry, subject, body in notices:
        if not client.set(f"{_NOTIFIED}:{key}", "1", nx=True, ex=_REMEMBER_NOTICE):
            continue
        try:
            _notice(entry.contacts, subject, body)
        except Exception as exc:
            client.delete(f"{_NOTIFIED}:{key}")  # try again on the next refresh
            log.error("could not notify the contacts of %s: %s", entry.name, exc)
            continue
        log.warning("%s", subject)
        subjects.append(subject)
    return subjects
