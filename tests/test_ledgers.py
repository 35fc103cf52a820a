"""The ledger's behaviour, the same against SQLite and a real PostgreSQL server.

Sessions with their counts and errors, a test run's plan in pages, the run's
bookkeeping, who vanished between runs, portions continued after an
interruption, integrations, workflow runs, and which sessions a new run marks
``interrupted``. The PostgreSQL cases run on the test kit's own cluster
(skipped, with the reason, only where the server binaries are not installed).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oomnitza_connect.errors import StoreError
from oomnitza_connect.models import RecordError, SyncCounts, SyncStatus, WorkflowRun
from oomnitza_connect.store.base import (
    BatchOutcome,
    IntegrationEntry,
    Ledger,
    SyncPlan,
    VanishedPerson,
)
from oomnitza_connect.store.sqlite import SQLiteStore

_databases = itertools.count()


@pytest.fixture(scope="module")
def ledger_database(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database(f"ledgers_{next(_databases)}_{id(request)}"))


@pytest.fixture
def postgres_url(ledger_database: str) -> str:
    """A schema of its own on the session's PostgreSQL cluster (a new database costs
    a checkpoint; a schema is instant), chosen by libpq's ``options`` in the URL."""
    import psycopg

    schema = f"test_{next(_databases)}"
    with psycopg.connect(ledger_database, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return f"{ledger_database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Ledger]:
    opened: Ledger
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "ledger.db")
    else:
        from oomnitza_connect.store.postgres import PostgresLedger

        opened = PostgresLedger(request.getfixturevalue("postgres_url"))
    try:
        yield opened
    finally:
        opened.close()


def plan(integration: str = "acme-main") -> SyncPlan:
    return SyncPlan(integration=integration, vendor="acme", sync_key="email")


def set_owner(ledger: Ledger, session_id: str, pid: int, host: str) -> None:
    """Pretend *session_id* was started by process *pid* on *host*."""
    if isinstance(ledger, SQLiteStore):
        ledger._db.execute(
            "UPDATE sync_sessions SET pid = ?, host = ? WHERE id = ?", (pid, host, session_id)
        )
    else:
        ledger._db.execute(  # type: ignore[attr-defined]
            "UPDATE sync_sessions SET pid = %s, host = %s WHERE id = %s", (pid, host, session_id)
        )


def forget_running(ledger: Ledger, session_id: str) -> None:
    """Make *session_id* look like another process's run (this one did not start it)."""
    if isinstance(ledger, SQLiteStore):
        ledger._active_session = None
    else:
        ledger._running.discard(session_id)  # type: ignore[attr-defined]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_session_keeps_its_counts_errors_and_end(ledger):
    session = ledger.start_session(plan())
    assert ledger.get_session(session.id).status == SyncStatus.RUNNING
    ledger.record_batch(
        session.id,
        BatchOutcome(
            counts=SyncCounts(created=3, unchanged=1, failed=2),
            errors=(
                RecordError(vendor_user_id="u1", reason="no email"),
                RecordError(vendor_user_id="u2", reason="bad date", field="hired"),
            ),
        ),
    )
    ledger.record_batch(session.id, BatchOutcome(counts=SyncCounts(updated=4, skipped=1)))
    finished = ledger.finish_session(
        session.id,
        status=SyncStatus.COMPLETED_WITH_ERRORS,
        message="2 records failed",
        vanished=[VanishedPerson("u9", "gone@example.com")],
    )
    assert finished.status == SyncStatus.COMPLETED_WITH_ERRORS
    assert finished.counts == SyncCounts(3, 4, 1, 1, 2, 1)
    assert finished.message == "2 records failed"
    assert finished.ended_at is not None
    assert finished.ended_at >= finished.started_at
    assert finished.started_at.tzinfo is not None
    assert [(e.vendor_user_id, e.field, e.reason) for e in finished.errors] == [
        ("u1", None, "no email"),
        ("u2", "hired", "bad date"),
    ]
    assert list(ledger.iter_vanished(session.id)) == [VanishedPerson("u9", "gone@example.com")]
    assert ledger.get_session("no-such-session") is None


def test_sessions_are_listed_newest_first_by_integration_and_limit(ledger):
    ids = []
    for integration in ("a", "b", "a", "a"):
        session = ledger.start_session(plan(integration))
        ledger.finish_session(session.id, status=SyncStatus.SUCCEEDED)
        ids.append(session.id)
    assert [s.id for s in ledger.list_sessions()] == ids[::-1]
    assert [s.id for s in ledger.list_sessions(integration="a", limit=2)] == [ids[3], ids[2]]
    assert [s.id for s in ledger.list_sessions(integration="b")] == [ids[1]]
    assert all(s.errors == () for s in ledger.list_sessions())


def test_a_test_runs_plan_pages_in_order(ledger):
    session = ledger.start_session(plan(), test_run=True)
    entries = [
        {"action": "create", "vendor_user_id": f"u{i}", "fields": {"email": f"u{i}@x.io"}}
        for i in range(1234)
    ]
    for start in range(0, len(entries), 300):
        ledger.record_batch(
            session.id,
            BatchOutcome(
                counts=SyncCounts(created=300), payload=tuple(entries[start : start + 300])
            ),
        )
    ledger.finish_session(session.id, status=SyncStatus.SUCCEEDED)
    assert list(ledger.iter_plan(session.id)) == entries
    assert list(ledger.iter_plan(session.id, offset=498, limit=7)) == entries[498:505]
    assert list(ledger.iter_plan(session.id, offset=1200)) == entries[1200:]
    assert list(ledger.iter_plan(session.id, offset=5000)) == []
    shown = ledger.get_session(session.id, with_payload=True)
    assert shown.payload[0]["fields"] == {"email": "u0@x.io"}
    assert len(shown.payload) == 1234
    assert shown.test_run


def test_the_run_book_remembers_values_and_users_of_its_session_only(ledger):
    first = ledger.start_session(plan())
    book = ledger.run_book(first.id)
    assert book.repeated(["a@x.io", "b@x.io"]) == set()
    assert book.repeated(["b@x.io", "c@x.io"]) == {"b@x.io"}
    users = [(f"u{i:05}", f"u{i}@x.io") for i in range(2500)]
    book.mark_seen(users)
    book.mark_seen([("u00001", "other@x.io"), ("late", None)])
    assert book.unseen(["u00001", "u02499", "nobody"]) == {"nobody"}
    seen = dict(book.iter_seen())
    assert len(seen) == 2501
    assert seen["u00001"] == "u1@x.io"  # the first pair seen is kept
    assert seen["late"] is None
    ledger.finish_session(first.id, status=SyncStatus.SUCCEEDED)

    second = ledger.start_session(plan())
    other = ledger.run_book(second.id)
    assert other.repeated(["a@x.io"]) == set()
    assert other.unseen(["u00001"]) == {"u00001"}
    ledger.finish_session(second.id, status=SyncStatus.SUCCEEDED)


def test_a_run_book_or_batch_of_a_session_this_ledger_did_not_start_is_refused(ledger):
    with pytest.raises(StoreError):
        ledger.run_book("not-a-running-session")
    with pytest.raises(StoreError):
        ledger.record_batch("not-a-running-session", BatchOutcome(counts=SyncCounts()))


def run_members(ledger: Ledger, users: list[str], *, test_run: bool = False) -> list[str]:
    session = ledger.start_session(plan(), test_run=test_run)
    book = ledger.run_book(session.id)
    book.mark_seen([(user, f"{user}@x.io") for user in users])
    vanished = ledger.remember_members("acme-main", book, test_run=test_run)
    ledger.finish_session(session.id, status=SyncStatus.SUCCEEDED, vanished=vanished)
    return [v.vendor_user_id for v in vanished]


def test_members_who_left_between_complete_runs_are_found(ledger):
    assert run_members(ledger, ["u1", "u2", "u3"]) == []
    # A test run only compares: it remembers nothing.
    assert run_members(ledger, ["u1"], test_run=True) == ["u2", "u3"]
    assert run_members(ledger, ["u1", "u3", "u4"]) == ["u2"]
    assert run_members(ledger, ["u4"]) == ["u1", "u3"]
    assert run_members(ledger, ["u4"]) == []


def test_an_interrupted_runs_portion_is_continued_and_a_finalized_one_never(ledger):
    first = ledger.start_session(plan())
    portion, acknowledged = ledger.open_portion_log("acme-main", first.id, test_run=False)
    assert acknowledged == {}
    ledger.acknowledge_batch(portion, 0, "digest-0")
    ledger.acknowledge_batch(portion, 1, "digest-1")
    ledger.finish_session(first.id, status=SyncStatus.INTERRUPTED)

    second = ledger.start_session(plan())
    assert ledger.open_portion_log("acme-main", second.id, test_run=False) == (
        portion,
        {0: "digest-0", 1: "digest-1"},
    )
    ledger.portion_finalized(portion)
    ledger.finish_session(second.id, status=SyncStatus.INTERRUPTED)

    third = ledger.start_session(plan())
    fresh, acknowledged = ledger.open_portion_log("acme-main", third.id, test_run=False)
    assert fresh != portion
    assert acknowledged == {}
    test_run = ledger.start_session(plan(), test_run=True)
    assert ledger.open_portion_log("acme-main", test_run.id, test_run=True)[0] not in (
        portion,
        fresh,
    )


def test_integrations_are_saved_updated_and_listed_by_name(ledger):
    launched = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    ledger.save_integration(
        IntegrationEntry("zoom", "zoom", active=False, schedule="@daily", contacts=())
    )
    ledger.save_integration(
        IntegrationEntry(
            "acme",
            "acme",
            active=True,
            schedule="0 * * * *",
            contacts=("ops@example.com", "https://hooks.example.com/x"),
            source="/etc/acme.toml",
            launched_at=launched,
        )
    )
    ledger.save_integration(
        IntegrationEntry("zoom", "zoom", active=True, schedule="@hourly", contacts=("a@b.io",))
    )
    entries = ledger.list_integrations()
    assert [e.name for e in entries] == ["acme", "zoom"]
    acme, zoom = entries
    assert acme.contacts == ("ops@example.com", "https://hooks.example.com/x")
    assert acme.source == "/etc/acme.toml"
    assert acme.launched_at == launched
    assert (zoom.active, zoom.schedule, zoom.contacts) == (True, "@hourly", ("a@b.io",))
    ledger.save_integration(IntegrationEntry("acme", "acme", active=False, schedule="@daily"))
    assert [e.name for e in ledger.list_integrations(active_only=True)] == ["zoom"]


def test_workflow_runs_come_back_newest_first_and_filtered(ledger):
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    runs = [
        WorkflowRun(
            id=f"run-{i}",
            vendor="slack" if i % 2 else "zoom",
            preset="deactivate" if i % 3 else "invite",
            started_at=start + timedelta(minutes=i % 450),
            ok=i % 5 != 0,
            person_id=i if i % 4 else f"oomnitza-{i}",
            status=200 if i % 5 else 429,
            request={"method": "POST", "url": f"https://x/{i}", "body": {"n": i}},
            response=None if i % 7 == 0 else {"ok": True, "items": [i]},
            mapped={"slack_user_id": f"U{i}"},
            error=None if i % 5 else "rate limited",
            dry_run=i % 6 == 0,
        )
        for i in range(600)
    ]
    for run in runs:
        ledger.record_workflow_run(run)
    back = list(ledger.iter_workflow_runs())
    assert len(back) == 600
    assert [r.started_at for r in back] == sorted((r.started_at for r in runs), reverse=True)
    assert {r.id: r for r in back} == {r.id: r for r in runs}
    slack_invites = list(ledger.iter_workflow_runs(vendor="slack", preset="invite"))
    assert {r.id for r in slack_invites} == {
        r.id for r in runs if r.vendor == "slack" and r.preset == "invite"
    }
    # Recording a run again replaces it.
    ledger.record_workflow_run(
        WorkflowRun(id="run-3", vendor="slack", preset="x", started_at=start, ok=False)
    )
    assert next(r for r in ledger.iter_workflow_runs(preset="x")).ok is False


def test_a_new_run_marks_a_running_session_of_a_dead_process_interrupted(ledger):
    import socket

    stale = ledger.start_session(plan())
    forget_running(ledger, stale.id)
    set_owner(ledger, stale.id, dead_pid(), socket.gethostname())
    other = ledger.start_session(plan("another-integration"))
    forget_running(ledger, other.id)
    set_owner(ledger, other.id, dead_pid(), socket.gethostname())

    fresh = ledger.start_session(plan())
    marked = ledger.get_session(stale.id)
    assert marked.status == SyncStatus.INTERRUPTED
    assert "process is gone" in marked.message
    assert marked.ended_at is not None
    # Only sessions of the integration that starts are looked at.
    assert ledger.get_session(other.id).status == SyncStatus.RUNNING
    assert ledger.get_session(fresh.id).status == SyncStatus.RUNNING


def test_a_running_session_of_a_live_process_stays_running(ledger):
    import socket

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running = ledger.start_session(plan())
        forget_running(ledger, running.id)
        set_owner(ledger, running.id, alive.pid, socket.gethostname())
        ledger.start_session(plan())
        assert ledger.get_session(running.id).status == SyncStatus.RUNNING
    finally:
        alive.kill()
        alive.wait()


# -- PostgreSQL only: several machines, one ledger ------------------------------


@pytest.fixture
def pg_ledger(postgres_url: str) -> Iterator[Any]:
    from oomnitza_connect.store.postgres import PostgresLedger

    with PostgresLedger(postgres_url) as opened:
        yield opened


def test_another_machines_running_session_is_left_alone_unless_the_run_lock_says(
    pg_ledger, postgres_url
):
    from oomnitza_connect.store.postgres import PostgresLedger

    with PostgresLedger(postgres_url) as elsewhere:
        remote = elsewhere.start_session(plan())
    # Its pid means nothing here: only another host's process could tell.
    set_owner(pg_ledger, remote.id, dead_pid(), "worker-7.internal")
    pg_ledger.start_session(plan())
    assert pg_ledger.get_session(remote.id).status == SyncStatus.RUNNING

    # A worker that holds the integration's run lock knows no other run is alive.
    with pg_ledger.holds_run_lock("acme-main"):
        ours = pg_ledger.start_session(plan())
    assert pg_ledger.get_session(remote.id).status == SyncStatus.INTERRUPTED
    # Nor is a session of this very ledger marked, lock or not.
    assert pg_ledger.get_session(ours.id).status == SyncStatus.RUNNING


def test_workers_opening_one_database_together_share_its_sessions(postgres_url):
    from oomnitza_connect.store.postgres import PostgresLedger

    opened: list[PostgresLedger] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresLedger(postgres_url))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        first, second = opened[0], opened[1]
        session = first.start_session(plan())
        first.record_batch(session.id, BatchOutcome(counts=SyncCounts(created=2)))
        first.finish_session(session.id, status=SyncStatus.SUCCEEDED)
        seen = second.get_session(session.id)
        assert seen is not None
        assert seen.counts.created == 2
    finally:
        for ledger in opened:
            ledger.close()


def test_the_urls_password_is_never_shown(postgres_server):
    from oomnitza_connect.store.postgres import PostgresLedger, redact_url

    secret = "s3cret-Passw0rd"
    url = postgres_server.dsn_for("no_such_database").replace("oomnitza@", f"oomnitza:{secret}@")
    with pytest.raises(StoreError) as raised:
        PostgresLedger(url)
    assert secret not in str(raised.value)
    assert "no_such_database" in str(raised.value)
    assert "**********" in str(raised.value)

    good = postgres_server.create_database(f"redacted_{next(_databases)}")
    with PostgresLedger(good.replace("oomnitza@", f"oomnitza:{secret}@")) as opened:
        assert secret not in repr(opened)
        assert secret not in opened.url
    assert secret not in redact_url(f"postgresql://u@h/db?sslmode=require&password={secret}")


def test_a_closed_port_is_a_clear_store_error(postgres_server):
    from oomnitza_connect.store.postgres import PostgresLedger
    from oomnitza_connect.testing.services import free_port

    with pytest.raises(StoreError) as raised:
        PostgresLedger(f"postgresql://u:pw-secret-1@127.0.0.1:{free_port()}/x", connect_timeout=2)
    assert "cannot open the PostgreSQL ledger" in str(raised.value)
    assert "pw-secret-1" not in str(raised.value)
