"""Last logins are fetched while the users sync, and applied once the users are in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.models import SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.testing.emulator import Fault

WHEN = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def acme():
    with register_plugin(AcmePlugin(per_page=3), name="acme-test"), AcmeEmulator(users=12) as emu:
        emu.logins = {"A000002": WHEN, "A000007": WHEN}
        yield emu


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "sync.db") as opened:
        yield opened


@pytest.fixture
def settings(tmp_path, acme):
    return load_integration(write_integration(tmp_path, base_url=acme.base_url))


def _sync(settings, store):
    return run_sync(settings, credential=credential(), store=store, batch_size=5)


def test_logins_are_fetched_while_users_are_still_being_listed(settings, store, acme):
    # Slow user pages: the sync is still listing users when the logins arrive.
    acme.faults.add(Fault.slow(0.1), endpoint="users", times=-1)
    session = _sync(settings, store)
    assert session.status is SyncStatus.SUCCEEDED
    endpoints = [request.endpoint for request in acme.requests]
    last_users_page = max(i for i, name in enumerate(endpoints) if name == "users")
    assert endpoints.index("logins") < last_users_page
    assert store.find_person("email", "user2@example.com").fields["last_login"] == WHEN
    assert store.find_person("email", "user7@example.com").fields["last_login"] == WHEN
    assert "last_login" not in store.find_person("email", "user3@example.com").fields


def test_a_login_failure_keeps_the_users_and_says_why(settings, store, acme):
    acme.faults.add(Fault.server_error(status=403), endpoint="logins", times=-1)
    session = _sync(settings, store)
    assert session.status is SyncStatus.COMPLETED_WITH_ERRORS
    assert "the users synced, but last logins could not be read" in session.message
    assert "403" in session.message
    assert session.counts.created == 12
    assert "last_login" not in store.find_person("email", "user2@example.com").fields


def test_a_user_listing_failure_stops_the_run_without_waiting_on_logins(settings, store, acme):
    acme.fail_after_page = 2
    session = _sync(settings, store)
    assert session.status is SyncStatus.FAILED
    # Nothing of the logins is applied to a run that did not complete.
    assert all("last_login" not in p.fields for p in store.iter_people())
