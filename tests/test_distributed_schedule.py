"""Beat's entries follow the launched integrations; missed and long runs email the contacts.

Real Redis (redbeat's entries), a real SQLite ledger and a real SMTP server.
"""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import redis
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from oomnitza_connect.cli import main
from oomnitza_connect.distributed.config import parse_rate_budgets
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import RateBudget, SyncStatus
from oomnitza_connect.store.base import IntegrationEntry, SyncPlan
from oomnitza_connect.store.sqlite import SQLiteStore


class Inbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch):
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_PORT", str(port))
    yield inbox
    controller.stop()


@pytest.fixture
def celery_app(redis_server, tmp_path, monkeypatch):
    url = redis_server.url_for(11)
    redis.Redis.from_url(url).flushdb()
    monkeypatch.setenv("OOMNITZA_CONNECT_REDIS_URL", url)
    monkeypatch.setenv("OOMNITZA_CONNECT_LEDGER", str(tmp_path / "ledger.db"))
    from oomnitza_connect.distributed import app as app_module

    app_module.worker_config.cache_clear()
    app_module.redis_client.cache_clear()
    app_module.app.conf.update(broker_url=url, result_backend=url, redbeat_redis_url=url)
    if hasattr(app_module.app, "redbeat_redis"):
        del app_module.app.redbeat_redis
    yield app_module.app
    app_module.worker_config.cache_clear()
    app_module.redis_client.cache_clear()


def launch(ledger_path, name, schedule, *, launched_at=None, contacts=("it@example.test",)):
    with SQLiteStore(ledger_path) as ledger:
        ledger.save_integration(
            IntegrationEntry(
                name=name,
                vendor="slack",
                active=True,
                schedule=schedule,
                contacts=contacts,
                source=f"/etc/oomnitza/{name}.toml",
                launched_at=launched_at or datetime.now(UTC),
            )
        )


def test_launched_integrations_become_redbeat_entries(celery_app, tmp_path):
    from redbeat import RedBeatSchedulerEntry

    from oomnitza_connect.distributed.schedule import refresh_schedule

    ledger = tmp_path / "ledger.db"
    launch(ledger, "tenant-a", "daily at 06:30")
    launch(ledger, "tenant-b", "every 15 minutes")
    launch(ledger, "tenant-c", "manual")
    assert refresh_schedule(celery_app) == {
        "tenant-a": "daily at 06:30",
        "tenant-b": "every 15 minutes",
    }
    prefix = celery_app.conf.redbeat_key_prefix + "integration:"
    daily = RedBeatSchedulerEntry.from_key(prefix + "tenant-a", app=celery_app)
    assert daily.task == "oomnitza_connect.run_integration"
    assert daily.args == ["tenant-a"]
    assert daily.schedule.hour == {6}
    assert daily.schedule.minute == {30}
    every = RedBeatSchedulerEntry.from_key(prefix + "tenant-b", app=celery_app)
    assert every.schedule.run_every == timedelta(minutes=15)
    with pytest.raises(KeyError):
        RedBeatSchedulerEntry.from_key(prefix + "tenant-c", app=celery_app)
    # Stopped (no longer active): its entry goes.
    with SQLiteStore(ledger) as store:
        entry = next(e for e in store.list_integrations() if e.name == "tenant-b")
        store.save_integration(attrs.evolve(entry, active=False))
    assert refresh_schedule(celery_app) == {"tenant-a": "daily at 06:30"}
    with pytest.raises(KeyError):
        RedBeatSchedulerEntry.from_key(prefix + "tenant-b", app=celery_app)


def test_a_missed_run_and_a_run_past_24_hours_are_notified_once(celery_app, tmp_path, smtp):
    from oomnitza_connect.distributed.schedule import notify_overdue

    ledger_path = tmp_path / "ledger.db"
    now = datetime.now(UTC)
    # Launched two days ago, hourly, and never ran: its run is long overdue.
    launch(ledger_path, "tenant-missed", "hourly", launched_at=now - timedelta(days=2))
    launch(ledger_path, "tenant-long", "manual", contacts=("ops@example.test",))
    _running_session(ledger_path, "tenant-long", started=now - timedelta(hours=25))
    subjects = notify_overdue(now)
    assert len(subjects) == 2
    assert any("tenant-missed missed its run" in s for s in subjects)
    assert any("tenant-long has been running for more than 24 hours" in s for s in subjects)
    recipients = sorted(to for to, _ in smtp.messages for to in to)
    assert recipients == ["it@example.test", "ops@example.test"]
    assert notify_overdue(now) == []  # once each
    assert len(smtp.messages) == 2


def _running_session(ledger_path, name, *, started):
    import sqlite3

    with SQLiteStore(ledger_path) as ledger:
        session = ledger.start_session(SyncPlan(integration=name, vendor="slack", sync_key="email"))
    # A worker elsewhere is still on it (another host): only the clock says it is late.
    with sqlite3.connect(ledger_path) as db:
        db.execute(
            "UPDATE sync_sessions SET started_at = ?, host = 'elsewhere' WHERE id = ?",
            (started.isoformat(), session.id),
        )
    with SQLiteStore(ledger_path) as ledger:
        assert ledger.get_session(session.id).status == SyncStatus.RUNNING


def test_rate_budget_overrides_are_checked():
    assert parse_rate_budgets("slack:users.list=100/5, slack:*=600") == {
        "slack": [RateBudget("users.list", 100, burst=5), RateBudget("*", 600, burst=1)]
    }
    with pytest.raises(ConfigurationError) as raised:
        parse_rate_budgets("slack:users.list=fast")
    assert "OOMNITZA_CONNECT_RATE_BUDGETS" in str(raised.value)
    assert "PER_MINUTE" in str(raised.value)


def test_worker_without_the_extra_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "celery", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "oomnitza_connect.distributed.app", raising=False)
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    assert "pip install 'oomnitza-connect[celery]'" in result.output


def test_a_bad_rate_budget_on_the_command_line_is_bad_usage():
    result = CliRunner().invoke(main, ["worker", "--rate-budget", "slack=1"])
    assert result.exit_code == 2
    assert "--rate-budget" in result.output


def test_a_postgresql_ledger_url_is_kept_and_its_password_never_shown():
    from oomnitza_connect.distributed.config import WorkerConfig

    url = "postgresql://worker:hunter2-secret@db.internal/ledger"
    config = WorkerConfig.from_environment({"OOMNITZA_CONNECT_LEDGER": url})
    assert config.ledger == url
    assert "hunter2-secret" not in repr(config)
    assert "postgresql://worker:**********@db.internal/ledger" in repr(config)


def test_one_bad_schedule_does_not_hide_the_others_missed_runs(celery_app, tmp_path, smtp):
    from oomnitza_connect.distributed.schedule import missed_runs, notify_overdue

    ledger_path = tmp_path / "ledger.db"
    now = datetime.now(UTC)
    # Stored before schedules were bounded: it used to overflow in next_run.
    launch(ledger_path, "a-huge", "every 9999999999 hours", launched_at=now - timedelta(days=2))
    # The longest allowed interval, from a launch time near the last date there is.
    launch(ledger_path, "b-far", "every 8760 hours", launched_at=datetime(9999, 6, 1, tzinfo=UTC))
    launch(ledger_path, "c-missed", "hourly", launched_at=now - timedelta(days=2))
    with SQLiteStore(ledger_path) as ledger:
        assert [entry.name for entry, _ in missed_runs(ledger, now, timedelta(minutes=30))] == [
            "c-missed"
        ]
    subjects = notify_overdue(now)
    assert len(subjects) == 1
    assert "c-missed missed its run" in subjects[0]
    assert len(smtp.messages) == 1
