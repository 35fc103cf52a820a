"""The generic vendor passes the conformance suite, which proves the suite itself."""

from __future__ import annotations

from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing import generic
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator


class TestGenericConformance(ConnectorConformance):
    plugin = generic.vendor
    vendor = "generic"
    settings = {"per_page": "5"}
    list_users_endpoint = generic.LIST_ENDPOINT

    def good_credential(self, emulator: Emulator) -> Credential:
        assert isinstance(emulator, generic.GenericEmulator)
        return generic.credential_for(emulator, name="good")

    def bad_credential(self, emulator: Emulator) -> Credential:
        return Credential(
            name="bad", vendor="generic", kind=AuthKind.API_KEY, token="gen-wrong-token-123"
        )


def test_the_emulator_command_options_reach_the_generic_emulator() -> None:
    emulator = generic.vendor.create_emulator(
        {"users": 3, "token": "gen-fixed-token-1", "an_option_it_does_not_know": 1}
    )
    assert emulator is not None
    assert emulator.api_token == "gen-fixed-token-1"
    with emulator:
        credential = emulator.test_credential()
        assert credential.base_url == emulator.base_url
        assert credential.token is not None
        assert credential.token.reveal() == "gen-fixed-token-1"
    assert emulator.expected_user_ids() == {"u00001", "u00002", "u00003"}
