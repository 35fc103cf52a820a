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


class RepeatsTheFirstPage(generic.GenericVendor):
    def iter_users(self, session):
        records = list(super().iter_users(session))
        return iter(records[:5] + records)


class TestRepeatsTheFirstPage(Base):
    plugin = RepeatsTheFirstPage()


class FetchesEverythingFirst(generic.GenericVendor):
    def iter_users(self, session):
        return list(super().iter_users(session))


class TestFetchesEverythingFirst(Base):
    plugin = FetchesEverythingFirst()


class LeaksTheToken(generic.GenericVendor):
    def authenticate(self, credential, settings, options):
        try:
            return super().authenticate(credential, settings, options)
        except AuthenticationError:
            raise AuthenticationError(f"bad token {credential.token.reveal()}") from None


class TestLeaksTheToken(Base):
    plugin = LeaksTheToken()


class UndeclaredField(generic.GenericVendor):
    def iter_users(self, session):
        for record in super().iter_users(session):
            yield attrs.evolve(record, fields={**record.fields, "nickname": "x"})


class TestUndeclaredField(Base):
    plugin = UndeclaredField()


class PresetWithUndeclaredVariable(generic.GenericVendor):
    presets = (
        Preset(vendor="generic", name="Get", description="Get a user.", method="GET",
               path="/api/users/{{user_id}}", variables=()),
    )


class TestPresetWithUndeclaredVariable(Base):
    plugin = PresetWithUndeclaredVariable()


class NoUniqueSyncKey(generic.GenericVendor):
    standard_mapping = (FieldMapping("first_name", source="first_name"),)


class TestNoUniqueSyncKey(Base):
    plugin = NoUniqueSyncKey()


class AnswersForEveryVendor:
    """A hand-written plugin that forgot its guard: it answers for any vendor."""

    @hookimpl
    def register_vendors(self, register):
        register(generic.vendor)

    @hookimpl
    def authenticate(self, vendor, credential, settings, options):
        return generic.vendor.authenticate(credential, settings, options)

    @hookimpl
    def list_users(self, vendor, session):
        return generic.vendor.iter_users(session)

    @hookimpl
    def workflow_presets(self, vendor):
        return list(generic.vendor.presets)


class TestAnswersForEveryVendor(Base):
    plugin = AnswersForEveryVendor()
'''

EXPECTED_FAILURES = {
    "TestRepeatsTheFirstPage": "test_list_users_returns_every_user_exactly_once",
    "TestFetchesEverythingFirst": "test_list_users_is_lazy",
    "TestLeaksTheToken": "test_authenticate_fails_cleanly_with_a_bad_credential",
    "TestUndeclaredField": "test_records_have_ids_and_declared_fields",
    "TestPresetWithUndeclaredVariable": "test_presets_are_well_formed",
    "TestNoUniqueSyncKey": "test_standard_mapping_uses_declared_fields",
    "TestAnswersForEveryVendor": "test_hooks_answer_only_for_their_own_vendor",
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


def test_a_subclass_cannot_delete_or_override_a_standard_test_silently() -> None:
    from oomnitza_connect.testing.conformance import (
        ConnectorConformance,
        WeakenedConformanceError,
    )

    with pytest.raises(WeakenedConformanceError, match="deletes the standard"):
        type(
            "TestDeletes",
            (ConnectorConformance,),
            {"test_list_users_is_lazy": None},
        )
    with pytest.raises(WeakenedConformanceError, match="overrides the standard"):
        type(
            "TestOverrides",
            (ConnectorConformance,),
            {"test_list_users_is_lazy": lambda self: None},
        )
    with pytest.raises(WeakenedConformanceError, match="overrides the standard"):
        type(
            "TestXfailWithoutReason",
            (ConnectorConformance,),
            {"test_list_users_is_lazy": pytest.mark.xfail(lambda self: None)},
        )

    @pytest.mark.xfail(reason="the vendor lists everything in one answer", strict=True)
    def replaced(self):  # type: ignore[no-untyped-def]
        raise AssertionError("not lazy")

    accepted = type(
        "TestWithReason", (ConnectorConformance,), {"test_list_users_is_lazy": replaced}
    )
    assert accepted.test_list_users_is_lazy is replaced


def test_paginated_is_read_from_the_description_and_cannot_excuse_a_paging_vendor() -> None:
    from oomnitza_connect.testing import generic
    from oomnitza_connect.testing.conformance import (
        ConnectorConformance,
        WeakenedConformanceError,
    )
    from oomnitza_connect.vendors import SinglePage, UsersEndpoint

    class OnePageVendor(generic.GenericVendor):
        users = UsersEndpoint("/api/users", items="users", paging=SinglePage())

    derived = type("TestDerived", (ConnectorConformance,), {"plugin": generic.vendor})
    single = type("TestSingle", (ConnectorConformance,), {"plugin": OnePageVendor()})
    assert (derived.paginated, single.paginated) == (True, False)
    with pytest.raises(WeakenedConformanceError, match="sets paginated = False"):
        type("TestExcused", (ConnectorConformance,), {"plugin": generic.vendor, "paginated": False})
    # A hand-written plugin has no description to read: its word is taken.
    hand_written = type(
        "TestHand", (ConnectorConformance,), {"plugin": object(), "paginated": False}
    )
    assert hand_written.paginated is False
