"""The client against the emulator: Link paging and its repair, errors, throttling, settings."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from oomnitza_connect_webex.client import iter_people, repair_next_link
from oomnitza_connect_webex.emulator import PEOPLE_READ, WebexEmulator, WebexFault
from oomnitza_connect_webex.plugin import vendor
from webex_support import fast_options

from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    VendorAPIError,
)
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.emulator import Fault


def _list_requests(emulator: WebexEmulator) -> list:
    return [r for r in emulator.requests if r.endpoint == "people.list"]


def test_paging_follows_only_rel_next_with_the_configured_max(emulator, session) -> None:
    ids = [item.read().id for item in vendor.iter_users(session)]
    assert ids == emulator.person_ids()
    sent = _list_requests(emulator)
    assert len(sent) == -(-len(ids) // 7)
    assert all(r.query["max"] == "7" for r in sent)


def test_the_default_max_is_100(connector, emulator) -> None:
    with connector.authenticate(
        emulator.test_credential(), {}, options=fast_options(emulator)
    ) as s:
        list(vendor.iter_users(s))
    assert _list_requests(emulator)[0].query["max"] == "100"


@pytest.mark.parametrize("style", ["drop_params", "max_null"])
def test_a_broken_next_link_is_repaired(connector, emulator, style) -> None:
    emulator.faults.add(WebexFault.broken_next_link(style), endpoint="people.list", times=-1)
    settings = {"Webex.PageSize": "7", "Webex.OrgId": "ORG-1"}
    with connector.authenticate(
        emulator.test_credential(), settings, options=fast_options(emulator)
    ) as session:
        pages = list(iter_people(session))
    assert [p["id"] for page in pages for p in page] == emulator.person_ids()
    sent = _list_requests(emulator)
    assert len(sent) == len(pages) > 1
    for request in sent:
        assert request.query["max"] == "7"
        assert request.query["orgId"] == "ORG-1"


def test_repair_keeps_the_cursor_and_restores_what_was_lost() -> None:
    first = "https://webexapis.com/v1/people?max=10&roles=R1"
    params = {"max": 10, "roles": "R1"}
    dropped = repair_next_link(first, params, "https://webexapis.com/v1/people?after=CUR")
    nulled = repair_next_link(
        first, params, "https://webexapis.com/v1/people?max=null&before&after=CUR"
    )
    for url in (dropped, nulled):
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        assert query["after"] == ["CUR"]
        assert query["max"] == ["10"]
        assert query["roles"] == ["R1"]
    stray = repair_next_link(first, {"max": 10}, "https://webexapis.com/v1/people?x=null&after=C")
    assert "null" not in stray


def test_a_bad_page_size_names_the_setting(connector, emulator) -> None:
    with pytest.raises(ConfigurationError) as raised:
        connector.authenticate(
            emulator.test_credential(), {"Webex.PageSize": "5000"}, options=fast_options(emulator)
        )
    assert raised.value.key_path == "Webex.PageSize"
    assert "1 to 1000" in str(raised.value)


def test_a_bad_token_is_an_authentication_error_with_the_tracking_id(connector, emulator) -> None:
    bad = Credential(name="bad", vendor="webex", kind=AuthKind.API_KEY, token="nope")
    with pytest.raises(AuthenticationError) as raised:
        connector.authenticate(bad, {}, options=fast_options(emulator))
    assert raised.value.status == 401
    assert raised.value.request_id
    assert raised.value.request_id.startswith("EMU_")
    assert "nope" not in str(raised.value)


def test_a_missing_scope_is_named(connector, emulator) -> None:
    token = emulator.issue_person_token(0, scopes=(PEOPLE_READ,))
    credential = Credential(name="narrow", vendor="webex", kind=AuthKind.API_KEY, token=token)
    session = connector.authenticate(credential, {}, options=fast_options(emulator))
    with session, pytest.raises(VendorAPIError) as raised:
        session.http.request("DELETE", f"people/{emulator.person_id(20)}")
    assert raised.value.status == 403
    assert "spark-admin:people_write" in str(raised.value)
    assert raised.value.request_id


@pytest.mark.parametrize("status", [429, 423])
def test_throttling_waits_for_retry_after(emulator, session, status) -> None:
    waits: list[float] = []
    session.http.sleep = waits.append
    emulator.faults.add(Fault.rate_limited(retry_after=2, status=status), endpoint="people.list")
    assert len(list(vendor.iter_users(session))) == len(emulator.person_ids())
    assert waits == [2.0]


@pytest.mark.parametrize("status", [429, 423])
def test_throttling_without_retry_after_waits_15_seconds(connector, emulator, status) -> None:
    options = fast_options(emulator, max_single_wait=60.0, max_total_wait=120.0)
    with connector.authenticate(emulator.test_credential(), {}, options=options) as session:
        waits: list[float] = []
        session.http.sleep = waits.append
        emulator.faults.add(
            WebexFault.throttled_without_retry_after(status), endpoint="people.list"
        )
        assert len(list(vendor.iter_users(session))) == len(emulator.person_ids())
    assert waits == [15.0]


@pytest.mark.parametrize(("header", "waited"), [("0", 1.0), ("soon", 15.0), ("3", 3.0)])
def test_retry_after_is_at_least_one_second_and_15_when_unreadable(
    connector, emulator, header, waited
) -> None:
    options = fast_options(emulator, max_single_wait=60.0, max_total_wait=120.0)
    with connector.authenticate(emulator.test_credential(), {}, options=options) as session:
        waits: list[float] = []
        session.http.sleep = waits.append
        emulator.faults.add(WebexFault.throttled(header), endpoint="people.list")
        assert len(list(vendor.iter_users(session))) == len(emulator.person_ids())
    assert waits == [waited]


def test_a_wait_longer_than_allowed_is_reported_with_the_wait(emulator, session) -> None:
    emulator.faults.add(WebexFault.throttled_without_retry_after(), endpoint="people.list")
    with pytest.raises(RateLimitError) as raised:
        list(vendor.iter_users(session))
    assert raised.value.retry_after == 15.0
    assert raised.value.request_id


def test_a_504_suggests_a_smaller_max(emulator, session) -> None:
    emulator.faults.add(Fault.server_error(504), endpoint="people.list", times=-1)
    with pytest.raises(VendorAPIError) as raised:
        list(vendor.iter_users(session))
    assert raised.value.status == 504
    assert "smaller max" in str(raised.value)
    assert "Webex.PageSize" in str(raised.value)


def test_the_session_knows_who_signed_in(emulator, session) -> None:
    assert session.identity["person_id"] == emulator.person_id(0)
    assert session.identity["email"] == emulator.person(0)["emails"][0]


def test_a_bot_token_signs_in_but_cannot_list_the_org(connector, emulator) -> None:
    bot = Credential(
        name="bot", vendor="webex", kind=AuthKind.API_KEY, token=emulator.issue_bot_token()
    )
    with connector.authenticate(bot, {}, options=fast_options(emulator)) as session:
        assert session.identity["type"] == "bot"
        with pytest.raises(VendorAPIError) as raised:
            list(vendor.iter_users(session))
    assert raised.value.status == 400
    assert "should be specified" in str(raised.value)
    assert "spark-admin:people_read" in str(raised.value)
