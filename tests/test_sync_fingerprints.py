"""The unchanged-member fast path: a member whose fingerprint (the integration's
configuration and the vendor's JSON for it) and person are as its last write
left them is neither read nor mapped, and writes nothing."""

from __future__ import annotations

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.models import SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync import engine
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration

TITLE_FROM_LOGIN = '\n[[mapping]]\ntarget = "title"\nexpression = "{{ login }} works here"\n'


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
def mapped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The vendor user ids the run mapped (every mapped record's text is checked once)."""
    seen: list[str] = []
    check_text = engine.check_text

    def counting(fields):
        seen.append(fields.get("Acme User Id") or fields.get("email"))
        check_text(fields)

    monkeypatch.setattr(engine, "check_text", counting)
    return seen


def integration(tmp_path, acme, extra: str = ""):
    return load_integration(write_integration(tmp_path, extra, base_url=acme.base_url))


def sync(settings, store, **kwargs):
    return run_sync(settings, credential=credential(), store=store, batch_size=10, **kwargs)


def rows_written_since(store: SQLiteStore, stamp: str) -> int:
    return store._db.execute(
        "SELECT count(*) FROM people WHERE updated_at > ?", (stamp,)
    ).fetchone()[0]


def latest_stamp(store: SQLiteStore) -> str:
    return store._db.execute("SELECT max(updated_at) FROM people").fetchone()[0]


def test_an_unchanged_resync_maps_nobody_and_writes_nothing(tmp_path, acme, store, mapped):
    settings = integration(tmp_path, acme)
    assert sync(settings, store).counts.created == 25
    assert len(mapped) == 25
    stamp = latest_stamp(store)
    mapped.clear()

    again = sync(settings, store)
    assert again.status == SyncStatus.SUCCEEDED
    assert (again.counts.unchanged, again.counts.created, again.counts.updated) == (25, 0, 0)
    assert mapped == []
    assert rows_written_since(store, stamp) == 0


def test_a_changed_mapping_maps_everyone_again(tmp_path, acme, store, mapped):
    sync(integration(tmp_path, acme), store)
    mapped.clear()
    changed = sync(integration(tmp_path, acme, TITLE_FROM_LOGIN), store)
    assert len(mapped) == 25
    assert changed.counts.updated == 25
    assert store.find_person("email", "user3@example.com").fields["title"] == "user3 works here"


def test_a_changed_vendor_field_is_mapped_and_updated_alone(tmp_path, acme, store, mapped):
    settings = integration(tmp_path, acme)
    sync(settings, store)
    mapped.clear()
    acme.users[4]["full_name"] = "Renamed Person"
    session = sync(settings, store)
    assert (session.counts.updated, session.counts.unchanged) == (1, 24)
    assert mapped == ["A000005"]
    assert store.find_person("email", "user5@example.com").fields["first_name"] == "Renamed"
    # The new fingerprint holds: the next run maps nobody.
    mapped.clear()
    assert sync(settings, store).counts.unchanged == 25
    assert mapped == []


def test_a_person_changed_in_the_store_is_mapped_and_restored(tmp_path, acme, store, mapped):
    settings = integration(tmp_path, acme)
    sync(settings, store)
    person = store.find_person("email", "user7@example.com")
    store.update_person_fields(person.id, {"first_name": "Edited by hand"})
    mapped.clear()
    session = sync(settings, store)
    assert mapped == ["A000007"]
    assert (session.counts.updated, session.counts.unchanged) == (1, 24)
    assert store.get_person(person.id).fields["first_name"] == "First7"


def test_vanished_members_are_found_while_the_rest_take_the_fast_path(
    tmp_path, acme, store, mapped
):
    settings = integration(tmp_path, acme)
    sync(settings, store)
    gone = acme.users.pop(0)
    mapped.clear()
    session = sync(settings, store)
    assert mapped == []
    assert (session.counts.unchanged, session.counts.vanished) == (24, 1)
    assert store.find_person("email", "user1@example.com").vanished_from == ("acme",)
    # Back at the vendor: its person was marked vanished, so it is mapped and relinked.
    acme.users.insert(0, gone)
    back = sync(settings, store)
    assert mapped == [gone["id"]]
    assert (back.counts.updated, back.counts.unchanged) == (1, 24)
    assert store.find_person("email", "user1@example.com").vanished_from == ()


def test_a_test_run_plans_unchanged_members_without_mapping_them(tmp_path, acme, store, mapped):
    settings = integration(tmp_path, acme)
    sync(settings, store)
    mapped.clear()
    session = sync(settings, store, test_run=True)
    assert mapped == []
    plan = list(store.iter_plan(session.id))
    assert [entry["action"] for entry in plan] == ["unchanged"] * 25
    assert {entry["sync_value"] for entry in plan} >= {"user1@example.com"}


def test_a_mapping_that_writes_the_sync_time_is_mapped_every_run(tmp_path, acme, store, mapped):
    extra = '\n[[mapping]]\ntarget = "Seen At"\nexpression = "{{ sync_time }}"\n'
    settings = integration(tmp_path, acme, extra)
    sync(settings, store)
    mapped.clear()
    session = sync(settings, store)
    assert len(mapped) == 25
    assert session.counts.updated == 25


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"a": float("nan")}, {"a": None}),  # orjson would write both as null
        ({"a": 1}, {"a": 1.0}),
        ({"a": "x", "b": "y"}, {"b": "y", "a": "x"}),  # another order costs a re-map
        ({"a": "\ud800"}, {"a": "\\ud800"}),
        ({"n": 2**70}, {"n": float(2**70)}),
        ({"a": "null"}, {"a": None}),
    ],
)
def test_different_members_have_different_fingerprints(one, other):
    member_fingerprint = engine.member_fingerprint
    assert member_fingerprint(b"salt", one) != member_fingerprint(b"salt", other)
    assert member_fingerprint(b"salt", one) == member_fingerprint(b"salt", dict(one))


def test_a_fingerprint_is_keyed_on_the_runs_configuration():
    member_fingerprint = engine.member_fingerprint
    member = {"id": "U1", "profile": {"email": "a@x.io"}}
    assert member_fingerprint(b"one", member) != member_fingerprint(b"two", member)


def test_a_contested_record_that_then_fails_keeps_failing_in_later_runs(tmp_path):
    # user2 takes user1's login (unique) while user1 is still active: the record
    # waits for the run's end (contested), then fails. Its fingerprint must not be
    # remembered in its batch, or the next run counts it unchanged: the error
    # gone and its other change (the name) never written.
    plugin = AcmePlugin(per_page=7)
    with register_plugin(plugin, name="acme-test"), AcmeEmulator(users=5) as acme:
        settings = load_integration(write_integration(tmp_path, "", base_url=acme.base_url))
        with SQLiteStore(tmp_path / "sync.db") as store:

            def sync():
                return run_sync(settings, credential=credential(), store=store, batch_size=10)

            assert sync().counts.created == 5
            acme.users[1]["login"] = acme.users[0]["login"]
            acme.users[1]["full_name"] = "Renamed Person"
            second = sync()
            third = sync()
            acme.users[1]["login"] = "a-login-of-its-own"
            fourth = sync()
            renamed = store.find_person("email", acme.users[1]["mail"].lower())
    assert (second.counts.failed, third.counts.failed) == (1, 1)
    assert "already belongs" in third.errors[0].reason
    assert fourth.counts.failed == 0
    assert renamed is not None
    assert renamed.fields["first_name"] == "Renamed"
