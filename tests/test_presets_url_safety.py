"""No request forgery through a preset: the rendered URL stays on the credential's base URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from presets_support import (
    ReplacerEmulator,
    registered_vendors,
    replacer_credential,
)

from oomnitza_connect.connectors import get_connector
from oomnitza_connect.errors import PresetError
from oomnitza_connect.models import Preset
from oomnitza_connect.presets.engine import (
    PresetOverrides,
    UnsafeURLError,
    check_url_on_base,
    get_preset,
    render_preset,
    run_preset,
)
from oomnitza_connect.vendors.session import VendorSession

BASE = "https://api.example.com/v1/"

PATH_PRESET = Preset(
    vendor="example",
    name="Get",
    description="",
    method="GET",
    path="/people/{{user_id}}",
)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/people/1",
        "HTTPS://API.EXAMPLE.COM/v1/people/1",
        "https://api.example.com:443/v1/people/1?x=1",
        "https://api.example.com/v1/people/john.doe",
        "https://api.example.com/v1/people/a%2Fb",
    ],
)
def test_urls_under_the_base_are_accepted(url: str) -> None:
    assert check_url_on_base(url, BASE) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.example.com/v1/people/1", "scheme"),
        ("https://evil.example/v1/people/1", "host"),
        ("https://api.example.com.evil.example/v1/", "host"),
        ("https://api.example.com:8443/v1/people/1", "host"),
        ("https://api.example.com@evil.example/v1/", "user info"),
        ("https://user:pw@api.example.com/v1/", "user info"),
        ("https://evil.example#@api.example.com/v1/", "host"),
        ("https://api.example.com/v2/people", "base path"),
        ("https://api.example.com/v1/../admin", "'..'"),
        ("https://api.example.com/v1/./people", "'.' or"),
        ("https://api.example.com/v1/%2e%2e/admin", "'..'"),
        ("https://api.example.com/v1/%2E%2E%2Fadmin", "'..'"),
        ("https://api.example.com/v1/%252e%252e/admin", "'..'"),
        ("https://api.example.com/v1/people/%2e%2e%5c..%5cadmin", "'..'"),
        ("https://api.example.com/v1\\..\\admin", "backslash"),
        ("https://api.example.com/v1/people/1\r\nHost: evil", "control"),
        ("https://api.example.com/v1/people/%00", "control"),
        ("https://api.example.com/v1/people/1#frag", "fragment"),
        ("javascript:alert(1)", "scheme"),
    ],
)
def test_urls_leaving_the_base_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURLError, match=re.escape(reason)):
        check_url_on_base(url, BASE)


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/x",
        "\\\\evil.example/x",
        "/\\evil.example/x",
        "http://evil.example/v1/x",
        "https://evil.example/v1/x",
        "../admin",
        "/../admin",
        "people/../../admin",
        "people/%2e%2e/%2e%2e/admin",
    ],
)
def test_override_paths_that_escape_are_refused(path: str) -> None:
    with pytest.raises(UnsafeURLError):
        render_preset(
            PATH_PRESET,
            {"user_id": "1"},
            overrides=PresetOverrides(path=path),
            base_url=BASE,
        )


def test_an_absolute_override_on_the_same_host_is_allowed() -> None:
    rendered = render_preset(
        PATH_PRESET,
        {"user_id": "1"},
        overrides=PresetOverrides(path="https://api.example.com/v1/people/{{user_id}}/roles"),
        base_url=BASE,
    )
    assert rendered.url == "https://api.example.com/v1/people/1/roles"


@pytest.mark.parametrize(
    "hostile",
    [
        "..",
        ".",
        "%2e%2e",
        "../../admin",
        "x/../../admin",
        "//evil.example",
        "http://evil.example/",
        "@evil.example",
    ],
)
def test_hostile_variables_cannot_leave_the_segment(hostile: str) -> None:
    try:
        rendered = render_preset(PATH_PRESET, {"user_id": hostile}, base_url=BASE)
    except UnsafeURLError:
        return
    parts = urlsplit(rendered.url)
    assert parts.netloc == "api.example.com"
    assert parts.path.startswith("/v1/people/")
    assert "/" not in parts.path[len("/v1/people/") :]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_path_variable_stays_one_segment_under_the_base(value: str) -> None:
    try:
        rendered = render_preset(PATH_PRESET, {"user_id": value}, base_url=BASE)
    except PresetError:
        return  # refused is safe
    parts = urlsplit(rendered.url)
    assert (parts.scheme, parts.netloc) == ("https", "api.example.com")
    assert parts.path.startswith("/v1/people/")
    segment = parts.path[len("/v1/people/") :]
    assert "/" not in segment
    assert not parts.query
    assert not parts.fragment
    assert unquote(segment) == value


# -- over the wire ------------------------------------------------------------------


@pytest.fixture
def replacer() -> Iterator[tuple[ReplacerEmulator, VendorSession]]:
    with registered_vendors(), ReplacerEmulator() as emulator:
        credential = replacer_credential(emulator)
        with get_connector("replacer").authenticate(credential) as session:
            yield emulator, session


def test_an_encoded_slash_reaches_the_vendor_as_one_segment(
    replacer: tuple[ReplacerEmulator, VendorSession],
) -> None:
    emulator, session = replacer
    preset = get_preset("replacer", "Get User Details")
    result = run_preset(session, preset, variables={"replacer_user_id": "admin/secrets?all=1"})
    assert result.status == 404  # sent, and the vendor looked for that odd id
    assert emulator.requests[-1].path == "/v1/people/admin%2Fsecrets%3Fall%3D1"
    assert emulator.requests[-1].query == {}
    before = len(emulator.requests)
    with pytest.raises(UnsafeURLError):
        run_preset(session, preset, variables={"replacer_user_id": "P1/../../admin"})
    assert len(emulator.requests) == before


def test_base_path_escape_is_refused_before_any_request(
    replacer: tuple[ReplacerEmulator, VendorSession],
) -> None:
    emulator, session = replacer
    before = len(emulator.requests)
    with pytest.raises(UnsafeURLError, match=re.escape("'..'")):
        run_preset(
            session,
            get_preset("replacer", "Get User Details"),
            variables={"replacer_user_id": "P1"},
            overrides=PresetOverrides(path="../admin/{{replacer_user_id}}"),
        )
    assert len(emulator.requests) == before
