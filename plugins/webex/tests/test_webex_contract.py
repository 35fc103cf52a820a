"""The Webex plugin passes the shared conformance suite."""

from __future__ import annotations

import requests
from oomnitza_connect_webex.auth import parse_token_response
from oomnitza_connect_webex.emulator import PEOPLE_WRITE, USER_READ, WebexEmulator
from oomnitza_connect_webex.plugin import vendor as webex_plugin
from webex_support import fast_options

from oomnitza_connect.auth.oauth import complete_authorization, start_authorization
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator
from oomnitza_connect.transport.http import ClientOptions


class TestWebexConformance(ConnectorConformance):
    plugin = webex_plugin
    vendor = "webex"
    settings = {"Webex.PageSize": "5"}
    list_users_endpoint = "people.list"
    # Webex errors are {message, errors[], trackingId}: a tracking id, no code of their
    # own for the People API (vendor-apis.md: errorCode is documented only for licenses).
    errors_carry_code = False
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

    def rotating_credential(self, emulator: Emulator) -> Credential | None:
        assert isinstance(emulator, WebexEmulator)
        redirect = "http://127.0.0.1:8767/webex/callback"
        app = Credential(
            name="rotating",
            vendor="webex",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
            client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST,
            token_url=emulator.token_url,
            authorize_url=emulator.authorize_url,
            redirect_uri=redirect,
            base_url=emulator.base_url,
        )
        scopes = ("spark-admin:people_read",)
        pending = start_authorization(
            app, authorize_url=emulator.authorize_url, redirect_uri=redirect, scopes=scopes
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
        assert isinstance(emulator, WebexEmulator)
        # The admin's own token without spark-admin:people_read: /people/me works, the list not.
        token = emulator.issue_person_token(0, scopes=(USER_READ, PEOPLE_WRITE))
        return Credential(
            name="no-people-read",
            vendor="webex",
            kind=AuthKind.API_KEY,
            token=token,
            base_url=emulator.base_url,
        )
