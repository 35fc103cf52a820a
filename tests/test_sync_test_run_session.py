"""What a test run returns: the session as stored, its plan included, and honest counts."""

from __future__ import annotations

from collections import Counter

import attrs
import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

import oomnitza_connect as oc


@pytest.fixture
def acme():
    with (
        oc.plugins.register_plugin(AcmePlugin(per_page=4), name="acme-test"),
        AcmeEmulator(users=9) as emulator,
    ):
        yield emulator


def test_a_test_run_returns_its_plan_as_stored(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    with oc.open_store(tmp_path / "p.db") as store:
        session = oc.run_sync(settings, credential=credential(), store=store, test_run=True)
        stored = store.get_session(session.id, with_payload=True)
    assert session.test_run
    assert Counter(entry["action"] for entry in session.payload) == {"create": 9}
    assert session.payload == stored.payload
    assert session.payload[0]["fields"]["email"] == "user1@example.com"


def test_a_real_run_returns_no_plan(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    with oc.open_store(tmp_path / "p.db") as store:
        session = oc.run_sync(settings, credential=credential(), store=store)
    assert session.counts.created == 9
    assert session.payload == ()


def test_people_another_integration_brought_in_are_unchanged(tmp_path, acme):
    """A second integration over the same people changes none of their fields."""
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    other = attrs.evolve(settings, name="acme-other")
    with oc.open_store(tmp_path / "p.db") as store:
        first = oc.run_sync(settings, credential=credential(), store=store)
        planned = oc.run_sync(other, credential=credential(), store=store, test_run=True)
        real = oc.run_sync(other, credential=credential(), store=store)
        again = oc.run_sync(other, credential=credential(), store=store)
    assert first.counts.created == 9
    assert (planned.counts.updated, planned.counts.unchanged) == (0, 9)
    assert Counter(entry["action"] for entry in planned.payload) == {"unchanged": 9}
    assert (real.counts.updated, real.counts.unchanged) == (0, 9)
    assert (again.counts.updated, again.counts.unchanged) == (0, 9)


def test_a_new_saas_link_is_an_update_and_the_plan_says_so(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    saas = attrs.evolve(settings, selection=oc.UserSelection.USERS_AND_SAAS)
    with oc.open_store(tmp_path / "p.db") as store:
        oc.run_sync(settings, credential=credential(), store=store)
        planned = oc.run_sync(saas, credential=credential(), store=store, test_run=True)
    assert planned.counts.updated == 9
    entry = planned.payload[0]
    assert entry["action"] == "update"
    assert entry["changes"] == {}
    assert entry["saas_role"]["old"] is None
    assert entry["saas_role"]["new"] is not None


def test_client_options_is_importable_from_the_package():
    from oomnitza_connect.transport.http import ClientOptions

    assert oc.ClientOptions is ClientOptions
    assert "ClientOptions" in oc.__all__


def test_authenticate_with_an_integration_uses_its_base_url(tmp_path, acme):
    """Presets against an emulator need no base_url on the credential."""
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    connector = oc.get_connector("acme")
    with connector.authenticate(credential(), settings) as session:
        first = next(iter(connector.list_users(session)))
    assert first.fields["login"] == "user1"
