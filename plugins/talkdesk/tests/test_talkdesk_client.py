"""Talking to Talkdesk: hosts from settings, paging, errors, token renewal, the real sample."""

from __future__ import annotations

import attrs
import pytest
import requests
from oomnitza_connect_talkdesk import vendor
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator
from oomnitza_connect_talkdesk.vendor import REGIONS
from talkdesk_support import fast_options, load_sample

from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    RateLimitError,
)
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions

SAMPLE = "talkdesk_users_paging_sample.json"


@pytest.mark.parametrize(
    ("region", "token", "api"),
    [
        ("US", "https://mycompany.talkdeskid.com/oauth/token", "https://api.talkdeskapp.com"),
        ("EU", "https://mycompany.talkdeskid.eu/oauth/token", "https://api.talkdeskapp.eu"),
        ("CA", "https://mycompany.talkdeskidca.com/oauth/token", "https://api.talkdeskappca.com"),
        ("AU", "https://mycompany.talkdeskid.au/oauth/token", "https://api.talkdeskapp.au"),
    ],
)
def test_subdomain_and_region_pick_both_hosts(region: str, token: str, api: str) -> None:
    settings = {"Talkdesk.Subdomain": "mycompany", "Talkdesk.Region": region.lower()}
    assert vendor.render(vendor.token_url, settings) == token
    assert vendor.render(vendor.base_url, settings) == api


def test_a_session_without_urls_uses_the_hosts_of_the_settings(connector: Connector) -> None:
    # No credential URLs: nothing is sent before the first call, so the hosts can be read.
    with TalkdeskEmulator() as emulator:
        credential = attrs.evolve(emulator.test_credential(), token_url=None, base_url=None)
    settings = {"Talkdesk.Subdomain": "mycompany", "Talkdesk.Region": "CA"}
    with vendor.open_session(credential, settings, ClientOptions()) as session:
        assert session.http.base_url.rstrip("/") == "https://api.talkdeskappca.com"
        assert session.http.auth.token_url == "https://mycompany.talkdeskidca.com/oauth/token"


@pytest.mark.parametrize(
    ("pasted", "subdomain"),
    [
        ("mycompany", "mycompany"),
        ("MyCompany ", "mycompany"),
        ("https://mycompany.talkdeskapp.com/", "mycompany"),
        ("mycompany.talkdeskapp.eu", "mycompany"),
    ],
)
def test_a_pasted_account_url_is_reduced_to_the_subdomain(pasted: str, subdomain: str) -> None:
    assert vendor.parse_settings({"Talkdesk.Subdomain": pasted})["Talkdesk.Subdomain"] == subdomain
    assert vendor.render(vendor.token_url, {"Talkdesk.Subdomain": pasted}).startswith(
        f"https://{subdomain}.talkdeskid.com/"
    )


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "Talkdesk.Subdomain"),
        ({"Talkdesk.Subdomain": "my company"}, "Talkdesk.Subdomain"),
        ({"Talkdesk.Subdomain": "acme", "Talkdesk.Region": "MARS"}, "Talkdesk.Region"),
        ({"Talkdesk.Subdomain": "acme", "Talkdesk.PageSize": "0"}, "Talkdesk.PageSize"),
        (
            {"Talkdesk.Subdomain": "acme", "Talkdesk.ApiBaseUrl": "http://evil"},
            "Talkdesk.ApiBaseUrl",
        ),
    ],
)
def test_bad_settings_name_the_key_and_what_is_allowed(
    connector: Connector, settings: dict[str, str], key: str
) -> None:
    with TalkdeskEmulator() as emulator, pytest.raises(ConfigurationError) as refused:
        connector.authenticate(emulator.test_credential(), settings, options=fast_options(emulator))
    assert refused.value.key_path == key
    assert refused.value.allowed
    assert not emulator.requests, "a bad setting must fail before any request"


def test_the_real_sample_parses_and_maps(connector: Connector) -> None:
    page = load_sample(SAMPLE)
    (raw,) = page["_embedded"]["users"]
    assert raw["_links"]["self"]["href"].endswith("{user_id}")
    record = vendor.to_record(raw)
    assert record.id == "c65186ee-3780-468e-968b-ca15b981c312"
    assert record.fields["full_name"] == "John Smith"
    assert record.fields["user_name"] == "john.smith@example.com"
    assert record.fields["active"] is True
    # Fields the users API does not return for this account are simply empty.
    assert record.fields["cost_center"] is None
    assert record.fields["manager_id"] is None
    person = connector.map_record(record)
    assert person["username"] == "john.smith@example.com"
    assert person["email"] == "john.smith@example.com"
    assert person["TalkDesk User Id"] == "c65186ee-3780-468e-968b-ca15b981c312"
    assert page["_links"]["next"]["href"] == "https://api.talkdeskapp.com/users?page=2"


def test_inactive_users_are_represented(connector: Connector, session, emulator) -> None:
    records = list(connector.list_users(session))
    inactive = [r for r in records if r.fields["active"] is False]
    assert inactive
    assert {r.id for r in inactive} == {
        emulator.user_id(i) for i in range(emulator.user_count) if not emulator.is_active(i)
    }


def test_paging_follows_next_links_not_page_numbers(
    connector: Connector, session, emulator
) -> None:
    ids = [record.id for record in connector.list_users(session)]
    assert ids == emulator.user_ids()
    pages = [r for r in emulator.requests if r.endpoint == "users.list"]
    # The verification call, then one request per page of five.
    assert len(pages) == 1 + 5
    assert [r.query.get("page") for r in pages[1:]] == [None, "2", "3", "4", "5"]


def test_extended_fields_are_read_when_the_account_has_them(connector: Connector) -> None:
    with TalkdeskEmulator(users=4, subdomain="acme", extended_fields=True) as emulator:
        credential, settings = emulator.test_credential(), emulator.test_settings()
        options = fast_options(emulator)
        with connector.authenticate(credential, settings, options=options) as session:
            records = list(connector.list_users(session))
    second = records[1].fields
    assert second["employee_number"] == "E000001"
    assert second["manager_id"] == records[0].id
    assert second["time_zone"]
    assert second["last_name"] in second["full_name"]


def test_page_size_setting_is_sent_as_per_page(connector: Connector, emulator) -> None:
    settings = {**emulator.test_settings(), "Talkdesk.PageSize": "2"}
    opened = connector.authenticate(
        emulator.test_credential(), settings, options=fast_options(emulator)
    )
    with opened as session:
        emulator.max_page_size = 50
        assert len(list(connector.list_users(session))) == 23
    listed = [r for r in emulator.requests if r.endpoint == "users.list"][1:]
    assert len(listed) == 12
    assert all(r.query.get("per_page") == "2" for r in listed)


@pytest.mark.parametrize("method", ["jwt", "basic"])
def test_a_token_expiring_mid_run_is_replaced(connector: Connector, emulator, method: str) -> None:
    credential = emulator.test_credential(method=method)
    with connector.authenticate(
        credential, emulator.test_settings(), options=fast_options(emulator)
    ) as session:
        emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=3)
        ids = [record.id for record in connector.list_users(session)]
        assert session.http.auth.refresh_count == 2
    assert ids == emulator.user_ids()
    assert emulator.token_requests == 2


def test_a_token_is_renewed_before_it_expires(connector: Connector) -> None:
    # expires_in 30 s is inside the 60 s renewal margin: every call asks for a new token.
    with TalkdeskEmulator(users=12, subdomain="acme", max_page_size=5, access_token_ttl=30) as emu:
        with connector.authenticate(
            emu.test_credential(), emu.test_settings(), options=fast_options(emu)
        ) as session:
            assert len(list(connector.list_users(session))) == 12
        assert emu.token_requests == 4
        refused = [r for r in emu.requests if r.endpoint == "users.list"]
        assert len(refused) == 4  # no request was sent with an expired token


def test_a_revoked_token_that_stays_refused_is_a_credential_error(
    connector: Connector, session, emulator
) -> None:
    emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", times=-1)
    with pytest.raises(CredentialRefusedError) as refused:
        list(connector.list_users(session))
    assert refused.value.status == 401
    assert refused.value.code == "0102401"
    assert "expired" in str(refused.value)


def test_a_wrong_key_is_refused_without_leaking_it(connector: Connector, emulator) -> None:
    stranger = TalkdeskEmulator(seed=5)
    credential = attrs.evolve(emulator.test_credential(), private_key=stranger.private_key)
    with pytest.raises(AuthenticationError) as refused:
        connector.authenticate(credential, emulator.test_settings(), options=fast_options(emulator))
    message = str(refused.value)
    assert refused.value.status == 401
    assert refused.value.code == "invalid_client"
    assert stranger.private_key not in message
    assert "Talkdesk refused the token request" in message


def test_a_scope_added_minutes_ago_is_explained(connector: Connector, emulator) -> None:
    emulator.add_scope("account:read")
    credential = attrs.evolve(emulator.test_credential(), scopes=("users:read", "account:read"))
    with pytest.raises(AuthenticationError) as refused:
        connector.authenticate(credential, emulator.test_settings(), options=fast_options(emulator))
    message = str(refused.value)
    assert refused.value.status == 401
    assert "users:read account:read" in message
    assert "added to the Talkdesk client in the last few minutes" in message
    assert "wait a few minutes" in message


def test_a_missing_scope_names_the_scope(connector: Connector, emulator) -> None:
    credential = attrs.evolve(emulator.test_credential(), scopes=("contacts:read",))
    with pytest.raises(AuthenticationError) as refused:
        connector.authenticate(credential, emulator.test_settings(), options=fast_options(emulator))
    assert refused.value.status == 403
    assert "lacks the scope 'users:read'" in str(refused.value)
    assert refused.value.request_id.startswith("emu-")


def test_a_wrong_subdomain_fails_at_the_token_host(connector: Connector, emulator) -> None:
    credential = attrs.evolve(
        emulator.test_credential(),
        token_url=f"{emulator.server_url}/other.talkdeskid.com/oauth/token",
    )
    with pytest.raises(AuthenticationError) as refused:
        connector.authenticate(credential, emulator.test_settings(), options=fast_options(emulator))
    assert refused.value.status == 404


def test_error_bodies_become_typed_errors() -> None:
    def response(status: int, body: object, **headers: str) -> requests.Response:
        answer = requests.Response()
        answer.status_code = status
        answer._content = __import__("json").dumps(body).encode()
        answer.headers.update(headers)
        return answer

    info = vendor.parse_error(
        response(
            400,
            {
                "code": "0402400",
                "message": "Contact not found",
                "description": "no such contact",
                "fields": [{"name": "contact_id", "description": "unknown id"}],
            },
            **{"X-Request-Id": "req-1"},
        )
    )
    assert info is not None
    assert info.code == "0402400"
    assert info.request_id == "req-1"
    assert info.message == "Contact not found: no such contact (fields: contact_id: unknown id)"
    subscription = vendor.parse_error(response(404, {"error": "Installation not found"}))
    assert subscription is not None
    assert subscription.message == "Installation not found"
    token = vendor.parse_error(
        response(401, {"error": "invalid_client", "error_description": "bad assertion"})
    )
    assert token is not None
    assert (token.code, token.message) == ("invalid_client", "bad assertion")
    assert vendor.parse_error(response(200, {"total": 1})) is None


def test_rate_limits_are_waited_out(connector: Connector, session, emulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", times=2)
    assert len(list(connector.list_users(session))) == 23


def test_endless_rate_limits_are_reported(connector: Connector, emulator) -> None:
    options = fast_options(emulator, max_retries=1)
    with connector.authenticate(
        emulator.test_credential(), emulator.test_settings(), options=options
    ) as session:
        emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", times=-1)
        with pytest.raises(RateLimitError) as limited:
            list(connector.list_users(session))
    assert limited.value.status == 429
    assert limited.value.code == "0002429"


def test_every_region_is_declared() -> None:
    assert set(REGIONS) == {"US", "EU", "CA", "AU"}
    assert [r for r in REGIONS.values() if not r.api_host_confirmed] == [REGIONS["AU"]]
