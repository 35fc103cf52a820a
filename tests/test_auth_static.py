"""open_session with static credentials: API keys in any header, HTTP Basic."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from http_support import STATIC_TOKEN, DirectoryEmulator

from oomnitza_connect.auth.oauth import BasicAuth, HeaderTokenAuth
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import AuthKind, Credential, RateBudget, VendorInfo
from oomnitza_connect.redaction import Secret
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://directory.example.invalid/",
    auth_kinds=(AuthKind.API_KEY, AuthKind.BASIC),
    rate_budgets=(RateBudget("users.list", requests_per_minute=20, burst=3),),
)


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator() as emu:
        yield emu


def test_bearer_token_session(emulator: DirectoryEmulator) -> None:
    credential = Credential(
        name="dir", vendor="directory", kind=AuthKind.API_KEY, token=STATIC_TOKEN
    )
    options = ClientOptions(base_url=emulator.base_url)
    with open_session(INFO, credential, {}, options, plugin_version="1.2.3") as session:
        echoed = session.http.get_json("/echo")
        assert session.http.base_url == emulator.base_url + "/"
        assert session.http.pacer.bucket_for("users.list") is not None
    assert echoed["headers"]["Authorization"] == f"Bearer {STATIC_TOKEN}"
    assert "oomnitza-connect-directory/1.2.3" in echoed["headers"]["User-Agent"]


def test_custom_header_and_empty_prefix(emulator: DirectoryEmulator) -> None:
    credential = Credential(
        name="dir",
        vendor="directory",
        kind=AuthKind.API_KEY,
        token="raw-key-5678",
        header_name="X-Api-Key",
        header_prefix="",
        base_url=emulator.base_url,
    )
    session = open_session(
        INFO, credential, {}, ClientOptions(), default_headers={"Intercom-Version": "2.11"}
    )
    with session:
        headers = (
            session.http.get_json("/open") and session.http.request("GET", "/open").request.headers
        )
    assert headers["X-Api-Key"] == "raw-key-5678"
    assert headers["Intercom-Version"] == "2.11"
    assert "Authorization" not in headers


def test_credential_base_url_is_used_when_options_have_none(emulator: DirectoryEmulator) -> None:
    credential = Credential(
        name="dir",
        vendor="directory",
        kind=AuthKind.API_KEY,
        token=STATIC_TOKEN,
        base_url=emulator.base_url,
    )
    with open_session(INFO, credential, {}, ClientOptions()) as session:
        assert session.http.get_json("/echo")["query"] == {}


def test_basic_auth_header() -> None:
    auth = BasicAuth("admin", Secret("p@ss-word"))
    import requests

    prepared = requests.Request("GET", "https://x.invalid/").prepare()
    auth(prepared)
    assert (
        prepared.headers["Authorization"]
        == "Basic " + base64.b64encode(b"admin:p@ss-word").decode()
    )
    assert "p@ss-word" not in repr(auth)


def test_header_token_auth_repr_hides_the_token() -> None:
    auth = HeaderTokenAuth(Secret("very-secret-token"), header_name="X-Api-Key", prefix="")
    assert "very-secret-token" not in repr(auth)


def test_api_key_without_token_is_a_configuration_error() -> None:
    credential = Credential(name="dir", vendor="directory", kind=AuthKind.API_KEY)
    with pytest.raises(ConfigurationError) as raised:
        open_session(INFO, credential, {}, ClientOptions())
    assert "without a token" in str(raised.value)
