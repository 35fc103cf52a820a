"""The authorization code flow with PKCE, driven against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
import requests
from http_support import DirectoryEmulator

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import (
    AuthorizationRequest,
    complete_authorization,
    login_with_loopback,
    start_authorization,
)
from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, Credential, VendorInfo
from oomnitza_connect.redaction import Secret
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import open_session


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator() as emu:
        emu.register_client("app", client_secret="app-secret-1")
        yield emu


def fresh_credential(emulator: DirectoryEmulator) -> Credential:
    return Credential(
        name="dir",
        vendor="directory",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id="app",
        client_secret="app-secret-1",
        token_url=emulator.base_url + "/oauth/token",
        authorize_url=emulator.base_url + "/oauth/authorize",
        base_url=emulator.base_url,
        scopes=("users:read",),
    )


def test_loopback_login_stores_tokens_that_work(
    emulator: DirectoryEmulator, tmp_path: Path
) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    visited: list[str] = []

    def browser(url: str) -> None:
        visited.append(url)
        requests.get(url, timeout=5)  # follows the redirect to the loopback listener

    cred = fresh_credential(emulator)
    updated = login_with_loopback(
        cred,
        authorize_url=emulator.base_url + "/oauth/authorize",
        token_url=emulator.base_url + "/oauth/token",
        open_url=browser,
        timeout=10,
        credential_store=store,
    )
    query = parse_qs(urlsplit(visited[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["users:read"]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert updated.access_token is not None
    assert updated.refresh_token is not None
    assert store.get("dir").refresh_token == updated.refresh_token
    exchange = next(r for r in emulator.requests if r.endpoint == "oauth.token").form()
    assert exchange["grant_type"] == "authorization_code"
    assert len(exchange["code_verifier"]) == 64
    info = VendorInfo(
        name="directory",
        display_name="D",
        base_url=emulator.base_url,
        auth_kinds=(AuthKind.OAUTH2_AUTHORIZATION_CODE,),
    )
    with open_session(info, updated, {}, ClientOptions(), credential_store=store) as session:
        assert "headers" in session.http.get_json("/echo")
    assert emulator.token_requests == 1  # the stored access token was used as is


def pending_and_redirect(emulator: DirectoryEmulator) -> tuple[AuthorizationRequest, str]:
    pending = start_authorization(
        fresh_credential(emulator),
        authorize_url=emulator.base_url + "/oauth/authorize",
        redirect_uri="http://127.0.0.1:9/callback",
    )
    answer = requests.get(pending.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return pending, answer.headers["Location"]


def test_pasted_redirect_url(emulator: DirectoryEmulator) -> None:
    pending, location = pending_and_redirect(emulator)
    updated = complete_authorization(
        fresh_credential(emulator), pending, location, token_url=emulator.base_url + "/oauth/token"
    )
    assert updated.access_token is not None
    assert updated.redirect_uri == "http://127.0.0.1:9/callback"


def test_pasted_bare_code(emulator: DirectoryEmulator) -> None:
    pending, location = pending_and_redirect(emulator)
    code = parse_qs(urlsplit(location).query)["code"][0]
    updated = complete_authorization(
        fresh_credential(emulator), pending, code, token_url=emulator.base_url + "/oauth/token"
    )
    assert updated.refresh_token is not None


def test_state_mismatch_is_refused(emulator: DirectoryEmulator) -> None:
    pending, location = pending_and_redirect(emulator)
    forged = location.replace(f"state={pending.state}", "state=forged")
    with pytest.raises(AuthenticationError) as raised:
        complete_authorization(
            fresh_credential(emulator),
            pending,
            forged,
            token_url=emulator.base_url + "/oauth/token",
        )
    assert "state does not match" in str(raised.value)
    assert emulator.token_requests == 0


def test_wrong_pkce_verifier_is_refused_by_the_server(emulator: DirectoryEmulator) -> None:
    pending, location = pending_and_redirect(emulator)
    tampered = attrs.evolve(pending, code_verifier=Secret("x" * 64))
    with pytest.raises(AuthenticationError) as raised:
        complete_authorization(
            fresh_credential(emulator),
            tampered,
            location,
            token_url=emulator.base_url + "/oauth/token",
        )
    assert raised.value.code == "invalid_grant"


def test_denied_authorization(emulator: DirectoryEmulator) -> None:
    pending, _ = pending_and_redirect(emulator)
    with pytest.raises(AuthenticationError) as raised:
        complete_authorization(
            fresh_credential(emulator),
            pending,
            f"http://127.0.0.1:9/callback?error=access_denied&state={pending.state}",
            token_url=emulator.base_url + "/oauth/token",
        )
    assert raised.value.code == "access_denied"
