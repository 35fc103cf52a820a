"""A shared PostgreSQL ledger end to end, from the command line.

Slack's emulator syncs into Oomnitza's emulator (and, in the second test,
into a SQLite file) while the sessions, their errors and plans, the launched
integration and who each run saw live in a real PostgreSQL database named by
``--ledger``; ``sessions``, ``integrations list`` and ``people`` read it back.
The default SQLite ledger stays untouched.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from oomnitza_connect.cli import main
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

pytest.importorskip("oomnitza_connect_slack")

USERS = 24
_names = itertools.count()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.setenv("OOMNITZA_CONNECT_DB", str(tmp_path / "default.db"))
    monkeypatch.delenv("OOMNITZA_CONNECT_LEDGER", raising=False)
    for name in ("SLACK", "OOMNITZA"):
        monkeypatch.delenv(f"OOMNITZA_CONNECT_CREDENTIAL_{name}", raising=False)
    return tmp_path


@pytest.fixture
def ledger_url(postgres_server: Any) -> str:
    """A database of its own, reached with a password in the URL (trust ignores it)."""
    url = str(postgres_server.create_database(f"e2e_{next(_names)}"))
    return url.replace("oomnitza@", "oomnitza:ledger-Secret-9@")


@pytest.fixture
def slack() -> Iterator[Any]:
    from oomnitza_connect_slack import vendor
    from oomnitza_connect_slack.emulator import SlackEmulator

    from oomnitza_connect.plugins import register_plugin

    with (
        register_plugin(vendor),
        SlackEmulator(users=USERS, seed=11, enforce_rate_limits=False) as emulator,
    ):
        yield emulator


def ok(*args: Any, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "ledger-Secret-9" not in result.output
    return result


def json_of(result: Result) -> Any:
    text = result.output
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    return json.loads(text[min(starts) :])


def slack_integration(home: Path, slack: Any, destination: str) -> Path:
    ok(
        "credentials", "add", "slack", "--vendor", "slack", "--kind", "api_key", "--token-stdin",
        "--base-url", slack.base_url, input=slack.token,
    )  # fmt: skip
    integration = home / "slack.toml"
    ok("integrations", "init", "slack", "--output", integration, "--name", "slack-main")
    text = integration.read_text()
    text = text.replace('# default_role = "Employee"', 'default_role = "Employee"')
    integration.write_text(text + destination)
    return integration


def test_a_sync_into_oomnitza_recorded_in_postgresql_and_read_back(home, slack, ledger_url):
    with OomnitzaEmulator() as oomnitza:
        ok(
            "credentials", "add", "oomnitza", "--vendor", "oomnitza", "--kind", "api_key",
            "--token-stdin", "--header-name", "Authorization2", "--header-prefix", "",
            "--base-url", oomnitza.base_url, input=oomnitza.api_token,
        )  # fmt: skip
        integration = slack_integration(
            home,
            slack,
            f'\n[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
            'credential = "oomnitza"\nconnector_name = "slack-main"\n'
            'vanished_field = "removed_from_slack"\nvanished_value = "yes"\n'
            "[destination.roles]\nEmployee = 25\n"
            '[destination.fields]\n"Slack User Id" = "slack_user_id"\n',
        )
        ok("integrations", "launch", integration, "--ledger", ledger_url, "--no-run")
        launched = json_of(ok("integrations", "list", "--ledger", ledger_url, "--json"))
        assert [(e["name"], e["active"]) for e in launched] == [("slack-main", True)]
        assert launched[0]["source"] == str(integration.resolve())

        first = json_of(ok("sync", integration, "--ledger", ledger_url, "--no-pacing", "--json"))
        people = len(oomnitza.users)
        assert people > 0
        assert first["counts"]["created"] == people

        synced = sorted(str(u["slack_user_id"]) for u in oomnitza.users.values())
        gone = synced[2]
        slack.remove_user(gone)
        second = json_of(ok("sync", integration, "--ledger", ledger_url, "--no-pacing", "--json"))
        assert second["counts"]["vanished"] == 1
        marked = [u for u in oomnitza.users.values() if u.get("removed_from_slack") == "yes"]
        assert [u["slack_user_id"] for u in marked] == [gone]

        listed = json_of(ok("sessions", "list", "--ledger", ledger_url, "--json"))
        assert [s["id"] for s in listed] == [second["id"], first["id"]]
        assert all(s["status"] == "succeeded" for s in listed)
        shown = ok("sessions", "show", first["id"][:10], "--ledger", ledger_url)
        assert f"Session      {first['id']}" in shown.output
        assert f"{people} created" in shown.output

        # People are in the destination; the ledger names none.
        from_oomnitza = json_of(
            ok("people", "--ledger", ledger_url, "--integration", integration, "--json")
        )
        assert len(from_oomnitza) == people
        refused = CliRunner().invoke(main, ["people", "--ledger", ledger_url])
        assert refused.exit_code == 2
        assert "holds no people" in refused.output
        assert "ledger-Secret-9" not in refused.output

    # SQLite stays the default: nothing of these runs went into its file.
    assert json_of(ok("sessions", "list", "--json")) == []


def test_a_sync_into_a_sqlite_destination_with_the_postgresql_ledger(home, slack, ledger_url):
    people_db = home / "people.db"
    integration = slack_integration(
        home, slack, f'\n[destination]\ntype = "sqlite"\npath = "{people_db}"\n'
    )
    test_run = json_of(
        ok("sync", integration, "--ledger", ledger_url, "--no-pacing", "--test-run", "--json")
    )
    planned = [
        json.loads(line)
        for line in ok("sessions", "plan", test_run["id"], "--ledger", ledger_url)
        .output.strip()
        .splitlines()
    ]
    creates = [entry for entry in planned if entry["action"] == "create"]
    assert len(creates) == test_run["counts"]["created"] > 0

    first = json_of(ok("sync", integration, "--ledger", ledger_url, "--no-pacing", "--json"))
    assert first["counts"]["created"] == len(creates)
    with sqlite3.connect(people_db) as db:
        (stored,) = db.execute("SELECT count(*) FROM people").fetchone()
        (sessions_in_destination,) = db.execute("SELECT count(*) FROM sync_sessions").fetchone()
    assert stored == len(creates)
    assert sessions_in_destination == 0  # the runs are recorded in PostgreSQL only

    # Who vanished is found across the two databases: the run book is in
    # PostgreSQL, the people are in SQLite.
    gone = sorted(entry["vendor_user_id"] for entry in creates)[0]
    slack.remove_user(gone)
    second = json_of(ok("sync", integration, "--ledger", ledger_url, "--no-pacing", "--json"))
    assert second["counts"]["vanished"] == 1
    listed = json_of(ok("people", "--ledger", ledger_url, "--integration", integration, "--json"))
    vanished = [p for p in listed if p["vanished_from"]]
    assert [p["vanished_from"] for p in vanished] == [["slack"]]
    assert len(listed) == len(creates)
    assert [s["id"] for s in json_of(ok("sessions", "list", "--ledger", ledger_url, "--json"))] == [
        second["id"],
        first["id"],
        test_run["id"],
    ]
