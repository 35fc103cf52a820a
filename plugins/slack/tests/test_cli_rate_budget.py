"""`sync --rate-budget`: a plan's higher limit is paced to; the vendor enforcing it says no 429."""

from __future__ import annotations

import json

from click.testing import CliRunner
from oomnitza_connect_slack.emulator import SlackEmulator

from oomnitza_connect.cli import main
from oomnitza_connect.store.sqlite import SQLiteStore


def test_sync_paces_to_the_budget_given_on_the_command_line(
    slack_plugin_registered, tmp_path, monkeypatch
) -> None:
    # The plugin's Tier 2 budget (20 a minute) would take half a minute for
    # these 8 pages; this workspace's plan grants 600 a minute, bursts of 2,
    # and the emulator enforces exactly that.
    with SlackEmulator(users=40, seed=3, rate_limits={"users.list": (600, 2)}) as slack:
        credential = slack.test_credential()
        monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
        monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
        monkeypatch.setenv(
            "OOMNITZA_CONNECT_CREDENTIAL_SLACK",
            json.dumps({"vendor": "slack", "kind": "api_key", "token": credential.token.reveal(),
                        "base_url": slack.base_url}),
        )  # fmt: skip
        path = tmp_path / "slack.toml"
        path.write_text(
            'name = "slack-main"\nvendor = "slack"\ncredential = "slack"\n'
            'sync_key = "email"\ndefault_role = "Employee"\n\n'
            '[settings]\n"Slack.PageSize" = "5"\n"Slack.LastLogins" = "off"\n'
        )
        db = tmp_path / "people.db"
        result = CliRunner().invoke(
            main, ["sync", str(path), "--db", str(db), "--rate-budget", "users.list=600/2"]
        )
        assert result.exit_code == 0, result.output
        assert "succeeded" in result.output
        assert slack.rate_limited_count == 0
        assert sum(1 for r in slack.requests if r.endpoint == "users.list") >= 8
    with SQLiteStore(db) as store:
        assert store.count_people() > 30


def test_a_bad_rate_budget_on_the_command_line_is_bad_usage(slack_plugin_registered, tmp_path):
    path = tmp_path / "slack.toml"
    path.write_text('name = "s"\nvendor = "slack"\ncredential = "slack"\n')
    result = CliRunner().invoke(main, ["sync", str(path), "--rate-budget", "users.list=fast"])
    assert result.exit_code == 2
    assert "bad rate budget 'users.list=fast'" in result.output
    assert "ENDPOINT=PER_MINUTE[/BURST]" in result.output
