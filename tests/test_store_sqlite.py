"""The SQLite store: upserts by sync key, no-op updates, uniqueness, vanished people, sessions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from oomnitza_connect.errors import StoreError
from oomnitza_connect.models import (
    FieldType,
    RecordError,
    SyncPreference,
    SyncStatus,
    UserSelection,
    WorkflowRun,
)
from oomnitza_connect.store.base import CustomField, IntegrationEntry, MappedRecord, SyncPlan
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.rules import BatchRules, apply_batch


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "store.db") as opened:
        yield opened


def plan(**overrides):
    values = {"integration": "acme-main", "vendor": "acme", "sync_key": "email"}
    values.update(overrides)
    return SyncPlan(**values)


def person(user_id, email, **fields):
    return MappedRecord(
        vendor_user_id=user_id, fields={"email": email, "username": user_id, **fields}
    )


def run(store, records, *, sync_plan=None, test_run=False, complete=True, **batch_kwargs):
    """One session of one batch through the engine's rules into the store."""
    sync_plan = sync_plan or plan()
    store.prepare_run(sync_plan, test_run=test_run)
    session = store.start_session(sync_plan, test_run=test_run)
    outcome = apply_batch(
        store, store, session.id, sync_plan, records, test_run=test_run, **batch_kwargs
    )
    vanished = []
    if complete:
        vanished = store.vanish(sync_plan, store.run_book(session.id), test_run=test_run)
    finished = store.finish_session(session.id, status=SyncStatus.SUCCEEDED, vanished=vanished)
    return outcome, finished


def count_statements(store, prefix):
    seen = []
    store._db.set_trace_callback(seen.append)
    return seen


def test_creates_then_updates_by_sync_key_and_leaves_unchanged_rows_alone(store):
    _, first = run(store, [person("U1", "a@x.io", role="Employee"), person("U2", "b@x.io")])
    assert (first.counts.created, first.counts.updated) == (2, 0)
    before = store.find_person("email", "a@x.io")
    assert before.fields["role"] == "Employee"

    statements = count_statements(store, "UPDATE")
    _, second = run(store, [person("U1", "a@x.io", role="Admin"), person("U2", "b@x.io")])
    store._db.set_trace_callback(None)
    assert (second.counts.created, second.counts.updated, second.counts.unchanged) == (0, 1, 1)
    people_updates = [s for s in statements if s.startswith("UPDATE people")]
    assert len(people_updates) == 1
    after_a = store.find_person("email", "a@x.io")
    assert after_a.fields["role"] == "Admin"
    assert after_a.id == before.id
    unchanged = store.find_person("email", "b@x.io")
    assert unchanged.updated_at == unchanged.created_at


def test_a_run_with_nothing_changed_writes_no_person_rows(store):
    records = [
        person(f"U{i}", f"u{i}@x.io", connector_sync_time=datetime.now(UTC)) for i in range(5)
    ]
    run(store, records)
    statements = count_statements(store, "")
    later = [
        person(f"U{i}", f"u{i}@x.io", connector_sync_time=datetime(2030, 1, 1, tzinfo=UTC))
        for i in range(5)
    ]
    _, session = run(store, later)
    store._db.set_trace_callback(None)
    assert session.counts.unchanged == 5
    writes = [
        s
        for s in statements
        if s.split()[0] in ("INSERT", "UPDATE", "DELETE")
        and any(t in s for t in ("people", "person_keys", "person_sources", "saas_users"))
        and "temp." not in s
    ]
    assert writes == []


def test_duplicate_and_missing_sync_keys_fail_alone(store):
    _outcome, session = run(
        store,
        [
            person("U1", "same@x.io"),
            person("U2", "same@x.io"),
            MappedRecord("U3", {"username": "U3", "email": None}),
            person("U4", "ok@x.io"),
        ],
    )
    assert session.counts.created == 2
    assert session.counts.failed == 2
    reasons = {e.vendor_user_id: e.reason for e in session.errors}
    assert "already has email 'same@x.io'" in reasons["U2"]
    assert "no value for the sync key 'email'" in reasons["U3"]
    assert store.find_person("email", "ok@x.io") is not None


def test_duplicates_are_caught_across_batches_of_one_run(store):
    sync_plan = plan()
    session = store.start_session(sync_plan)
    rules = BatchRules(store, store.run_book(session.id), sync_plan, test_run=False)
    apply_batch(store, store, session.id, sync_plan, [person("U1", "a@x.io")], rules=rules)
    outcome = apply_batch(
        store, store, session.id, sync_plan, [person("U9", "a@x.io")], rules=rules
    )
    assert outcome.counts.failed == 1
    assert outcome.errors[0].vendor_user_id == "U9"
    assert store.find_person("email", "a@x.io").fields["username"] == "U1"


def test_unique_custom_field_is_enforced(store):
    store.define_custom_field(CustomField("Badge", FieldType.STRING, unique=True))
    _, session = run(
        store, [person("U1", "a@x.io", Badge="B-1"), person("U2", "b@x.io", Badge="B-1")]
    )
    assert session.counts.created == 1
    assert session.errors[0].field == "Badge"
    assert "already belongs to another person" in session.errors[0].reason
    assert store.find_person("Badge", "B-1").fields["email"] == "a@x.io"


def test_a_custom_sync_key_must_be_unique(store):
    with pytest.raises(StoreError, match="not a unique field"):
        store.prepare_run(plan(sync_key="Slack Id"), test_run=False)
    store.define_custom_field(CustomField("Slack Id", unique=True))
    _, _session = run(
        store, [person("U1", "a@x.io", **{"Slack Id": "U1"})], sync_plan=plan(sync_key="Slack Id")
    )
    assert store.find_person("Slack Id", "U1").sync_key == "Slack Id"


def test_making_a_field_unique_fails_when_people_share_values(store):
    run(store, [person("U1", "a@x.io", Team="red"), person("U2", "b@x.io", Team="red")])
    with pytest.raises(StoreError, match="cannot be unique"):
        store.define_custom_field(CustomField("Team", unique=True))


def test_vanished_people_are_marked_and_come_back(store):
    run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")])
    _, second = run(store, [person("U1", "a@x.io")])
    assert second.counts.vanished == 1
    gone = store.find_person("email", "b@x.io")
    assert gone.vanished_from == ("acme",)
    assert store.count_people() == 2

    _, third = run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")])
    assert third.counts.updated == 1
    assert store.find_person("email", "b@x.io").vanished_from == ()


def test_an_incomplete_run_marks_nobody_vanished(store):
    run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")])
    _, second = run(store, [person("U1", "a@x.io")], complete=False)
    assert second.counts.vanished == 0
    assert store.find_person("email", "b@x.io").vanished_from == ()


def test_a_record_that_failed_keeps_its_person_from_vanishing(store):
    run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")])
    failure = RecordError("U2", "field 'Hired': cannot convert 'soon' to a timestamp", "Hired")
    _, second = run(store, [person("U1", "a@x.io")], failed=[failure])
    assert second.counts.vanished == 0
    assert second.counts.failed == 1


@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        (SyncPreference.CREATE_ONLY, {"created": 1, "updated": 0, "skipped": 1}),
        (SyncPreference.UPDATE_ONLY, {"created": 0, "updated": 1, "skipped": 1}),
        (SyncPreference.CREATE_UPDATE, {"created": 1, "updated": 1, "skipped": 0}),
    ],
)
def test_preference_decides_what_is_written(store, preference, expected):
    run(store, [person("U1", "a@x.io", role="Employee")])
    sync_plan = plan(preference=preference)
    _, session = run(
        store,
        [person("U1", "a@x.io", role="Admin"), person("U2", "b@x.io")],
        sync_plan=sync_plan,
    )
    counts = session.counts
    assert {
        "created": counts.created,
        "updated": counts.updated,
        "skipped": counts.skipped,
    } == expected
    role = store.find_person("email", "a@x.io").fields["role"]
    assert role == ("Employee" if preference == SyncPreference.CREATE_ONLY else "Admin")
    assert (store.find_person("email", "b@x.io") is None) == (
        preference == SyncPreference.UPDATE_ONLY
    )


def test_users_and_saas_links_each_person_to_the_app(store):
    sync_plan = plan(selection=UserSelection.USERS_AND_SAAS)
    records = [
        MappedRecord("U1", {"email": "a@x.io", "saas_role": "owner", "role": "Employee"}),
        MappedRecord("U2", {"email": "b@x.io", "role": "Employee"}),
    ]
    run(store, records, sync_plan=sync_plan)
    users = {u.vendor_user_id: u for u in store.iter_saas_users(vendor="acme")}
    alice = store.find_person("email", "a@x.io")
    assert users["U1"].person_id == alice.id
    assert users["U1"].role == "owner"
    assert "saas_role" not in alice.fields
    assert users["U2"].role is None


def test_last_logins_land_on_person_and_saas_user(store):
    sync_plan = plan(selection=UserSelection.USERS_AND_SAAS)
    run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")], sync_plan=sync_plan)
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert store.apply_last_logins("acme", [("U1", when), ("U404", when)]) == 1
    assert store.find_person("email", "a@x.io").fields["last_login"] == when
    saas = {u.vendor_user_id: u for u in store.iter_saas_users()}
    assert saas["U1"].fields["last_login"] == when
    assert store.apply_last_logins("acme", [("U1", when)]) == 0


def test_test_run_counts_but_writes_no_people(store):
    _outcome, session = run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")], test_run=True)
    assert session.counts.created == 2
    assert session.test_run
    assert store.count_people() == 0
    shown = store.get_session(session.id, with_payload=True)
    assert [entry["fields"]["email"] for entry in shown.payload] == ["a@x.io", "b@x.io"]
    assert shown.payload[0]["action"] == "create"


def test_sessions_are_listed_newest_first(store):
    _, first = run(store, [person("U1", "a@x.io")])
    _, second = run(store, [person("U1", "a@x.io")])
    listed = store.list_sessions()
    assert [s.id for s in listed] == [second.id, first.id]
    assert listed[0].status == SyncStatus.SUCCEEDED


def test_a_running_session_of_a_dead_process_is_marked_interrupted(store, tmp_path):
    sync_plan = plan()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    session = store.start_session(sync_plan)
    store._db.execute("UPDATE sync_sessions SET pid = ? WHERE id = ?", (pid, session.id))
    store._active_session = None
    store.start_session(sync_plan)
    assert store.get_session(session.id).status == SyncStatus.INTERRUPTED


def test_update_person_fields_defines_custom_fields_and_skips_no_ops(store):
    run(store, [person("U1", "a@x.io")])
    alice = store.find_person("email", "a@x.io")
    store.update_person_fields(
        alice.id, {"Licenses": 5, "Renewed": datetime(2026, 1, 1, tzinfo=UTC)}
    )
    labels = {f.label: f.type for f in store.custom_fields()}
    assert labels == {"Licenses": FieldType.INTEGER, "Renewed": FieldType.DATETIME}
    again = store.get_person(alice.id)
    assert again.fields["Licenses"] == 5
    assert again.fields["Renewed"] == datetime(2026, 1, 1, tzinfo=UTC)
    stamp = again.updated_at
    store.update_person_fields(alice.id, {"Licenses": 5})
    assert store.get_person(alice.id).updated_at == stamp
    with pytest.raises(StoreError, match="no person with id 999"):
        store.update_person_fields(999, {"x": 1})


def test_update_person_fields_keeps_unique_fields_unique(store):
    run(store, [person("U1", "a@x.io"), person("U2", "b@x.io")])
    bob = store.find_person("email", "b@x.io")
    with pytest.raises(StoreError, match="already has that value"):
        store.update_person_fields(bob.id, {"email": "a@x.io"})
    store.update_person_fields(bob.id, {"email": "robert@x.io"})
    assert store.find_person("email", "robert@x.io").id == bob.id
    assert store.find_person("email", "b@x.io") is None


def test_workflow_runs_round_trip_newest_first(store):
    for index in range(2):
        store.record_workflow_run(
            WorkflowRun(
                id=f"run-{index}",
                vendor="acme",
                preset="Get User",
                started_at=datetime(2026, 1, 1, 10, index, tzinfo=UTC),
                ok=True,
                status=200,
                request={"method": "GET", "url": "http://x/users/1"},
                response={"id": 1},
                mapped={"Acme Id": "1"},
            )
        )
    runs = list(store.iter_workflow_runs(vendor="acme", preset="Get User"))
    assert [r.id for r in runs] == ["run-1", "run-0"]
    assert runs[0].response == {"id": 1}
    assert list(store.iter_workflow_runs(vendor="other")) == []


def test_integrations_are_remembered(store):
    store.save_integration(IntegrationEntry("acme-main", "acme", True, "daily", ("ops@x.io",)))
    store.save_integration(IntegrationEntry("acme-old", "acme", False, "weekly"))
    assert [i.name for i in store.list_integrations(active_only=True)] == ["acme-main"]
    assert store.list_integrations()[0].contacts == ("ops@x.io",)


def test_iter_people_filters_by_vendor_and_pages(store):
    run(store, [person(f"U{i}", f"u{i}@x.io") for i in range(1203)])
    run(store, [person("W1", "w@x.io")], sync_plan=plan(integration="other", vendor="other"))
    assert sum(1 for _ in store.iter_people(vendor="acme")) == 1203
    assert store.count_people(vendor="other") == 1
    assert store.count_people() == 1204


def test_the_file_is_in_wal_mode(tmp_path):
    SQLiteStore(tmp_path / "w.db").close()
    mode = sqlite3.connect(tmp_path / "w.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "slack.toml"
    path.write_text('name = "not a database"\n' * 100)
    with pytest.raises(StoreError, match=r"cannot open the store at .*slack\.toml: file is not a"):
        SQLiteStore(path)


_OPENER = """
import sys, time
from oomnitza_connect.store.sqlite import SQLiteStore
folder, rounds, spacing = sys.argv[1], int(sys.argv[2]), 0.04
print("ready", flush=True)
first = float(sys.stdin.readline())  # the same instant for every opener
for number in range(rounds):
    at = first + number * spacing
    if at - time.time() > 0.005:
        time.sleep(at - time.time() - 0.005)
    while time.time() < at:  # every opener opens file number at the same moment
        pass
    try:
        SQLiteStore(f"{folder}/new-{number}.db").close()
        print("opened", flush=True)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
"""


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path):
    # Two workers opening a new file together both ask for WAL; SQLite fails
    # one at once ("database is locked", about one opener in eight here) unless
    # the store waits the other out.
    rounds, openers = 30, 3
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(tmp_path), str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(openers)
    ]
    for process in processes:  # each has imported the store
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    first = time.time() + 0.1
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{first}\n")
        process.stdin.close()
    outcomes: list[str] = []
    for process in processes:
        assert process.stdout is not None
        outcomes += process.stdout.read().splitlines()
        process.wait(timeout=120)
    assert len(outcomes) == rounds * openers
    assert [o for o in outcomes if o != "opened"] == []


@pytest.mark.parametrize("count", [0, 1, 7, 64, 65, 511, 512, 600, 1100])
def test_rows_go_in_whole_and_in_order_whatever_their_number(count):
    from oomnitza_connect.store.sqlite import _insert_rows

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, value TEXT, n INTEGER)")
    rows = [(f"u{index % 300}", f"v{index}", index) for index in range(count)]
    _insert_rows(db, "INSERT OR IGNORE INTO seen (id, value, n)", rows)
    stored = db.execute("SELECT id, value, n FROM seen ORDER BY n").fetchall()
    # Every row, once; where ids repeat the first row of each id is kept.
    first = {}
    for row in rows:
        first.setdefault(row[0], row)
    assert stored == sorted(first.values(), key=lambda row: row[2])


def test_inserting_rows_prepares_a_few_statements_for_any_number_of_rows():
    from oomnitza_connect.store.sqlite import _VALUES_SIZES, _insert_rows

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE seen (id INTEGER PRIMARY KEY)")
    statements: set[str] = set()

    class Recording:
        def getlimit(self, category):
            return db.getlimit(category)

        def execute(self, sql, parameters):
            statements.add(sql)
            return db.execute(sql, parameters)

    start = 0
    for count in range(1, 1200, 37):
        rows = [(start + index,) for index in range(count)]
        _insert_rows(Recording(), "INSERT INTO seen (id)", rows)  # type: ignore[arg-type]
        start += count
    # One statement per size, not one per length: the connection caches 128.
    assert len(statements) == len(_VALUES_SIZES)
    assert db.execute("SELECT count(*), max(id) FROM seen").fetchone() == (start, start - 1)


def keys_of(store):
    return sorted(store._db.execute("SELECT field, value, person_id FROM person_keys"))


def test_a_unique_value_given_up_in_a_run_is_free_for_another_person(store):
    run(store, [person("u1", "one@example.com"), person("u2", "two@example.com")])
    # u1 changes username; u3 takes the username u1 gave up, in the next run.
    run(store, [person("u1", "one@example.com", username="renamed")])
    outcome, _ = run(store, [person("u3", "three@example.com", username="u1")])
    assert outcome.errors == ()
    keys = keys_of(store)
    assert ("username", "renamed", 1) in keys
    assert ("username", "u1", 3) in keys
    assert [key for key in keys if key[2] == 1] == [
        ("email", "one@example.com", 1),
        ("username", "renamed", 1),
    ]


@pytest.mark.parametrize("before", [{}, {"username": "not what it held"}])
def test_a_change_that_does_not_say_the_old_value_still_releases_it(store, before):
    from oomnitza_connect.store.base import ChangedPerson, PersonWrites

    sync_plan = plan()
    run(store, [person("u1", "one@example.com")], sync_plan=sync_plan)
    fields = {"email": "one@example.com", "username": "renamed"}
    # A destination author's own ChangedPerson: `before` left out, or wrong.
    change = ChangedPerson(1, fields, {"username": "renamed"}, frozenset({"username"}), before)
    store.prepare_run(sync_plan, test_run=False)
    store.write_people(sync_plan, PersonWrites(updates=[change]))
    assert keys_of(store) == [("email", "one@example.com", 1), ("username", "renamed", 1)]


def test_the_keys_have_no_index_by_person_and_an_old_store_loses_it(tmp_path):
    path = tmp_path / "old.db"
    with SQLiteStore(path):
        pass
    db = sqlite3.connect(path)
    db.execute("CREATE INDEX person_keys_by_person ON person_keys (person_id, field)")
    db.commit()
    db.close()
    with SQLiteStore(path) as reopened:
        indexes = {
            row[0]
            for row in reopened._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'person_keys'"
            )
        }
    assert "person_keys_by_person" not in indexes


@pytest.mark.parametrize("count", [1, 165, 166, 167, 512, 1100])
def test_rows_fit_an_older_sqlites_limit_of_999_parameters(count):
    from oomnitza_connect.store.sqlite import _insert_rows

    db = sqlite3.connect(":memory:")
    # SQLite before 3.32 allows 999 parameters a statement (RHEL 8 has 3.26).
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    db.execute("CREATE TABLE wide (a, b, c, d, e, f)")
    rows = [(index, "b", "c", "d", "e", "f") for index in range(count)]
    _insert_rows(db, "INSERT INTO wide (a, b, c, d, e, f)", rows)
    assert db.execute("SELECT count(*), sum(a) FROM wide").fetchone() == (
        count,
        sum(range(count)),
    )


def test_a_whole_batch_of_new_people_fits_an_older_sqlites_parameter_limit(store):
    store._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    records = [person(f"u{index}", f"u{index}@example.com") for index in range(600)]
    outcome, _ = run(store, records)
    assert outcome.counts.created == 600
    assert store.count_people() == 600


def test_changes_that_say_their_old_values_and_one_that_does_not_all_release(store):
    from oomnitza_connect.store.base import ChangedPerson, PersonWrites

    sync_plan = plan()
    run(store, [person(f"u{index}", f"u{index}@example.com") for index in (1, 2, 3)])
    changes = [
        ChangedPerson(
            index,
            {"email": f"u{index}@example.com", "username": f"new{index}"},
            {"username": f"new{index}"},
            frozenset({"username"}),
            {} if index == 2 else {"username": f"u{index}"},
        )
        for index in (1, 2, 3)
    ]
    store.prepare_run(sync_plan, test_run=False)
    store.write_people(sync_plan, PersonWrites(updates=changes))
    usernames = [key for key in keys_of(store) if key[0] == "username"]
    assert usernames == [("username", f"new{index}", index) for index in (1, 2, 3)]


@pytest.mark.parametrize("held", [True, False, 1e16, 2.5, "text", 7, [1, 2]])
def test_a_field_made_unique_later_indexes_values_as_a_sync_writes_them(store, held):
    from oomnitza_connect.sync.rules import key_text

    run(store, [person("u1", "one@example.com", Badge=held), person("u2", "two@example.com")])
    store.define_custom_field(CustomField("Badge", FieldType.STRING, unique=True))
    # The text a sync would look the value up by (not SQL's "1" for true).
    assert [key for key in keys_of(store) if key[0] == "Badge"] == [("Badge", key_text(held), 1)]
    # So u1 giving the value up releases it by its key, with nothing left behind.
    run(store, [person("u1", "one@example.com", Badge="other")])
    assert [key for key in keys_of(store) if key[0] == "Badge"] == [("Badge", "other", 1)]


def test_a_batch_whose_write_fails_on_its_last_row_keeps_none_of_it(store):
    # The inserts keep their own rows when one fails (OR FAIL, no statement
    # journal): the batch's transaction must take all of them back.
    from oomnitza_connect.models import SyncCounts
    from oomnitza_connect.store.base import BatchOutcome, NewPerson, PersonWrites

    integration = plan()
    session = store.start_session(integration)
    creates = [
        NewPerson(f"u{n}@x.io", {"email": f"u{n}@x.io", "username": f"u{n}"}, f"U{n}")
        for n in range(700)
    ]
    # The last one takes the first one's username: the key index refuses it.
    creates[-1] = NewPerson("late@x.io", {"email": "late@x.io", "username": "u0"}, "U700")
    with pytest.raises(StoreError, match="nothing of it was kept"):
        store.record_batch(
            session.id,
            BatchOutcome(counts=SyncCounts(created=700)),
            write=lambda: store.write_people(integration, PersonWrites(creates=creates)),
        )
    for table in ("people", "person_keys", "person_sources", "saas_users"):
        assert store._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    store.finish_session(session.id, status=SyncStatus.FAILED)
    assert store.get_session(session.id).counts.created == 0
    # The store is whole after it: the same people, the duplicate left out, go in.
    second = store.start_session(integration)
    store.write_people(integration, PersonWrites(creates=creates[:-1]))
    store.finish_session(second.id, status=SyncStatus.SUCCEEDED)
    assert store._db.execute("SELECT count(*) FROM people").fetchone()[0] == 699
