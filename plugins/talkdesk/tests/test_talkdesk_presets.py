"""The seven Talkdesk presets against the emulator, with their response mappings."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator
from oomnitza_connect_talkdesk.presets import PRESETS
from talkdesk_support import fast_options

from oomnitza_connect.connectors import Connector, get_connector
from oomnitza_connect.errors import PresetError
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.presets.engine import PresetOverrides, get_preset, run_preset
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def account() -> Iterator[TalkdeskEmulator]:
    with TalkdeskEmulator(users=9, seed=4, subdomain="acme", contacts=12) as running:
        yield running


@pytest.fixture
def opened(connector: Connector, account: TalkdeskEmulator) -> Iterator[VendorSession]:
    with connector.authenticate(
        account.test_credential(), account.test_settings(), options=fast_options(account)
    ) as session:
        yield session


def test_all_seven_presets_are_offered(connector: Connector) -> None:
    assert [p.name for p in connector.presets()] == [
        "Get User Details",
        "Get Contact List",
        "Get Contact",
        "Get App Information",
        "Get Installation Info",
        "Get Users For Installation",
        "Get Installation Subscription",
    ]


def test_get_user_details(connector: Connector, opened, account) -> None:
    user_id = account.user_id(1)
    result = run_preset(opened, get_preset("talkdesk", "Get User Details"),
                        variables={"talkdesk_user_id": user_id})  # fmt: skip
    assert result.ok, result.error
    assert result.mapped == {
        "TalkDesk User Id": user_id,
        "Talkdesk Active": False,
        "Talkdesk Extension": 101,
    }


def test_get_contact_list_with_a_filter_in_advanced_mode(connector: Connector, opened) -> None:
    preset = get_preset("talkdesk", "Get Contact List")
    everyone = run_preset(opened, preset)
    assert everyone.mapped == {"Talkdesk Contacts Total": 12}
    by_query = run_preset(opened, preset, overrides=PresetOverrides(query={"name": "Daniel Craig"}))
    assert by_query.mapped == {"Talkdesk Contacts Total": 1}
    assert by_query.response["_embedded"]["contacts"][0]["name"] == "Daniel Craig"
    by_path = run_preset(
        opened, preset, overrides=PresetOverrides(path="/contacts?name=Daniel%20Craig")
    )
    assert by_path.mapped == {"Talkdesk Contacts Total": 1}


def test_get_contact_and_its_400_for_an_unknown_one(connector: Connector, opened, account) -> None:
    preset = get_preset("talkdesk", "Get Contact")
    found = run_preset(opened, preset, variables={"contact_id": account.contact_id(0)})
    assert found.mapped == {"Talkdesk Contact Name": "Daniel Craig"}
    missing = run_preset(opened, preset, variables={"contact_id": "000000000000000000000000"})
    assert not missing.ok
    assert missing.status == 400
    assert "Contact not found" in missing.error
    assert "0402400" in missing.error


def test_app_and_installation_presets(connector: Connector, opened, account) -> None:
    ids = {"app_id": account.app_id, "installation_id": account.installation_id}
    app = run_preset(opened, get_preset("talkdesk", "Get App Information"), variables=ids)
    assert app.mapped == {
        "Talkdesk App Name": "Oomnitza Connect",
        "Talkdesk Subscription Type": "paid",
    }
    info = run_preset(opened, get_preset("talkdesk", "Get Installation Info"), variables=ids)
    assert info.mapped == {"Talkdesk Installation State": "completed"}
    users_preset = get_preset("talkdesk", "Get Users For Installation")
    users = run_preset(opened, users_preset, variables=ids)
    assert users.mapped == {"Talkdesk Installation Users": 6}
    assert "next" not in users.response["_links"]  # six users fit on Talkdesk's page of 50
    first = run_preset(opened, users_preset, variables=ids,
                       overrides=PresetOverrides(query={"per_page": "4"}))  # fmt: skip
    assert first.response["_links"]["next"]["href"].endswith("/users?page=2&per_page=4")
    page_two = PresetOverrides(query={"page": "2", "per_page": "4"})
    second = run_preset(opened, users_preset, variables=ids, overrides=page_two)
    assert len(second.response["_embedded"]["users"]) == 2
    subscription = run_preset(
        opened, get_preset("talkdesk", "Get Installation Subscription"), variables=ids
    )
    assert subscription.mapped == {
        "Talkdesk Total Licenses": 6,
        "Talkdesk License Type": "individual",
    }


def test_subscription_errors_are_read_from_their_own_shape(
    connector: Connector, opened, account
) -> None:
    result = run_preset(
        opened,
        get_preset("talkdesk", "Get Installation Subscription"),
        variables={"app_id": account.app_id, "installation_id": "nope"},
    )
    assert not result.ok
    assert result.status == 404
    assert "Installation not found" in result.error


def test_a_stray_bracket_is_refused_when_the_presets_load(talkdesk_plugin_registered: None) -> None:
    broken = attrs.evolve(
        PRESETS[-1],
        name="Broken Subscription",
        response_mappings={"Talkdesk Type": "{{response['subscription_types'][0].type]}}"},
    )

    class BrokenPresets:
        @hookimpl
        def workflow_presets(self, vendor: str) -> list | None:
            return [broken] if vendor == "talkdesk" else None

    with (
        register_plugin(BrokenPresets(), name="broken-talkdesk-presets"),
        pytest.raises(PresetError) as refused,
    ):
        get_connector("talkdesk").presets()
    message = str(refused.value)
    assert "Preset 'Broken Subscription' of talkdesk was refused" in message
    assert "response mapping 'Talkdesk Type'" in message
    assert "the stray ']' here: {{response['subscription_types'][0].type] <--" in message


def test_a_stray_bracket_in_an_advanced_mode_mapping_is_refused(opened, account) -> None:
    with pytest.raises(PresetError) as refused:
        run_preset(
            opened,
            get_preset("talkdesk", "Get App Information"),
            variables={"app_id": account.app_id},
            overrides=PresetOverrides(
                response_mappings={"Type": "{{response['subscription_types'][0].type]}}"}
            ),
        )
    assert "stray ']'" in str(refused.value)
