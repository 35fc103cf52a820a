"""The emulator base: life cycle, routing, fixtures, fault injection and rate limits.

Requests go out with plain `requests` (no retries), so every fault is seen as the
vendor would send it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from oomnitza_connect.testing.emulator import (
    Emulator,
    EmulatorRequest,
    EmulatorResponse,
    Fault,
    json_response,
    route,
)
from oomnitza_connect.testing.generic import GenericEmulator
from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin


class TinyEmulator(Emulator):
    vendor = "tiny"
    rate_limits = {"limited": (6, 2)}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = self.issue_token(value="tiny-token-1234").value

    def expected_user_ids(self) -> set[str]:
        return {"u1"}

    @route("GET", "/items/{item_id}", endpoint="items.get")
    def get_item(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self.lookup_token(request.bearer_token())
        if token is None or token.expired():
            return json_response({"error": "token_expired"}, 401)
        return json_response({"id": request.path_params["item_id"], "q": dict(request.query)})

    @route("POST", "/echo", endpoint="echo")
    def echo(self, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"params": request.params()})

    @route("GET", "/limited", endpoint="limited")
    def limited(self, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"ok": True})

    @route("GET", "/bug", endpoint="bug")
    def bug(self, request: EmulatorRequest) -> EmulatorResponse:
        raise ZeroDivisionError("oops")


AUTH = {"Authorization": "Bearer tiny-token-1234"}
Factory = Callable[..., Emulator]


@pytest.fixture
def tiny(emulator_factory: Factory) -> Emulator:
    return emulator_factory(TinyEmulator)


def test_the_context_manager_starts_on_an_ephemeral_loopback_port_and_stops() -> None:
    emulator = TinyEmulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.base_url
    with emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
        url = emulator.base_url
        assert requests.get(f"{url}/items/7", headers=AUTH, timeout=5).json()["id"] == "7"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/items/7", timeout=2)


def test_routes_get_path_params_query_and_form_bodies(tiny: Emulator) -> None:
    body = requests.get(f"{tiny.base_url}/items/42?a=1&a=2", headers=AUTH, timeout=5).json()
    assert body == {"id": "42", "q": {"a": "2"}}
    echoed = requests.post(f"{tiny.base_url}/echo?x=1", data={"y": "2"}, timeout=5).json()
    assert echoed == {"params": {"x": "1", "y": "2"}}
    assert [r.endpoint for r in tiny.requests] == ["items.get", "echo"]


def test_unknown_routes_are_404_and_handler_bugs_are_500(tiny: Emulator) -> None:
    missing = requests.get(f"{tiny.base_url}/nowhere", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "path": "/nowhere"}
    bug = requests.get(f"{tiny.base_url}/bug", timeout=5)
    assert bug.status_code == 500
    assert bug.json() == {"error": "emulator_bug", "detail": "ZeroDivisionError: oops"}


def test_rate_limited_with_retry_after_seconds(tiny: Emulator) -> None:
    tiny.faults.add(Fault.rate_limited(retry_after=7), endpoint="items.get")
    first = requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5).status_code == 200


def test_rate_limited_with_retry_after_as_an_http_date(tiny: Emulator) -> None:
    tiny.faults.add(Fault.rate_limited(retry_after=30, as_http_date=True))
    response = requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5)
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
    assert 25 <= when - time.time() <= 31


def test_server_errors_after_some_requests_and_a_limited_number_of_times(tiny: Emulator) -> None:
    tiny.faults.add(Fault.server_error(503), endpoint="items.get", after=1, times=2)
    statuses = [
        requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 503, 503, 200]
    assert tiny.faults.pending() == 0


def test_faults_match_endpoint_and_method(tiny: Emulator) -> None:
    tiny.faults.add(Fault.server_error(502), endpoint="echo", method="POST", times=-1)
    assert requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5).status_code == 200
    assert requests.post(f"{tiny.base_url}/echo", timeout=5).status_code == 502
    assert requests.post(f"{tiny.base_url}/echo", timeout=5).status_code == 502
    assert tiny.faults.pending() == 1  # times=-1 never runs out
    tiny.faults.clear()
    assert requests.post(f"{tiny.base_url}/echo", timeout=5).status_code == 200


def test_connection_reset(tiny: Emulator) -> None:
    tiny.faults.add(Fault.connection_reset())
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5)
    assert requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5).ok


def test_slow_responses_trip_a_read_timeout(tiny: Emulator) -> None:
    tiny.faults.add(Fault.slow(0.6))
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=(2, 0.2))
    started = time.monotonic()
    tiny.faults.add(Fault.slow(0.3))
    assert requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5).ok
    assert time.monotonic() - started >= 0.3


def test_malformed_json(tiny: Emulator) -> None:
    tiny.faults.add(Fault.malformed_json())
    response = requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_expired_tokens(tiny: Emulator) -> None:
    tiny.faults.add(Fault.expire_tokens(), after=1)
    assert requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5).status_code == 200
    expired = requests.get(f"{tiny.base_url}/items/1", headers=AUTH, timeout=5)
    assert expired.status_code == 401
    assert expired.json() == {"error": "token_expired"}
    token = tiny.lookup_token("tiny-token-1234")
    assert token is not None
    assert token.expired()


def test_tokens_are_issued_looked_up_by_kind_and_revoked(tiny: Emulator) -> None:
    refresh = tiny.issue_token(kind="refresh", ttl=60, scopes=["a"])
    assert tiny.lookup_token(refresh.value) is None  # not an access token
    assert tiny.lookup_token(refresh.value, kind="refresh") is refresh
    assert not refresh.expired()
    tiny.revoke_token(refresh.value)
    assert tiny.lookup_token(refresh.value, kind="refresh") is None


def test_declared_rate_limits_answer_429_with_retry_after(tiny: Emulator) -> None:
    statuses = [requests.get(f"{tiny.base_url}/limited", timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert tiny.rate_limited_count == 1


def test_rate_limits_can_be_turned_off(emulator_factory: Factory) -> None:
    relaxed = emulator_factory(TinyEmulator, enforce_rate_limits=False)
    statuses = {
        requests.get(f"{relaxed.base_url}/limited", timeout=5).status_code for _ in range(5)
    }
    assert statuses == {200}


def test_emulator_factory_stops_what_it_started() -> None:
    # Drive the fixture's generator by hand to see the teardown.
    from oomnitza_connect.testing import pytest_plugin

    generator = pytest_plugin.emulator_factory.__wrapped__()  # type: ignore[attr-defined]
    start = next(generator)
    running = start(TinyEmulator)
    url = running.base_url
    assert requests.get(f"{url}/items/1", headers=AUTH, timeout=5).ok
    with pytest.raises(StopIteration):
        next(generator)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/items/1", timeout=2)


def test_emulator_factory_takes_an_instance(emulator_factory: Factory) -> None:
    instance = GenericEmulator(users=3)
    assert emulator_factory(instance) is instance
    assert instance.expected_user_ids() == {"u00001", "u00002", "u00003"}
    with pytest.raises(TypeError, match="options can only be given with an emulator class"):
        emulator_factory(GenericEmulator(), users=3)


tiny_emulator = TinyEmulator.fixture()
custom_emulator = GenericEmulator.fixture(name="custom_emulator", users=4)


def test_the_fixture_helper_yields_a_running_emulator(
    tiny_emulator: Emulator, custom_emulator: GenericEmulator
) -> None:
    assert isinstance(tiny_emulator, TinyEmulator)
    assert requests.get(f"{tiny_emulator.base_url}/items/1", headers=AUTH, timeout=5).ok
    assert len(custom_emulator.expected_user_ids()) == 4


def test_the_generic_emulator_fixture(generic_emulator: GenericEmulator) -> None:
    response = requests.get(
        f"{generic_emulator.base_url}/api/users",
        params={"per_page": 10, "page": 3},
        headers={"Authorization": f"Bearer {generic_emulator.api_token}"},
        timeout=5,
    )
    body = response.json()
    assert [u["id"] for u in body["users"]] == [f"u{n:05d}" for n in range(21, 26)]
    assert body["next_page"] is None


def test_expected_user_ids_must_be_implemented() -> None:
    class Bare(Emulator):
        vendor = "bare"

    with pytest.raises(NotImplementedError, match="Bare must implement expected_user_ids"):
        Bare().expected_user_ids()


class GuardedEmulator(OAuthTokenEndpointMixin):
    """Handlers that check tokens with the base's access check; OAuth at a vendor's paths."""

    vendor = "guarded"
    token_path, token_endpoint = "/v9/token.exchange", "token.exchange"
    authorize_path = "/v9/consent"
    fault_codes = {"rate_limited": "slow_down", "not_found": "no_such_method"}
    rate_limits = {"whoami": (6, 1)}

    def error_response(self, status: int, code: str, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"fault": {"code": code}}, status=status)

    @route(("GET", "POST"), "/v9/whoami", endpoint="whoami")
    def whoami(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self.check_access(request, "people:read")
        return json_response({"subject": token.subject})


@pytest.fixture
def guarded() -> Any:
    with GuardedEmulator() as emulator:
        yield emulator


def _whoami(emulator: GuardedEmulator, token: str | None, method: str = "GET") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, emulator.base_url + "/v9/whoami", headers=headers, timeout=5)


def test_the_access_check_names_why_a_token_is_refused(guarded: GuardedEmulator) -> None:
    good = guarded.issue_token(scopes=["people:read"], subject="u7").value
    narrow = guarded.issue_token(scopes=["other"]).value
    late = guarded.issue_token(scopes=["people:read"], ttl=-1).value
    spent = guarded.issue_token(scopes=["people:read"]).value
    guarded.revoke(spent)
    guarded.enforce_rate_limits = False

    assert _whoami(guarded, good).json() == {"subject": "u7"}
    assert _whoami(guarded, good, "POST").json() == {"subject": "u7"}  # a tuple of methods
    answers = {
        name: _whoami(guarded, token)
        for name, token in [
            ("missing", None),
            ("unknown", "never-issued"),
            ("expired", late),
            ("revoked", spent),
            ("scope", narrow),
        ]
    }
    assert {name: (answer.status_code, answer.json()) for name, answer in answers.items()} == {
        "missing": (401, {"fault": {"code": "missing"}}),
        "unknown": (401, {"fault": {"code": "unknown"}}),
        "expired": (401, {"fault": {"code": "expired"}}),
        "revoked": (401, {"fault": {"code": "revoked"}}),
        "scope": (403, {"fault": {"code": "scope"}}),
    }


def test_fault_answers_take_the_vendors_envelope_and_codes(guarded: GuardedEmulator) -> None:
    good = guarded.issue_token(scopes=["people:read"]).value
    assert _whoami(guarded, good).status_code == 200
    limited = _whoami(guarded, good)
    assert (limited.status_code, limited.json()) == (429, {"fault": {"code": "slow_down"}})
    assert int(limited.headers["Retry-After"]) >= 1
    guarded.faults.add(Fault.server_error(502), endpoint="whoami")
    guarded.enforce_rate_limits = False
    failed = _whoami(guarded, good)
    assert (failed.status_code, failed.json()) == (502, {"fault": {"code": "internal_error"}})
    missing = requests.get(guarded.base_url + "/v9/nothing", timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"fault": {"code": "no_such_method"}})


def test_the_oauth_endpoints_listen_where_the_vendor_puts_them(guarded: GuardedEmulator) -> None:
    guarded.register_client("app", client_secret="app-secret")
    assert guarded.token_url == guarded.server_url + "/v9/token.exchange"
    assert guarded.authorize_url == guarded.server_url + "/v9/consent"
    answer = requests.post(
        guarded.token_url,
        data={"grant_type": "client_credentials"},
        auth=("app", "app-secret"),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    assert guarded.lookup_token(answer.json()["access_token"]) is not None
    assert requests.post(guarded.server_url + "/oauth/token", timeout=5).status_code == 404
    assert guarded.requests[-2].endpoint == "token.exchange"
