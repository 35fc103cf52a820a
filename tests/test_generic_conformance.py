"""The generic vendor passes the conformance suite, which proves the suite itself."""

from __future__ import annotations

from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing import generic
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator


class TestGenericConformance(ConnectorConformance):
    plugin = generic
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
