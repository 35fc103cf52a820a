"""OAuth for public apps: the code is exchanged at /auth/eagle/token; no refresh token."""

from __future__ import annotations

import pytest
import requests
from intercom_support import fast_options
from oomnitza_connect_intercom import vendor
from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.auth.oauth import complete_authorization, start_authorization
from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential

parse_token_response = vendor.parse_token_response

REDIRECT_URI = "http://127.0.0.1:8765/intercom/callback"


def _app(emulator: IntercomEmulator, method=ClientAuthMethod.CLIENT_SECRET_POST) -> Credential:
    return Credential(
        name="intercom-oauth",
        vendor="intercom",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        client_auth_method=method,
        token_url=emulator.token_url,
        authorize_url=emulator.authorize_url,
        redirect_uri=REDIRECT_URI,
        base_url=emulator.base_url,
    )


def _login(emulator: IntercomEmulator, credential: Credential) -> Credential:
    pending = start_authorization(
        credential, authorize_url=emulator.authorize_url, redirect_uri=REDIRECT_URI
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


@pytest.mark.parametrize(
    "method", [ClientAuthMethod.CLIENT_SECRET_POST, ClientAuthMethod.CLIENT_SECRET_BASIC]
)
def test_login_gets_a_token_without_refresh_or_expiry(
    connector: Connector, emulator: IntercomEmulator, method
) -> None:
    credential = _login(emulator, _app(emulator, method))
    assert credential.access_token is not None
    assert credential.refresh_token is None
    assert credential.expires_at is None
    with connector.authenticate(credential, {}, options=fast_options(emulator)) as session:
        identity = dict(session.identity)
        ids = [record.id for record in connector.list_users(session)]
        assert session.credential.kind is AuthKind.OAUTH2_AUTHORIZATION_CODE
    assert identity["workspace"] == emulator.app_name
    assert sorted(ids) == sorted(emulator.expected_user_ids())
    exchange = [r for r in emulator.requests if r.path == "/auth/eagle/token"]
    assert len(exchange) == 1
    assert "code=" in exchange[0].body.decode()


def test_the_token_endpoint_takes_code_client_id_and_secret_alone(emulator) -> None:
    # Intercom's documented exchange has no grant_type; the answer carries the token twice.
    pending = start_authorization(
        _app(emulator), authorize_url=emulator.authorize_url, redirect_uri=REDIRECT_URI
    )
    location = requests.get(pending.url, allow_redirects=False, timeout=5).headers["Location"]
    code = location.split("code=")[1].split("&")[0]
    answer = requests.post(
        emulator.token_url,
        data={
            "code": code,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pending.code_verifier.reveal(),
        },
        timeout=5,
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["token"] == body["access_token"]
    assert "refresh_token" not in body
    assert "expires_in" not in body
    granted = parse_token_response(answer)
    assert granted.access_token.reveal() == body["token"]
    assert granted.refresh_token is None


def test_a_used_code_is_refused_with_the_error_list(emulator) -> None:
    credential = _app(emulator)
    pending = start_authorization(
        credential, authorize_url=emulator.authorize_url, redirect_uri=REDIRECT_URI
    )
    location = requests.get(pending.url, allow_redirects=False, timeout=5).headers["Location"]
    complete_authorization(credential, pending, location, token_url=emulator.token_url,
                           token_response_parser=parse_token_response)  # fmt: skip
    with pytest.raises(AuthenticationError) as caught:
        complete_authorization(credential, pending, location, token_url=emulator.token_url,
                               token_response_parser=parse_token_response)  # fmt: skip
    assert caught.value.code == "invalid_grant"
    assert emulator.client_secret not in str(caught.value)


def test_an_oauth_credential_without_a_token_says_to_log_in(connector, emulator) -> None:
    with pytest.raises(AuthenticationError, match="auth login intercom-oauth"):
        connector.authenticate(_app(emulator), {}, options=fast_options(emulator))
    assert not [r for r in emulator.requests if r.path == "/me"]


def test_a_token_only_answer_without_access_token_is_read(emulator) -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = b'{"token_type": "Bearer", "token": "dG9rOmFiYw=="}'
    assert parse_token_response(response).access_token.reveal() == "dG9rOmFiYw=="
    empty = requests.Response()
    empty.status_code = 200
    empty._content = b'{"token_type": "Bearer"}'
    with pytest.raises(AuthenticationError, match="without a token"):
        parse_token_response(empty)
