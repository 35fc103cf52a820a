"""users.list against the emulator: paging, page size, Slack's errors, rate limits."""

from __future__ import annotations

import json

import pytest
import requests
from oomnitza_connect_slack.emulator import SlackEmulator
from oomnitza_connect_slack.vendor import AUTH_ERROR_CODES, vendor
from slack_support import fast_options, load_sample

from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import AuthenticationError, ConfigurationError, VendorAPIError
from oomnitza_connect.models import AuthKind, Credential, RateBudget
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.testing.pacing import RecordingPacer, refused_by_rate_limit

parse_slack_error = vendor.parse_error


def _authenticate(connector: Connector, emulator: SlackEmulator, token: str, **settings: str):
    credential = Credential(
        name="test", vendor="slack", kind=AuthKind.API_KEY, token=token,
        base_url=emulator.base_url,
    )  # fmt: skip
    return connector.authenticate(credential, settings, options=fast_options(emulator))


def test_authenticate_records_the_auth_test_identity(connector, emulator) -> None:
    with _authenticate(connector, emulator, emulator.token) as session:
        identity = session.identity
    assert identity["team_id"] == emulator.team_id
    assert identity["user_id"] == emulator.user_id(0)
    assert identity["user"] == emulator.user(emulator.user_id(0))["name"]
    assert identity["url"].startswith("https://")
    assert set(identity["scopes"]) == {"users:read", "users:read.email", "admin"}


def test_a_bot_token_identifies_as_the_bot(connector, emulator) -> None:
    bot = emulator.issue_slack_token(kind="bot", scopes=("users:read",)).value
    assert bot.startswith("xoxb-")
    with _authenticate(connector, emulator, bot) as session:
        assert session.identity["user_id"] == emulator.bot_user_id
        assert session.identity["bot_id"].startswith("B")


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda emulator: "xoxb-unknown-token-value", "invalid_auth"),
        (lambda emulator: _revoked(emulator), "token_revoked"),
        (lambda emulator: emulator.issue_slack_token(ttl=-1).value, "token_expired"),
    ],
)
def test_refused_tokens_are_authentication_errors(connector, emulator, make_token, code) -> None:
    token = make_token(emulator)
    with pytest.raises(AuthenticationError) as caught:
        _authenticate(connector, emulator, token)
    assert caught.value.code == code
    assert str(caught.value.request_id).startswith("emu")
    assert token not in str(caught.value)


def _revoked(emulator: SlackEmulator) -> str:
    token = emulator.issue_slack_token().value
    emulator.revoke(token)
    return token


def test_missing_scope_names_the_scope_needed(connector, emulator) -> None:
    token = emulator.issue_slack_token(scopes=("chat:write",)).value
    with (
        _authenticate(connector, emulator, token) as session,
        pytest.raises(AuthenticationError) as caught,
    ):
        list(connector.list_users(session))
    assert caught.value.code == "missing_scope"
    message = str(caught.value)
    assert "'users:read'" in message
    assert "chat:write" in message  # what the token has, from `provided`


def test_without_users_read_email_listing_fails_once_naming_the_scope(connector, emulator) -> None:
    # Issue 14, defect 10: X-OAuth-Scopes shows the scope is missing, so the
    # listing says so before fetching a page, instead of 991 emails missing.
    token = emulator.issue_slack_token(scopes=("users:read",)).value
    with _authenticate(connector, emulator, token, **{"Slack.PageSize": "15"}) as session:
        before = len(emulator.requests)
        with pytest.raises(AuthenticationError) as refused:
            list(connector.list_users(session))
    assert "users:read.email" in str(refused.value)
    assert refused.value.code == "missing_scope"
    assert [r for r in list(emulator.requests)[before:] if r.endpoint == "users.list"] == []


def test_pages_use_the_configured_limit_and_follow_cursors(connector, emulator) -> None:
    with _authenticate(connector, emulator, emulator.token, **{"Slack.PageSize": "6"}) as session:
        before = len(emulator.requests)
        ids = [record.id for record in connector.list_users(session)]
    calls = [r for r in list(emulator.requests)[before:] if r.endpoint == "users.list"]
    assert sorted(ids) == sorted(emulator.expected_user_ids())
    assert len(ids) == len(set(ids))
    assert {call.query["limit"] for call in calls} == {"6"}
    assert "cursor" not in calls[0].query
    assert all(call.query.get("cursor") for call in calls[1:])
    # The emulator returns short pages now and then, as Slack may; they must not end the run.
    assert len(calls) > -(-emulator.user_count // 6)


def test_the_default_page_size_is_200(connector, emulator) -> None:
    with _authenticate(connector, emulator, emulator.token) as session:
        before = len(emulator.requests)
        list(connector.list_users(session))
    assert list(emulator.requests)[before].query["limit"] == "200"


@pytest.mark.parametrize("bad", ["0", "1000", "-5", "lots"])
def test_a_bad_page_size_is_a_configuration_error(connector, emulator, bad) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _authenticate(connector, emulator, emulator.token, **{"Slack.PageSize": bad})
    assert caught.value.key_path == "Slack.PageSize"
    assert "from 1 to 999" in str(caught.value)


def test_the_largest_page_size_is_accepted(connector, emulator) -> None:
    with _authenticate(connector, emulator, emulator.token, **{"Slack.PageSize": "999"}) as s:
        assert len(list(connector.list_users(s))) == emulator.user_count


def test_an_invalid_cursor_is_a_vendor_error_with_its_code(connector, emulator) -> None:
    with (
        _authenticate(connector, emulator, emulator.token) as session,
        pytest.raises(VendorAPIError) as caught,
    ):
        session.http.get_json(
            "users.list", params={"cursor": "bm90LWEtY3Vyc29y"}, endpoint="users.list"
        )
    assert caught.value.code == "invalid_cursor"
    assert caught.value.status == 200
    assert not isinstance(caught.value, AuthenticationError)


def test_http_429_with_retry_after_is_waited_out(connector, emulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", after=2)
    with _authenticate(connector, emulator, emulator.token, **{"Slack.PageSize": "7"}) as s:
        ids = [record.id for record in connector.list_users(s)]
    assert sorted(ids) == sorted(emulator.expected_user_ids())
    assert emulator.faults.pending() == 0


def test_an_unpaced_client_is_answered_429_and_recovers(connector) -> None:
    with SlackEmulator(users=12, seed=2, rate_limits={"users.list": (600, 2)}) as emulator:
        options = fast_options(emulator, pace_requests=False)
        credential = emulator.test_credential()
        with connector.authenticate(credential, {"Slack.PageSize": "3"}, options=options) as s:
            ids = [record.id for record in connector.list_users(s)]
        assert sorted(ids) == sorted(emulator.expected_user_ids())
        assert emulator.rate_limited_count > 0
    answer = emulator.rate_limited_response(2, None)  # type: ignore[arg-type]
    assert (answer.status, answer.body) == (429, {"ok": False, "error": "ratelimited"})
    assert answer.headers["Retry-After"] == "2"


def test_a_paced_client_stays_within_the_emulated_tier(connector) -> None:
    # Tier 2 scaled up 30 times so that the test runs fast: same shape, same rule.
    tier = (600, 2)
    pacer = RecordingPacer((RateBudget("users.list", tier[0], burst=tier[1]),))
    with SlackEmulator(users=30, seed=2, rate_limits={"users.list": tier}) as emulator:
        options = fast_options(emulator, pace_requests=True)
        credential = emulator.test_credential()
        with connector.authenticate(credential, {"Slack.PageSize": "5"}, options=options) as s:
            s.http.pacer = pacer
            ids = [record.id for record in connector.list_users(s)]
        assert sorted(ids) == sorted(emulator.expected_user_ids())
        pages = sum(1 for request in emulator.requests if request.endpoint == "users.list")
    # Every page asked the pacer for its turn.
    slots = pacer.slots["users.list"]
    assert len(slots) == pages > 3
    # When the pacer let each request go keeps the emulator's own rule. (The
    # emulator's 429 count would also measure how late each request arrived,
    # which the machine's load decides, not the pacer.)
    assert refused_by_rate_limit(tier, slots) == []


def test_rate_budgets_follow_slack_tiers(connector) -> None:
    budgets = {b.endpoint: b.requests_per_minute for b in connector.info.rate_budgets}
    assert budgets["users.list"] == 20  # Tier 2
    assert budgets["team.accessLogs"] == 20  # Tier 2
    assert budgets["users.lookupByEmail"] == 50  # Tier 3
    assert budgets["users.info"] == 100  # Tier 4
    assert SlackEmulator.rate_limits["users.list"][0] == 20


@pytest.mark.parametrize(
    ("sample", "code", "auth"),
    [
        ("slack_auth_test_error.json", "invalid_auth", True),
        ("slack_missing_scope_error.json", "missing_scope", True),
        ("slack_users_list_error.json", "invalid_cursor", False),
        ("slack_users_info_error.json", "user_not_found", False),
        ("slack_users_lookupByEmail_error.json", "users_not_found", False),
    ],
)
def test_documented_error_bodies_parse(sample: str, code: str, auth: bool) -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(load_sample(sample)).encode()
    response.headers["X-Slack-Req-Id"] = "req-123"
    info = parse_slack_error(response)
    assert info is not None
    assert info.code == code
    assert info.request_id == "req-123"
    assert (code in AUTH_ERROR_CODES or code == "missing_scope") is auth
    assert info.credential_refused is auth
    assert info.token_expired is False
    if code == "missing_scope":
        assert "'admin.apps:read'" in info.message  # the `needed` scope is named


def test_success_bodies_are_not_errors() -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(load_sample("slack_users_list.json")).encode()
    assert parse_slack_error(response) is None


def test_an_org_token_lists_the_configured_team(connector, emulator) -> None:
    settings = {"Slack.TeamId": emulator.team_id}
    with _authenticate(connector, emulator, emulator.token, **settings) as session:
        before = len(emulator.requests)
        list(connector.list_users(session))
    calls = [r for r in list(emulator.requests)[before:] if r.endpoint == "users.list"]
    assert calls
    assert {call.query.get("team_id") for call in calls} == {emulator.team_id}
