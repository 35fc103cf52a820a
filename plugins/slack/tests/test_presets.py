"""The Slack presets run through the core's preset runner against the emulator."""

from __future__ import annotations

from oomnitza_connect_slack.emulator import SlackEmulator

from oomnitza_connect.presets.engine import get_preset, run_preset


def test_get_user_details_maps_the_title(session, emulator: SlackEmulator) -> None:
    user_id = emulator.user_id(0)
    preset = get_preset("slack", "Get User Details")
    assert preset.endpoint == "users.info"
    result = run_preset(session, preset, variables={"slack_user_id": user_id})
    assert result.ok, result.error
    expected = emulator.user(user_id)
    assert result.mapped["Slack Title"] == expected["profile"]["title"]
    assert result.mapped["Slack User Id"] == user_id
    assert result.mapped["Slack Deleted"] is False
    sent = [r for r in emulator.requests if r.endpoint == "users.info"][-1]
    assert sent.query == {"user": user_id}


def test_find_user_by_email_is_case_insensitive(session, emulator: SlackEmulator) -> None:
    user_id = emulator.user_id(10)
    email = emulator.user(user_id)["profile"]["email"].upper()
    result = run_preset(session, get_preset("slack", "Find User By Email"),
                        variables={"email": email})  # fmt: skip
    assert result.ok, result.error
    assert result.mapped["Slack User Id"] == user_id


def test_an_unknown_email_fails_with_slacks_code(session) -> None:
    result = run_preset(session, get_preset("slack", "Find User By Email"),
                        variables={"email": "nobody@nowhere.example.com"})  # fmt: skip
    assert not result.ok
    assert "code users_not_found" in (result.error or "")
    assert "No Slack user has that email address" in (result.error or "")


def test_an_unknown_user_id_fails(session) -> None:
    result = run_preset(session, get_preset("slack", "Get User Details"),
                        variables={"slack_user_id": "U0NOBODY00"})  # fmt: skip
    assert not result.ok
    assert "code user_not_found" in (result.error or "")
    assert "request id emu" in (result.error or "")


def test_a_user_without_a_title_maps_to_none(session, emulator: SlackEmulator) -> None:
    bot = emulator.bot_user_id
    assert "title" not in emulator.user(bot)["profile"]
    result = run_preset(session, get_preset("slack", "Get User Details"),
                        variables={"slack_user_id": bot})  # fmt: skip
    assert result.ok, result.error
    assert result.mapped["Slack Title"] is None
    assert result.mapped["Slack User Id"] == bot
