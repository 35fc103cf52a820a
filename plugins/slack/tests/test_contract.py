"""The Slack plugin passes the shared conformance suite."""

from __future__ import annotations

import attrs
import requests
from oomnitza_connect_slack import vendor as slack_plugin
from oomnitza_connect_slack.auth import parse_token_response
from oomnitza_connect_slack.emulator import SlackEmulator

from oomnitza_connect.auth.oauth import complete_authorization, start_authorization
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

    def rotating_credential(self, emulator: Emulator) -> Credential | None:
        assert isinstance(emulator, SlackEmulator)
        app = Credential(
            name="rotating",
            vendor="slack",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
            token_url=emulator.token_url,
            authorize_url=emulator.authorize_url,
            base_url=emulator.base_url,
        )
        redirect = "http://127.0.0.1:8765/callback"
        pending = start_authorization(
            app,
            authorize_url=emulator.authorize_url,
            redirect_uri=redirect,
            scopes=("users:read", "users:read.email"),
        )
        answer = requests.get(pending.url, allow_redirects=False, timeout=5)
        return complete_authorization(
            app,
            pending,
            answer.headers["Location"],
            token_url=emulator.token_url,
            token_response_parser=parse_token_response,
        )

    def credential_missing_scope(self, emulator: Emulator) -> Credential | None:
        assert isinstance(emulator, SlackEmulator)
        token = emulator.issue_slack_token(scopes=("users:read",)).value
        return attrs.evolve(emulator.test_credential(name="no-email"), token=token)
