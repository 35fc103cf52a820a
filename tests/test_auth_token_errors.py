"""What a failing token endpoint is reported as, for every grant.

Only a 4xx is a refused credential. A 5xx, a 429, a dropped connection or an
answer that is not JSON is the vendor's fault: retried when the grant may be
asked for again (client credentials), then raised as the vendor error it is,
with the vendor, status, code and request id, and never a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests
from http_support import DirectoryEmulator, Recorder

from oomnitza_connect.auth.oauth import (
    AuthorizationCodeAuth,
    ClientCredentialsAuth,
    OAuth2Auth,
    complete_authorization,
    start_authorization,
)
from oomnitza_connect.errors import (
    AuthenticationError,
    MalformedResponseError,
    RateLimitError,
    TransportError,
    VendorAPIError,
)
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.emulator import EmulatorResponse, Fault, json_response
from oomnitza_connect.testing.oauth import TokenGrant
from oomnitza_connect.transport.http import ClientOptions

SECRET = "app-secret-value-1"


class TrackedDirectory(DirectoryEmulator):
    """A directory whose every answer carries a request id, as real vendors' do."""

    request_id_header: ClassVar[str | None] = "X-Request-Id"
    request_id_format: ClassVar[str] = "req-{number}"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.grant_without_token = False

    def grant_tokens(self, grant: TokenGrant) -> EmulatorResponse:
        if self.grant_without_token:
            return json_response({"token_type": "Bearer", "expires_in": 3600})
        return super().grant_tokens(grant)


@pytest.fixture
def emulator() -> Iterator[TrackedDirectory]:
    with TrackedDirectory() as emu:
        emu.register_client("app", client_secret=SECRET)
        yield emu


def credential(emulator: TrackedDirectory, kind: AuthKind, **fields: Any) -> Credential:
    values: dict[str, Any] = {
        "name": "dir",
        "vendor": "directory",
        "kind": kind,
        "client_id": "app",
        "client_secret": SECRET,
        "token_url": emulator.base_url + "/oauth/token",
        "base_url": emulator.base_url,
    }
    values.update(fields)
    return Credential(**values)


def client_credentials(emulator: TrackedDirectory, sleep: Recorder) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        credential(emulator, AuthKind.OAUTH2_CLIENT_CREDENTIALS),
        token_url=emulator.base_url + "/oauth/token",
        options=ClientOptions(max_retries=2),
        sleep=sleep,
    )


def refreshing(emulator: TrackedDirectory) -> AuthorizationCodeAuth:
    cred = credential(
        emulator,
        AuthKind.OAUTH2_AUTHORIZATION_CODE,
        refresh_token=emulator.grant_refresh_token("app"),
    )
    return AuthorizationCodeAuth(
        cred, token_url=emulator.base_url + "/oauth/token", sleep=Recorder()
    )


def token_requests(emulator: TrackedDirectory) -> int:
    return sum(1 for r in emulator.requests if r.endpoint == "oauth.token")


def assert_reported_once(error: Exception, status: int) -> str:
    text = str(error)
    assert text.startswith("directory: ")
    assert text.count(f"HTTP {status}") == 1, text
    assert SECRET not in text
    return text


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_retried_then_reported_as_the_vendors_fault(
    emulator: TrackedDirectory, status: int
) -> None:
    emulator.faults.add(Fault.server_error(status), endpoint="oauth.token", times=-1)
    sleep = Recorder()
    with pytest.raises(VendorAPIError) as raised:
        client_credentials(emulator, sleep).current_token()
    error = raised.value
    assert not isinstance(error, AuthenticationError)
    assert (error.vendor, error.status, error.code) == ("directory", status, "internal_error")
    assert error.request_id is not None
    assert error.request_id.startswith("req-")
    text = assert_reported_once(error, status)
    assert "refused" not in text
    assert "credential 'dir'" in text
    assert f"request id {error.request_id}" in text
    # The first try and max_retries=2 more, with backoff between them.
    assert token_requests(emulator) == 3
    assert len(sleep.waits) == 2


def test_a_server_error_once_is_retried_and_the_token_obtained(emulator: TrackedDirectory) -> None:
    emulator.faults.add(Fault.server_error(503), endpoint="oauth.token")
    assert client_credentials(emulator, Recorder()).current_token().reveal().startswith("emu-at-")
    assert token_requests(emulator) == 2


def test_rate_limiting_at_the_token_endpoint_is_a_rate_limit_error(
    emulator: TrackedDirectory,
) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="oauth.token", times=-1)
    sleep = Recorder()
    with pytest.raises(RateLimitError) as raised:
        client_credentials(emulator, sleep).current_token()
    assert raised.value.status == 429
    assert raised.value.request_id is not None
    assert "refused" not in assert_reported_once(raised.value, 429)
    assert sleep.waits == [1.0, 1.0]


def test_a_dropped_connection_is_a_transport_error(emulator: TrackedDirectory) -> None:
    emulator.faults.add(Fault.connection_reset(), endpoint="oauth.token", times=-1)
    with pytest.raises(TransportError) as raised:
        client_credentials(emulator, Recorder()).current_token()
    assert not isinstance(raised.value, AuthenticationError)
    assert str(raised.value).startswith("directory: ")
    assert token_requests(emulator) == 3


def test_an_answer_that_is_not_json_is_a_malformed_response(emulator: TrackedDirectory) -> None:
    emulator.faults.add(Fault.malformed_json(), endpoint="oauth.token", times=-1)
    with pytest.raises(MalformedResponseError) as raised:
        client_credentials(emulator, Recorder()).current_token()
    error = raised.value
    text = assert_reported_once(error, 200)
    assert "credential 'dir': the token endpoint's answer is not JSON" in text
    assert error.request_id is not None
    assert f"request id {error.request_id}" in text
    # Not oauthlib's guess at a form-encoded body.
    assert "missing_token" not in text
    assert error.code is None
    assert token_requests(emulator) == 3


def test_an_answer_without_an_access_token_is_a_malformed_response(
    emulator: TrackedDirectory,
) -> None:
    emulator.grant_without_token = True
    with pytest.raises(MalformedResponseError) as raised:
        client_credentials(emulator, Recorder()).current_token()
    text = assert_reported_once(raised.value, 200)
    assert "credential 'dir': the token endpoint's answer has no access_token" in text
    assert raised.value.request_id is not None


def test_a_wrong_secret_is_a_refusal_reported_once(emulator: TrackedDirectory) -> None:
    auth = ClientCredentialsAuth(
        credential(emulator, AuthKind.OAUTH2_CLIENT_CREDENTIALS, client_secret="wrong-secret-9"),
        token_url=emulator.base_url + "/oauth/token",
        sleep=Recorder(),
    )
    with pytest.raises(AuthenticationError) as raised:
        auth.current_token()
    error = raised.value
    assert (error.status, error.code) == (401, "invalid_client")
    assert error.request_id is not None
    text = assert_reported_once(error, 401)
    assert "the token endpoint refused credential 'dir'" in text
    assert text.count("code invalid_client") == 1
    assert "wrong-secret-9" not in text
    assert token_requests(emulator) == 1  # a refusal is not retried


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.server_error(500), VendorAPIError),
        (Fault.malformed_json(), MalformedResponseError),
    ],
)
def test_a_refresh_fails_the_same_way_and_is_not_sent_twice(
    emulator: TrackedDirectory, fault: Fault, expected: type[Exception]
) -> None:
    auth: OAuth2Auth = refreshing(emulator)
    emulator.faults.add(fault, endpoint="oauth.token", times=-1)
    with pytest.raises(expected) as raised:
        auth.current_token()
    assert not isinstance(raised.value, AuthenticationError)
    status = 500 if expected is VendorAPIError else 200
    assert_reported_once(raised.value, status)
    # The refresh token may have been spent by a request that arrived.
    assert token_requests(emulator) == 1


def test_a_refused_refresh_token_is_an_authentication_error(emulator: TrackedDirectory) -> None:
    auth = AuthorizationCodeAuth(
        credential(emulator, AuthKind.OAUTH2_AUTHORIZATION_CODE, refresh_token="not-a-token-1"),
        token_url=emulator.base_url + "/oauth/token",
    )
    with pytest.raises(AuthenticationError) as raised:
        auth.current_token()
    assert (raised.value.status, raised.value.code) == (400, "invalid_grant")
    assert "not-a-token-1" not in assert_reported_once(raised.value, 400)


@pytest.mark.parametrize(
    ("fault", "expected", "status"),
    [
        (Fault.server_error(503), VendorAPIError, 503),
        (Fault.malformed_json(), MalformedResponseError, 200),
    ],
)
def test_the_code_exchange_fails_the_same_way(
    emulator: TrackedDirectory, fault: Fault, expected: type[Exception], status: int
) -> None:
    cred = credential(emulator, AuthKind.OAUTH2_AUTHORIZATION_CODE)
    pending = start_authorization(
        cred,
        authorize_url=emulator.base_url + "/oauth/authorize",
        redirect_uri="http://127.0.0.1:9/callback",
    )
    location = requests.get(pending.url, allow_redirects=False, timeout=5).headers["Location"]
    emulator.faults.add(fault, endpoint="oauth.token", times=-1)
    with pytest.raises(expected) as raised:
        complete_authorization(
            cred, pending, location, token_url=emulator.base_url + "/oauth/token"
        )
    assert not isinstance(raised.value, AuthenticationError)
    text = assert_reported_once(raised.value, status)
    assert pending.code_verifier.reveal() not in text
    assert token_requests(emulator) == 1  # a code is spent once sent


@pytest.fixture
def talkdesk() -> Iterator[Any]:
    from oomnitza_connect_talkdesk import vendor as talkdesk_vendor
    from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator

    from oomnitza_connect.plugins import register_plugin

    with register_plugin(talkdesk_vendor), TalkdeskEmulator(users=3, seed=7) as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("fault", "expected", "status"),
    [
        (Fault.server_error(500), VendorAPIError, 500),
        (Fault.server_error(503), VendorAPIError, 503),
        (Fault.malformed_json(), MalformedResponseError, 200),
    ],
    ids=["500", "503", "mal"],
)
def test_talkdesk_token_host_failures_are_the_vendors(
    talkdesk: Any, fault: Fault, expected: type[VendorAPIError], status: int
) -> None:
    from oomnitza_connect import get_connector

    talkdesk.faults.add(fault, endpoint="oauth.token", times=-1)
    credential = talkdesk.test_credential()
    # No retries: these are real requests, and a retry would wait for real.
    options = ClientOptions(base_url=talkdesk.base_url, pace_requests=False, max_retries=0)
    with pytest.raises(expected) as raised:
        get_connector("talkdesk").authenticate(
            credential, talkdesk.test_settings(), options=options
        )
    error = raised.value
    assert not isinstance(error, AuthenticationError)
    text = str(error)
    assert text.startswith("talkdesk: ")
    assert text.count(f"HTTP {status}") == 1, text
    assert "refused" not in text
    assert "credential 'talkdesk-emulator'" in text
    if status >= 500:
        # Talkdesk's own envelope: {code, message} and X-Request-Id.
        assert error.code == "0002500"
        assert "Service unavailable" in text
        assert error.request_id is not None
        assert f"request id {error.request_id}" in text
    assert credential.private_key is not None
    assert credential.private_key.reveal().strip()[:40] not in text
    assertions = [r.form()["client_assertion"] for r in talkdesk.requests]
    assert assertions
    assert all(assertion not in text for assertion in assertions)
