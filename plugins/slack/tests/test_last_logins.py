"""Last logins from team.accessLogs: reduced per user, paged past Slack's 100-page cap."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options

from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import ConfigurationError, VendorAPIError


def _open(connector: Connector, emulator: SlackEmulator, token: str | None = None, **settings):
    credential = emulator.test_credential()
    if token is not None:
        credential = type(credential)(
            name="t", vendor="slack", kind=credential.kind, token=token,
            base_url=emulator.base_url,
        )  # fmt: skip
    return connector.authenticate(credential, settings, options=fast_options(emulator))


def _expected(emulator: SlackEmulator) -> dict[str, datetime]:
    return {
        user_id: datetime.fromtimestamp(stamp, UTC)
        for user_id, stamp in emulator.expected_last_logins().items()
    }


def test_each_user_gets_their_most_recent_login_once(connector, emulator) -> None:
    with _open(connector, emulator, **{"Slack.AccessLogsPageSize": "9"}) as session:
        before = len(emulator.requests)
        logins = list(connector.list_last_logins(session) or ())
    calls = [r for r in list(emulator.requests)[before:] if r.endpoint == "team.accessLogs"]
    ids = [item["vendor_user_id"] for item in logins]
    assert len(ids) == len(set(ids))
    assert {item["vendor_user_id"]: item["last_login"] for item in logins} == _expected(emulator)
    assert len(calls) > 2  # several pages
    assert {call.query["count"] for call in calls} == {"9"}
    # Invited users never signed in, so they have no entry.
    invited = [uid for uid in emulator.user_ids() if emulator.user(uid).get("is_invited_user")]
    assert invited
    assert not set(invited) & set(ids)


def test_paging_continues_with_before_after_page_100(connector) -> None:
    with SlackEmulator(users=70, seed=4, enforce_rate_limits=False) as emulator:
        with _open(connector, emulator, **{"Slack.AccessLogsPageSize": "1"}) as session:
            before = len(emulator.requests)
            logins = list(connector.list_last_logins(session) or ())
        calls = [r for r in list(emulator.requests)[before:] if r.endpoint == "team.accessLogs"]
        assert max(int(call.query["page"]) for call in calls) == 100
        assert any("before" in call.query for call in calls)
        expected = _expected(emulator)
    # 2 entries for each of ~60 users: well past 100 one-entry pages.
    assert len(calls) > 100
    assert {item["vendor_user_id"]: item["last_login"] for item in logins} == expected


def test_a_free_plan_skips_last_logins_with_a_warning(connector, caplog) -> None:
    with (
        SlackEmulator(users=12, paid_plan=False, enforce_rate_limits=False) as emulator,
        _open(connector, emulator) as session,
        caplog.at_level(logging.WARNING),
    ):
        logins = list(connector.list_last_logins(session) or ())
    assert logins == []
    assert "paid" in caplog.text
    assert "Slack.LastLogins" in caplog.text


def test_a_free_plan_is_an_error_when_last_logins_are_on(connector) -> None:
    with (
        SlackEmulator(users=12, paid_plan=False, enforce_rate_limits=False) as emulator,
        _open(connector, emulator, **{"Slack.LastLogins": "on"}) as session,
        pytest.raises(VendorAPIError) as caught,
    ):
        list(connector.list_last_logins(session) or ())
    assert caught.value.code == "paid_only"
    assert "paid Slack plans" in str(caught.value)


def test_without_the_admin_scope_no_last_logins_are_read(connector, emulator) -> None:
    token = emulator.issue_slack_token(scopes=("users:read", "users:read.email")).value
    with _open(connector, emulator, token) as session:
        before = len(emulator.requests)
        assert connector.list_last_logins(session) is None
    assert not [r for r in list(emulator.requests)[before:] if r.endpoint == "team.accessLogs"]


def test_last_logins_can_be_switched_off(connector, emulator) -> None:
    with _open(connector, emulator, **{"Slack.LastLogins": "off"}) as session:
        assert connector.list_last_logins(session) is None


def test_a_bad_access_logs_page_size_is_refused(connector, emulator) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _open(connector, emulator, **{"Slack.AccessLogsPageSize": "1001"})
    assert caught.value.key_path == "Slack.AccessLogsPageSize"
