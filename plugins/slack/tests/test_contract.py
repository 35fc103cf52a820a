"""The Slack plugin passes the shared conformance suite."""

from __future__ import annotations

from oomnitza_connect_slack import vendor as slack_plugin
from oomnitza_connect_slack.emulator import SlackEmulator

from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator
from oomnitza_connect.transport.http import ClientOptions


class TestSlackConformance(ConnectorConformance):
    plugin = slack_plugin
    vendor = "slack"
    settings = {"Slack.PageSize": "5"}
    list_users_endpoint = "users.list"
    preset_variables = {"slack_user_id": "U00000001", "email": "ada@example.com"}

    def make_emulator(self, users: int) -> Emulator:
        # Tier 2 allows 20 pages a minute; the suite checks behaviour, not pacing.
        return SlackEmulator(users=users, max_page_size=self.page_size, enforce_rate_limits=False)

    def client_options(self, emulator: Emulator) -> ClientOptions:
        return ClientOptions(
            base_url=emulator.base_url,
            connect_timeout=2.0,
            read_timeout=5.0,
            max_single_wait=3.0,
            max_total_wait=10.0,
            pace_requests=False,
        )

    def good_credential(self, emulator: Emulator) -> Credential:
        assert isinstance(emulator, SlackEmulator)
        return emulator.test_credential(name="good")

    def bad_credential(self, emulator: Emulator) -> Credential:
        return Credential(
            name="bad",
            vendor="slack",
            kind=AuthKind.API_KEY,
            token="xoxb-0000-not-a-real-token",
            base_url=emulator.base_url,
        )
