"""The sync CLI: integrations init/validate/launch, mapping suggest, sync, sessions, people."""

from __future__ import annotations

import csv
import io
import json
import socket

import pytest
from click.testing import CliRunner
from oomnitza_connect_slack import vendor as slack_plugin
from sync_support import acme_for_the_cli, write_integration

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.cli import main
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore


@pytest.fixture
def acme(tmp_path, monkeypatch):
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=12, per_page=10) as emulator:
        yield emulator


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_init_writes_a_file_that_validates_once_the_role_is_set(tmp_path, acme):
    path = tmp_path / "acme.toml"
    result = invoke("integrations", "init", "acme", "--output", path)
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert 'source = "login"' in text
    # A text file ends its last line (editors, `cat` and diffs expect it), once.
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert invoke("integrations", "init", "acme").stdout == text  # the same, printed
    assert "# default_role" in text

    result = invoke("integrations", "validate", path)
    assert result.exit_code == 2
    assert "settings.Acme.Tenant" in result.output
    assert "Acme.Region" in result.output

    assert '"Acme.Tenant" = ""' in text
    text = text.replace('# "Acme.Region"', '"Acme.Region"').replace(
        '"Acme.Tenant" = ""', '"Acme.Tenant" = "test"'
    )
    path.write_text(text)
    result = invoke("integrations", "validate", path)
    assert result.exit_code == 2
    assert "no default role is set" in result.output

    path.write_text(text.replace('# default_role = "Employee"', 'default_role = "Employee"'))
    result = invoke("integrations", "validate", path)
    assert result.exit_code == 0, result.output
    assert "is complete" in result.output


def test_init_refuses_to_overwrite_without_force(tmp_path, acme):
    path = tmp_path / "acme.toml"
    path.write_text("keep me")
    assert invoke("integrations", "init", "acme", "-o", path).exit_code == 2
    assert path.read_text() == "keep me"
    assert invoke("integrations", "init", "acme", "-o", path, "--force").exit_code == 0


def test_validate_names_unknown_settings_and_allowed_ones(tmp_path, acme):
    path = write_integration(tmp_path, '"Acme.Colour" = "red"\n')
    result = invoke("integrations", "validate", path)
    assert result.exit_code == 2
    assert "settings.Acme.Colour" in result.output
    assert "Acme.Tenant, Acme.Region" in result.output


def test_sync_test_run_then_real_run_then_sessions_and_people(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    db = tmp_path / "cli.db"

    result = invoke("sync", path, "--test-run", "--db", db)
    assert result.exit_code == 0, result.output
    assert "12 created" in result.output
    with SQLiteStore(db) as store:
        assert store.count_people() == 0

    result = invoke("sync", path, "--db", db, "--batch-size", 5)
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    # Off a terminal, progress is plain lines, one per batch.
    assert "sync acme-main: listing: 0 records, 0 created" in result.output
    assert ": 5 records, 5 created" in result.output
    assert ": 10 records, 10 created" in result.output
    assert "sync acme-main: finalizing: 12 records, 12 created" in result.output

    listed = json.loads(invoke("sessions", "list", "--json", "--db", db).output)
    assert [s["test_run"] for s in listed] == [False, True]
    assert listed[0]["counts"]["created"] == 12

    shown = invoke("sessions", "show", listed[1]["id"][:8], "--payload", "--json", "--db", db)
    payload = json.loads(shown.output)["payload"]
    assert len(payload) == 12
    assert payload[0]["fields"]["email"] == "user1@example.com"

    text = invoke("sessions", "show", listed[0]["id"], "--db", db).output
    assert "12 created" in text

    # The empty prefix matches both sessions: say so and ask for more of the id.
    ambiguous = invoke("sessions", "show", "", "--db", db)
    assert ambiguous.exit_code == 2
    assert "2 sessions have ids starting with ''" in ambiguous.output
    assert "give more of the id" in ambiguous.output
    unknown = invoke("sessions", "show", "zzz", "--db", db)
    assert unknown.exit_code == 2
    assert "no session with id 'zzz' (see `oomnitza-connect sessions list`)" in unknown.output

    people = json.loads(invoke("people", "--json", "--db", db).output)
    assert len(people) == 12
    assert people[0]["username"] == "user1"

    rows = list(csv.DictReader(io.StringIO(invoke("people", "--csv", "--db", db).output)))
    assert rows[1]["email"] == "user2@example.com"
    assert rows[1]["Acme User Id"] == "A000002"

    table = invoke("people", "--vendor", "acme", "--db", db).output
    assert "user3@example.com" in table
    assert "user3@example.com" not in invoke("people", "--vendor", "other", "--db", db).output


def test_sync_uses_the_default_db_under_oomnitza_connect_home(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    assert invoke("sync", path).exit_code == 0
    with SQLiteStore(tmp_path / "home" / "oomnitza-connect.db") as store:
        assert store.count_people() == 12


def test_a_failed_run_exits_1(tmp_path, acme, monkeypatch):
    monkeypatch.setenv(
        "OOMNITZA_CONNECT_CREDENTIAL_ACME",
        json.dumps({"vendor": "acme", "kind": "api_key", "token": "wrong-token-5678"}),
    )
    path = write_integration(tmp_path, base_url=acme.base_url)
    result = invoke("sync", path, "--db", tmp_path / "x.db")
    assert result.exit_code == 1
    assert "failed" in result.output
    assert "wrong-token-5678" not in result.output
    # Its contact could not be emailed: said plainly, once.
    assert result.stderr.count("contacts not emailed: OOMNITZA_CONNECT_SMTP_HOST is not set") == 1


def test_a_run_where_every_record_failed_exits_1(tmp_path, acme):
    # A converter no login can pass: the run completes, nothing goes through.
    extra = '[[mapping]]\ntarget = "Badge"\nsource = "login"\nconverter = "integer"\n'
    path = write_integration(tmp_path, extra, base_url=acme.base_url)
    result = invoke("sync", path, "--db", tmp_path / "x.db")
    assert result.exit_code == 1, result.output
    assert "completed_with_errors" in result.output
    assert "12 failed" in result.output
    # One person going through is a run that did something: exit 0, errors listed.
    acme.users[0]["login"] = "42"
    result = invoke("sync", path, "--db", tmp_path / "x.db")
    assert result.exit_code == 0, result.output
    assert "11 failed" in result.output


def test_people_of_a_vendor_nobody_installed_says_so(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    assert invoke("sync", path, "--db", tmp_path / "x.db").exit_code == 0
    runner = CliRunner()
    result = runner.invoke(main, ["people", "--vendor", "acmee", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 0
    assert "No person is linked to vendor 'acmee' (installed vendors: acme)." in result.stderr
    listed = runner.invoke(main, ["people", "--vendor", "acme", "--db", str(tmp_path / "x.db")])
    assert "No person is linked" not in listed.stderr
    assert "user1@example.com" in listed.stdout


def test_bad_config_exits_2(tmp_path, acme):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nvendor = "acme"\ncredential = "acme"\nselection = "everyone"\n')
    result = invoke("sync", path, "--db", tmp_path / "x.db")
    assert result.exit_code == 2
    assert "selection" in result.output
    assert "'users', 'users+saas'" in result.output


@pytest.mark.parametrize("test_run", [True, False])
def test_a_misspelt_sync_key_names_the_file_and_key_and_exits_2(tmp_path, acme, test_run):
    path = write_integration(tmp_path, base_url=acme.base_url)
    path.write_text(path.read_text().replace('sync_key = "email"', 'sync_key = "emial"'))
    db = tmp_path / "x.db"
    result = invoke("sync", path, "--db", db, *(["--test-run"] if test_run else []))
    assert result.exit_code == 2, result.output
    assert f"{path}: key 'sync_key': bad value 'emial'" in result.output
    assert "did you mean 'email'?" in result.output
    assert "(allowed: Acme User Id, email, username, or a target marked unique = true)" in (
        result.output
    )
    assert not db.exists()  # refused before the store was opened or the vendor asked


def test_launch_refuses_a_draft_and_activates_a_complete_integration(tmp_path, acme):
    db = tmp_path / "launch.db"
    path = write_integration(tmp_path, base_url=acme.base_url)
    draft = tmp_path / "draft.toml"
    draft.write_text(path.read_text().replace('sync_key = "email"\n', ""))
    result = invoke("integrations", "launch", draft, "--db", db)
    assert result.exit_code == 2
    assert "no sync key is set" in result.output

    result = invoke("integrations", "launch", path, "--db", db, "--no-run")
    assert result.exit_code == 0, result.output
    with SQLiteStore(db) as store:
        entries = store.list_integrations(active_only=True)
        assert [(e.name, e.schedule, e.contacts) for e in entries] == [
            ("acme-main", "daily", ("it@example.com",))
        ]
        assert store.list_sessions() == []

    result = invoke("integrations", "launch", path, "--db", db)
    assert result.exit_code == 0, result.output
    with SQLiteStore(db) as store:
        assert store.count_people() == 12
    listed = json.loads(invoke("integrations", "list", "--json", "--db", db).output)
    assert listed[0]["active"] is True


def test_mapping_suggest_json_and_table(acme):
    result = invoke("mapping", "suggest", "acme", "--json")
    assert result.exit_code == 0
    by_source = {s["source"]: s for s in json.loads(result.output)}
    assert by_source["mail"]["target"] == "email"
    assert by_source["login"]["target"] == "username"
    assert by_source["is_admin"]["target"] == "Acme Is Admin?"
    table = invoke("mapping", "suggest", "acme").output
    assert "Confidence" in table


def test_unknown_vendor_exits_2(acme):
    result = invoke("mapping", "suggest", "nosuchvendor")
    assert result.exit_code == 2
    assert "acme" in result.output


@pytest.mark.parametrize(
    "command",
    [("people",), ("sessions", "list"), ("sessions", "show", "abc"), ("integrations", "list")],
    ids=" ".join,
)
def test_reading_a_store_that_does_not_exist_is_bad_usage(acme, tmp_path, command):
    missing = tmp_path / "typo.db"
    result = invoke(*command, "--db", missing)
    assert result.exit_code == 2, result.output
    assert f"there is no store at '{missing}'" in result.output
    assert not missing.exists()


def test_a_db_that_is_not_a_store_is_bad_configuration(acme, tmp_path):
    path = write_integration(tmp_path, base_url=acme.base_url)
    for command in (("people",), ("sync", path)):
        result = invoke(*command, "--db", path)
        assert result.exit_code == 2, result.output
        assert "file is not a database" in result.output
        assert "check --db" in result.output


def test_ctrl_c_during_a_sync_exits_130_and_leaves_the_session_interrupted(
    tmp_path, acme, monkeypatch
):
    from oomnitza_connect.sync import engine

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of the listing

    monkeypatch.setattr(engine._Run, "sync_users", interrupted)
    path = write_integration(tmp_path, base_url=acme.base_url)
    db = tmp_path / "x.db"
    result = CliRunner().invoke(main, ["sync", str(path), "--db", str(db)])
    assert result.exit_code == 130, result.output
    assert "Interrupted." in result.output
    assert "Aborted!" not in result.output
    with SQLiteStore(db) as store:
        (session,) = store.list_sessions()
    assert session.status.value == "interrupted"


def test_a_vendor_refusing_the_connection_shows_each_retry_of_the_credential_check(
    tmp_path, monkeypatch
):
    # The plugin checks the token (auth.test) inside authenticate, before the
    # listing: its retries were silent for the 25 s they took.
    monkeypatch.setattr("oomnitza_connect.transport.http._BACKOFF_BASE", 0.001)
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/api"
    monkeypatch.setenv(
        credential_env_name("slack-test"),
        json.dumps({"vendor": "slack", "kind": "api_key", "token": "xoxp-1-test"}),
    )
    path = tmp_path / "slack.toml"
    path.write_text(
        'name = "slack-main"\nvendor = "slack"\ncredential = "slack-test"\n'
        f'sync_key = "email"\ndefault_role = "Employee"\nbase_url = "{base_url}"\n'
    )
    with register_plugin(slack_plugin):
        result = invoke("sync", path, "--db", tmp_path / "store.db")
    assert result.exit_code == 1
    refused = f"the connection to 127.0.0.1:{port} was refused"
    retrying = [
        line for line in result.stderr.splitlines() if "retrying GET /api/auth.test" in line
    ]
    assert retrying, result.stderr
    assert retrying[0].startswith("sync slack-main: connecting; waiting ")
    assert retrying[0].endswith(f"after {refused}")
    assert f"GET /api/auth.test failed: {refused}" in result.stdout
