"""The shared ledger: sessions, errors, plans, integrations and workflow runs in PostgreSQL.

When Celery workers run on several machines, a SQLite file cannot be their
common ledger; a PostgreSQL database can (``OOMNITZA_CONNECT_LEDGER`` /
``--ledger postgresql://user:password@host/db``). It holds no people: those
live in the destination (Oomnitza, or a SQLite file an integration names).

The schema is created on first open (under an advisory lock, so workers that
start together do not race). A run's bookkeeping (the sync values and vendor
users it has seen) lives in ``UNLOGGED`` tables keyed by session: they skip
the write-ahead log, since a crash loses nothing a rerun would not rebuild.

The URL's password is never shown: it is masked in the ledger's repr, in
error messages and (registered as a secret) in logs.
"""

# Queries interpolate only constant column lists, never values.
# ruff: noqa: S608

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import StoreError
from ..models import RecordError, SyncSession, SyncStatus, WorkflowRun
from ..redaction import MASK, Secret, redact
from .base import BatchOutcome, IntegrationEntry, Ledger, RunBook, SyncPlan, VanishedPerson
from .rows import (
    SESSION_COLUMNS,
    WORKFLOW_RUN_COLUMNS,
    chunked,
    session_from_row,
    workflow_run_from_row,
)
from .sqlite import _dumps, _pid_alive

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresLedger", "is_postgres_url", "open_ledger", "redact_url"]

T = TypeVar("T")

_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_LOCK = 0x6F6F6D6E  # pg_advisory_xact_lock key: "oomn"
_SCHEMA_VERSION = "1"
_PAGE = 500
_CHUNK = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_sessions (
    seq BIGSERIAL UNIQUE,
    id TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    vendor TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    status TEXT NOT NULL,
    test_run BOOLEAN NOT NULL,
    created BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    vanished BIGINT NOT NULL DEFAULT 0,
    message TEXT,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS sync_sessions_by_start ON sync_sessions (started_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS sync_sessions_running ON sync_sessions (integration)
    WHERE status = 'running';
CREATE TABLE IF NOT EXISTS session_errors (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    vendor_user_id TEXT,
    field TEXT,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS session_errors_by_session ON session_errors (session_id, id);
CREATE TABLE IF NOT EXISTS session_payload (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS session_payload_by_session ON session_payload (session_id, id);
CREATE TABLE IF NOT EXISTS session_vanished (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    sync_value TEXT
);
CREATE INDEX IF NOT EXISTS session_vanished_by_session ON session_vanished (session_id, id);
CREATE TABLE IF NOT EXISTS portions (
    portion TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    session_id TEXT NOT NULL,
    test_run BOOLEAN NOT NULL,
    finalized BOOLEAN NOT NULL DEFAULT FALSE,
    started_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS portion_batches (
    portion TEXT NOT NULL,
    batch INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (portion, batch)
);
CREATE TABLE IF NOT EXISTS members (
    integration TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    sync_value TEXT,
    PRIMARY KEY (integration, vendor_user_id)
);
CREATE TABLE IF NOT EXISTS integrations (
    name TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    schedule TEXT NOT NULL,
    contacts JSONB NOT NULL,
    source TEXT,
    launched_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS workflow_runs (
    seq BIGSERIAL UNIQUE,
    id TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    preset TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ok BOOLEAN NOT NULL,
    person_id JSONB,
    status INTEGER,
    request JSONB NOT NULL,
    response JSONB,
    mapped JSONB NOT NULL,
    error TEXT,
    dry_run BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_runs_by_start ON workflow_runs (started_at DESC, seq DESC);
CREATE UNLOGGED TABLE IF NOT EXISTS run_keys (
    session_id TEXT NOT NULL,
    sync_value TEXT NOT NULL,
    PRIMARY KEY (session_id, sync_value)
);
CREATE UNLOGGED TABLE IF NOT EXISTS run_seen (
    session_id TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    sync_value TEXT,
    PRIMARY KEY (session_id, vendor_user_id)
);
"""


_INTERRUPTED = (
    "the run stopped before it finished (its process is gone); batches it committed are kept"
)


def is_postgres_url(spec: object) -> bool:
    """Whether *spec* (an option's or variable's value) names a PostgreSQL ledger."""
    return isinstance(spec, str) and spec.startswith(_SCHEMES)


def redact_url(url: str) -> str:
    """Return *url* with its password (in the authority or as ``?password=``) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, colon, _password = credentials.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = [
            (key, MASK if key.lower() == "password" else value)
            for key, value in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _password_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query):
        if key.lower() == "password":
            return value
    return None


def open_ledger(spec: str | Path | None = None) -> Ledger:
    """Open the ledger *spec* names: a ``postgresql://`` URL or a SQLite file.

    ``None`` is the default SQLite file (the one ``sync`` uses).
    """
    if is_postgres_url(spec):
        return PostgresLedger(str(spec))
    from .paths import default_db_path
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(spec) if spec else default_db_path())


class PostgresLedger(Ledger):
    """The ledger in a PostgreSQL database, shared by workers on several machines.

    One connection per ledger, used under a lock (the sync engine writes
    batches from its own thread).

    :param url: ``postgresql://user:password@host:port/database`` (libpq's URL
        form; ``?sslmode=verify-full`` and the other libpq parameters apply).
    :param connect_timeout: seconds to wait for the server.
    :raises StoreError: the server cannot be reached or refuses the login
        (the message never holds the password).
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        if not is_postgres_url(url):
            raise StoreError(
                f"{redact_url(url)!r} is not a PostgreSQL URL (postgresql://user@host/database)"
            )
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                "the PostgreSQL ledger needs psycopg; install it with: "
                "pip install 'oomnitza-connect[postgres]'"
            ) from None
        password = _password_of(url)
        self._password = Secret(password) if password else None
        self._url = Secret(url)
        self.url = redact_url(url)
        """The URL with its password masked (safe to show)."""
        self._lock = threading.RLock()
        self._running: set[str] = set()
        self._run_locks: set[str] = set()
        self._psycopg = psycopg
        try:
            self._db: psycopg.Connection[Any] = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, int(connect_timeout)),
                application_name="oomnitza-connect",
            )
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot open the PostgreSQL ledger at {self.url}: {self._redact(exc)}"
            ) from None
        try:
            self._db.execute("SET TIME ZONE 'UTC'")
            with self._db.transaction():
                # CREATE ... IF NOT EXISTS is not safe against a concurrent
                # CREATE; workers starting together take turns.
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._db.execute(_SCHEMA)
                self._db.execute(
                    "INSERT INTO ledger_meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (_SCHEMA_VERSION,),
                )
        except psycopg.Error as exc:
            self._db.close()
            raise StoreError(
                f"cannot create the ledger's tables in {self.url}: {self._redact(exc)}"
            ) from None

    def __repr__(self) -> str:
        return f"<PostgresLedger {self.url}>"

    # -- helpers --------------------------------------------------------------

    def _redact(self, exc: BaseException) -> str:
        text = str(exc).strip()
        extra = [self._url.reveal()]
        if self._password is not None:
            extra.append(self._password.reveal())
        return redact(text, extra)

    def _fail(self, what: str, exc: Exception) -> StoreError:
        return StoreError(
            f"the PostgreSQL ledger at {self.url} could not {what}: {self._redact(exc)}"
        )

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(query, params).fetchall()
            except self._psycopg.Error as exc:
                raise self._fail("be read", exc) from None

    def _jsonb(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=_dumps)

    def _check_running(self, session_id: str) -> None:
        if session_id not in self._running:
            raise StoreError(f"session {session_id} is not a run this ledger started")

    def holds_run_lock(self, integration: str) -> _RunLockHeld:
        """Say, for a ``with`` block, that this process holds *integration*'s run lock.

        Then every other session of it still marked ``running`` is over, on
        whatever machine it ran: :meth:`start_session` marks it ``interrupted``.
        Without it, only sessions of this host whose process is gone are.
        """
        return _RunLockHeld(self, integration)

    # -- sessions ---------------------------------------------------------------

    def start_session(self, plan: SyncPlan, *, test_run: bool = False) -> SyncSession:
        session = SyncSession(
            id=uuid.uuid4().hex,
            integration=plan.integration,
            vendor=plan.vendor,
            started_at=datetime.now(UTC),
            status=SyncStatus.RUNNING,
            test_run=test_run,
        )
        with self._lock:
            try:
                with self._db.transaction():
                    self._mark_interrupted(plan.integration)
                    self._db.execute(
                        "INSERT INTO sync_sessions (id, integration, vendor, started_at, status, "
                        "test_run, pid, host) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            session.id,
                            session.integration,
                            session.vendor,
                            session.started_at,
                            session.status.value,
                            test_run,
                            os.getpid(),
                            socket.gethostname(),
                        ),
                    )
            except self._psycopg.Error as exc:
                raise self._fail("start a session", exc) from None
            self._running.add(session.id)
        return session

    def _mark_interrupted(self, integration: str) -> None:
        rows = self._db.execute(
            "SELECT id, pid, host FROM sync_sessions WHERE status = %s AND integration = %s "
            "FOR UPDATE",
            (SyncStatus.RUNNING.value, integration),
        ).fetchall()
        host = socket.gethostname()
        lock_held = integration in self._run_locks
        gone: list[str] = []
        for session_id, pid, session_host in rows:
            if session_id in self._running:
                continue
            if not lock_held:
                # Another machine's process cannot be checked from here: its
                # run lock (held by the caller, see holds_run_lock) can.
                if session_host != host:
                    continue
                if pid is not None and pid != os.getpid() and _pid_alive(pid):
                    continue
            gone.append(session_id)
        if not gone:
            return
        self._db.execute(
            "UPDATE sync_sessions SET status = %s, ended_at = %s, message = %s "
            "WHERE id = ANY(%s) AND status = %s",
            (
                SyncStatus.INTERRUPTED.value,
                datetime.now(UTC),
                _INTERRUPTED,
                gone,
                SyncStatus.RUNNING.value,
            ),
        )
        self._db.execute("DELETE FROM run_keys WHERE session_id = ANY(%s)", (gone,))
        self._db.execute("DELETE FROM run_seen WHERE session_id = ANY(%s)", (gone,))

    def run_book(self, session_id: str) -> RunBook:
        self._check_running(session_id)
        return _PostgresRunBook(self, session_id)

    def record_batch(
        self,
        session_id: str,
        outcome: BatchOutcome,
        *,
        write: Callable[[], None] | None = None,
    ) -> None:
        self._check_running(session_id)
        counts = outcome.counts
        with self._lock:
            try:
                # The destination is another database: its write goes first,
                # inside this transaction, so a failed write records nothing.
                with self._db.transaction(), self._db.cursor() as cursor:
                    if write is not None:
                        write()
                    cursor.execute(
                        "UPDATE sync_sessions SET created = created + %s, "
                        "updated = updated + %s, unchanged = unchanged + %s, "
                        "skipped = skipped + %s, failed = failed + %s WHERE id = %s",
                        (
                            counts.created,
                            counts.updated,
                            counts.unchanged,
                            counts.skipped,
                            counts.failed,
                            session_id,
                        ),
                    )
                    if outcome.errors:
                        cursor.executemany(
                            "INSERT INTO session_errors (session_id, vendor_user_id, field, "
                            "reason) VALUES (%s, %s, %s, %s)",
                            [
                                (session_id, e.vendor_user_id, e.field, e.reason)
                                for e in outcome.errors
                            ],
                        )
                    if outcome.payload:
                        cursor.executemany(
                            "INSERT INTO session_payload (session_id, record) VALUES (%s, %s)",
                            [(session_id, self._jsonb(entry)) for entry in outcome.payload],
                        )
            except self._psycopg.Error as exc:
                raise StoreError(
                    f"the PostgreSQL ledger at {self.url} could not record a batch "
                    f"(nothing of it was kept): {self._redact(exc)}"
                ) from None

    def finish_session(
        self,
        session_id: str,
        *,
        status: SyncStatus,
        message: str | None = None,
        vanished: Sequence[VanishedPerson] = (),
    ) -> SyncSession:
        with self._lock:
            try:
                with self._db.transaction(), self._db.cursor() as cursor:
                    if vanished:
                        cursor.executemany(
                            "INSERT INTO session_vanished (session_id, vendor_user_id, "
                            "sync_value) VALUES (%s, %s, %s)",
                            [(session_id, v.vendor_user_id, v.sync_value) for v in vanished],
                        )
                    cursor.execute(
                        "UPDATE sync_sessions SET status = %s, ended_at = %s, message = %s, "
                        "vanished = %s WHERE id = %s",
                        (status.value, datetime.now(UTC), message, len(vanished), session_id),
                    )
                    cursor.execute("DELETE FROM run_keys WHERE session_id = %s", (session_id,))
                    cursor.execute("DELETE FROM run_seen WHERE session_id = %s", (session_id,))
            except self._psycopg.Error as exc:
                raise self._fail("finish a session", exc) from None
            self._running.discard(session_id)
        session = self.get_session(session_id)
        if session is None:
            raise StoreError(f"session {session_id} disappeared from the ledger at {self.url}")
        return session

    def remember_members(
        self, integration: str, book: RunBook, *, test_run: bool
    ) -> list[VanishedPerson]:
        with self._lock:
            try:
                with self._db.transaction(), self._db.cursor() as cursor:
                    if isinstance(book, _PostgresRunBook) and book.ledger is self:
                        rows = cursor.execute(
                            "SELECT m.vendor_user_id, m.sync_value FROM members m "
                            "WHERE m.integration = %s AND NOT EXISTS (SELECT 1 FROM run_seen r "
                            "WHERE r.session_id = %s AND r.vendor_user_id = m.vendor_user_id) "
                            "ORDER BY m.vendor_user_id",
                            (integration, book.session_id),
                        ).fetchall()
                    else:
                        every = cursor.execute(
                            "SELECT vendor_user_id, sync_value FROM members "
                            "WHERE integration = %s ORDER BY vendor_user_id",
                            (integration,),
                        ).fetchall()
                        rows = []
                        for chunk in chunked(every, _PAGE):
                            missing = book.unseen([row[0] for row in chunk])
                            rows.extend(row for row in chunk if row[0] in missing)
                    if not test_run:
                        cursor.execute(
                            "DELETE FROM members WHERE integration = %s "
                            "AND vendor_user_id = ANY(%s)",
                            (integration, [user_id for user_id, _ in rows]),
                        )
                        if isinstance(book, _PostgresRunBook) and book.ledger is self:
                            cursor.execute(
                                "INSERT INTO members (integration, vendor_user_id, sync_value) "
                                "SELECT %s, vendor_user_id, sync_value FROM run_seen "
                                "WHERE session_id = %s ON CONFLICT (integration, vendor_user_id) "
                                "DO UPDATE SET sync_value = "
                                "coalesce(excluded.sync_value, members.sync_value)",
                                (integration, book.session_id),
                            )
                        else:
                            for seen in chunked(book.iter_seen(), _CHUNK):
                                cursor.executemany(
                                    "INSERT INTO members (integration, vendor_user_id, "
                                    "sync_value) VALUES (%s, %s, %s) ON CONFLICT "
                                    "(integration, vendor_user_id) DO UPDATE SET sync_value = "
                                    "coalesce(excluded.sync_value, members.sync_value)",
                                    [(integration, user_id, value) for user_id, value in seen],
                                )
            except self._psycopg.Error as exc:
                raise self._fail("remember the run's members", exc) from None
        return [VanishedPerson(user_id, value) for user_id, value in rows]

    # -- portions -------------------------------------------------------------

    def open_portion_log(
        self, integration: str, session_id: str, *, test_run: bool
    ) -> tuple[str, dict[int, str]]:
        with self._lock:
            try:
                with self._db.transaction():
                    row = None
                    if not test_run:
                        row = self._db.execute(
                            "SELECT p.portion FROM portions p JOIN sync_sessions s "
                            "ON s.id = p.session_id WHERE p.integration = %s "
                            "AND NOT p.finalized AND NOT p.test_run AND s.status = %s "
                            "ORDER BY p.started_at DESC LIMIT 1 FOR UPDATE OF p",
                            (integration, SyncStatus.INTERRUPTED.value),
                        ).fetchone()
                    if row is not None:
                        portion = str(row[0])
                        self._db.execute(
                            "UPDATE portions SET session_id = %s WHERE portion = %s",
                            (session_id, portion),
                        )
                        acknowledged = {
                            int(batch): str(digest)
                            for batch, digest in self._db.execute(
                                "SELECT batch, digest FROM portion_batches WHERE portion = %s",
                                (portion,),
                            )
                        }
                        return portion, acknowledged
                    portion = str(uuid.uuid4())
                    self._db.execute(
                        "INSERT INTO portions (portion, integration, session_id, test_run, "
                        "started_at) VALUES (%s, %s, %s, %s, %s)",
                        (portion, integration, session_id, test_run, datetime.now(UTC)),
                    )
                    return portion, {}
            except self._psycopg.Error as exc:
                raise self._fail("open a portion", exc) from None

    def acknowledge_batch(self, portion: str, index: int, digest: str) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO portion_batches (portion, batch, digest) VALUES (%s, %s, %s) "
                    "ON CONFLICT (portion, batch) DO UPDATE SET digest = excluded.digest",
                    (portion, index, digest),
                )
            except self._psycopg.Error as exc:
                raise self._fail("acknowledge a batch", exc) from None

    def portion_finalized(self, portion: str) -> None:
        with self._lock:
            try:
                with self._db.transaction():
                    self._db.execute(
                        "UPDATE portions SET finalized = TRUE WHERE portion = %s", (portion,)
                    )
                    self._db.execute("DELETE FROM portion_batches WHERE portion = %s", (portion,))
            except self._psycopg.Error as exc:
                raise self._fail("finalize a portion", exc) from None

    # -- reading sessions -------------------------------------------------------

    def get_session(self, session_id: str, *, with_payload: bool = False) -> SyncSession | None:
        with self._lock:
            found = self._rows(
                f"SELECT {SESSION_COLUMNS} FROM sync_sessions WHERE id = %s", (session_id,)
            )
            if not found:
                return None
            errors = tuple(
                RecordError(vendor_user_id=user_id, reason=reason, field=field)
                for user_id, field, reason in self._rows(
                    "SELECT vendor_user_id, field, reason FROM session_errors "
                    "WHERE session_id = %s ORDER BY id",
                    (session_id,),
                )
            )
        payload = tuple(self.iter_plan(session_id)) if with_payload else ()
        return session_from_row(found[0], errors, payload)

    def iter_plan(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> Iterator[Mapping[str, Any]]:
        # Keyset pages, so no cursor stays open between yields.
        last = 0
        skip = offset
        left = limit
        while left is None or left > 0:
            page = _PAGE if left is None else min(_PAGE, left)
            rows = self._rows(
                "SELECT id, record FROM session_payload WHERE session_id = %s AND id > %s "
                "ORDER BY id LIMIT %s OFFSET %s",
                (session_id, last, page, skip),
            )
            skip = 0
            if not rows:
                return
            for _, record in rows:
                yield record
            last = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def iter_vanished(self, session_id: str) -> Iterator[VanishedPerson]:
        last = 0
        while True:
            rows = self._rows(
                "SELECT id, vendor_user_id, sync_value FROM session_vanished "
                "WHERE session_id = %s AND id > %s ORDER BY id LIMIT %s",
                (session_id, last, _PAGE),
            )
            if not rows:
                return
            for _, user_id, value in rows:
                yield VanishedPerson(user_id, value)
            last = rows[-1][0]

    def list_sessions(
        self, *, integration: str | None = None, limit: int | None = 50
    ) -> list[SyncSession]:
        query = f"SELECT {SESSION_COLUMNS} FROM sync_sessions"
        params: list[Any] = []
        if integration is not None:
            query += " WHERE integration = %s"
            params.append(integration)
        query += " ORDER BY started_at DESC, seq DESC"
        if limit is not None:
            query += " LIMIT %s"
            params.append(limit)
        return [session_from_row(row, (), ()) for row in self._rows(query, params)]

    # -- integrations -----------------------------------------------------------

    def save_integration(self, entry: IntegrationEntry) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO integrations (name, vendor, active, schedule, contacts, source, "
                    "launched_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO "
                    "UPDATE SET vendor = excluded.vendor, active = excluded.active, "
                    "schedule = excluded.schedule, contacts = excluded.contacts, "
                    "source = excluded.source, launched_at = excluded.launched_at",
                    (
                        entry.name,
                        entry.vendor,
                        entry.active,
                        entry.schedule,
                        self._jsonb(list(entry.contacts)),
                        entry.source,
                        entry.launched_at,
                    ),
                )
            except self._psycopg.Error as exc:
                raise self._fail("save an integration", exc) from None

    def list_integrations(self, *, active_only: bool = False) -> list[IntegrationEntry]:
        query = (
            "SELECT name, vendor, active, schedule, contacts, source, launched_at FROM integrations"
        )
        if active_only:
            query += " WHERE active"
        return [
            IntegrationEntry(
                name=name,
                vendor=vendor,
                active=bool(active),
                schedule=schedule,
                contacts=tuple(contacts),
                source=source,
                launched_at=launched,
            )
            for name, vendor, active, schedule, contacts, source, launched in self._rows(
                query + " ORDER BY name"
            )
        ]

    # -- workflow runs --------------------------------------------------------

    def record_workflow_run(self, run: WorkflowRun) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO workflow_runs (id, vendor, preset, started_at, ok, person_id, "
                    "status, request, response, mapped, error, dry_run) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE "
                    "SET vendor = excluded.vendor, preset = excluded.preset, "
                    "started_at = excluded.started_at, ok = excluded.ok, "
                    "person_id = excluded.person_id, status = excluded.status, "
                    "request = excluded.request, response = excluded.response, "
                    "mapped = excluded.mapped, error = excluded.error, dry_run = excluded.dry_run",
                    (
                        run.id,
                        run.vendor,
                        run.preset,
                        run.started_at,
                        run.ok,
                        None if run.person_id is None else self._jsonb(run.person_id),
                        run.status,
                        self._jsonb(run.request),
                        None if run.response is None else self._jsonb(run.response),
                        self._jsonb(run.mapped),
                        run.error,
                        run.dry_run,
                    ),
                )
            except self._psycopg.Error as exc:
                raise self._fail("record a workflow run", exc) from None

    def iter_workflow_runs(
        self, *, vendor: str | None = None, preset: str | None = None
    ) -> Iterator[WorkflowRun]:
        clauses: list[str] = []
        params: list[Any] = []
        if vendor is not None:
            clauses.append("vendor = %s")
            params.append(vendor)
        if preset is not None:
            clauses.append("preset = %s")
            params.append(preset)
        after: tuple[datetime, int] | None = None
        while True:
            where = list(clauses)
            page_params = list(params)
            if after is not None:
                where.append("(started_at, seq) < (%s, %s)")
                page_params.extend(after)
            condition = f" WHERE {' AND '.join(where)}" if where else ""
            rows = self._rows(
                f"SELECT {WORKFLOW_RUN_COLUMNS}, seq FROM workflow_runs{condition} "
                "ORDER BY started_at DESC, seq DESC LIMIT %s",
                [*page_params, _PAGE],
            )
            if not rows:
                return
            for row in rows:
                yield workflow_run_from_row(row)
            after = (rows[-1][3], rows[-1][12])

    # -- life cycle -----------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _RunLockHeld:
    def __init__(self, ledger: PostgresLedger, integration: str) -> None:
        self.ledger = ledger
        self.integration = integration

    def __enter__(self) -> None:
        self.ledger._run_locks.add(self.integration)

    def __exit__(self, *exc_info: object) -> None:
        self.ledger._run_locks.discard(self.integration)


class _PostgresRunBook(RunBook):
    """One session's bookkeeping in the ledger's UNLOGGED tables, keyed by session."""

    def __init__(self, ledger: PostgresLedger, session_id: str) -> None:
        self.ledger = ledger
        self.session_id = session_id

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        ledger = self.ledger
        with ledger._lock:
            try:
                cursor = ledger._db.execute(query, params)
                return cursor.fetchall() if cursor.description else []
            except ledger._psycopg.Error as exc:
                raise ledger._fail("keep the run's bookkeeping", exc) from None

    def repeated(self, sync_values: Sequence[str]) -> set[str]:
        if not sync_values:
            return set()
        # One round trip: what went in is new, the rest an earlier batch had.
        inserted = self._run(
            "INSERT INTO run_keys (session_id, sync_value) SELECT %s, v FROM unnest(%s::text[]) v "
            "ON CONFLICT DO NOTHING RETURNING sync_value",
            (self.session_id, list(sync_values)),
        )
        return set(sync_values) - {row[0] for row in inserted}

    def mark_seen(self, users: Iterable[tuple[str, str | None]]) -> None:
        for chunk in chunked(users, _CHUNK):
            # A vendor user id comes once per run; the first pair seen is kept.
            self._run(
                "INSERT INTO run_seen (session_id, vendor_user_id, sync_value) "
                "SELECT %s, u, v FROM unnest(%s::text[], %s::text[]) AS t(u, v) "
                "ON CONFLICT DO NOTHING",
                (self.session_id, [u for u, _ in chunk], [v for _, v in chunk]),
            )

    def unseen(self, vendor_user_ids: Sequence[str]) -> set[str]:
        if not vendor_user_ids:
            return set()
        seen = self._run(
            "SELECT vendor_user_id FROM run_seen WHERE session_id = %s "
            "AND vendor_user_id = ANY(%s::text[])",
            (self.session_id, list(vendor_user_ids)),
        )
        return set(vendor_user_ids) - {row[0] for row in seen}

    def iter_seen(self) -> Iterator[tuple[str, str | None]]:
        last = ""
        while True:
            rows = self._run(
                "SELECT vendor_user_id, sync_value FROM run_seen WHERE session_id = %s "
                "AND vendor_user_id > %s ORDER BY vendor_user_id LIMIT 1000",
                (self.session_id, last),
            )
            if not rows:
                return
            for user_id, value in rows:
                yield str(user_id), value
            last = rows[-1][0]
