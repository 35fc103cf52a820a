"""Issue 14, defects 10, 12, 13 and 14 and the --setting finding, through the CLI and the
sync engine against the Slack emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options

from oomnitza_connect.cli import main
from oomnitza_connect.errors import MalformedResponseError
from oomnitza_connect.models import IntegrationSettings, SyncStatus
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.testing.emulator import Fault

INTEGRATION = """\
name = "slack-main"
vendor = "slack"
credential = "slack-emulator"
sync_key = "Slack User Id"
default_role = "Employee"
base_url = "{base_url}"

[settings]
"Slack.PageSize" = "{page_size}"
"""


@pytest.fixture
def cli_slack(
    slack_plugin_registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlackEmulator]:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.delenv("OOMNITZA_CONNECT_DB", raising=False)
    with SlackEmulator(users=12, seed=4, enforce_rate_limits=False) as emulator:
        monkeypatch.setenv(
            "OOMNITZA_CONNECT_CREDENTIAL_SLACK_EMULATOR",
            json.dumps({"vendor": "slack", "kind": "api_key", "token": emulator.token}),
        )
        yield emulator


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def write(tmp_path: Path, emulator: SlackEmulator, page_size: str = "5") -> Path:
    path = tmp_path / "slack.toml"
    path.write_text(INTEGRATION.format(base_url=emulator.base_url, page_size=page_size))
    return path


def test_a_token_without_the_email_scope_fails_the_run_once(
    slack_plugin_registered: None, tmp_path: Path
) -> None:
    with SlackEmulator(users=15, seed=2, enforce_rate_limits=False) as emulator:
        token = emulator.issue_slack_token(scopes=("users:read",)).value
        credential = emulator.test_credential()
        import attrs

        credential = attrs.evolve(credential, token=token)
        settings = IntegrationSettings(
            name="slack-noscope",
            vendor="slack",
            credential="unused",
            sync_key="email",
            default_role="Employee",
        )
        with SQLiteStore(tmp_path / "x.db") as store:
            session = run_sync(
                settings, credential=credential, store=store, options=fast_options(emulator)
            )
            people = store.count_people()
    assert session.status is SyncStatus.FAILED
    assert session.message is not None
    assert session.message.count("users:read.email") >= 1
    assert session.counts.failed == 0
    assert session.errors == ()
    assert people == 0


def test_a_bad_setting_value_is_a_configuration_error_before_any_request(
    cli_slack: SlackEmulator, tmp_path: Path
) -> None:
    path = write(tmp_path, cli_slack, page_size="abc")
    before = len(cli_slack.requests)
    db = tmp_path / "x.db"
    result = invoke("sync", path, "--db", db)
    assert result.exit_code == 2, result.output
    assert "Slack.PageSize" in result.output
    assert "from 1 to 999" in result.output
    assert len(cli_slack.requests) == before
    if db.exists():
        with SQLiteStore(db) as store:
            assert store.list_sessions() == []


def test_db_under_a_file_is_a_message_with_exit_2(cli_slack: SlackEmulator, tmp_path: Path) -> None:
    blocker = tmp_path / "hostname"
    blocker.write_text("not a directory")
    result = invoke("sync", write(tmp_path, cli_slack), "--db", blocker / "x.db")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "cannot use" in result.output


def test_a_home_that_is_a_file_is_a_message_with_exit_2(
    cli_slack: SlackEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home-file"
    home.write_text("oops")
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(home))
    result = invoke("sync", write(tmp_path, cli_slack))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "cannot use" in result.output


def test_a_var_that_is_not_utf8_is_a_usage_error(cli_slack: SlackEmulator, tmp_path: Path) -> None:
    bad = b"U\xff".decode("utf-8", "surrogateescape")  # what Python makes of $'U\\xff'
    result = invoke(
        "presets", "run", "slack", "Get User Details", "--credential", "slack-emulator",
        "--var", f"slack_user_id={bad}", "--db", tmp_path / "x.db",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "not valid UTF-8" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["presets", "auth"])
def test_an_unknown_setting_is_refused(
    cli_slack: SlackEmulator, tmp_path: Path, command: str
) -> None:
    if command == "presets":
        args: list[Any] = [
            "presets", "run", "slack", "Get User Details", "--credential", "slack-emulator",
            "--var", "slack_user_id=U1", "--setting", "Slack.PageSzie=5", "--db", tmp_path / "x.db",
        ]  # fmt: skip
    else:
        args = ["auth", "test", "slack-emulator", "--setting", "Slack.PageSzie=5",
                "--base-url", cli_slack.base_url]  # fmt: skip
    before = len(cli_slack.requests)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Slack.PageSzie" in result.output
    assert "Slack.PageSize" in result.output  # the allowed keys are listed
    assert len(cli_slack.requests) == before


def test_a_malformed_json_error_keeps_the_request_id(
    connector: Any, emulator: SlackEmulator
) -> None:
    emulator.faults.add(Fault.malformed_json(), endpoint="users.list", times=-1)
    options = fast_options(emulator, max_retries=1)
    session = connector.authenticate(emulator.test_credential(), {}, options=options)
    with session, pytest.raises(MalformedResponseError) as caught:
        list(connector.list_users(session))
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("emu")
    assert caught.value.request_id in str(caught.value)
