"""The Intercom plugin passes the shared conformance suite."""

from __future__ import annotations

from intercom_support import fast_options
from oomnitza_connect_intercom import vendor as intercom_plugin
from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator
from oomnitza_connect.transport.http import ClientOptions


class TestIntercomConformance(ConnectorConformance):
    plugin = intercom_plugin
    vendor = "intercom"
    list_users_endpoint = "admins.list"
    preset_variables = {"intercom_admin_id": "991000003"}

    def make_emulator(self, users: int) -> Emulator:
        return IntercomEmulator(users=users, seed=11)

    def client_options(self, emulator: Emulator) -> ClientOptions:
        return fast_options(emulator)

    def good_credential(self, emulator: Emulator) -> Credential:
        assert isinstance(emulator, IntercomEmulator)
        return emulator.test_credential(name="good")

    def bad_credential(self, emulator: Emulator) -> Credential:
        return Credential(
            name="bad",
            vendor="intercom",
            kind=AuthKind.API_KEY,
            token="dG9rOm5vdC1hLXJlYWwtdG9rZW4=",
            base_url=emulator.base_url,
        )
