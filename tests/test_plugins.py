"""The plugin system through its typed facade: registration, hooks, wrappers, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

import oomnitza_connect
from oomnitza_connect import (
    AuthKind,
    Connector,
    FieldMapping,
    FieldSpec,
    PluginError,
    Preset,
    UnknownVendorError,
    VendorInfo,
    VendorRecord,
    get_connector,
    hookimpl,
    list_connectors,
)
from oomnitza_connect.plugins import describe_plugins, register_plugin, vendor_infos
from oomnitza_connect.testing import generic
from oomnitza_connect.testing.generic import GenericEmulator
from oomnitza_connect.transport.http import ClientOptions


class HrVendor:
    """A second vendor, so that wrappers are seen acting on more than one."""

    @hookimpl
    def register_vendors(self, register: Callable[[VendorInfo], None]) -> None:
        register(
            VendorInfo(
                name="hr",
                display_name="HR System",
                base_url="https://hr.example",
                auth_kinds=(AuthKind.BASIC,),
                fields=(FieldSpec("login", "Login"), FieldSpec("mail", "Mail")),
                standard_mapping=(
                    FieldMapping("username", source="login"),
                    FieldMapping("email", source="mail"),
                ),
            )
        )

    @hookimpl
    def workflow_presets(self, vendor: str) -> list[Preset] | None:
        if vendor != "hr":
            return None
        return [Preset(vendor="hr", name="Ping", description="Ping.", method="GET", path="/p")]


class EmailRedactor:
    """Not a vendor: a map_record wrapper that redacts every vendor's emails."""

    def __init__(self) -> None:
        self.seen_vendors: list[str] = []

    @hookimpl(wrapper=True)
    def map_record(
        self,
        vendor: str,
        record: VendorRecord,
        mapping: tuple[FieldMapping, ...],
        context: Mapping[str, Any],
    ) -> Iterator[None]:
        result = yield
        self.seen_vendors.append(vendor)
        if result and result.get("email"):
            local, _, domain = str(result["email"]).partition("@")
            result["email"] = f"{local[0]}***@{domain}"
        return result  # type: ignore[no-any-return]


@pytest.fixture
def two_vendors() -> Iterator[None]:
    with register_plugin(generic.vendor), register_plugin(HrVendor()):
        yield


def test_list_connectors_returns_every_registered_vendor_sorted(two_vendors: None) -> None:
    connectors = list_connectors()
    assert [c.name for c in connectors] == ["generic", "hr"]
    assert all(isinstance(c, Connector) for c in connectors)
    assert repr(connectors[1]) == "<Connector 'hr'>"


def test_get_connector_exposes_info_presets_and_settings_defaults(two_vendors: None) -> None:
    hr = get_connector("hr")
    assert hr.info.display_name == "HR System"
    assert [p.name for p in hr.presets()] == ["Ping"]
    assert hr.preset("ping").path == "/p"
    assert get_connector("generic").effective_settings({}) == {"per_page": "100"}
    assert get_connector("generic").effective_settings({"per_page": "7"}) == {"per_page": "7"}


def test_unknown_preset_names_the_available_ones(two_vendors: None) -> None:
    with pytest.raises(oomnitza_connect.PresetError, match=r"available: Ping"):
        get_connector("hr").preset("nope")


def test_unknown_vendor_lists_the_installed_ones(two_vendors: None) -> None:
    with pytest.raises(UnknownVendorError) as caught:
        get_connector("slak")
    assert caught.value.vendor == "slak"
    assert str(caught.value) == "no connector named 'slak' is installed (installed: generic, hr)"


def test_unknown_vendor_names_the_plugin_selection_that_may_hide_it(
    two_vendors: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_BLOCK_PLUGINS", "slack")
    with pytest.raises(UnknownVendorError) as caught:
        get_connector("slack")
    assert str(caught.value).endswith(
        "(installed: generic, hr); $OOMNITZA_CONNECT_BLOCK_PLUGINS='slack' may leave it out"
    )


def test_registration_ends_with_the_with_block() -> None:
    with register_plugin(generic.vendor):
        assert "generic" in vendor_infos()
    assert "generic" not in vendor_infos()
    with pytest.raises(UnknownVendorError):
        get_connector("generic")


def test_the_facade_authenticates_lists_and_maps(
    generic_vendor: Any, generic_emulator: GenericEmulator
) -> None:
    connector = get_connector("generic")
    options = ClientOptions(base_url=generic_emulator.base_url)
    with connector.authenticate(generic.credential_for(generic_emulator), options=options) as s:
        records = list(connector.list_users(s))
        assert connector.list_last_logins(s) is None
    assert {r.id for r in records} == generic_emulator.expected_user_ids()
    person = connector.map_record(records[0])
    assert person["username"] == records[0].fields["username"]
    assert person["Generic User Id"] == records[0].id


def test_a_map_record_wrapper_sees_and_changes_every_vendor(two_vendors: None) -> None:
    redactor = EmailRedactor()
    with register_plugin(redactor, name="email-redactor"):
        generic_person = get_connector("generic").map_record(
            VendorRecord("generic", "u1", {"username": "ada", "email": "ada@example.com"})
        )
        hr_person = get_connector("hr").map_record(
            VendorRecord("hr", "7", {"login": "grace", "mail": "grace@example.org"})
        )
    assert generic_person["email"] == "a***@example.com"
    assert hr_person == {"username": "grace", "email": "g***@example.org"}
    assert redactor.seen_vendors == ["generic", "hr"]
    # Unregistered with the block: records map unchanged again.
    plain = get_connector("hr").map_record(VendorRecord("hr", "7", {"mail": "g@x.org"}))
    assert plain["email"] == "g@x.org"


class Misspelled:
    @hookimpl
    def list_user(self, vendor: str, session: object) -> None:
        return None


class WrongArgument:
    @hookimpl
    def list_users(self, vendor: str, sesion: object) -> None:
        return None


def test_a_misspelled_hook_fails_naming_the_plugin_and_the_hook() -> None:
    with pytest.raises(PluginError) as caught, register_plugin(Misspelled(), name="typo-plugin"):
        pass
    message = str(caught.value)
    assert "Plugin 'typo-plugin' implements hook 'list_user', which does not exist" in message
    assert "list_users" in message  # the real hooks are listed to spot the typo
    # The bad plugin is not left behind.
    with register_plugin(generic.vendor):
        assert list(vendor_infos()) == ["generic"]


def test_a_hook_with_an_unknown_argument_fails_naming_the_plugin() -> None:
    expected = r"Plugin 'bad-args' implements a hook wrongly: .*'list_users'.*sesion"
    with pytest.raises(PluginError, match=expected):
        register_plugin(WrongArgument(), name="bad-args").__enter__()


def test_registering_the_same_plugin_twice_is_an_error() -> None:
    with register_plugin(generic.vendor):
        with pytest.raises(PluginError, match="cannot be registered"):
            register_plugin(generic.vendor).__enter__()
        assert list(vendor_infos()) == ["generic"]


def test_a_vendor_registered_twice_is_an_error() -> None:
    class Twin:
        @hookimpl
        def register_vendors(self, register: Callable[[VendorInfo], None]) -> None:
            register(generic.vendor_info())

    expected = "Vendor 'generic' is registered by two plugins"
    with (
        register_plugin(generic.vendor),
        register_plugin(Twin()),
        pytest.raises(PluginError, match=expected),
    ):
        vendor_infos()


def test_register_vendors_must_be_given_vendor_info() -> None:
    class Sloppy:
        @hookimpl
        def register_vendors(self, register: Callable[[Any], None]) -> None:
            register({"name": "sloppy"})

    with register_plugin(Sloppy()), pytest.raises(PluginError, match="VendorInfo"):
        vendor_infos()


def test_hooks_without_an_answer_fail_clearly() -> None:
    class DescriptionOnly:
        @hookimpl
        def register_vendors(self, register: Callable[[VendorInfo], None]) -> None:
            register(
                VendorInfo(name="bare", display_name="Bare", base_url="https://b", auth_kinds=())
            )

    with register_plugin(DescriptionOnly()):
        bare = get_connector("bare")
        with pytest.raises(PluginError, match="no plugin implements 'authenticate'"):
            bare.authenticate(generic.Credential("c", "bare", AuthKind.API_KEY, token="t0ken"))
        assert bare.presets() == []


def test_describe_plugins_reports_hooks_vendors_auth_kinds_and_presets(two_vendors: None) -> None:
    described = {d.name: d for d in describe_plugins()}
    generic_plugin = described["oomnitza_connect.testing.generic"]
    assert generic_plugin.distribution is None  # registered by code, not installed
    assert generic_plugin.vendors == ("generic",)
    assert generic_plugin.auth_kinds == ("api_key",)
    assert generic_plugin.presets == 3
    assert generic_plugin.hooks == (  # a vendor object implements every vendor hook
        "authenticate",
        "list_last_logins",
        "list_users",
        "register_vendors",
        "workflow_presets",
    )
    assert "oomnitza_connect.sync.mapping" not in described
    with_builtin = {d.name for d in describe_plugins(include_builtin=True)}
    assert "oomnitza_connect.sync.mapping" in with_builtin


def test_the_facade_creates_emulators(two_vendors: None) -> None:
    emulator = get_connector("generic").create_emulator(users=4, max_page_size=2)
    assert isinstance(emulator, GenericEmulator)
    assert len(emulator.expected_user_ids()) == 4
    assert emulator.max_page_size == 2
    with pytest.raises(PluginError, match=r"^The 'hr' plugin offers no emulator\.$"):
        get_connector("hr").create_emulator()


def test_a_vendor_without_an_emulator_is_a_plugin_error() -> None:
    with register_plugin(HrVendor()), pytest.raises(PluginError, match="offers no emulator"):
        get_connector("hr").create_emulator()


def test_the_emulator_and_token_parser_are_properties_of_the_vendor_object() -> None:
    with register_plugin(generic.vendor):
        connector = get_connector("generic")
        assert connector.vendor is generic.vendor
        assert connector.token_response_parser() is None
        emulator = connector.create_emulator(users=2, seed=1)
        assert isinstance(emulator, generic.GenericEmulator)
        assert len(emulator.expected_user_ids()) == 2


def test_the_register_plugins_fixture_registers_for_one_test(
    register_plugins: Callable[..., None],
) -> None:
    register_plugins(generic.vendor, HrVendor())
    assert [c.name for c in list_connectors()] == ["generic", "hr"]


def test_plugins_from_the_previous_test_are_gone() -> None:
    assert list_connectors() == []
