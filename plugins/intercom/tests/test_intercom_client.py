"""Settings, regions, the version header, typed errors and rate limits against the emulator."""

from __future__ import annotations

import json
import re

import pytest
import requests
from intercom_support import fast_options, load_sample
from oomnitza_connect_intercom import vendor
from oomnitza_connect_intercom.emulator import IntercomEmulator
from oomnitza_connect_intercom.vendor import REGION_HOSTS, budget_for

from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    RateLimitError,
    VendorAPIError,
)
from oomnitza_connect.models import AuthKind, Credential, RateBudget
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.transport.ratelimit import RequestPacer

UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _response(status: int, body: object, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update(headers)
    return response


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"Intercom.Region": "APAC"}, "Intercom.Region"),
        ({"Intercom.Version": "latest"}, "Intercom.Version"),
        ({"Intercom.RequestsPerMinute": "0"}, "Intercom.RequestsPerMinute"),
        ({"Intercom.RequestsPerMinute": "fast"}, "Intercom.RequestsPerMinute"),
    ],
)
def test_a_bad_setting_fails_before_any_request_naming_the_key(
    connector: Connector, emulator: IntercomEmulator, settings, key
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connector.authenticate(emulator.test_credential(), settings, options=fast_options(emulator))
    assert caught.value.key_path == key
    assert key in str(caught.value)
    assert len(emulator.requests) == 0
    if key == "Intercom.Region":
        assert "US, EU, AU" in str(caught.value)


@pytest.mark.parametrize(("region", "host"), sorted(REGION_HOSTS.items()))
def test_the_region_picks_the_api_host(region: str, host: str) -> None:
    credential = Credential(name="c", vendor="intercom", kind=AuthKind.API_KEY, token="t")
    for spelled in (region, region.lower()):
        session = vendor.open_session(credential, {"Intercom.Region": spelled}, ClientOptions())
        with session:
            assert session.http.base_url == host + "/"
    assert REGION_HOSTS["EU"] == "https://api.eu.intercom.io"
    assert REGION_HOSTS["AU"] == "https://api.au.intercom.io"
    assert REGION_HOSTS["US"] == "https://api.intercom.io"


def test_a_credential_base_url_overrides_the_region() -> None:
    credential = Credential(
        name="c",
        vendor="intercom",
        kind=AuthKind.API_KEY,
        token="t",
        base_url="https://proxy.example",
    )
    with vendor.open_session(credential, {"Intercom.Region": "EU"}, ClientOptions()) as session:
        assert session.http.base_url == "https://proxy.example/"


def test_a_wrong_region_is_an_error_naming_the_region_setting(connector: Connector) -> None:
    with IntercomEmulator(users=3, region="US", enforce_rate_limits=False) as emulator:
        # Intercom.Region=EU sends the US workspace's token to the EU host.
        options = fast_options(emulator, base_url=emulator.region_url("EU"))
        with pytest.raises(AuthenticationError) as caught:
            connector.authenticate(
                emulator.test_credential(), {"Intercom.Region": "EU"}, options=options
            )
        assert len(emulator.foreign_requests()) == 1
    message = str(caught.value)
    assert "Intercom.Region" in message
    assert "'EU'" in message
    assert caught.value.code == "unauthorized"
    assert caught.value.status == 401
    assert caught.value.request_id
    assert emulator.token not in message


def test_auth_test_shows_the_workspace_name_and_region(connector: Connector) -> None:
    with IntercomEmulator(users=3, region="AU", seed=3, enforce_rate_limits=False) as emulator:
        settings = {"Intercom.Region": "AU"}
        with connector.authenticate(
            emulator.test_credential(), settings, options=fast_options(emulator)
        ) as session:
            identity = dict(session.identity)
    assert identity["workspace"] == emulator.app_name
    assert identity["region"] == "AU"
    assert identity["admin_id"] == emulator.admin_ids()[0]


# -- the version header --------------------------------------------------------------


def test_every_request_carries_the_configured_version(
    connector: Connector, emulator: IntercomEmulator
) -> None:
    settings = {"Intercom.Version": "2.9"}
    with connector.authenticate(
        emulator.test_credential(), settings, options=fast_options(emulator)
    ) as session:
        records = list(connector.list_users(session))
    assert {r.header("Intercom-Version") for r in emulator.requests} == {"2.9"}
    assert {r.path for r in emulator.requests} == {"/me", "/admins"}
    assert {record.fields["intercom_version"] for record in records} == {"2.9"}


def test_the_default_version_is_2_11(connector: Connector, session, emulator) -> None:
    list(connector.list_users(session))
    assert {r.header("Intercom-Version") for r in emulator.requests} == {"2.11"}


def test_an_unknown_version_names_the_version_setting(
    connector: Connector, emulator: IntercomEmulator
) -> None:
    with pytest.raises(VendorAPIError) as caught:
        connector.authenticate(
            emulator.test_credential(), {"Intercom.Version": "3.99"}, options=fast_options(emulator)
        )
    assert caught.value.code == "intercom_version_invalid"
    assert caught.value.status == 400
    assert "Intercom.Version" in str(caught.value)
    assert UUID_PATTERN.match(caught.value.request_id or "")


# -- typed errors ----------------------------------------------------------------------


def test_the_real_error_samples_become_typed_errors() -> None:
    not_found = vendor.parse_error(
        _response(404, load_sample("intercom_2.11_admin_retrieve_404.json"))
    )
    refused = vendor.parse_error(_response(401, load_sample("intercom_2.11_admins_list_401.json")))
    assert not_found is not None
    assert refused is not None
    assert not_found.code == "admin_not_found"
    assert not_found.request_id == "989bdb0b-1e8c-46cc-8953-9733dad40562"
    assert not_found.message == "No Intercom admin has that id: Admin not found"
    assert refused.code == "unauthorized"
    assert refused.request_id == "4ba8121e-4a4a-4668-adb2-363c561f3c52"
    assert "Access Token Invalid" in refused.message
    assert vendor.parse_error(_response(200, load_sample("intercom_2.11_admins_list.json"))) is None


def test_an_error_without_a_body_still_has_a_code_and_the_header_request_id() -> None:
    response = requests.Response()
    response.status_code = 502
    response._content = b"<html>Bad gateway</html>"
    response.headers["X-Request-Id"] = "req-502"
    info = vendor.parse_error(response)
    assert info is not None
    assert (info.code, info.request_id) == ("server_error", "req-502")


def test_field_errors_name_the_field() -> None:
    body = {
        "type": "error.list",
        "request_id": None,
        "errors": [{"code": "parameter_invalid", "message": "Email is invalid", "field": "email"}],
    }
    info = vendor.parse_error(_response(400, body))
    assert info is not None
    assert info.code == "parameter_invalid"
    assert "field email" in info.message
    assert info.request_id is None


def test_a_missing_admin_is_a_vendor_error_with_code_and_request_id(session, emulator) -> None:
    with pytest.raises(VendorAPIError) as caught:
        session.http.get_json("admins/404404", endpoint="admins.retrieve")
    error = caught.value
    assert (error.status, error.code) == (404, "admin_not_found")
    assert UUID_PATTERN.match(error.request_id or "")
    assert "intercom" in str(error)
    assert "admin_not_found" in str(error)
    assert error.request_id in str(error)


def test_a_revoked_token_is_refused_as_revoked_not_as_a_region_problem(
    connector: Connector, session, emulator: IntercomEmulator
) -> None:
    emulator.revoke(emulator.token)
    with pytest.raises(CredentialRefusedError) as caught:
        list(connector.list_users(session))
    assert caught.value.code == "token_revoked"
    assert "revoked" in str(caught.value)
    assert "Intercom.Region" not in str(caught.value)


def test_a_plan_restriction_is_a_vendor_error(connector: Connector) -> None:
    with (
        IntercomEmulator(
            users=3, plan_restricted=("admins.list",), enforce_rate_limits=False
        ) as emulator,
        connector.authenticate(
            emulator.test_credential(), {}, options=fast_options(emulator)
        ) as session,
        pytest.raises(VendorAPIError) as caught,
    ):
        list(connector.list_users(session))
    assert (caught.value.status, caught.value.code) == (403, "api_plan_restricted")
    assert "plan" in str(caught.value)


# -- rate limits -------------------------------------------------------------------------


def test_a_429_is_retried_after_x_ratelimit_reset(connector: Connector, session, emulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="admins.list")
    ids = [record.id for record in connector.list_users(session)]
    assert sorted(ids) == sorted(emulator.expected_user_ids())
    listed = [r for r in emulator.requests if r.endpoint == "admins.list"]
    assert len(listed) == 2


def test_a_429_asking_too_long_a_wait_is_a_rate_limit_error(connector: Connector, emulator) -> None:
    options = fast_options(emulator, max_single_wait=2.0)
    with connector.authenticate(emulator.test_credential(), {}, options=options) as session:
        emulator.faults.add(Fault.rate_limited(retry_after=30), endpoint="admins.list")
        with pytest.raises(RateLimitError) as caught:
            list(connector.list_users(session))
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.request_id
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 20


def test_an_unpaced_burst_is_answered_429_by_the_ten_second_window(connector: Connector) -> None:
    with IntercomEmulator(users=3, requests_per_minute=60) as emulator:
        options = fast_options(emulator, max_single_wait=0.5, max_retries=0)
        with connector.authenticate(emulator.test_credential(), {}, options=options) as session:

            def call_repeatedly() -> None:
                # 10 fit in a window; even when a window ends mid-burst, 25 overflow one.
                for _ in range(25):
                    session.http.get_json("me", endpoint="me")

            with pytest.raises(RateLimitError) as caught:
                call_repeatedly()
    assert caught.value.code == "rate_limit_exceeded"
    assert emulator.rate_limited_count == 1


@pytest.mark.parametrize("per_minute", [60, 166, 1000, 10_000])
@pytest.mark.parametrize("start", [0.0, 3.7, 9.99])
def test_the_budget_never_overfills_a_ten_second_window(per_minute: int, start: float) -> None:
    """Drive the client's pacer with a fake clock: no aligned 10 s window gets over its share."""
    now = [start]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = RequestPacer(
        budget_for(per_minute),
        sleep=sleep,
        clock=lambda: now[0],
    )
    per_window = per_minute // 6
    sent: dict[int, int] = {}
    for _ in range(per_window * 4):
        pacer.wait_for_turn("admins.list")
        window = int(now[0] // 10)
        sent[window] = sent.get(window, 0) + 1
        now[0] += 0.001  # each request takes a millisecond
    assert max(sent.values()) <= per_window
    # And the budget is used, not wasted: at least 80 % of the allowance over the run.
    assert per_window * 4 / (now[0] - start) * 60 >= 0.8 * per_minute


def test_the_budget_follows_the_setting(connector: Connector) -> None:
    (budget,) = budget_for(6000)
    assert (budget.endpoint, budget.requests_per_minute, budget.burst) == ("*", 6000, 50)
    (default,) = connector.info.rate_budgets
    assert default.requests_per_minute == 1000


def test_the_session_paces_with_the_configured_budget(connector: Connector, emulator) -> None:
    settings = {"Intercom.RequestsPerMinute": "120"}
    options = fast_options(emulator, pace_requests=True)
    with connector.authenticate(emulator.test_credential(), settings, options=options) as session:
        bucket = session.http.pacer.bucket_for("admins.list")
    assert bucket is not None
    assert bucket.capacity == 1
    assert bucket.rate == pytest.approx(120 / 60 * 0.9)


def test_a_budget_given_for_the_run_wins_over_the_setting(connector: Connector, emulator) -> None:
    settings = {"Intercom.RequestsPerMinute": "6000"}
    options = fast_options(emulator, pace_requests=True, rate_budgets=(RateBudget("*", 60),))
    with connector.authenticate(emulator.test_credential(), settings, options=options) as session:
        bucket = session.http.pacer.bucket_for("admins.list")
    assert bucket is not None
    assert bucket.rate == pytest.approx(60 / 60 * 0.9)
