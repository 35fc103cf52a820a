"""OAuth2 token renewal: expiry mid-pagination, 401 and token_expired, rotation, threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from http_support import DirectoryEmulator, Recorder

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import (
    AuthorizationCodeAuth,
    TokenResponse,
    token_response_from_mapping,
)
from oomnitza_connect.errors import AuthenticationError, TransportError
from oomnitza_connect.models import AuthKind, Credential, VendorInfo
from oomnitza_connect.testing.emulator import (
    EmulatorRequest,
    EmulatorResponse,
    Fault,
    json_response,
    route,
)
from oomnitza_connect.transport.http import ClientOptions, HttpClient, VendorErrorInfo
from oomnitza_connect.transport.pagination import iter_cursor_pages
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://api.directory.invalid",
    auth_kinds=(AuthKind.OAUTH2_AUTHORIZATION_CODE,),
)


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator(users=30, page_size=10) as emu:
        emu.register_client("app", client_secret="app-secret-1")
        yield emu


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "home", keyring_backend=False, environ={})


def granted_credential(emulator: DirectoryEmulator, **fields: Any) -> Credential:
    values: dict[str, Any] = {
        "name": "dir",
        "vendor": "directory",
        "kind": AuthKind.OAUTH2_AUTHORIZATION_CODE,
        "client_id": "app",
        "client_secret": "app-secret-1",
        "token_url": emulator.base_url + "/oauth/token",
        "base_url": emulator.base_url,
        "refresh_token": emulator.grant_refresh_token("app"),
    }
    values.update(fields)
    return Credential(**values)


def test_token_expiring_in_the_middle_of_pagination(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    cred = granted_credential(emulator)
    store.save(cred)
    emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=1)
    with open_session(INFO, cred, {}, ClientOptions(), credential_store=store) as session:
        pages = iter_cursor_pages(session.http, "/api/users.list", params={"limit": 10})
        members = [m["id"] for page in pages for m in page["members"]]
    assert members == [f"U{i:04d}" for i in range(30)]
    # One token at the start, one after the expiry; the rotated refresh token was kept.
    assert emulator.token_requests == 2
    assert [e.accepted for e in emulator.refresh_events] == [True, True]
    saved = store.get("dir").refresh_token
    assert saved is not None
    assert saved.reveal() == emulator.refresh_events[-1].new_refresh_token


def test_rotated_refresh_token_is_saved_before_the_new_access_token_is_used(
    emulator: DirectoryEmulator, tmp_path: Path
) -> None:
    class CheckingStore(CredentialStore):
        saved: list[Credential] = []

        def save(self, credential: Credential) -> None:
            assert credential.access_token is not None
            new_token = credential.access_token.reveal()
            used = [r for r in emulator.requests if r.bearer_token() == new_token]
            assert used == [], "the new access token was used before it was saved"
            super().save(credential)
            self.saved.append(credential)

    store = CheckingStore(tmp_path, keyring_backend=False, environ={})
    cred = granted_credential(emulator)
    old_refresh = cred.refresh_token
    assert old_refresh is not None
    with open_session(INFO, cred, {}, ClientOptions(), credential_store=store) as session:
        session.http.get_json("/echo")
    assert len(CheckingStore.saved) == 1
    new_refresh = store.get("dir").refresh_token
    assert new_refresh is not None
    assert new_refresh != old_refresh
    # The old refresh token is refused from now on.
    # (Held in another store: through the same one the stored, newer tokens would be used.)
    stale = granted_credential(emulator, refresh_token=old_refresh)
    elsewhere = CredentialStore(tmp_path / "elsewhere", keyring_backend=False, environ={})
    session = open_session(INFO, stale, {}, ClientOptions(), credential_store=elsewhere)
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert raised.value.code == "invalid_grant"
    assert emulator.refresh_events[-1].accepted is False


def test_401_triggers_one_refresh_and_a_retry(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    cred = granted_credential(emulator)
    with open_session(INFO, cred, {}, ClientOptions(), credential_store=store) as session:
        session.http.get_json("/echo")
        emulator.expire_all_tokens()
        assert "headers" in session.http.get_json("/echo")
        auth = session.http.auth
        assert isinstance(auth, AuthorizationCodeAuth)
        assert auth.refresh_count == 2
        # The session's credential follows the renewed tokens.
        assert session.credential == auth.credential
        assert session.credential.refresh_token == store.get("dir").refresh_token
        assert session.credential.refresh_token != cred.refresh_token


def test_401_that_persists_after_refresh_is_an_authentication_error(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    cred = granted_credential(emulator)
    emulator.faults.add(Fault.expire_tokens(), endpoint="echo", times=-1)
    session = open_session(INFO, cred, {}, ClientOptions(), credential_store=store)
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert raised.value.status == 401
    assert emulator.token_requests == 2  # the first token, then exactly one renewal


class ExpiringInBodyEmulator(DirectoryEmulator):
    """Reports expired tokens the Slack way: HTTP 200 with ok false."""

    @route("GET", "/api/auth.test", endpoint="auth.test")
    def auth_test(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self.lookup_token(request.bearer_token())
        if token is None or token.expired():
            return json_response({"ok": False, "error": "token_expired"})
        return json_response({"ok": True, "user": "bot"})


def slack_like_parser(response: requests.Response) -> VendorErrorInfo | None:
    body = response.json()
    if body.get("ok", True):
        return None
    return VendorErrorInfo(
        message=f"Slack said {body['error']}.",
        code=body["error"],
        token_expired=body["error"] == "token_expired",
    )


def test_token_expired_in_a_200_body_refreshes(store: CredentialStore) -> None:
    with ExpiringInBodyEmulator() as emulator:
        emulator.register_client("app", client_secret="app-secret-1")
        cred = granted_credential(emulator)
        session = open_session(
            INFO, cred, {}, ClientOptions(), credential_store=store, error_parser=slack_like_parser
        )
        with session:
            assert session.http.get_json("/api/auth.test") == {"ok": True, "user": "bot"}
            emulator.expire_all_tokens()
            assert session.http.get_json("/api/auth.test") == {"ok": True, "user": "bot"}
        assert emulator.token_requests == 2


def test_slack_style_token_response_parser(store: CredentialStore) -> None:
    class SlackTokens(DirectoryEmulator):
        def token_success(
            self,
            access_token: str,
            refresh_token: str | None,
            expires_in: float | None,
            scopes: frozenset[str],
        ) -> EmulatorResponse:
            return json_response(
                {
                    "ok": True,
                    "access_token": access_token,
                    "token_type": "bot",
                    "expires_in": 43200,
                    "refresh_token": refresh_token,
                }
            )

        def token_error(self, error: str, description: str, status: int) -> EmulatorResponse:
            return json_response({"ok": False, "error": "invalid_refresh_token"})

    def parse_slack(response: requests.Response) -> TokenResponse:
        body = response.json()
        if not body.get("ok"):
            raise AuthenticationError(
                f"Slack refused the token request: {body['error']}", code=body["error"]
            )
        return token_response_from_mapping(body)

    with SlackTokens() as emulator:
        emulator.register_client("app", client_secret="app-secret-1")
        cred = granted_credential(emulator)
        with open_session(
            INFO,
            cred,
            {},
            ClientOptions(),
            credential_store=store,
            token_response_parser=parse_slack,
        ) as session:
            assert "headers" in session.http.get_json("/echo")
        saved = store.get("dir")
        assert saved.expires_at is not None
        bad = granted_credential(emulator, refresh_token="xoxe-1-not-valid")
        session = open_session(
            INFO,
            bad,
            {},
            ClientOptions(),
            credential_store=CredentialStore(store.home / "elsewhere", keyring_backend=False),
            token_response_parser=parse_slack,
        )
        with session, pytest.raises(AuthenticationError) as raised:
            session.http.get_json("/echo")
        assert raised.value.code == "invalid_refresh_token"
        assert raised.value.vendor == "directory"


def test_concurrent_requests_refresh_once(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    cred = granted_credential(emulator)
    session = open_session(INFO, cred, {}, ClientOptions(), credential_store=store)
    session.http.get_json("/echo")
    emulator.expire_all_tokens()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def call() -> None:
        try:
            barrier.wait()
            session.http.get_json("/echo")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session.close()
    assert errors == []
    # The first token, then one renewal shared by all eight threads.
    assert emulator.token_requests == 2
    assert sum(e.accepted for e in emulator.refresh_events) == 2


def test_no_refresh_token_asks_for_a_login(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    cred = granted_credential(emulator, refresh_token=None)
    session = open_session(INFO, cred, {}, ClientOptions(), credential_store=store)
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert "oomnitza-connect auth login dir" in str(raised.value)


def test_refresh_is_not_repeated_after_a_reset(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    """A rotating refresh token may be spent once the request arrived: never send it twice."""
    cred = granted_credential(emulator)
    emulator.faults.add(Fault.connection_reset(), endpoint="oauth.token")
    auth = AuthorizationCodeAuth(
        cred, token_url=emulator.base_url + "/oauth/token", credential_store=store, sleep=Recorder()
    )
    client = HttpClient("directory", emulator.base_url, auth=auth, sleep=Recorder())
    with client, pytest.raises(TransportError) as raised:
        client.get_json("/echo")
    assert "the connection to 127.0.0.1:" in str(raised.value)
    assert str(raised.value).endswith(" was reset.")
    assert sum(1 for r in emulator.requests if r.endpoint == "oauth.token") == 1


def test_renewal_happens_even_with_retries_turned_off(
    emulator: DirectoryEmulator, store: CredentialStore
) -> None:
    cred = granted_credential(emulator)
    with open_session(
        INFO, cred, {}, ClientOptions(max_retries=0), credential_store=store
    ) as session:
        session.http.get_json("/echo")
        emulator.expire_all_tokens()
        assert "headers" in session.http.get_json("/echo")
    assert emulator.token_requests == 2
