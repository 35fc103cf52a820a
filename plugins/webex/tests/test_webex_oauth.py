"""OAuth2 authorization code with refresh against the emulator's /v1/authorize and /v1/access_token.

Webex's token endpoint is form-encoded with the client's id and secret in the
form; a refresh may return a new refresh token, which is saved before the new
access token is used.
"""

from __future__ import annotations

import threading

import attrs
import pytest
import requests
from click.testing import CliRunner
from oomnitza_connect_webex.auth import parse_token_response
from oomnitza_connect_webex.emulator import PEOPLE_READ, PEOPLE_WRITE, WebexEmulator
from oomnitza_connect_webex.plugin import vendor
from oomnitza_connect_webex.plugin import vendor as plugin
from webex_support import fast_options

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import complete_authorization, start_authorization
from oomnitza_connect.cli import main
from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.testing.emulator import Fault

REDIRECT_URI = "http://127.0.0.1:8766/webex/callback"
SCOPES = (PEOPLE_READ, PEOPLE_WRITE)


@pytest.fixture
def store(tmp_path, monkeypatch) -> CredentialStore:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    return CredentialStore(home=tmp_path, keyring_backend=False)


@pytest.fixture
def webex():
    with WebexEmulator(users=30, seed=4, enforce_rate_limits=False) as running:
        yield running


def _app(emulator: WebexEmulator, **changes) -> Credential:
    credential = Credential(
        name="webex-oauth",
        vendor="webex",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST,
        token_url=emulator.token_url,
        authorize_url=emulator.authorize_url,
        redirect_uri=REDIRECT_URI,
        base_url=emulator.base_url,
        scopes=SCOPES,
    )
    return attrs.evolve(credential, **changes)


def _login(emulator: WebexEmulator, credential: Credential) -> Credential:
    pending = start_authorization(
        credential, authorize_url=emulator.authorize_url, redirect_uri=REDIRECT_URI, scopes=SCOPES
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


def test_login_gets_tokens_with_the_asked_scopes(webex) -> None:
    credential = _login(webex, _app(webex))
    assert credential.access_token is not None
    assert credential.refresh_token is not None
    assert credential.expires_at is not None
    assert webex.lookup_token(credential.access_token.reveal()).scopes == set(SCOPES)
    token_request = [r for r in webex.requests if r.endpoint == "oauth.token"][-1]
    form = token_request.form()
    assert form["grant_type"] == "authorization_code"
    assert form["client_id"] == webex.client_id
    assert "client_secret" in form


def test_the_documented_token_answer_parses(webex) -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = (
        b'{"access_token":"ZDI3MGEyYzQtNmFlNS00NDNhLWFlNzAtZGVjNjE0MGU1OGZmZWNmZDEwN2ItYTU3",'
        b'"expires_in":1209600,"refresh_token":"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEy",'
        b'"refresh_token_expires_in":7776000}'
    )
    granted = parse_token_response(response)
    assert granted.expires_in == 1209600
    assert granted.refresh_token.reveal().startswith("MDEy")


def test_a_refused_token_request_names_webex_and_its_tracking_id(webex) -> None:
    response = requests.post(
        webex.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": "nope",
            "client_id": webex.client_id,
            "client_secret": webex.client_secret,
        },
        timeout=5,
    )
    with pytest.raises(AuthenticationError) as raised:
        parse_token_response(response)
    assert raised.value.vendor == "webex"
    assert raised.value.request_id
    assert "refresh token" in str(raised.value)


def test_the_client_secret_goes_in_the_form_not_basic_auth(connector, webex, store) -> None:
    basic = _app(webex, client_auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC)
    pending = start_authorization(
        basic, authorize_url=webex.authorize_url, redirect_uri=REDIRECT_URI, scopes=SCOPES
    )
    location = requests.get(pending.url, allow_redirects=False, timeout=5).headers["Location"]
    with pytest.raises(AuthenticationError):
        complete_authorization(
            basic, pending, location, token_url=webex.token_url,
            token_response_parser=parse_token_response,
        )  # fmt: skip
    # A session switches the core's Basic default to Webex's form fields when refreshing.
    credential = attrs.evolve(_login(webex, _app(webex)), access_token=None)
    credential = attrs.evolve(credential, client_auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC)
    store.save(credential)
    with connector.authenticate(credential, {}, options=fast_options(webex)) as session:
        assert session.identity["person_id"] == webex.person_id(0)


def test_a_rotated_refresh_token_is_saved_before_it_is_used(connector, webex, store) -> None:
    credential = _login(webex, _app(webex))
    store.save(credential)
    webex.faults.add(Fault.expire_tokens(), endpoint="people.list", after=1)
    settings = {"Webex.PageSize": "4"}
    with connector.authenticate(credential, settings, options=fast_options(webex)) as session:
        ids = [item.id_hint() for item in vendor.iter_users(session)]
    assert ids == webex.person_ids()
    assert webex.faults.pending() == 0
    event = webex.refresh_events[-1]
    assert event.accepted
    assert event.new_refresh_token != event.old_refresh_token
    saved = store.get("webex-oauth")
    assert saved.refresh_token.reveal() == event.new_refresh_token
    # The old one is spent: using it again is refused.
    assert webex.lookup_token(event.old_refresh_token, kind="refresh") is None


def test_auth_login_works_end_to_end_through_the_cli(webex, store, monkeypatch) -> None:
    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        # The browser follows Webex's redirect back to the CLI's loopback listener.
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5}).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    store.save(_app(webex, redirect_uri=None))
    with register_plugin(plugin):
        result = CliRunner().invoke(
            main, ["auth", "login", "webex-oauth", "--port", "0", "--timeout", "10"]
        )
        assert result.exit_code == 0, result.output
        assert opened[0].startswith(webex.authorize_url)
        assert "spark-admin%3Apeople_read" in opened[0]
        saved = store.get("webex-oauth")
        assert saved.refresh_token is not None
        assert webex.lookup_token(saved.access_token.reveal()).scopes == set(SCOPES)
        tested = CliRunner().invoke(main, ["auth", "test", "webex-oauth"], env={})
    assert tested.exit_code == 0, tested.output
    assert webex.person(0)["emails"][0] in tested.output
