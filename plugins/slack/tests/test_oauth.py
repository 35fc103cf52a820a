"""OAuth with token rotation against the emulator's oauth.v2.access.

Slack's rotating tokens live 12 hours and each refresh token works once; the
core's OAuth machinery reads Slack's answers through the plugin's
``parse_token_response``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import requests
from oomnitza_connect_slack.auth import parse_token_response
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options, load_sample

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import complete_authorization, start_authorization
from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.testing.emulator import Fault

REDIRECT_URI = "http://127.0.0.1:8765/slack/callback"


@pytest.fixture
def store(tmp_path, monkeypatch) -> CredentialStore:
    # Rotated tokens are saved through the default store: keep it in tmp_path.
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    return CredentialStore(home=tmp_path, keyring_backend=False)


def _app_credential(emulator: SlackEmulator, method=ClientAuthMethod.CLIENT_SECRET_BASIC):
    return Credential(
        name="slack-oauth",
        vendor="slack",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        client_auth_method=method,
        token_url=emulator.token_url,
        authorize_url=emulator.authorize_url,
        redirect_uri=REDIRECT_URI,
        base_url=emulator.base_url,
    )


def _login(emulator: SlackEmulator, credential: Credential, scopes: tuple[str, ...]) -> Credential:
    pending = start_authorization(
        credential, authorize_url=emulator.authorize_url, redirect_uri=REDIRECT_URI, scopes=scopes
    )
    answer = requests.get(pending.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return complete_authorization(
        credential,
        pending,
        answer.headers["Location"],
        token_url=emulator.token_url,
        token_response_parser=parse_token_response,
    )


@pytest.fixture
def oauth_emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=30, seed=5, enforce_rate_limits=False) as running:
        yield running


@pytest.mark.parametrize(
    "method", [ClientAuthMethod.CLIENT_SECRET_BASIC, ClientAuthMethod.CLIENT_SECRET_POST]
)
def test_login_with_pkce_gets_a_rotating_bot_token(oauth_emulator, method) -> None:
    credential = _login(
        oauth_emulator, _app_credential(oauth_emulator, method), ("users:read", "users:read.email")
    )
    assert credential.access_token.reveal().startswith("xoxe.xoxb-")
    assert credential.refresh_token.reveal().startswith("xoxe-1-")
    lifetime = credential.expires_at - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < lifetime <= timedelta(hours=12)


def test_a_user_scope_install_uses_the_authed_user_token(oauth_emulator) -> None:
    app = _app_credential(oauth_emulator)
    pending = start_authorization(app, authorize_url=oauth_emulator.authorize_url,
                                  redirect_uri=REDIRECT_URI)  # fmt: skip
    # Slack asks for user scopes in `user_scope`; oauthlib only knows `scope`.
    url = pending.url + "&user_scope=users:read,users:read.email,admin"
    location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    credential = complete_authorization(
        app, pending, location, token_url=oauth_emulator.token_url,
        token_response_parser=parse_token_response,
    )  # fmt: skip
    assert credential.access_token.reveal().startswith("xoxe.xoxp-")


def test_a_wrong_client_secret_is_refused_in_slack_terms(oauth_emulator) -> None:
    app = _app_credential(oauth_emulator)
    wrong = Credential(**{**_fields(app), "client_secret": "0" * 32})
    with pytest.raises(AuthenticationError) as caught:
        _login(oauth_emulator, wrong, ("users:read",))
    assert caught.value.code == "bad_client_secret"
    assert "0" * 32 not in str(caught.value)


def _fields(credential: Credential) -> dict:
    return attrs.asdict(credential, recurse=False)


def test_an_expired_token_mid_pagination_is_rotated_and_the_listing_completes(
    connector: Connector, oauth_emulator, store
) -> None:
    credential = _login(
        oauth_emulator, _app_credential(oauth_emulator), ("users:read", "users:read.email")
    )
    store.save(credential)
    first_refresh = credential.refresh_token.reveal()
    oauth_emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=2)
    options = fast_options(oauth_emulator)
    with connector.authenticate(credential, {"Slack.PageSize": "4"}, options=options) as session:
        ids = [record.id for record in connector.list_users(session)]
        auth = session.http.auth
    assert sorted(ids) == sorted(oauth_emulator.expected_user_ids())
    assert len(ids) == len(set(ids))
    assert auth.refresh_count == 1
    saved = store.get("slack-oauth")
    assert saved.refresh_token.reveal() != first_refresh  # rotated, and saved
    assert saved.access_token != credential.access_token
    # Slack refresh tokens are single-use: the spent one is refused.
    spent = requests.post(
        oauth_emulator.token_url,
        data={"grant_type": "refresh_token", "refresh_token": first_refresh,
              "client_id": oauth_emulator.client_id,
              "client_secret": oauth_emulator.client_secret},
        timeout=5,
    )  # fmt: skip
    with pytest.raises(AuthenticationError) as caught:
        parse_token_response(spent)
    assert caught.value.code == "invalid_refresh_token"
    assert "single-use" in str(caught.value)


def test_an_expired_access_token_without_refresh_is_reported(connector, oauth_emulator) -> None:
    token = oauth_emulator.issue_slack_token(ttl=3600).value
    oauth_emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=1)
    credential = Credential(name="static", vendor="slack", kind=AuthKind.API_KEY, token=token)
    with (
        connector.authenticate(
            credential, {"Slack.PageSize": "4"}, options=fast_options(oauth_emulator)
        ) as session,
        pytest.raises(AuthenticationError) as caught,
    ):
        list(connector.list_users(session))
    assert caught.value.code == "token_expired"
    assert token not in str(caught.value)


def test_token_responses_parse_like_the_documented_sample() -> None:
    response = requests.Response()
    response.status_code = 200
    # The documented oauth.v2.access answer with rotation, verbatim.
    response._content = json.dumps(
        load_sample("slack_oauth_v2_access_token_rotation.json")
    ).encode()
    granted = parse_token_response(response)
    assert granted.access_token.reveal() == "xoxe.xoxb-1-.."
    assert granted.refresh_token.reveal() == "xoxe-1-..."
    assert granted.expires_in == 43200
    assert granted.token_type == "bot"
    assert granted.scope == ("commands", "incoming-webhook")


def test_auth_login_installs_with_user_scopes_through_the_cli(
    oauth_emulator, store, monkeypatch
) -> None:
    """`auth login --authorize-param user_scope=...` gets the user token Slack nests."""
    import threading

    from click.testing import CliRunner
    from oomnitza_connect_slack import vendor as plugin

    from oomnitza_connect.cli import main
    from oomnitza_connect.plugins import register_plugin

    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        # The browser follows Slack's redirect back to the CLI's loopback listener.
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5}).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    store.save(attrs.evolve(_app_credential(oauth_emulator), redirect_uri=None))
    with register_plugin(plugin):
        result = CliRunner().invoke(
            main,
            ["auth", "login", "slack-oauth", "--port", "0", "--timeout", "10",
             "--authorize-param", "user_scope=users:read,users:read.email,admin"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "user_scope=users%3Aread%2Cusers%3Aread.email%2Cadmin" in opened[0]
    saved = store.get("slack-oauth")
    # The user token from `authed_user` (only the plugin's parser finds it there).
    assert saved.access_token.reveal().startswith("xoxe.xoxp-")
    assert saved.refresh_token is not None
    assert "admin" in oauth_emulator.lookup_token(saved.access_token.reveal()).scopes
