"""The embedded store: one SQLite file in WAL mode.

People keep their fields as one JSON object; every value of a unique field
(``username``, ``email``, ``external_id`` and custom fields marked unique) is
also indexed in ``person_keys``, whose primary key is what enforces
uniqueness and what the sync engine looks people up by. Which people a run
has seen is kept in connection-local temporary tables, so that detecting
people who vanished from a vendor is one SQL statement and memory does not
grow with the number of users.
"""

# Queries interpolate only constant column lists and "?" placeholder runs,
# never values, so the string-built SQL is safe.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreError
from ..models import (
    STANDARD_PERSON_FIELDS,
    UNIQUE_STANDARD_FIELDS,
    FieldType,
    Person,
    PersonId,
    RecordError,
    SaasUser,
    SyncSession,
    SyncStatus,
    UserSelection,
    WorkflowRun,
)
from ..sync.rules import json_ready, key_text
from .base import (
    BatchLookup,
    BatchOutcome,
    CustomField,
    IntegrationEntry,
    PersonWrites,
    ReadPage,
    RecalledPage,
    RunBook,
    Store,
    SyncPlan,
    VanishedPerson,
)
from .rows import (
    SESSION_COLUMNS,
    WORKFLOW_RUN_COLUMNS,
    chunked,
    session_from_row,
    workflow_run_from_row,
)

__all__ = ["SQLiteStore", "json_ready"]

T = TypeVar("T")

STANDARD_DATETIME_FIELDS = frozenset({"connector_sync_time", "last_login"})
SAAS_ROLE_TARGET = "saas_role"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    sync_key TEXT NOT NULL,
    sync_value TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS person_keys (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    PRIMARY KEY (field, value)
) WITHOUT ROWID;
-- A person's keys are released by their old values (_release_keys): an index by
-- person cost every insert a second random write (5% of a first sync).
DROP INDEX IF EXISTS person_keys_by_person;
CREATE TABLE IF NOT EXISTS person_sources (
    integration TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    vendor TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    vanished INTEGER NOT NULL DEFAULT 0,
    vanished_at TEXT,
    PRIMARY KEY (integration, person_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS person_sources_by_vendor_user
    ON person_sources (vendor, vendor_user_id);
-- Each index on a random key costs a page write per row inserted; the
-- (vendor, vendor_user_id) one serves every lookup by vendor user id.
DROP INDEX IF EXISTS person_sources_by_integration_user;
CREATE INDEX IF NOT EXISTS person_sources_by_person ON person_sources (person_id);
CREATE TABLE IF NOT EXISTS saas_apps (vendor TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS saas_users (
    vendor TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    person_id INTEGER,
    role TEXT,
    fields TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (vendor, vendor_user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS saas_users_by_person ON saas_users (person_id);
CREATE TABLE IF NOT EXISTS custom_fields (
    label TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    is_unique INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_sessions (
    id TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    vendor TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,
    test_run INTEGER NOT NULL,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    vanished INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS sync_sessions_by_start ON sync_sessions (started_at);
CREATE TABLE IF NOT EXISTS session_errors (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    vendor_user_id TEXT,
    field TEXT,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS session_errors_by_session ON session_errors (session_id);
CREATE TABLE IF NOT EXISTS session_payload (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS session_payload_by_session ON session_payload (session_id);
CREATE TABLE IF NOT EXISTS session_vanished (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    sync_value TEXT
);
CREATE INDEX IF NOT EXISTS session_vanished_by_session ON session_vanished (session_id);
-- The portions sent to a destination that matches by sync key (Oomnitza) and the
-- batches it acknowledged, so an interrupted run continues without resending.
CREATE TABLE IF NOT EXISTS portions (
    portion TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    session_id TEXT NOT NULL,
    test_run INTEGER NOT NULL,
    finalized INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS portion_batches (
    portion TEXT NOT NULL,
    batch INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (portion, batch)
) WITHOUT ROWID;
-- Who each integration's last complete run saw, for destinations that do not
-- track it themselves (Oomnitza): the next complete run finds who vanished.
CREATE TABLE IF NOT EXISTS members (
    integration TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    sync_value TEXT,
    PRIMARY KEY (integration, vendor_user_id)
) WITHOUT ROWID;
-- What each member's last write came from (a hash of the integration's
-- configuration and the vendor's JSON for the member), and the person as that
-- write left it: a member whose fingerprint and person are unchanged writes
-- nothing, so a re-sync neither reads nor maps it.
CREATE TABLE IF NOT EXISTS member_fingerprints (
    integration TEXT NOT NULL,
    vendor_user_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sync_value TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    person_stamp TEXT NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (integration, vendor_user_id)
) WITHOUT ROWID;
-- The users pages each integration's last complete run read whole: the page
-- without its users and its members' fingerprints. A page byte-identical to one
-- of these whose members all still are as their fingerprints say is neither
-- decoded nor read (RecalledPage).
CREATE TABLE IF NOT EXISTS member_pages (
    id INTEGER PRIMARY KEY,
    integration TEXT NOT NULL,
    digest TEXT NOT NULL,
    skeleton TEXT NOT NULL,
    members TEXT NOT NULL,
    members_count INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    UNIQUE (integration, digest)
);
CREATE TABLE IF NOT EXISTS integrations (
    name TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    active INTEGER NOT NULL,
    schedule TEXT NOT NULL,
    contacts TEXT NOT NULL,
    source TEXT,
    launched_at TEXT
);
CREATE TABLE IF NOT EXISTS workflow_runs (
    id TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    preset TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    person_id INTEGER,
    status INTEGER,
    request TEXT NOT NULL,
    response TEXT,
    mapped TEXT NOT NULL,
    error TEXT,
    dry_run INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_runs_by_start ON workflow_runs (started_at);
"""

_SCHEMA_VERSION = "1"
_DEFAULT_CHECKPOINT_PAGES = 1000
_RUN_CHECKPOINT_PAGES = 65536
"""During a run the WAL may grow to 256 MB before SQLite checkpoints on its own."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _datetime_text(value: datetime) -> str:
    return str(json_ready(value))


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # the `fast` extra is not installed
    _orjson = None

_FLAT_SCALARS = frozenset({str, int, bool, type(None)})


class _NotFlat(TypeError):
    """A value orjson would encode otherwise than json: json encodes it."""


def _refuse(value: Any) -> Any:
    raise _NotFlat


def _fast_dumps(value: Any) -> str | None:
    """*value* encoded by orjson when installed and when it gives what json gives, else None.

    Every type orjson would write otherwise than ``_dumps`` is handed to
    ``default`` (datetimes, dataclasses, subclasses of str, int, dict and
    list), which refuses it; so does what orjson cannot write (a lone
    surrogate, an integer wider than 64 bits). Non-ASCII text comes out as
    UTF-8 rather than ``\\u`` escapes, which reads back the same.
    """
    if _orjson is None:
        return None
    try:
        return str(_orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS), "utf-8")
    except TypeError:  # _NotFlat, or orjson.JSONEncodeError
        return None


_ORJSON_OPTIONS = (
    0
    if _orjson is None
    else _orjson.OPT_PASSTHROUGH_DATETIME
    | _orjson.OPT_PASSTHROUGH_DATACLASS
    | _orjson.OPT_PASSTHROUGH_SUBCLASS
)


_LISTED = "(SELECT value FROM json_each(?))"
"""A list of values in SQL, bound as one JSON array (:func:`_dumps_rows`).

Not ``IN (?, ?, ...)``: each length is a statement of its own, and the
connection caches 128 of them. With batches of every size a sync cached 20 MB
of prepared statements (a 100,000-user Webex sync peaked at 98 MB, 75 MB with
one statement per query).
"""


_flat = itertools.chain.from_iterable
"""The values of rows, one after another (twice as fast as a nested generator)."""

_UNKNOWN = object()
"""An old unique value a change did not say (:meth:`SQLiteStore._release_keys`)."""

_VALUES_SIZES = (512, 64, 8, 1)
"""Rows per ``INSERT ... VALUES`` statement (:func:`_insert_rows`), largest first;
fewer where the statement would bind more parameters than the SQLite library
allows (999 before 3.32)."""


def _insert_rows(
    db: sqlite3.Connection,
    head: str,
    rows: Sequence[Sequence[Any]],
    *,
    tail: str = "",
    tail_parameters: Sequence[Any] = (),
) -> None:
    """Run ``{head} VALUES (?, ...), ... {tail}`` for *rows*, 512 rows a statement.

    *tail_parameters* are bound after each statement's rows.

    Rows are bound as parameters: a JSON array read back with ``json_extract``
    took SQLite twice the time (3.40 parses the text once per column), and
    ``executemany`` steps once per row, releasing and re-taking the GIL every
    time while the mapping thread wants it. Statements of fixed sizes (512,
    then 64, 8 and 1 for the rest) keep the prepared-statement cache to four
    statements per insert; a statement per length filled it with 20 MB (see
    :data:`_LISTED`).
    """
    if not rows:
        return
    width = len(rows[0])
    row = "(" + ", ".join("?" * width) + ")"
    fits = (db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(tail_parameters)) // width
    sizes = sorted(
        {min(size, fits) for size in _VALUES_SIZES if min(size, fits) >= 1}, reverse=True
    )
    start = 0
    for size in sizes or [1]:  # (a limit below one row's width: SQLite says so)
        whole = (len(rows) - start) // size
        if not whole:
            continue
        statement = f"{head} VALUES {', '.join([row] * size)} {tail}"
        for _ in range(whole):
            chunk = rows[start : start + size]
            start += size
            db.execute(statement, [*_flat(chunk), *tail_parameters])


def _dumps_rows(rows: Any) -> str:
    """:func:`_dumps` of SQL parameters (text and whole numbers), through orjson when it can.

    Called once per statement of a batch, with thousands of rows each.
    """
    return _fast_dumps(rows) or _dumps(rows)


def _dumps_fields(fields: Mapping[str, Any]) -> str:
    """:func:`_dumps` of a person's fields, through orjson when they are flat.

    Called for every person a sync writes. Only text, whole numbers, booleans
    and null go through orjson: it writes a NaN float as null, and an enum by
    its value where json writes ``str()`` of it.
    """
    if _FLAT_SCALARS.issuperset(map(type, fields.values())):
        return _fast_dumps(fields) or _dumps(fields)
    return _dumps(fields)


_key_text = key_text


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


_OPEN_BUSY_SECONDS = 30.0
"""How long opening a store waits for another process opening it at the same moment."""


def _enter_wal(db: sqlite3.Connection) -> None:
    """Switch *db* to WAL, waiting out another connection doing the same.

    Two processes opening a new file at once (two Celery workers, two cron
    entries) both hold a shared lock and both want the exclusive one the switch
    needs; SQLite sees the deadlock and fails one of them at once with "database
    is locked", without calling the busy handler. The switch is harmless to
    repeat, so the loser tries again until the other has finished.
    """
    deadline = time.monotonic() + _OPEN_BUSY_SECONDS
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class SQLiteStore(Store):
    """The embedded store in one SQLite file (WAL mode, safe to interrupt).

    :param path: the database file; created with its directory when missing.
        ``":memory:"`` gives a throw-away store.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from None
        self._lock = threading.RLock()
        try:
            _enter_wal(self._db)
        except sqlite3.DatabaseError as exc:
            # The first statement that reads the file: a file that is not a
            # database (a mistyped --db) fails here. A busy database is not that.
            if isinstance(exc, sqlite3.OperationalError):
                if "locked" in str(exc) or "busy" in str(exc):
                    raise
                # A directory or file this user cannot write (a read-only mount).
                self._db.close()
                raise StoreError(
                    f"cannot open the store at {self.path}: {exc} (can this user write to "
                    f"{Path(self.path).resolve().parent}?)"
                ) from None
            self._db.close()
            raise StoreError(
                f"cannot open the store at {self.path}: {exc} (is it an oomnitza-connect store?)"
            ) from None
        # NORMAL keeps WAL commits durable against a process crash, which is
        # what an interrupted sync needs, at a fraction of FULL's fsyncs.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        # 4 MB of page cache (the default is 2 MB): sync-key lookups and
        # inserts land on random pages of the unique-value index. 16 MB made a
        # 100,000-user sync's SQL 6% faster and its process 16 MB larger.
        self._db.execute("PRAGMA cache_size=-4096")
        self._db.execute("PRAGMA journal_size_limit=67108864")
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (_SCHEMA_VERSION,),
            )
        self._custom: dict[str, CustomField] | None = None
        # The people the last write_people created, by sync value: (integration,
        # {sync value: (person id, stamp)}), for remember_fingerprints right after.
        self._just_created: tuple[str, dict[str, tuple[int, str]]] | None = None
        self._active_session: str | None = None
        self._book: _SQLiteRunBook | None = None
        self._apart_pages: set[str] = set()
        self._recalled: set[str] = set()
        """The digests of the pages the active run asked to recall: a page served
        twice is apart only the first time (its members would count twice)."""
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        with self._lock:
            self._create_people_view()

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    # -- helpers --------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def _custom_fields(self) -> dict[str, CustomField]:
        if self._custom is None:
            rows = self._db.execute("SELECT label, type, is_unique FROM custom_fields").fetchall()
            self._custom = {
                label: CustomField(label, FieldType(kind), bool(unique))
                for label, kind, unique in rows
            }
        return self._custom

    def unique_fields(self) -> frozenset[str]:
        """Return the fields whose values are unique per person."""
        custom = {label for label, spec in self._custom_fields().items() if spec.unique}
        return UNIQUE_STANDARD_FIELDS | custom

    def _datetime_fields(self) -> frozenset[str]:
        custom = {
            label
            for label, spec in self._custom_fields().items()
            if spec.type == FieldType.DATETIME
        }
        return STANDARD_DATETIME_FIELDS | custom

    def _decode_fields(self, text: str) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(text)
        for name in self._datetime_fields():
            value = fields.get(name)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    fields[name] = datetime.fromisoformat(value)
        return fields

    def _person(self, row: Sequence[Any]) -> Person:
        person_id, sync_key, sync_value, fields, created, updated, vanished = row
        return Person(
            id=person_id,
            sync_key=sync_key,
            sync_value=sync_value,
            fields=self._decode_fields(fields),
            vanished_from=tuple(sorted(set(vanished.split(",")))) if vanished else (),
            created_at=_parse_time(created),
            updated_at=_parse_time(updated),
        )

    _PERSON_COLUMNS = (
        "p.id, p.sync_key, p.sync_value, p.fields, p.created_at, p.updated_at, "
        "(SELECT group_concat(vendor) FROM person_sources s "
        "WHERE s.person_id = p.id AND s.vanished = 1)"
    )

    # -- people -----------------------------------------------------------------

    def get_person(self, person_id: PersonId) -> Person | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._PERSON_COLUMNS} FROM people p WHERE p.id = ?", (person_id,)
            ).fetchone()
        return None if row is None else self._person(row)

    def find_person(self, field: str, value: Any) -> Person | None:
        with self._lock:
            if field in self.unique_fields():
                row = self._db.execute(
                    f"SELECT {self._PERSON_COLUMNS} FROM person_keys k "
                    "JOIN people p ON p.id = k.person_id WHERE k.field = ? AND k.value = ?",
                    (field, _key_text(value)),
                ).fetchone()
            else:
                row = self._db.execute(
                    f"SELECT {self._PERSON_COLUMNS} FROM people p "
                    "WHERE json_extract(p.fields, ?) = ? ORDER BY p.id LIMIT 1",
                    (_json_path(field), json_ready(value)),
                ).fetchone()
        return None if row is None else self._person(row)

    def iter_people(self, *, vendor: str | None = None) -> Iterator[Person]:
        # Pages by id so that no cursor stays open between yields (a caller
        # may write to the store while iterating).
        last_id = 0
        while True:
            with self._lock:
                if vendor is None:
                    rows = self._db.execute(
                        f"SELECT {self._PERSON_COLUMNS} FROM people p WHERE p.id > ? "
                        "ORDER BY p.id LIMIT 500",
                        (last_id,),
                    ).fetchall()
                else:
                    rows = self._db.execute(
                        f"SELECT {self._PERSON_COLUMNS} FROM people p WHERE p.id > ? AND "
                        "p.id IN (SELECT person_id FROM person_sources WHERE vendor = ?) "
                        "ORDER BY p.id LIMIT 500",
                        (last_id, vendor),
                    ).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._person(row)
            last_id = rows[-1][0]

    def count_people(self, *, vendor: str | None = None) -> int:
        with self._lock:
            if vendor is None:
                row = self._db.execute("SELECT count(*) FROM people").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(DISTINCT person_id) FROM person_sources WHERE vendor = ?",
                    (vendor,),
                ).fetchone()
        return int(row[0])

    def update_person_fields(self, person_id: PersonId, fields: Mapping[str, Any]) -> None:
        new = {name: json_ready(value) for name, value in fields.items()}
        with self._lock, self._transaction():
            row = self._db.execute(
                "SELECT fields FROM people WHERE id = ?", (person_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"there is no person with id {person_id}")
            for name, value in fields.items():
                if name not in STANDARD_PERSON_FIELDS and name not in self._custom_fields():
                    self._define(CustomField(name, _infer_type(value)))
            old = json.loads(row[0])
            changed = {k: v for k, v in new.items() if old.get(k) != v}
            if not changed:
                return
            held = {name: old[name] for name in changed if old.get(name) not in (None, "")}
            unique = self.unique_fields()
            for name, value in changed.items():
                if name in unique and value not in (None, ""):
                    owner = self._db.execute(
                        "SELECT person_id FROM person_keys WHERE field = ? AND value = ?",
                        (name, _key_text(value)),
                    ).fetchone()
                    if owner is not None and owner[0] != person_id:
                        raise StoreError(
                            f"cannot set '{name}' to {value!r} on person {person_id}: "
                            f"person {owner[0]} already has that value and '{name}' is unique"
                        )
            old.update(changed)
            self._db.execute(
                "UPDATE people SET fields = ?, updated_at = ? WHERE id = ?",
                (_dumps(old), _now(), person_id),
            )
            self._reindex(person_id, changed, held, unique)

    def _reindex(
        self,
        person_id: PersonId,
        changed: Mapping[str, Any],
        held: Mapping[str, Any],
        unique: frozenset[str],
    ) -> None:
        """Index the unique values in *changed*, releasing the ones *held* before."""
        self._release_keys(
            [(person_id, name, value) for name, value in held.items() if name in unique]
        )
        for name, value in changed.items():
            if name in unique and value not in (None, ""):
                self._db.execute(
                    "INSERT INTO person_keys (field, value, person_id) VALUES (?, ?, ?)",
                    (name, _key_text(value), person_id),
                )

    def _release_keys(self, held: Sequence[tuple[PersonId, str, Any]]) -> None:
        """Remove the unique values people held: ``(person, field, old value)`` each.

        By primary key, so ``person_keys`` needs no index by person. An old
        value that is not found as it reads now (not known, or a value whose
        text was written otherwise, such as a boolean indexed when its field
        was made unique) is looked for by person among the field's keys, which
        reads all of them: rare, only for that value, and still right.
        """
        db = self._db
        for person_id, name, value in held:
            if value is not _UNKNOWN:
                if value is None or value == "":
                    continue  # an empty value was never indexed: nothing to release
                before = db.total_changes
                db.execute(
                    "DELETE FROM person_keys WHERE field = ? AND value = ? AND person_id = ?",
                    (name, _key_text(value), person_id),
                )
                if db.total_changes != before:
                    continue
            db.execute(
                "DELETE FROM person_keys WHERE field = ? AND person_id = ?", (name, person_id)
            )

    # -- custom fields ----------------------------------------------------------

    def define_custom_field(self, field: CustomField) -> None:
        if field.label in STANDARD_PERSON_FIELDS:
            raise StoreError(f"'{field.label}' is a standard person field, not a custom one")
        with self._lock, self._transaction():
            # Read afresh inside the transaction: another connection (a run that
            # held the sync lock before this one) may have defined it since.
            self._custom = None
            self._define(field)

    def _define(self, field: CustomField) -> None:
        existing = self._custom_fields().get(field.label)
        if existing == field:
            return
        self._db.execute(
            "INSERT INTO custom_fields (label, type, is_unique, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (label) DO UPDATE SET "
            "type = excluded.type, is_unique = excluded.is_unique",
            (field.label, field.type.value, int(field.unique), _now()),
        )
        self._custom = None
        if existing is None:
            self._create_people_view()
        was_unique = existing is not None and existing.unique
        if field.unique and not was_unique:
            try:
                self._index_held_values(field.label)
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"the custom field '{field.label}' cannot be unique: "
                    "some people already share a value of it"
                ) from None
        elif was_unique and not field.unique:
            self._db.execute("DELETE FROM person_keys WHERE field = ?", (field.label,))

    def _index_held_values(self, label: str) -> None:
        """Put the values people hold of *label*, just made unique, in ``person_keys``.

        Each as the text a sync indexes it by (:func:`key_text` of the value
        read back from JSON), so that a later write finds it: SQL's own text of
        a JSON true is "1" and of 1e16 "1.0e+16", where a sync writes "True" and
        "1e+16". A thousand people at a time, so memory stays flat.
        """
        path = _json_path(label)
        last = 0
        while True:
            # Text and whole numbers read the same in SQL; anything else is read
            # from the person's decoded fields.
            rows = self._db.execute(
                "SELECT id, json_extract(fields, ?1), "
                "CASE WHEN json_type(fields, ?1) IN ('text', 'integer') THEN NULL ELSE fields END "
                "FROM people WHERE id > ?2 AND json_extract(fields, ?1) IS NOT NULL "
                "ORDER BY id LIMIT 1000",
                (path, last),
            ).fetchall()
            if not rows:
                return
            keys: list[tuple[str, str, int]] = []
            for person_id, value, fields in rows:
                held = value if fields is None else json.loads(fields)[label]
                if held != "":
                    keys.append((label, _key_text(held), person_id))
            _insert_rows(self._db, "INSERT INTO person_keys (field, value, person_id)", keys)
            last = rows[-1][0]

    PEOPLE_VIEW = "people_view"
    """A readable view of people for SQL users, Datasette and ``pandas.read_sql``."""

    def _create_people_view(self) -> None:
        """(Re)create :attr:`PEOPLE_VIEW`: one column per standard and custom field.

        People's fields are one JSON column (custom fields come and go with
        integrations); the view spells each out, so plain SQL needs no
        ``json_extract``. It is rebuilt whenever a custom field is added.
        """
        columns = ["p.id AS id", "p.sync_key AS sync_key", "p.sync_value AS sync_value"]
        taken = {"id", "sync_key", "sync_value", "vendors", "vanished_from"}
        taken |= {"created_at", "updated_at"}
        labels = [*STANDARD_PERSON_FIELDS, *sorted(self._custom_fields())]
        for label in labels:
            if label in taken:
                continue
            taken.add(label)
            path = _json_path(label).replace("'", "''")
            columns.append(f"json_extract(p.fields, '{path}') AS {_identifier(label)}")
        columns += [
            "(SELECT group_concat(DISTINCT s.vendor) FROM person_sources s "
            "WHERE s.person_id = p.id) AS vendors",
            "(SELECT group_concat(DISTINCT s.vendor) FROM person_sources s "
            "WHERE s.person_id = p.id AND s.vanished) AS vanished_from",
            "p.created_at AS created_at",
            "p.updated_at AS updated_at",
        ]
        wanted = f"CREATE VIEW {self.PEOPLE_VIEW} AS SELECT {', '.join(columns)} FROM people p"
        found = self._db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (self.PEOPLE_VIEW,)
        ).fetchone()
        if found is not None and found[0] == wanted:
            return  # opening a store writes nothing when the view is current
        with self._transaction():
            self._db.execute(f"DROP VIEW IF EXISTS {self.PEOPLE_VIEW}")
            self._db.execute(wanted)

    def custom_fields(self) -> list[CustomField]:
        with self._lock:
            return sorted(self._custom_fields().values(), key=lambda f: f.label)

    # -- SaaS users -------------------------------------------------------------

    def iter_saas_users(self, *, vendor: str | None = None) -> Iterator[SaasUser]:
        query = "SELECT vendor, vendor_user_id, person_id, role, fields FROM saas_users"
        params: tuple[Any, ...] = ()
        if vendor is not None:
            query += " WHERE vendor = ?"
            params = (vendor,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY vendor, vendor_user_id", params).fetchall()
        for vendor_name, user_id, person_id, role, fields in rows:
            yield SaasUser(
                vendor=vendor_name,
                vendor_user_id=user_id,
                person_id=person_id,
                role=role,
                fields=self._decode_fields(fields),
            )

    def update_saas_user_fields(
        self, vendor: str, vendor_user_id: str, fields: Mapping[str, Any]
    ) -> None:
        with self._lock, self._transaction():
            row = self._db.execute(
                "SELECT role, fields FROM saas_users WHERE vendor = ? AND vendor_user_id = ?",
                (vendor, vendor_user_id),
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"{vendor} has no SaaS user with id '{vendor_user_id}' in the store"
                )
            role, text = row
            old = json.loads(text)
            new = {k: json_ready(v) for k, v in fields.items() if k != "role"}
            new_role = fields.get("role", role)
            if all(old.get(k) == v for k, v in new.items()) and new_role == role:
                return
            old.update(new)
            self._db.execute(
                "UPDATE saas_users SET fields = ?, role = ?, updated_at = ? "
                "WHERE vendor = ? AND vendor_user_id = ?",
                (_dumps(old), new_role, _now(), vendor, vendor_user_id),
            )

    # -- sync: the ledger's side ----------------------------------------------------

    def prepare_run(self, plan: SyncPlan, *, test_run: bool) -> None:
        with self._lock:
            if plan.sync_key not in self.unique_fields() | plan.declared_unique:
                raise StoreError(
                    f"the sync key '{plan.sync_key}' is not a unique field; "
                    "use username, email, external_id or a custom field marked unique"
                )
            if not test_run and plan.selection == UserSelection.USERS_AND_SAAS:
                with self._transaction():
                    self._db.execute(
                        "INSERT OR IGNORE INTO saas_apps (vendor, created_at) VALUES (?, ?)",
                        (plan.vendor, _now()),
                    )

    def start_session(self, plan: SyncPlan, *, test_run: bool = False) -> SyncSession:
        with self._lock:
            self._mark_interrupted(plan.integration)
            session = SyncSession(
                id=uuid.uuid4().hex,
                integration=plan.integration,
                vendor=plan.vendor,
                started_at=datetime.now(UTC),
                status=SyncStatus.RUNNING,
                test_run=test_run,
            )
            with self._transaction():
                self._db.execute(
                    "INSERT INTO sync_sessions (id, integration, vendor, started_at, status, "
                    "test_run, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session.id,
                        session.integration,
                        session.vendor,
                        session.started_at.isoformat(),
                        session.status.value,
                        int(test_run),
                        os.getpid(),
                        socket.gethostname(),
                    ),
                )
            # Per-run bookkeeping lives in temporary tables: private to this
            # connection, never written to the database file, gone on a crash.
            self._db.executescript(
                "DROP TABLE IF EXISTS temp.run_keys; DROP TABLE IF EXISTS temp.run_seen;"
                "DROP TABLE IF EXISTS temp.run_inactive; DROP TABLE IF EXISTS temp.run_pages;"
                "DROP TABLE IF EXISTS temp.run_claims;"
                "CREATE TEMP TABLE run_keys (sync_value TEXT PRIMARY KEY) WITHOUT ROWID;"
                "CREATE TEMP TABLE run_seen (vendor_user_id TEXT PRIMARY KEY, sync_value TEXT)"
                " WITHOUT ROWID;"
                "CREATE TEMP TABLE run_inactive (vendor_user_id TEXT PRIMARY KEY) WITHOUT ROWID;"
                "CREATE TEMP TABLE run_pages (id INTEGER PRIMARY KEY, members TEXT NOT NULL);"
                # The unique values a test run's plan gave people (it writes none).
                "CREATE TEMP TABLE run_claims (field TEXT, value TEXT, PRIMARY KEY (field, value))"
                " WITHOUT ROWID;"
            )
            self._book = None
            self._recalled.clear()
            # Checkpointing after every batch would copy (and fsync) the same
            # index pages again and again: a run checkpoints once, at its end.
            self._db.execute(f"PRAGMA wal_autocheckpoint={_RUN_CHECKPOINT_PAGES}")
            self._active_session = session.id
        return session

    def _mark_interrupted(self, integration: str) -> None:
        rows = self._db.execute(
            "SELECT id, pid, host FROM sync_sessions WHERE status = ? AND integration = ?",
            (SyncStatus.RUNNING.value, integration),
        ).fetchall()
        host = socket.gethostname()
        for session_id, pid, session_host in rows:
            if session_id == self._active_session:
                continue
            if session_host == host and pid is not None and _pid_alive(pid) and pid != os.getpid():
                continue
            with self._transaction():
                self._db.execute(
                    "UPDATE sync_sessions SET status = ?, ended_at = ?, message = ? "
                    "WHERE id = ? AND status = ?",
                    (
                        SyncStatus.INTERRUPTED.value,
                        _now(),
                        "the run stopped before it finished (its process is gone); "
                        "batches it committed are kept",
                        session_id,
                        SyncStatus.RUNNING.value,
                    ),
                )

    def run_book(self, session_id: str) -> RunBook:
        if session_id != self._active_session:
            raise StoreError(f"session {session_id} is not the store's active run")
        # One book per run: the pages it has not yet put in are its own state.
        if self._book is None:
            self._book = _SQLiteRunBook(self)
        return self._book

    def record_batch(
        self,
        session_id: str,
        outcome: BatchOutcome,
        *,
        write: Callable[[], None] | None = None,
    ) -> None:
        if session_id != self._active_session:
            raise StoreError(f"session {session_id} is not the store's active run")
        counts = outcome.counts
        try:
            with self._lock, self._transaction():
                if write is not None:
                    write()
                self._db.execute(
                    "UPDATE sync_sessions SET created = created + ?, updated = updated + ?, "
                    "unchanged = unchanged + ?, skipped = skipped + ?, failed = failed + ? "
                    "WHERE id = ?",
                    (
                        counts.created,
                        counts.updated,
                        counts.unchanged,
                        counts.skipped,
                        counts.failed,
                        session_id,
                    ),
                )
                self._db.executemany(
                    "INSERT INTO session_errors (session_id, vendor_user_id, field, reason) "
                    "VALUES (?, ?, ?, ?)",
                    [(session_id, e.vendor_user_id, e.field, e.reason) for e in outcome.errors],
                )
                self._db.executemany(
                    "INSERT INTO session_payload (session_id, record) VALUES (?, ?)",
                    [(session_id, _dumps(entry)) for entry in outcome.payload],
                )
        except sqlite3.Error as exc:
            raise StoreError(
                f"the store at {self.path} could not write a batch (nothing of it was kept): {exc}"
            ) from exc

    def finish_session(
        self,
        session_id: str,
        *,
        status: SyncStatus,
        message: str | None = None,
        vanished: Sequence[VanishedPerson] = (),
    ) -> SyncSession:
        with self._lock:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO session_vanished (session_id, vendor_user_id, sync_value) "
                    "VALUES (?, ?, ?)",
                    [(session_id, v.vendor_user_id, v.sync_value) for v in vanished],
                )
                self._db.execute(
                    "UPDATE sync_sessions SET status = ?, ended_at = ?, message = ?, vanished = ? "
                    "WHERE id = ?",
                    (status.value, _now(), message, len(vanished), session_id),
                )
            if session_id == self._active_session:
                self._db.executescript(
                    "DROP TABLE IF EXISTS temp.run_keys; DROP TABLE IF EXISTS temp.run_seen;"
                    "DROP TABLE IF EXISTS temp.run_inactive; DROP TABLE IF EXISTS temp.run_pages;"
                    "DROP TABLE IF EXISTS temp.run_claims;"
                )
                self._book = None
                self._active_session = None
                # PASSIVE never waits for readers (a long `people` listing);
                # journal_size_limit trims the WAL file once it is reused.
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._db.execute(f"PRAGMA wal_autocheckpoint={_DEFAULT_CHECKPOINT_PAGES}")
        session = self.get_session(session_id)
        if session is None:
            raise StoreError(f"session {session_id} disappeared from the store")
        return session

    def remember_members(
        self, integration: str, book: RunBook, *, test_run: bool
    ) -> list[VanishedPerson]:
        with self._lock, self._transaction():
            if isinstance(book, _SQLiteRunBook) and book.store is self:
                book.put_in_pages()
                rows = self._db.execute(
                    "SELECT vendor_user_id, sync_value FROM members WHERE integration = ? "
                    "AND vendor_user_id NOT IN (SELECT vendor_user_id FROM temp.run_seen) "
                    "ORDER BY vendor_user_id",
                    (integration,),
                ).fetchall()
            else:
                rows = []
                for chunk in chunked(
                    self._db.execute(
                        "SELECT vendor_user_id, sync_value FROM members WHERE integration = ? "
                        "ORDER BY vendor_user_id",
                        (integration,),
                    ).fetchall(),
                    500,
                ):
                    gone = book.unseen([row[0] for row in chunk])
                    rows.extend(row for row in chunk if row[0] in gone)
            if not test_run:
                self._db.executemany(
                    "DELETE FROM members WHERE integration = ? AND vendor_user_id = ?",
                    [(integration, user_id) for user_id, _ in rows],
                )
                self._db.executemany(
                    "INSERT INTO members (integration, vendor_user_id, sync_value) "
                    "VALUES (?, ?, ?) ON CONFLICT (integration, vendor_user_id) DO UPDATE SET "
                    "sync_value = coalesce(excluded.sync_value, sync_value)",
                    ((integration, user_id, value) for user_id, value in book.iter_seen()),
                )
        return [VanishedPerson(user_id, value) for user_id, value in rows]

    def open_portion_log(
        self, integration: str, session_id: str, *, test_run: bool
    ) -> tuple[str, dict[int, str]]:
        with self._lock, self._transaction():
            row = None
            if not test_run:
                row = self._db.execute(
                    "SELECT p.portion FROM portions p JOIN sync_sessions s ON s.id = p.session_id "
                    "WHERE p.integration = ? AND p.finalized = 0 AND p.test_run = 0 "
                    "AND s.status = ? ORDER BY p.started_at DESC LIMIT 1",
                    (integration, SyncStatus.INTERRUPTED.value),
                ).fetchone()
            if row is not None:
                portion = str(row[0])
                self._db.execute(
                    "UPDATE portions SET session_id = ? WHERE portion = ?", (session_id, portion)
                )
                acknowledged = {
                    int(batch): str(digest)
                    for batch, digest in self._db.execute(
                        "SELECT batch, digest FROM portion_batches WHERE portion = ?", (portion,)
                    )
                }
                return portion, acknowledged
            portion = str(uuid.uuid4())
            self._db.execute(
                "INSERT INTO portions (portion, integration, session_id, test_run, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (portion, integration, session_id, int(test_run), _now()),
            )
            return portion, {}

    def acknowledge_batch(self, portion: str, index: int, digest: str) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO portion_batches (portion, batch, digest) VALUES (?, ?, ?)",
                (portion, index, digest),
            )

    def portion_finalized(self, portion: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("UPDATE portions SET finalized = 1 WHERE portion = ?", (portion,))
            self._db.execute("DELETE FROM portion_batches WHERE portion = ?", (portion,))

    def iter_plan(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> Iterator[Mapping[str, Any]]:
        last = 0
        skip = offset
        left = limit
        while left is None or left > 0:
            page = 500 if left is None else min(500, left)
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, record FROM session_payload WHERE session_id = ? AND id > ? "
                    "ORDER BY id LIMIT ? OFFSET ?",
                    (session_id, last, page, skip),
                ).fetchall()
            skip = 0
            if not rows:
                return
            for _, text in rows:
                yield json.loads(text)
            last = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def iter_vanished(self, session_id: str) -> Iterator[VanishedPerson]:
        with self._lock:
            rows = self._db.execute(
                "SELECT vendor_user_id, sync_value FROM session_vanished WHERE session_id = ? "
                "ORDER BY id",
                (session_id,),
            ).fetchall()
        for user_id, value in rows:
            yield VanishedPerson(user_id, value)

    # -- sync: the destination's side ---------------------------------------------

    def lookup(self, plan: SyncPlan, records: Sequence[tuple[str, str]]) -> BatchLookup:
        if not records:
            return BatchLookup(people={})
        with self._lock:
            values = [sync_value for sync_value, _ in records]
            rows = self._db.execute(
                "SELECT k.value, p.id, p.fields FROM person_keys k "
                "JOIN people p ON p.id = k.person_id "
                f"WHERE k.field = ? AND k.value IN {_LISTED}",
                (plan.sync_key, _dumps_rows(values)),
            ).fetchall()
            people: dict[str, tuple[PersonId, Mapping[str, Any]]] = {
                value: (person_id, json.loads(fields)) for value, person_id, fields in rows
            }
            links: dict[PersonId, tuple[str, bool]] = {}
            if people:
                ids = [found[0] for found in people.values()]
                links = {
                    person_id: (user_id, bool(vanished))
                    for person_id, user_id, vanished in self._db.execute(
                        "SELECT person_id, vendor_user_id, vanished FROM person_sources "
                        f"WHERE integration = ? AND person_id IN {_LISTED}",
                        (plan.integration, _dumps_rows(ids)),
                    )
                }
            saas: dict[str, tuple[PersonId | None, str | None]] = {}
            if plan.selection == UserSelection.USERS_AND_SAAS:
                user_ids = [user_id for _, user_id in records]
                saas = {
                    user_id: (person_id, role)
                    for user_id, person_id, role in self._db.execute(
                        "SELECT vendor_user_id, person_id, role FROM saas_users "
                        f"WHERE vendor = ? AND vendor_user_id IN {_LISTED}",
                        (plan.vendor, _dumps_rows(user_ids)),
                    )
                }
        return BatchLookup(people=people, links=links, saas=saas)

    def _read_only(self) -> tuple[sqlite3.Connection, contextlib.AbstractContextManager[Any]]:
        """A connection for lookups made while the writer thread holds the store's.

        WAL lets a second connection read what is committed without waiting for
        the writer's open transaction; a ``:memory:`` store has only its own.
        """
        if self.path == ":memory:":
            return self._db, self._lock
        with self._reader_lock:
            if self._reader is None:
                self._reader = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30.0
                )
                self._reader.execute("PRAGMA busy_timeout=30000")
                self._reader.execute("PRAGMA query_only=1")
        return self._reader, self._reader_lock

    def unchanged_members(
        self, plan: SyncPlan, fingerprints: Mapping[str, str]
    ) -> dict[str, tuple[str, bool]]:
        if not fingerprints:
            return {}
        # Still as the fingerprint's write left it: the same fingerprint, the
        # person not written since (updated_at), still linked to this vendor
        # user and not vanished, still the holder of the sync value (and of the
        # SaaS account when the run keeps them). One statement for the batch.
        join, params = self._unchanged_join(plan, _dumps_rows(fingerprints))
        db, lock = self._read_only()
        with lock:
            rows = db.execute(
                "SELECT f.vendor_user_id, f.sync_value, f.active " + join, params
            ).fetchall()
        return {user_id: (sync_value, bool(active)) for user_id, sync_value, active in rows}

    @staticmethod
    def _unchanged_join(plan: SyncPlan, fingerprints: str) -> tuple[str, list[Any]]:
        """``FROM`` the members of *fingerprints* (JSON) that are as their writes left them."""
        saas = ""
        params: list[Any] = [fingerprints, plan.integration, plan.sync_key]
        if plan.selection == UserSelection.USERS_AND_SAAS:
            saas = (
                " AND EXISTS (SELECT 1 FROM saas_users u WHERE u.vendor = ? "
                "AND u.vendor_user_id = f.vendor_user_id AND u.person_id = f.person_id)"
            )
            params.append(plan.vendor)
        holds_value = (
            "EXISTS (SELECT 1 FROM person_keys k WHERE k.field = ? AND k.value = f.sync_value "
            "AND k.person_id = f.person_id)"
        )
        if plan.sync_key in UNIQUE_STANDARD_FIELDS:
            # A standard unique field's keys change only with the person's row
            # (updated_at, checked above): a person not written since and created
            # with this very value still holds it, with no look-up in the key
            # index, whose random order costs more than the other three together.
            holds_value = (
                f"CASE WHEN p.sync_key = ? AND p.sync_value = f.sync_value THEN 1 "
                f"ELSE {holds_value} END"
            )
            params.insert(2, plan.sync_key)
        # CROSS JOIN keeps SQLite's join order: each member of the batch, then
        # its rows by primary key (no table is scanned).
        return (
            "FROM json_each(?) j "
            "CROSS JOIN member_fingerprints f ON f.integration = ? "
            "AND f.vendor_user_id = j.key AND f.fingerprint = j.value "
            "CROSS JOIN people p ON p.id = f.person_id AND p.updated_at = f.person_stamp "
            f"AND {holds_value} "
            "CROSS JOIN person_sources s ON s.integration = f.integration "
            "AND s.person_id = f.person_id AND s.vendor_user_id = f.vendor_user_id "
            "AND s.vanished = 0" + saas,
            params,
        )

    remembers_pages = True

    def page_digests(self, plan: SyncPlan) -> dict[str, str]:
        with self._lock:
            if self._pages_apart(plan.integration):
                self._apart_pages.add(plan.integration)
            else:
                self._apart_pages.discard(plan.integration)
            return dict(
                self._db.execute(
                    "SELECT digest, skeleton FROM member_pages WHERE integration = ?",
                    (plan.integration,),
                ).fetchall()
            )

    def recall_page(self, plan: SyncPlan, digest: str) -> RecalledPage | None:
        # On the writer's own connection, between its transactions (the page
        # book's thread waits for the lock while a batch is written): a second
        # connection's cache is dropped at every commit of the first, and read
        # while batches were written a 300,000-user re-sync took 6 s instead of 3.5.
        db, lock = self._db, self._lock
        with lock:
            row = db.execute(
                "SELECT skeleton, members, members_count, skipped FROM member_pages "
                "WHERE integration = ? AND digest = ?",
                (plan.integration, digest),
            ).fetchone()
            if row is None:
                return None
            skeleton, members, count, skipped = row
            served_before = digest in self._recalled
            self._recalled.add(digest)
            join, params = self._unchanged_join(plan, members)
            # One statement for the page; its members never come to Python one by one.
            found, active, active_count, inactive = db.execute(
                "SELECT count(*), json_group_object(f.vendor_user_id, f.sync_value) "
                "FILTER (WHERE f.active), total(f.active), "
                "json_group_array(json_array(f.vendor_user_id, f.sync_value)) "
                "FILTER (WHERE NOT f.active) " + join,
                params,
            ).fetchone()
        if found != count:
            return None  # someone changed (or is new): the page is read as usual
        return RecalledPage(
            digest=digest,
            skeleton=skeleton,
            active=active,
            active_count=int(active_count),
            inactive=tuple((str(u), str(v)) for u, v in json.loads(inactive)),
            skipped=int(skipped),
            apart=plan.integration in self._apart_pages and not served_before,
        )

    def remember_pages(self, plan: SyncPlan, pages: Sequence[ReadPage]) -> None:
        if not pages:
            return
        with self._lock, self._transaction():
            # Until a complete run's keep_pages looks again, its pages may share members.
            self._db.execute("DELETE FROM meta WHERE key = ?", (_apart_key(plan.integration),))
            self._db.executemany(
                "INSERT OR REPLACE INTO member_pages (integration, digest, skeleton, members, "
                "members_count, skipped) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (plan.integration, page.digest, page.skeleton, page.members,
                     page.members_count, page.skipped)
                    for page in pages
                ],
            )  # fmt: skip

    def keep_pages(self, plan: SyncPlan, digests: Sequence[str]) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "DELETE FROM member_pages WHERE integration = ? "
                "AND digest NOT IN (SELECT value FROM json_each(?))",
                (plan.integration, _dumps_rows(list(digests))),
            )
            if self._pages_apart(plan.integration):
                return  # fewer pages than when they were found apart: still apart
            # Whether no vendor user is on two of the pages (a listing that shifted
            # while the run read it): only then are its recognised pages marked
            # apart, and the run's book puts their members in at once, sorted
            # (RunBook.mark_unchanged). Looked at when pages were remembered.
            listed, distinct = self._db.execute(
                "SELECT count(*), count(DISTINCT j.key) FROM member_pages m, "
                "json_each(m.members) j WHERE m.integration = ?",
                (plan.integration,),
            ).fetchone()
            if listed == distinct:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')",
                    (_apart_key(plan.integration),),
                )

    def _pages_apart(self, integration: str) -> bool:
        """Whether the integration's pages are known to share no member (keep_pages)."""
        return (
            self._db.execute(
                "SELECT 1 FROM meta WHERE key = ?", (_apart_key(integration),)
            ).fetchone()
            is not None
        )

    def remember_fingerprints(
        self, plan: SyncPlan, members: Sequence[tuple[str, str, str, bool]]
    ) -> None:
        just_created, self._just_created = self._just_created, None
        if not members:
            return
        created = just_created[1] if just_created and just_created[0] == plan.integration else {}
        known: list[tuple[str, str, str, str, int, str, int]] = []
        others: list[tuple[str, str, str, int]] = []
        for user_id, print_, value, active in members:
            person = created.get(value)
            if person is None:
                others.append((user_id, print_, value, int(active)))
            else:
                known.append((plan.integration, user_id, print_, value, *person, int(active)))
        with self._lock, self._transaction():
            # The people the batch created are known (a first sync's every member);
            # the others are found by sync value, with their stamps, in the store.
            _insert_rows(
                self._db,
                "INSERT OR REPLACE INTO member_fingerprints (integration, vendor_user_id, "
                "fingerprint, sync_value, person_id, person_stamp, active)",
                known,
            )
            _insert_rows(
                self._db,
                "WITH j (user_id, print, value, active) AS (",
                others,
                tail=") INSERT OR REPLACE INTO member_fingerprints (integration, vendor_user_id, "
                "fingerprint, sync_value, person_id, person_stamp, active) "
                "SELECT ?, j.user_id, j.print, k.value, p.id, p.updated_at, j.active "
                "FROM j CROSS JOIN person_keys k ON k.field = ? AND k.value = j.value "
                "CROSS JOIN people p ON p.id = k.person_id",
                tail_parameters=(plan.integration, plan.sync_key),
            )

    def accounts_of(self, plan: SyncPlan, person_ids: Sequence[PersonId]) -> dict[PersonId, str]:
        if not person_ids:
            return {}
        with self._lock:
            return {
                person_id: user_id
                for person_id, user_id in self._db.execute(
                    "SELECT person_id, vendor_user_id FROM person_sources "
                    f"WHERE integration = ? AND person_id IN {_LISTED}",
                    (plan.integration, _dumps_rows(list(person_ids))),
                )
            }

    def unique_owners(self, wanted: Mapping[str, set[str]]) -> dict[tuple[str, str], PersonId]:
        owners: dict[tuple[str, str], PersonId] = {}
        with self._lock:
            for name, values in wanted.items():
                for value, person_id in self._db.execute(
                    "SELECT value, person_id FROM person_keys "
                    f"WHERE field = ? AND value IN {_LISTED}",
                    (name, _dumps_rows(list(values))),
                ):
                    owners[(name, value)] = person_id
        return owners

    def write_people(self, plan: SyncPlan, writes: PersonWrites) -> None:
        unique = self.unique_fields() | plan.declared_unique
        now = _now()
        key_deletes: list[tuple[PersonId, str, Any]] = []
        key_inserts: list[tuple[str, str, PersonId]] = []
        source_rows: list[tuple[str, PersonId, str, str]] = []
        saas_rows: list[tuple[str, str, PersonId, str | None, str, str]] = []
        with self._lock, self._transaction():
            next_id = int(
                self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM people").fetchone()[0]
            )
            new_people: list[tuple[Any, ...]] = []
            created: dict[str, tuple[int, str]] = {}
            self._just_created = (plan.integration, created)
            for new in writes.creates:
                person_id = next_id
                next_id += 1
                created[new.sync_value] = (person_id, now)
                new_people.append(
                    (person_id, plan.sync_key, new.sync_value, _dumps_fields(new.fields), now, now)
                )
                for name in unique:
                    value = new.fields.get(name)
                    if value is not None and value != "":
                        key_inserts.append((name, _key_text(value), person_id))
                source_rows.append((plan.integration, person_id, plan.vendor, new.vendor_user_id))
                if new.saas:
                    saas_rows.append(
                        (plan.vendor, new.vendor_user_id, person_id, new.role, now, now)
                    )
            changed_people: list[tuple[str, str, PersonId]] = []
            for change in writes.updates:
                changed_people.append((_dumps_fields(change.fields), now, change.person_id))
                for name in unique:
                    if name not in change.changes:
                        continue
                    if name in change.had:
                        key_deletes.append(
                            (change.person_id, name, change.before.get(name, _UNKNOWN))
                        )
                    value = change.changes[name]
                    if value is not None and value != "":
                        key_inserts.append((name, _key_text(value), change.person_id))
            for link in writes.links:
                if link.relink:
                    source_rows.append(
                        (plan.integration, link.person_id, plan.vendor, link.vendor_user_id)
                    )
                if link.saas:
                    saas_rows.append(
                        (plan.vendor, link.vendor_user_id, link.person_id, link.role, now, now)
                    )
            # OR FAIL: a failing statement keeps the rows it wrote, and needs no
            # statement journal to take them back, which SQLite otherwise
            # writes to a temporary file for every multi-row statement inside a
            # transaction: 340 MB for 100,000 people, on pages the next
            # statement reads again. Nothing here survives an error anyway: the
            # batch's transaction is rolled back whole (record_batch).
            _insert_rows(
                self._db,
                "INSERT OR FAIL INTO people (id, sync_key, sync_value, fields, created_at, "
                "updated_at)",
                new_people,
            )
            self._db.executemany(
                "UPDATE people SET fields = ?, updated_at = ? WHERE id = ?", changed_people
            )
            # Deletes first: a unique value a person gave up may be taken in the same batch.
            self._release_keys(key_deletes)
            # In key order: each entry lands next to the one before it in the
            # index, not on a random page (15% less time at 30,000 people).
            _insert_rows(
                self._db,
                "INSERT OR FAIL INTO person_keys (field, value, person_id)",
                sorted(key_inserts),
            )
            _insert_rows(
                self._db,
                "INSERT OR FAIL INTO person_sources (integration, person_id, vendor, "
                "vendor_user_id)",
                source_rows,
                tail="ON CONFLICT (integration, person_id) DO UPDATE SET "
                "vendor_user_id = excluded.vendor_user_id, vanished = 0, vanished_at = NULL",
            )
            self._db.executemany(
                "INSERT INTO saas_users (vendor, vendor_user_id, person_id, role, fields, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?) "
                "ON CONFLICT (vendor, vendor_user_id) DO UPDATE SET "
                "person_id = excluded.person_id, role = excluded.role, "
                "updated_at = excluded.updated_at",
                saas_rows,
            )

    def vanish(self, plan: SyncPlan, book: RunBook, *, test_run: bool) -> list[VanishedPerson]:
        with self._lock, self._transaction():
            query = (
                "SELECT s.vendor_user_id, p.sync_value, s.person_id FROM person_sources s "
                "JOIN people p ON p.id = s.person_id "
                "WHERE s.integration = ? AND s.vanished = 0"
            )
            own = book if isinstance(book, _SQLiteRunBook) and book.store is self else None
            if own is not None and self._all_vouched(plan, own):
                rows = []
            elif own is not None:
                seen = "s.vendor_user_id NOT IN (SELECT vendor_user_id FROM temp.run_seen)"
                if own.pages_held:
                    # The held pages' members read once into this query's own
                    # index: half the time of putting them in the run's tables.
                    seen += (
                        " AND s.vendor_user_id NOT IN "
                        "(SELECT j.key FROM temp.run_pages h, json_each(h.members) j)"
                    )
                rows = self._db.execute(
                    f"{query} AND {seen} ORDER BY s.person_id", (plan.integration,)
                ).fetchall()
            else:
                rows = []
                for chunk in chunked(
                    self._db.execute(query + " ORDER BY s.person_id", (plan.integration,)),
                    500,
                ):
                    gone = book.unseen([row[0] for row in chunk])
                    rows.extend(row for row in chunk if row[0] in gone)
            if not test_run:
                now = _now()
                self._db.executemany(
                    "UPDATE person_sources SET vanished = 1, vanished_at = ? "
                    "WHERE integration = ? AND person_id = ?",
                    [(now, plan.integration, row[2]) for row in rows],
                )
        return [VanishedPerson(user_id, value) for user_id, value, _ in rows]

    def _all_vouched(self, plan: SyncPlan, book: _SQLiteRunBook) -> bool:
        """Whether the pages recalled apart vouch for every active link of the integration.

        Each member the book counted (:attr:`_SQLiteRunBook.vouched`) was found
        linked to the integration by its own user id (:meth:`recall_page`), and
        no member is on two such pages (apart, and a page served twice is apart
        once): they vouch for as many links. Two of them cannot vouch for one
        link at different moments: pointing it from one to the other takes a
        write by the second in this run, listed again on a page recalled apart,
        where the sync value that write took keeps the page from being held,
        and a deactivated copy's fingerprint is not the one written. A
        batch's writes only add links, or point one at the member that wrote
        it, always a member seen in this run; none is deleted. So when the
        integration has no more active links than that, every link's member
        was seen: a count instead of comparing 100,000 links with the run's
        members (0.1 s of a 1 s unchanged re-sync).
        """
        if not book.vouched:
            return False
        (active,) = self._db.execute(
            "SELECT count(*) FROM person_sources WHERE integration = ? AND vanished = 0",
            (plan.integration,),
        ).fetchone()
        return bool(active == book.vouched)

    def apply_last_logins(self, vendor: str, logins: Iterable[tuple[str, datetime]]) -> int:
        changed = 0
        batch: list[tuple[str, datetime]] = []
        for item in logins:
            batch.append(item)
            if len(batch) >= 500:
                changed += self._apply_login_batch(vendor, batch)
                batch = []
        if batch:
            changed += self._apply_login_batch(vendor, batch)
        return changed

    def _apply_login_batch(self, vendor: str, batch: Sequence[tuple[str, datetime]]) -> int:
        by_user = {user_id: json_ready(when) for user_id, when in batch}
        with self._lock, self._transaction():
            # Compared in SQL, so unchanged people cost no JSON decoding.
            rows = self._db.execute(
                "SELECT s.vendor_user_id, p.id, json_extract(p.fields, '$.last_login') "
                "FROM person_sources s JOIN people p ON p.id = s.person_id "
                f"WHERE s.vendor = ? AND s.vendor_user_id IN {_LISTED}",
                (vendor, _dumps_rows(list(by_user))),
            ).fetchall()
            now = _now()
            people: dict[int, tuple[str, str, int]] = {}
            for user_id, person_id, current in rows:
                if current != by_user[user_id]:
                    people[person_id] = (by_user[user_id], now, person_id)
            saas = [
                (by_user[user_id], now, vendor, user_id)
                for user_id, current in self._db.execute(
                    "SELECT vendor_user_id, json_extract(fields, '$.last_login') FROM saas_users "
                    f"WHERE vendor = ? AND vendor_user_id IN {_LISTED}",
                    (vendor, _dumps_rows(list(by_user))),
                )
                if current != by_user[user_id]
            ]
            self._db.executemany(
                "UPDATE people SET fields = json_set(fields, '$.last_login', ?), "
                "updated_at = ? WHERE id = ?",
                list(people.values()),
            )
            self._db.executemany(
                "UPDATE saas_users SET fields = json_set(fields, '$.last_login', ?), "
                "updated_at = ? WHERE vendor = ? AND vendor_user_id = ?",
                saas,
            )
        return len(people)

    def get_session(self, session_id: str, *, with_payload: bool = False) -> SyncSession | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sync_sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return None
            errors = tuple(
                RecordError(vendor_user_id=user_id, reason=reason, field=field)
                for user_id, field, reason in self._db.execute(
                    "SELECT vendor_user_id, field, reason FROM session_errors "
                    "WHERE session_id = ? ORDER BY id",
                    (session_id,),
                )
            )
            payload: tuple[Mapping[str, Any], ...] = ()
            if with_payload:
                payload = tuple(
                    json.loads(text)
                    for (text,) in self._db.execute(
                        "SELECT record FROM session_payload WHERE session_id = ? ORDER BY id",
                        (session_id,),
                    )
                )
        return session_from_row(row, errors, payload, read_time=_parse_time)

    def list_sessions(
        self, *, integration: str | None = None, limit: int | None = 50
    ) -> list[SyncSession]:
        query = f"SELECT {SESSION_COLUMNS} FROM sync_sessions"
        params: list[Any] = []
        if integration is not None:
            query += " WHERE integration = ?"
            params.append(integration)
        query += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [session_from_row(row, (), (), read_time=_parse_time) for row in rows]

    # -- integrations -------------------------------------------------------------

    def save_integration(self, entry: IntegrationEntry) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO integrations (name, vendor, active, schedule, contacts, source, "
                "launched_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "vendor = excluded.vendor, active = excluded.active, schedule = excluded.schedule, "
                "contacts = excluded.contacts, source = excluded.source, "
                "launched_at = excluded.launched_at",
                (
                    entry.name,
                    entry.vendor,
                    int(entry.active),
                    entry.schedule,
                    _dumps(list(entry.contacts)),
                    entry.source,
                    entry.launched_at.isoformat() if entry.launched_at else None,
                ),
            )

    def list_integrations(self, *, active_only: bool = False) -> list[IntegrationEntry]:
        query = (
            "SELECT name, vendor, active, schedule, contacts, source, launched_at FROM integrations"
        )
        if active_only:
            query += " WHERE active = 1"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY name").fetchall()
        return [
            IntegrationEntry(
                name=name,
                vendor=vendor,
                active=bool(active),
                schedule=schedule,
                contacts=tuple(json.loads(contacts)),
                source=source,
                launched_at=_parse_time(launched),
            )
            for name, vendor, active, schedule, contacts, source, launched in rows
        ]

    # -- workflow runs ------------------------------------------------------------

    def record_workflow_run(self, run: WorkflowRun) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO workflow_runs (id, vendor, preset, started_at, ok, "
                "person_id, status, request, response, mapped, error, dry_run) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.vendor,
                    run.preset,
                    _datetime_text(run.started_at),
                    int(run.ok),
                    run.person_id,
                    run.status,
                    _dumps(run.request),
                    None if run.response is None else _dumps(run.response),
                    _dumps(run.mapped),
                    run.error,
                    int(run.dry_run),
                ),
            )

    def iter_workflow_runs(
        self, *, vendor: str | None = None, preset: str | None = None
    ) -> Iterator[WorkflowRun]:
        clauses: list[str] = []
        params: list[Any] = []
        if vendor is not None:
            clauses.append("vendor = ?")
            params.append(vendor)
        if preset is not None:
            clauses.append("preset = ?")
            params.append(preset)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {WORKFLOW_RUN_COLUMNS} FROM workflow_runs{where} "
                "ORDER BY started_at DESC, rowid DESC",
                params,
            ).fetchall()
        for row in rows:
            yield workflow_run_from_row(row, read_time=_parse_time, read_json=json.loads)

    # -- life cycle -----------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error; nests by doing nothing."""

    def __init__(self, store: SQLiteStore) -> None:
        self.db = store._db
        self.outer = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


def _apart_key(integration: str) -> str:
    """The ``meta`` key saying that the integration's ``member_pages`` share no member."""
    return "pages_apart:" + integration


def _identifier(name: str) -> str:
    """*name* as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _json_path(field: str) -> str:
    return '$."' + field.replace('"', '\\"') + '"'


def _infer_type(value: Any) -> FieldType:
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, datetime):
        return FieldType.DATETIME
    if isinstance(value, list | tuple):
        return FieldType.LIST
    if isinstance(value, Mapping) or (isinstance(value, str) and len(value) > 255):
        return FieldType.TEXT
    return FieldType.STRING


class _SQLiteRunBook(RunBook):
    """A run's bookkeeping in the store connection's temporary tables.

    Being on the same connection as the people, finding who vanished is one
    SQL statement (:meth:`SQLiteStore.vanish`).
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.db = store._db
        self.pages_held = 0
        """Pages marked *apart* whose members are not yet in run_keys and run_seen."""
        self.vouched = 0
        """The members of pages recalled apart that were held, or (deactivated)
        marked seen: distinct members, each found linked by its own user id
        (:meth:`SQLiteStore._all_vouched`)."""

    def put_in_pages(self) -> None:
        """Put the members of the pages held back into the run's tables, sorted, all at once.

        Inserting each page's members as it came (random keys into two indexes
        that outgrow their cache at 300,000 users) cost an unchanged re-sync of
        100,000 users 0.32 s CPU of 1.07; in key order, in two statements, about
        0.13 s. Nothing reads the tables in between: every question (repeated,
        seen, vanished) calls this first.
        """
        if not self.pages_held:
            return
        db = self.db
        with self.store._lock, self.store._transaction():
            db.execute(
                "INSERT OR IGNORE INTO temp.run_keys (sync_value) SELECT j.value "
                "FROM temp.run_pages p, json_each(p.members) j ORDER BY j.value"
            )
            db.execute(
                "INSERT OR IGNORE INTO temp.run_seen (vendor_user_id, sync_value) "
                "SELECT j.key, j.value FROM temp.run_pages p, json_each(p.members) j "
                "ORDER BY j.key"
            )
            db.execute("DELETE FROM temp.run_pages")
        self.pages_held = 0

    def repeated(self, sync_values: Sequence[str]) -> set[str]:
        if not sync_values:
            return set()
        self.put_in_pages()
        return self.repeated_recalled(sync_values)

    def repeated_recalled(self, sync_values: Sequence[str]) -> set[str]:
        # The held pages stay held (see RunBook.repeated_recalled): the run's
        # deactivated members, written last, do not put 100,000 members in.
        if not sync_values:
            return set()
        # One statement each, the batch passed as one JSON array: executemany
        # would step once per row, releasing and re-taking the GIL every time
        # while the mapping thread wants it.
        # Sorted: the batch's keys go into the run's index side by side.
        values = _dumps_rows(sorted(sync_values))
        with self.store._lock, self.store._transaction():
            found = {
                row[0]
                for row in self.db.execute(
                    "SELECT value FROM json_each(?) "
                    "WHERE value IN (SELECT sync_value FROM temp.run_keys)",
                    (values,),
                )
            }
            self.db.execute(
                "INSERT OR IGNORE INTO temp.run_keys (sync_value) SELECT value FROM json_each(?)",
                (values,),
            )
        return found

    def mark_unchanged(
        self, members: str, count: int, *, apart: bool = False
    ) -> list[tuple[str, str]]:
        db = self.db
        if apart:
            # No member is on another page held back, and no two members of
            # such pages share a sync value (recall_page found each the holder of
            # its unique sync value, linked to this integration by its own user
            # id; a record taking that value since was checked in run_keys
            # first): the page repeats a sync value only if an earlier batch put
            # it in run_keys. Its members go in later (put_in_pages).
            with self.store._lock, self.store._transaction():
                clash = db.execute(
                    "SELECT 1 FROM json_each(?) "
                    "WHERE value IN (SELECT sync_value FROM temp.run_keys) LIMIT 1",
                    (members,),
                ).fetchone()
                if clash is None:
                    db.execute("INSERT INTO temp.run_pages (members) VALUES (?)", (members,))
                    self.pages_held += 1
                    self.vouched += count
                    return []
        self.put_in_pages()
        # Set-based: the page's members go from JSON to the run's tables in SQL.
        # Usually no sync value repeats: the page's are added and the check is
        # that all *count* of them were new; only when some were not is it undone
        # and the repeated ones looked for.
        with self.store._lock, self.store._transaction():
            db.execute("SAVEPOINT page")
            before = db.total_changes
            db.execute(
                "INSERT OR IGNORE INTO temp.run_keys (sync_value) SELECT value FROM json_each(?)",
                (members,),
            )
            repeated: list[tuple[str, str]] = []
            if db.total_changes - before != count:
                db.execute("ROLLBACK TO page")
                repeated = [
                    (str(user_id), str(value))
                    for user_id, value in db.execute(
                        "SELECT key, value FROM json_each(?) "
                        "WHERE value IN (SELECT sync_value FROM temp.run_keys)",
                        (members,),
                    )
                ]
                db.execute(
                    "INSERT OR IGNORE INTO temp.run_keys (sync_value) "
                    "SELECT value FROM json_each(?)",
                    (members,),
                )
                # Seen with no sync value, as a member failing the duplicate rule is.
                db.executemany(
                    "INSERT OR IGNORE INTO temp.run_seen (vendor_user_id, sync_value) "
                    "VALUES (?, NULL)",
                    [(user_id,) for user_id, _ in repeated],
                )
            db.execute("RELEASE page")
            db.execute(
                "INSERT OR IGNORE INTO temp.run_seen (vendor_user_id, sync_value) "
                "SELECT key, value FROM json_each(?)",
                (members,),
            )
        return repeated

    def mark_seen(self, users: Iterable[tuple[str, str | None]]) -> None:
        pairs = list(users)
        if pairs:  # asking nothing puts nothing in
            self.put_in_pages()
            self._insert_seen(pairs)

    def mark_recalled_seen(self, users: Iterable[tuple[str, str | None]]) -> None:
        # The deactivated members of pages recalled apart: found linked too.
        pairs = list(users)
        self._insert_seen(pairs)
        self.vouched += len(pairs)

    def _insert_seen(self, pairs: Sequence[tuple[str, str | None]]) -> None:
        if not pairs:
            return
        with self.store._lock, self.store._transaction():
            # A vendor user id comes once per run; the first pair seen is kept
            # (rows go in in order).
            _insert_rows(
                self.db, "INSERT OR IGNORE INTO temp.run_seen (vendor_user_id, sync_value)", pairs
            )

    def unseen(self, vendor_user_ids: Sequence[str]) -> set[str]:
        if not vendor_user_ids:
            return set()
        self.put_in_pages()
        with self.store._lock:
            seen = {
                row[0]
                for row in self.db.execute(
                    f"SELECT vendor_user_id FROM temp.run_seen WHERE vendor_user_id IN {_LISTED}",
                    (_dumps_rows(list(vendor_user_ids)),),
                )
            }
        return set(vendor_user_ids) - seen

    def mark_inactive(self, vendor_user_ids: Sequence[str]) -> None:
        with self.store._lock, self.store._transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO temp.run_inactive (vendor_user_id) VALUES (?)",
                [(user_id,) for user_id in vendor_user_ids],
            )

    def plan_claims(self, claims: Iterable[tuple[str, str]]) -> None:
        rows = sorted(set(claims))
        if not rows:
            return
        with self.store._lock, self.store._transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO temp.run_claims (field, value) "
                "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)",
                (_dumps_rows(rows),),
            )

    def planned_claims(self, wanted: Mapping[str, set[str]]) -> set[tuple[str, str]]:
        rows = [[name, value] for name, values in wanted.items() for value in values]
        if not rows:
            return set()
        with self.store._lock:
            return {
                (row[0], row[1])
                for row in self.db.execute(
                    "SELECT c.field, c.value FROM json_each(?) j JOIN temp.run_claims c "
                    "ON c.field = json_extract(j.value, '$[0]') "
                    "AND c.value = json_extract(j.value, '$[1]')",
                    (_dumps_rows(rows),),
                )
            }

    def inactive(self, vendor_user_ids: Sequence[str]) -> set[str]:
        if not vendor_user_ids:
            return set()
        with self.store._lock:
            return {
                row[0]
                for row in self.db.execute(
                    "SELECT vendor_user_id FROM temp.run_inactive "
                    f"WHERE vendor_user_id IN {_LISTED}",
                    (_dumps_rows(list(vendor_user_ids)),),
                )
            }

    def iter_seen(self) -> Iterator[tuple[str, str | None]]:
        self.put_in_pages()
        last = ""
        while True:
            with self.store._lock:
                rows = self.db.execute(
                    "SELECT vendor_user_id, sync_value FROM temp.run_seen "
                    "WHERE vendor_user_id > ? ORDER BY vendor_user_id LIMIT 1000",
                    (last,),
                ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]
