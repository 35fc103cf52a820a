"""OAuth2 client credentials against the emulator's token endpoint.

client_secret_basic, client_secret_post and private_key_jwt (ES*/PS*), token
caching and renewal, templated token URLs, refusals.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from http_support import DirectoryEmulator, Recorder

from oomnitza_connect.auth.oauth import (
    ClientCredentialsAuth,
    build_client_assertion,
    load_private_key,
    resolve_oauth_urls,
)
from oomnitza_connect.errors import AuthenticationError, ConfigurationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential, VendorInfo
from oomnitza_connect.redaction import Secret
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://api.directory.invalid",
    auth_kinds=(AuthKind.OAUTH2_CLIENT_CREDENTIALS,),
)


def key_pair(algorithm: str) -> tuple[str, str]:
    key: Any
    if algorithm.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        key = ec.generate_private_key(curve[algorithm])
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator() as emu:
        emu.register_client("cid", client_secret="s3cret-value")
        yield emu


def credential(emulator: DirectoryEmulator, **fields: Any) -> Credential:
    values: dict[str, Any] = {
        "name": "dir",
        "vendor": "directory",
        "kind": AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        "client_id": "cid",
        "client_secret": "s3cret-value",
        "token_url": emulator.base_url + "/oauth/token",
        "base_url": emulator.base_url,
    }
    values.update(fields)
    return Credential(**values)


@pytest.mark.parametrize(
    "method", [ClientAuthMethod.CLIENT_SECRET_BASIC, ClientAuthMethod.CLIENT_SECRET_POST]
)
def test_client_secret_methods(emulator: DirectoryEmulator, method: ClientAuthMethod) -> None:
    cred = credential(emulator, client_auth_method=method)
    with open_session(INFO, cred, {}, ClientOptions()) as session:
        echoed = session.http.get_json("/echo")
        session.http.get_json("/echo")
    token_request = next(r for r in emulator.requests if r.endpoint == "oauth.token")
    if method is ClientAuthMethod.CLIENT_SECRET_BASIC:
        expected = "Basic " + base64.b64encode(b"cid:s3cret-value").decode()
        assert token_request.header("Authorization") == expected
        assert "client_secret" not in token_request.form()
    else:
        assert token_request.form()["client_secret"] == "s3cret-value"
        assert token_request.header("Authorization") is None
    assert token_request.form()["grant_type"] == "client_credentials"
    assert echoed["headers"]["Authorization"].startswith("Bearer emu-at-")
    # The token is cached: two API calls, one token request.
    assert emulator.token_requests == 1


def test_wrong_secret_is_an_authentication_error(emulator: DirectoryEmulator) -> None:
    cred = credential(emulator, client_secret="not-the-secret")
    session = open_session(INFO, cred, {}, ClientOptions())
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert raised.value.status == 401
    assert raised.value.code == "invalid_client"
    assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512"])
def test_private_key_jwt(emulator: DirectoryEmulator, algorithm: str) -> None:
    private, public = key_pair(algorithm)
    emulator.register_client("jwt-client", public_key=public, key_id="key-1")
    cred = credential(
        emulator,
        client_id="jwt-client",
        client_secret=None,
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=private,
        key_id="key-1",
        signing_algorithm=algorithm,
    )
    with open_session(INFO, cred, {}, ClientOptions()) as session:
        assert session.http.get_json("/echo")["headers"]["Authorization"].startswith("Bearer ")
    form = next(r for r in emulator.requests if r.endpoint == "oauth.token").form()
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header == {"alg": algorithm, "kid": "key-1", "typ": "JWT"}


def test_a_retried_token_request_signs_a_fresh_assertion(emulator: DirectoryEmulator) -> None:
    # The token endpoint fails once with 503; the retry must not resend the
    # same assertion, because the server refuses a jti it has already seen.
    private, public = key_pair("ES256")
    emulator.register_client("jwt-client", public_key=public, key_id="key-1")
    emulator.faults.add(Fault.server_error(503), endpoint="oauth.token")
    cred = credential(
        emulator,
        client_id="jwt-client",
        client_secret=None,
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=private,
        key_id="key-1",
    )
    options = ClientOptions(max_single_wait=0.1)
    with open_session(INFO, cred, {}, options) as session:
        assert session.http.get_json("/echo")["headers"]["Authorization"].startswith("Bearer ")
    sent = [r.form()["client_assertion"] for r in emulator.requests if r.endpoint == "oauth.token"]
    assert len(sent) == 2
    jtis = [jwt.decode(a, options={"verify_signature": False})["jti"] for a in sent]
    assert jtis[0] != jtis[1]


def test_assertion_claims() -> None:
    private, public = key_pair("ES256")
    token = build_client_assertion(
        "client-9", "https://acme.talkdeskid.com/oauth/token", Secret(private), key_id="k", now=1000
    )
    claims = jwt.decode(
        token,
        public,
        algorithms=["ES256"],
        audience="https://acme.talkdeskid.com/oauth/token",
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "client-9"
    assert claims["iat"] == 1000
    assert claims["exp"] == 1300
    assert len(claims["jti"]) == 36
    again = jwt.decode(
        build_client_assertion("client-9", "aud", Secret(private), now=1000),
        options={"verify_signature": False},
    )
    assert again["jti"] != claims["jti"]


def test_emulator_refuses_a_wrong_kid(emulator: DirectoryEmulator) -> None:
    private, public = key_pair("PS256")
    emulator.register_client("jwt-client", public_key=public, key_id="key-1")
    cred = credential(
        emulator,
        client_id="jwt-client",
        client_secret=None,
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=private,
        key_id="key-2",
    )
    session = open_session(INFO, cred, {}, ClientOptions())
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert "unknown kid" in str(raised.value)


def test_emulator_refuses_a_wrong_audience(emulator: DirectoryEmulator) -> None:
    private, public = key_pair("ES256")
    emulator.register_client("jwt-client", public_key=public)
    emulator.token_audience = "https://acme.talkdeskid.com/oauth/token"
    cred = credential(
        emulator,
        client_id="jwt-client",
        client_secret=None,
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=private,
    )
    session = open_session(INFO, cred, {}, ClientOptions())
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert "aud" in str(raised.value)


def test_emulator_refuses_a_key_it_does_not_know(emulator: DirectoryEmulator) -> None:
    _, public = key_pair("ES256")
    other_private, _ = key_pair("ES256")
    emulator.register_client("jwt-client", public_key=public)
    cred = credential(
        emulator,
        client_id="jwt-client",
        client_secret=None,
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=other_private,
    )
    session = open_session(INFO, cred, {}, ClientOptions())
    with session, pytest.raises(AuthenticationError) as raised:
        session.http.get_json("/echo")
    assert raised.value.code == "invalid_client"


def test_base64_pkcs8_key_as_talkdesk_delivers_it() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    loaded = load_private_key(base64.b64encode(der).decode())
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)


def test_unreadable_key_does_not_echo_it() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_private_key("definitely-not-a-key-material-xyz")
    assert "definitely-not-a-key" not in str(raised.value)


def test_token_is_renewed_shortly_before_it_expires(emulator: DirectoryEmulator) -> None:
    now = [1_000_000.0]
    auth = ClientCredentialsAuth(
        credential(emulator),
        token_url=emulator.base_url + "/oauth/token",
        clock=lambda: now[0],
        sleep=Recorder(),
    )
    first = auth.current_token()
    now[0] += 3600 - 61  # the emulator grants an hour
    assert auth.current_token() == first
    now[0] += 2  # inside the 60 s skew
    assert auth.current_token() != first
    assert emulator.token_requests == 2


def test_token_url_template_is_rendered_with_settings(emulator: DirectoryEmulator) -> None:
    info = VendorInfo(
        name="directory",
        display_name="Directory",
        base_url=emulator.base_url,
        auth_kinds=(AuthKind.OAUTH2_CLIENT_CREDENTIALS,),
        token_url="{{Directory.Host}}/oauth/token",
    )
    cred = credential(emulator, token_url=None)
    settings = {"Directory.Host": emulator.base_url}
    assert resolve_oauth_urls(cred, info, settings)[0] == emulator.base_url + "/oauth/token"
    with open_session(info, cred, settings, ClientOptions()) as session:
        assert "headers" in session.http.get_json("/echo")


def test_talkdesk_style_template() -> None:
    info = VendorInfo(
        name="talkdesk",
        display_name="Talkdesk",
        base_url="https://api.talkdeskapp.com",
        auth_kinds=(AuthKind.OAUTH2_CLIENT_CREDENTIALS,),
        token_url="https://{{Talkdesk.Account}}.talkdeskid.com/oauth/token",
    )
    cred = Credential(name="td", vendor="talkdesk", kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS)
    token_url, _ = resolve_oauth_urls(cred, info, {"Talkdesk.Account": "acme"})
    assert token_url == "https://acme.talkdeskid.com/oauth/token"


def test_plain_http_token_url_off_loopback_is_refused() -> None:
    cred = Credential(
        name="x",
        vendor="directory",
        kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        client_id="c",
        client_secret="s3cret",
        token_url="http://id.example.com/oauth/token",
    )
    with pytest.raises(ConfigurationError) as raised:
        open_session(INFO, cred, {}, ClientOptions())
    assert "must use https" in str(raised.value)
