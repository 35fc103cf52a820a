"""The conformance suite fails plugins that break the contract, each in the test meant for it.

The generic vendor passing the suite shows the suite accepts a good plugin; this
shows it rejects bad ones. Each broken plugin below is the generic vendor with
one bug, run through the suite in a pytester session.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BROKEN_PLUGINS = '''
import attrs
from oomnitza_connect import AuthenticationError, hookimpl
from oomnitza_connect.models import AuthKind, Credential, FieldMapping, Preset
from oomnitza_connect.testing import generic
from oomnitza_connect.testing.conformance import ConnectorConformance


class Base(ConnectorConformance):
    vendor = "generic"
    settings = {"per_page": "5"}
    list_users_endpoint = generic.LIST_ENDPOINT

    def good_credential(self, emulator):
        return generic.credential_for(emulator)

    def bad_credential(self, emulator):
        return Credential(name="bad", vendor="generic", kind=AuthKind.API_KEY,
                          token="gen-wrong-token-123")


class GenericWith:
    """The generic plugin with some hooks replaced."""
    register_vendors = staticmethod(generic.register_vendors)
    authenticate = staticmethod(generic.authenticate)
    list_users = staticmethod(generic.list_users)
    workflow_presets = staticmethod(generic.workflow_presets)
    create_emulator = staticmethod(generic.create_emulator)


class RepeatsTheFirstPage(GenericWith):
    @hookimpl
    def list_users(self, vendor, session):
        records = list(generic.list_users(vendor=vendor, session=session))
        return iter(records[:5] + records)


class TestRepeatsTheFirstPage(Base):
    plugin = RepeatsTheFirstPage()


class FetchesEverythingFirst(GenericWith):
    @hookimpl
    def list_users(self, vendor, session):
        return list(generic.list_users(vendor=vendor, session=session))


class TestFetchesEverythingFirst(Base):
    plugin = FetchesEverythingFirst()


class LeaksTheToken(GenericWith):
    @hookimpl
    def authenticate(self, vendor, credential, settings, options):
        try:
            return generic.authenticate(vendor, credential, settings, options)
        except AuthenticationError:
            raise AuthenticationError(f"bad token {credential.token.reveal()}") from None


class TestLeaksTheToken(Base):
    plugin = LeaksTheToken()


class UndeclaredField(GenericWith):
    @hookimpl
    def list_users(self, vendor, session):
        for record in generic.list_users(vendor=vendor, session=session):
            yield attrs.evolve(record, fields={**record.fields, "nickname": "x"})


class TestUndeclaredField(Base):
    plugin = UndeclaredField()


class PresetWithUndeclaredVariable(GenericWith):
    @hookimpl
    def workflow_presets(self, vendor):
        return [Preset(vendor="generic", name="Get", description="Get a user.", method="GET",
                       path="/api/users/{{user_id}}", variables=())]


class TestPresetWithUndeclaredVariable(Base):
    plugin = PresetWithUndeclaredVariable()


class NoUniqueSyncKey(GenericWith):
    @hookimpl
    def register_vendors(self, register):
        only_names = (FieldMapping("first_name", source="first_name"),)
        register(attrs.evolve(generic.vendor_info(), standard_mapping=only_names))


class TestNoUniqueSyncKey(Base):
    plugin = NoUniqueSyncKey()
'''

EXPECTED_FAILURES = {
    "TestRepeatsTheFirstPage": "test_list_users_returns_every_user_exactly_once",
    "TestFetchesEverythingFirst": "test_list_users_is_lazy",
    "TestLeaksTheToken": "test_authenticate_fails_cleanly_with_a_bad_credential",
    "TestUndeclaredField": "test_records_have_ids_and_declared_fields",
    "TestPresetWithUndeclaredVariable": "test_presets_are_well_formed",
    "TestNoUniqueSyncKey": "test_standard_mapping_uses_declared_fields",
}


SOUND_PARTS = {
    "TestLeaksTheToken": "test_list_users_is_lazy",
    "TestUndeclaredField": "test_authenticate_fails_cleanly_with_a_bad_credential",
    "TestFetchesEverythingFirst": "test_presets_are_well_formed",
}


def test_each_broken_plugin_fails_the_test_for_its_bug(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN_PLUGINS)
    checks = [*EXPECTED_FAILURES.items(), *SOUND_PARTS.items()]
    selected = " or ".join(f"({cls} and {test})" for cls, test in checks)
    recorder = pytester.inline_run("-k", selected, "-p", "no:cacheprovider")
    outcomes = {
        report.nodeid.split("::", 1)[1]: report.outcome
        for report in recorder.getreports("pytest_runtest_logreport")
        if report.when == "call"
    }
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    expected = {f"{cls}::{test}" for cls, test in EXPECTED_FAILURES.items()}
    assert expected <= failed, f"not caught: {sorted(expected - failed)}"
    # The bugs are caught where they should be; the same tests pass on sound parts.
    assert outcomes["TestLeaksTheToken::test_list_users_is_lazy"] == "passed"
    assert outcomes[
        "TestUndeclaredField::test_authenticate_fails_cleanly_with_a_bad_credential"
    ] == ("passed")
