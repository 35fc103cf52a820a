"""Whole syncs of the emulated workspace: the tracking fields, avatars only when mapped,
legacy team entries skipped (not failed), the wrong region reported, no secret in the logs."""

from __future__ import annotations

import logging

from intercom_support import fast_options
from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.models import FieldMapping, IntegrationSettings, SyncStatus, UserSelection
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.testing.emulator import Fault


def _integration(**changes) -> IntegrationSettings:
    settings = {
        "name": "intercom-e2e",
        "vendor": "intercom",
        "credential": "intercom-e2e",
        "selection": UserSelection.USERS_AND_SAAS,
        "sync_key": "Intercom ID",
        "default_role": "Agent",
    }
    settings.update(changes)
    return IntegrationSettings(**settings)


def _listing_queries(emulator: IntercomEmulator) -> list[dict[str, str]]:
    return [dict(r.query) for r in emulator.requests if r.endpoint == "admins.list"]


def test_a_sync_records_the_api_version_and_sync_time(
    intercom_plugin_registered, tmp_path, caplog
) -> None:
    with IntercomEmulator(users=40, seed=21, enforce_rate_limits=False) as emulator:
        emulator.faults.add(Fault.server_error(503), endpoint="admins.list")
        with SQLiteStore(tmp_path / "e2e.db") as store, caplog.at_level(logging.DEBUG):
            session = run_sync(
                _integration(settings={"Intercom.Version": "2.10"}),
                credential=emulator.test_credential(),
                store=store,
                options=fast_options(emulator),
            )
            people = list(store.iter_people(vendor="intercom"))
        expected = emulator.admin_ids()
        capitalised = {
            admin_id: emulator.admin(admin_id)["email"]
            for admin_id in expected
            if emulator.admin(admin_id)["email"] != emulator.admin(admin_id)["email"].lower()
        }
        queries = _listing_queries(emulator)
    assert session.status is SyncStatus.SUCCEEDED, session.message
    assert sorted(p.sync_value for p in people) == sorted(expected)
    assert session.counts.created == 40
    assert (session.counts.skipped, session.counts.failed) == (0, 0)
    for person in people:
        assert person.fields["Connect: Intercom Version"] == "2.10"
        assert person.fields["connector_sync_time"] is not None
        assert person.fields["username"] == person.fields["email"]
        assert person.fields["role"] == "Agent"
    by_id = {person.sync_value: person for person in people}
    assert capitalised, "the emulator serves some addresses with capitals"
    for admin_id, email in capitalised.items():
        assert by_id[admin_id].fields["email"] == email.lower()
    # The standard mapping does not read Avatar, so avatars are not asked for.
    assert queries == [{}, {}]  # the 503, then the retry
    lines = [record.getMessage() for record in caplog.records]
    assert not [line for line in lines if emulator.token in line]


def test_avatars_are_asked_for_when_the_avatar_field_is_mapped(
    intercom_plugin_registered, tmp_path
) -> None:
    with IntercomEmulator(users=10, seed=22, enforce_rate_limits=False) as emulator:
        settings = _integration(mapping=(FieldMapping(target="Intercom Avatar", source="avatar"),))
        with SQLiteStore(tmp_path / "e2e.db") as store:
            session = run_sync(
                settings,
                credential=emulator.test_credential(),
                store=store,
                options=fast_options(emulator),
            )
            avatars = {
                p.sync_value: p.fields.get("Intercom Avatar")
                for p in store.iter_people(vendor="intercom")
            }
        expected = {
            admin_id: (emulator.admin(admin_id)["avatar"] or {}).get("image_url")
            for admin_id in emulator.admin_ids()
        }
        queries = _listing_queries(emulator)
    assert session.status is SyncStatus.SUCCEEDED, session.message
    assert queries == [{"display_avatar": "true"}]
    assert avatars == expected
    assert None in avatars.values()  # the null avatar is tolerated
    assert any(avatars.values())


def test_teams_listed_by_a_legacy_version_are_skipped_not_failed(
    intercom_plugin_registered, tmp_path
) -> None:
    with IntercomEmulator(users=12, seed=23, enforce_rate_limits=False) as emulator:
        with SQLiteStore(tmp_path / "e2e.db") as store:
            session = run_sync(
                _integration(settings={"Intercom.Version": "1.4"}),
                credential=emulator.test_credential(),
                store=store,
                options=fast_options(emulator),
            )
            people = store.count_people(vendor="intercom")
        teams = len(emulator.team_ids())
    assert session.status is SyncStatus.SUCCEEDED, session.message
    assert session.counts.created == people == 12
    assert session.counts.skipped == teams > 0
    assert session.counts.failed == 0
    assert not session.errors


def test_a_wrong_region_fails_the_run_naming_the_setting(
    intercom_plugin_registered, tmp_path
) -> None:
    with (
        IntercomEmulator(users=5, region="EU", enforce_rate_limits=False) as emulator,
        SQLiteStore(tmp_path / "e2e.db") as store,
    ):
        session = run_sync(
            _integration(settings={"Intercom.Region": "US"}),
            credential=emulator.test_credential(),
            store=store,
            options=fast_options(emulator, base_url=emulator.region_url("US")),
        )
    assert session.status is SyncStatus.FAILED
    assert "Intercom.Region" in (session.message or "")
    assert emulator.token not in (session.message or "")


def test_an_admin_that_cannot_be_read_fails_alone(intercom_plugin_registered, tmp_path) -> None:
    with IntercomEmulator(users=8, seed=24, enforce_rate_limits=False) as emulator:
        broken = emulator.admin_ids()[4]
        emulator.update_admin(broken, team_priority_level={"primary_team_ids": "lots"})
        with SQLiteStore(tmp_path / "e2e.db") as store:
            session = run_sync(
                _integration(),
                credential=emulator.test_credential(),
                store=store,
                options=fast_options(emulator),
            )
            synced = {p.sync_value for p in store.iter_people(vendor="intercom")}
        expected = set(emulator.admin_ids()) - {broken}
    assert session.status is SyncStatus.COMPLETED_WITH_ERRORS
    assert synced == expected
    assert session.counts.failed == 1
    (error,) = session.errors
    assert error.vendor_user_id == broken
    assert broken in error.reason
