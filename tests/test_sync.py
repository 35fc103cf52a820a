"""The sync engine end to end: a real emulator over HTTP, the real mapping, a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, make_user, write_integration

from oomnitza_connect.errors import ConfigurationError, StoreError
from oomnitza_connect.models import (
    FieldMapping,
    SyncPreference,
    SyncStatus,
    UserSelection,
)
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import IntegrationWarning, load_integration


@pytest.fixture
def acme():
    plugin = AcmePlugin(per_page=7)
    with register_plugin(plugin, name="acme-test"), AcmeEmulator(users=25) as emulator:
        yield emulator


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "sync.db") as opened:
        yield opened


@pytest.fixture
def settings(tmp_path, acme):
    return load_integration(write_integration(tmp_path, base_url=acme.base_url))


def sync(settings, store, acme, **kwargs):
    return run_sync(settings, credential=credential(), store=store, batch_size=10, **kwargs)


def test_first_run_creates_everyone_then_nothing_changes(settings, store, acme):
    first = sync(settings, store, acme)
    assert first.status == SyncStatus.SUCCEEDED
    assert (first.counts.created, first.counts.failed) == (25, 0)
    person = store.find_person("email", "user3@example.com")
    assert person.fields["username"] == "user3"
    assert person.fields["first_name"] == "First3"
    assert person.fields["last_name"] == "Last3"
    assert person.fields["role"] == "Employee"
    assert person.fields["Acme User Id"] == "A000003"
    assert isinstance(person.fields["connector_sync_time"], datetime)

    second = sync(settings, store, acme)
    assert second.counts.unchanged == 25
    assert (second.counts.created, second.counts.updated) == (0, 0)
    assert store.find_person("email", "user3@example.com").updated_at == person.updated_at


def test_changes_at_the_vendor_are_updated(settings, store, acme):
    sync(settings, store, acme)
    acme.users[4]["full_name"] = "Renamed Person"
    session = sync(settings, store, acme)
    assert (session.counts.updated, session.counts.unchanged) == (1, 24)
    assert store.find_person("email", "user5@example.com").fields["first_name"] == "Renamed"


def test_filters_skip_records(settings, store, acme):
    acme.users[0]["active"] = False
    session = sync(settings, store, acme)
    assert session.counts.skipped == 1
    assert store.find_person("email", "user1@example.com") is None


def test_vanished_people_are_marked_not_deleted_and_return(settings, store, acme):
    sync(settings, store, acme)
    removed = acme.users.pop(0)
    session = sync(settings, store, acme)
    assert session.counts.vanished == 1
    assert store.find_person("email", "user1@example.com").vanished_from == ("acme",)
    assert store.count_people() == 25
    acme.users.append(removed)
    session = sync(settings, store, acme)
    assert session.counts.updated == 1
    assert store.find_person("email", "user1@example.com").vanished_from == ()


def test_bad_records_fail_alone_with_reasons(tmp_path, store, acme):
    acme.users[1]["mail"] = acme.users[0]["mail"].upper()
    acme.users[2]["mail"] = None
    acme.users[3]["mail"] = "not-an-email"
    acme.users[4]["hired"] = "soon"
    extra = """
[[mapping]]
target = "Hired"
source = "hired"
converter = "timestamp"

[[mapping]]
target = "Greeting"
expression = "{{ nickname }}"
"""
    for user in acme.users:
        user["nickname"] = "x"
    del acme.users[6]["nickname"]
    # Acme declares no 'nickname' field: the file's check says so, and the run goes on.
    with pytest.warns(IntegrationWarning, match="variable 'nickname' is not defined"):
        settings = load_integration(write_integration(tmp_path, extra, base_url=acme.base_url))
    session = sync(settings, store, acme)
    assert session.status == SyncStatus.COMPLETED_WITH_ERRORS
    reasons = {error.vendor_user_id: error.reason for error in session.errors}
    assert "already has email 'user1@example.com'" in reasons["A000002"]
    assert "no value for the sync key 'email'" in reasons["A000003"]
    assert "'not-an-email' is not an email address" in reasons["A000004"]
    assert "cannot convert 'soon' to a timestamp" in reasons["A000005"]
    assert "field 'Greeting': variable 'nickname' is not defined" in reasons["A000007"]
    assert session.counts.failed == 5
    assert session.counts.created == 20
    hired = store.find_person("email", "user8@example.com").fields["Hired"]
    assert hired == datetime.fromtimestamp(1_600_000_000 + 8 * 86_400, UTC)


def test_test_run_writes_no_people_and_keeps_the_payload(settings, store, acme):
    session = sync(settings, store, acme, test_run=True)
    assert session.test_run
    assert session.counts.created == 25
    assert store.count_people() == 0
    shown = store.get_session(session.id, with_payload=True)
    assert len(shown.payload) == 25
    assert shown.payload[0]["fields"]["email"] == "user1@example.com"


def test_test_run_keeps_the_whole_plan_and_pages_it(tmp_path, store):
    with (
        register_plugin(AcmePlugin(per_page=100), name="acme-test"),
        AcmeEmulator(users=150) as emulator,
    ):
        settings = load_integration(write_integration(tmp_path, base_url=emulator.base_url))
        session = run_sync(settings, credential=credential(), store=store, test_run=True)
    assert session.counts.created == 150
    assert len(store.get_session(session.id, with_payload=True).payload) == 150
    page = list(store.iter_plan(session.id, offset=140, limit=20))
    assert [entry["sync_value"] for entry in page] == [
        f"user{i}@example.com" for i in range(141, 151)
    ]


def test_a_draft_refuses_a_real_run_but_allows_a_test_run(tmp_path, store, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    path.write_text(path.read_text().replace('default_role = "Employee"\n', ""))
    settings = load_integration(path)
    with pytest.raises(ConfigurationError, match="still a draft") as caught:
        sync(settings, store, acme)
    assert any("default role" in problem for problem in caught.value.problems)
    assert sync(settings, store, acme, test_run=True).counts.created == 25


def test_a_refused_credential_fails_the_session(settings, store, acme):
    bad = attrs.evolve(credential(), token="wrong-token-9999")
    session = run_sync(settings, credential=bad, store=store)
    assert session.status == SyncStatus.FAILED
    assert "401" in session.message
    assert "wrong-token-9999" not in session.message
    assert store.list_sessions()[0].status == SyncStatus.FAILED


def test_a_vendor_failure_mid_run_keeps_batches_and_marks_nobody_vanished(settings, store, acme):
    sync(settings, store, acme)
    acme.users.pop(0)
    acme.fail_after_page = 2
    session = sync(settings, store, acme)
    assert session.status == SyncStatus.FAILED
    assert session.counts.vanished == 0
    assert "backend down" in session.message or "500" in session.message
    assert store.find_person("email", "user1@example.com").vanished_from == ()


def test_users_and_saas_links_people_and_writes_last_logins(tmp_path, store, acme):
    extra = """
[[mapping]]
target = "saas_role"
expression = "{{ 'admin' if is_admin else 'member' }}"
"""
    path = write_integration(tmp_path, extra, base_url=acme.base_url)
    path.write_text('selection = "users+saas"\n' + path.read_text())
    settings = load_integration(path)
    assert settings.selection == UserSelection.USERS_AND_SAAS
    when = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    acme.logins = {"A000010": when}
    sync(settings, store, acme)
    saas = {user.vendor_user_id: user for user in store.iter_saas_users(vendor="acme")}
    assert len(saas) == 25
    assert saas["A000010"].role == "admin"
    assert saas["A000011"].role == "member"
    assert saas["A000010"].fields["last_login"] == when
    person = store.find_person("email", "user10@example.com")
    assert saas["A000010"].person_id == person.id
    assert person.fields["last_login"] == when
    assert person.fields["role"] == "Employee"


def test_preferences(tmp_path, store, acme):
    base = load_integration(write_integration(tmp_path, base_url=acme.base_url))
    sync(attrs.evolve(base, preference=SyncPreference.CREATE_ONLY), store, acme)
    acme.users[0]["full_name"] = "Changed Name"
    acme.users.append(make_user(99))
    only_update = sync(attrs.evolve(base, preference=SyncPreference.UPDATE_ONLY), store, acme)
    assert (only_update.counts.updated, only_update.counts.skipped) == (1, 1)
    assert store.find_person("email", "user99@example.com") is None
    only_create = sync(attrs.evolve(base, preference=SyncPreference.CREATE_ONLY), store, acme)
    assert (only_create.counts.created, only_create.counts.skipped) == (1, 25)


def test_custom_unique_sync_key(tmp_path, store, acme):
    settings = load_integration(write_integration(tmp_path, base_url=acme.base_url))
    settings = attrs.evolve(settings, sync_key="Acme User Id")
    session = sync(settings, store, acme)
    assert session.counts.created == 25
    person = store.find_person("Acme User Id", "A000002")
    assert person.sync_key == "Acme User Id"
    assert {f.label: f.unique for f in store.custom_fields()}["Acme User Id"] is True


def test_tracking_fields_map_like_any_field(tmp_path, store, acme):
    extra = '\n[[mapping]]\ntarget = "vendor_api_version"\nexpression = "{{ api_version }}"\n'
    settings = load_integration(write_integration(tmp_path, extra, base_url=acme.base_url))
    before = datetime.now(UTC)
    sync(settings, store, acme)
    person = store.find_person("email", "user1@example.com")
    assert person.fields["vendor_api_version"] == "2024-01"
    assert person.fields["connector_sync_time"] >= before.replace(microsecond=0)


def test_integration_mapping_replaces_the_standard_target(tmp_path, store, acme):
    extra = '\n[[mapping]]\ntarget = "First Name"\nexpression = "{{ login | upper }}"\n'
    settings = load_integration(write_integration(tmp_path, extra, base_url=acme.base_url))
    sync(settings, store, acme)
    assert store.find_person("email", "user2@example.com").fields["first_name"] == "USER2"


def test_progress_is_reported_per_batch(settings, store, acme):
    seen = []
    sync(settings, store, acme, progress=seen.append)
    # A report as each phase starts, then one per batch written.
    processed = [p.processed for p in seen]
    steps = [n for i, n in enumerate(processed) if i == 0 or n != processed[i - 1]]
    assert steps == [0, 10, 20, 25]
    assert seen[0].phase.value == "listing"
    assert seen[-1].phase.value == "finalizing"
    assert seen[-1].counts.created == 25


def test_credential_for_another_vendor_is_refused(settings, store, acme):
    other = attrs.evolve(credential(), vendor="slack")
    with pytest.raises(ConfigurationError, match="is for 'slack'"):
        run_sync(settings, credential=other, store=store)


def test_custom_mapping_with_converters(tmp_path, store, acme):
    extra = """
[[mapping]]
target = "Groups"
source = "groups"
converter = "list"

[[mapping]]
target = "Admin"
source = "is_admin"
converter = "bool"
"""
    settings = load_integration(write_integration(tmp_path, extra, base_url=acme.base_url))
    sync(settings, store, acme)
    person = store.find_person("email", "user1@example.com")
    assert person.fields["Groups"] == ["staff", "eng"]
    assert person.fields["Admin"] is False
    mapping_targets = {m.target for m in settings.mapping}
    assert mapping_targets == {"Groups", "Admin"}
    assert FieldMapping(target="Groups", source="groups", converter="list") in settings.mapping


def test_read_ahead_yields_everything_in_order_and_raises_the_fetch_error():
    from oomnitza_connect.errors import TransportError
    from oomnitza_connect.sync.engine import read_ahead

    assert list(read_ahead(iter(range(1234)), chunk=100, chunks=2)) == list(range(1234))

    def failing():
        yield from range(250)
        raise TransportError("the vendor went away", vendor="acme")

    seen = []
    with pytest.raises(TransportError, match="went away"):
        seen.extend(read_ahead(failing(), chunk=100))
    assert seen == list(range(200))


def test_read_ahead_stops_its_thread_when_the_consumer_stops():
    import threading

    from oomnitza_connect.sync.engine import read_ahead

    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    reader = read_ahead(endless(), chunk=10, chunks=2)
    assert next(reader) == 0
    reader.close()
    assert not any(t.name == "oomnitza-connect-read-ahead" for t in threading.enumerate())
    assert len(produced) < 100


def test_no_batch_is_written_after_one_failed(settings, store, acme, monkeypatch):
    # The failing batch takes its time, so the next one is already queued for
    # the writer thread: it must not be written (this made the test below flaky).
    import time

    calls = []
    original = store.record_batch

    def slow_failure(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            time.sleep(0.5)
            raise StoreError("the disk is full")
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "record_batch", slow_failure)
    session = sync(settings, store, acme)
    assert session.status == SyncStatus.FAILED
    assert store.count_people() == 10
    assert session.counts.created == 10


def test_a_store_failure_mid_run_fails_the_session(settings, store, acme, monkeypatch):
    calls = []
    original = store.record_batch

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise StoreError("the disk is full")
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "record_batch", flaky)
    session = sync(settings, store, acme)
    assert session.status == SyncStatus.FAILED
    assert "the disk is full" in session.message
    assert session.counts.created == 10
    assert store.count_people() == 10


def test_a_test_run_foresees_a_unique_value_two_new_users_share_across_batches(
    tmp_path, store, acme
):
    # Both new: the first takes the username, and the other (three batches later)
    # fails. The test run writes neither, so it must remember what it planned.
    acme.users.append(make_user(95, login="user1"))
    settings = load_integration(write_integration(tmp_path, base_url=acme.base_url))
    planned = sync(settings, store, acme, test_run=True)
    assert store.count_people() == 0
    real = sync(settings, store, acme)
    assert (planned.counts.created, planned.counts.failed) == (25, 1)
    assert (real.counts.created, real.counts.failed) == (25, 1)
    (planned_error,) = planned.errors
    (real_error,) = real.errors
    assert planned_error.vendor_user_id == real_error.vendor_user_id == "A000095"
    assert planned_error.reason == real_error.reason
    assert "'username' 'user1' already belongs to another person" in real_error.reason
