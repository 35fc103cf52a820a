"""The Webex plugin passes the shared conformance suite."""

from __future__ import annotations

from oomnitza_connect_webex.emulator import WebexEmulator
from oomnitza_connect_webex.plugin import vendor as webex_plugin
from webex_support import fast_options

from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator
from oomnitza_connect.transport.http import ClientOptions


class TestWebexConformance(ConnectorConformance):
    plugin = webex_plugin
    vendor = "webex"
    settings = {"Webex.PageSize": "5"}
    list_users_endpoint = "people.list"
    preset_variables = {
        "webex_user_id": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8x",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Adler",
    }

    def make_emulator(self, users: int) -> Emulator:
        return WebexEmulator(users=users, max_page_size=self.page_size, enforce_rate_limits=False)

    def client_options(self, emulator: Emulator) -> ClientOptions:
        assert isinstance(emulator, WebexEmulator)
        return fast_options(emulator)

    def good_credential(self, emulator: Emulator) -> Credential:
        assert isinstance(emulator, WebexEmulator)
        return emulator.test_credential(name="good")

    def bad_credential(self, emulator: Emulator) -> Credential:
        return Credential(
            name="bad",
            vendor="webex",
            kind=AuthKind.API_KEY,
            token="not-a-real-webex-token",
            base_url=emulator.base_url,
        )
