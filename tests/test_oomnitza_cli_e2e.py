"""Oomnitza as the destination, from the command line only, end to end.

``credentials add`` for Oomnitza (a raw ``Authorization2`` token, and a login
and password exchanged at ``POST /api/request_token``), an integration whose
``[destination]`` is Oomnitza, ``sync`` (then a vendor change, a test run with
its whole plan in a file, a sync that marks the vanished), ``people`` and
``presets run`` with write-back, against the Slack and Oomnitza emulators.
Every check reads the Oomnitza emulator's state or the command's output.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from oomnitza_connect.cli import main
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

pytest.importorskip("oomnitza_connect_slack")

USERS = 30


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.setenv("OOMNITZA_CONNECT_DB", str(tmp_path / "ledger.db"))
    for name in ("SLACK", "OOMNITZA", "OOMNITZA_LOGIN"):
        monkeypatch.delenv(f"OOMNITZA_CONNECT_CREDENTIAL_{name}", raising=False)
    return tmp_path


@pytest.fixture
def slack() -> Iterator[Any]:
    from oomnitza_connect_slack import vendor
    from oomnitza_connect_slack.emulator import SlackEmulator

    from oomnitza_connect.plugins import register_plugin

    with (
        register_plugin(vendor),
        SlackEmulator(users=USERS, seed=5, enforce_rate_limits=False) as emulator,
    ):
        yield emulator


@pytest.fixture
def oomnitza() -> Iterator[OomnitzaEmulator]:
    with OomnitzaEmulator() as emulator:
        yield emulator


def cli(*args: Any, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    return result


def ok(*args: Any, input: str | None = None) -> Result:
    result = cli(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def people_json(result: Result) -> list[dict[str, Any]]:
    text = result.output
    return list(json.loads(text[text.index("[") :]))


def test_the_whole_oomnitza_path_from_the_cli(home, slack, oomnitza) -> None:
    ok(
        "credentials", "add", "oomnitza", "--vendor", "oomnitza", "--kind", "api_key",
        "--token-stdin", "--header-name", "Authorization2", "--header-prefix", "",
        "--base-url", oomnitza.base_url, input=oomnitza.api_token,
    )  # fmt: skip
    ok(
        "credentials", "add", "oomnitza-login", "--vendor", "oomnitza", "--kind", "basic",
        "--username", oomnitza.login, "--password-stdin", "--base-url", oomnitza.base_url,
        input=oomnitza.password,
    )  # fmt: skip
    ok(
        "credentials", "add", "slack", "--vendor", "slack", "--kind", "api_key", "--token-stdin",
        "--base-url", slack.base_url, input=slack.token,
    )  # fmt: skip

    integration = home / "slack.toml"
    ok("integrations", "init", "slack", "--output", integration, "--name", "slack-main")
    text = integration.read_text()
    text = text.replace('# default_role = "Employee"', 'default_role = "Employee"')
    text = text.replace('selection = "users"', 'selection = "users+saas"')
    text += (
        f'\n[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
        'credential = "oomnitza-login"\nconnector_name = "slack-main"\n'
        'vanished_field = "removed_from_slack"\nvanished_value = "yes"\n'
        "[destination.roles]\nEmployee = 25\n"
        '[destination.fields]\n"Slack User Id" = "slack_user_id"\n'
    )
    integration.write_text(text)
    ok("integrations", "validate", integration)

    first = ok("sync", integration, "--no-pacing", "--json")
    session = json.loads(first.output[first.output.index("{") :])
    people = sum(1 for i in range(USERS) if slack.kind_of(i) not in ("bot", "slackbot"))
    assert session["counts"]["created"] == people
    assert len(oomnitza.users) == people
    saas = oomnitza.saas_users()
    assert len(saas) == people
    assert {name for name, _ in saas} == {"slack"}
    # The login and password were exchanged for a token, which every bulk POST carries.
    bulk_tokens = {r.header("Authorization2") for r in oomnitza.requests if r.endpoint == "bulk"}
    assert len(bulk_tokens) == 1
    assert oomnitza.api_token not in bulk_tokens
    assert any(r.endpoint == "request_token" for r in oomnitza.requests)

    listed = people_json(ok("people", "--integration", integration, "--json"))
    assert len(listed) == people
    by_token = people_json(ok("people", "--oomnitza", "oomnitza", "--json"))
    assert sorted(p["email"] for p in by_token) == sorted(p["email"] for p in listed)
    assert all(p["role"] == "Employee" for p in listed)

    # A change at Slack: the test run's whole plan goes to a file, and Oomnitza is untouched.
    synced = sorted(str(u["slack_user_id"]) for u in oomnitza.users.values())
    some_user, gone = synced[3], synced[5]
    slack.update_user(some_user, profile={"title": "Chief Tester"})
    slack.remove_user(gone)
    before = {k: dict(v) for k, v in oomnitza.users.items()}
    plan_file = home / "plan.jsonl"
    ok("sync", integration, "--no-pacing", "--test-run", "--plan-output", plan_file)
    assert oomnitza.users == before
    plan = [json.loads(line) for line in plan_file.read_text().splitlines()]
    actions = [entry["action"] for entry in plan]
    assert actions.count("update") == 1
    assert actions.count("vanish") == 1
    assert actions.count("unchanged") == people - 2
    update = next(entry for entry in plan if entry["action"] == "update")
    assert update["vendor_user_id"] == some_user
    assert update["changes"]["position"]["new"] == "Chief Tester"

    ok("sync", integration, "--no-pacing")
    changed = [u for u in oomnitza.users.values() if u.get("slack_user_id") == some_user]
    assert [u["position"] for u in changed] == ["Chief Tester"]
    marked = [u for u in oomnitza.users.values() if u.get("removed_from_slack") == "yes"]
    assert [u["slack_user_id"] for u in marked] == [gone]

    # A preset for one person, then for everyone matching, written back through PATCH.
    email = changed[0]["email"]
    one = ok(
        "presets", "run", "slack", "Get User Details", "--integration", integration,
        "--person", email, "--json",
    )  # fmt: skip
    assert json.loads(one.output)["mapped"]["Slack Title"] == "Chief Tester"
    assert changed[0]["user_id"] in {user_id for user_id, _ in oomnitza.patches}
    assert oomnitza.users[changed[0]["user_id"]]["slack_title"] == "Chief Tester"
    many = ok(
        "presets", "run", "slack", "Get User Details", "--credential", "slack",
        "--oomnitza", "oomnitza", "--where", "position == 'Chief Tester'", "--json",
    )  # fmt: skip
    assert [r["person"] for r in json.loads(many.output)] == [email]


@pytest.fixture
def intercom() -> Iterator[Any]:
    pytest.importorskip("oomnitza_connect_intercom")
    from oomnitza_connect_intercom import vendor
    from oomnitza_connect_intercom.emulator import IntercomEmulator

    from oomnitza_connect.plugins import register_plugin

    with (
        register_plugin(vendor),
        IntercomEmulator(users=12, seed=3, enforce_rate_limits=False) as emulator,
    ):
        yield emulator


def intercom_into_oomnitza(home: Path, intercom: Any, oomnitza: OomnitzaEmulator) -> Path:
    """Intercom synced into Oomnitza with no [destination.fields]: custom fields by external id."""
    ok(
        "credentials", "add", "oomnitza", "--vendor", "oomnitza", "--kind", "api_key",
        "--token-stdin", "--header-name", "Authorization2", "--header-prefix", "",
        "--base-url", oomnitza.base_url, input=oomnitza.api_token,
    )  # fmt: skip
    ok(
        "credentials", "add", "intercom", "--vendor", "intercom", "--kind", "api_key",
        "--token-stdin", "--base-url", intercom.base_url, input=intercom.token,
    )  # fmt: skip
    integration = home / "intercom-oz.toml"
    ok("integrations", "init", "intercom", "--output", integration, "--name", "intercom-oz")
    text = integration.read_text()
    text = text.replace('# default_role = "Employee"', 'default_role = "Employee"')
    text = text.replace('selection = "users"', 'selection = "users+saas"')
    text += (
        f'\n[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
        'credential = "oomnitza"\n[destination.roles]\nEmployee = 25\n'
    )
    integration.write_text(text)
    ok("sync", integration, "--no-pacing")
    assert all("intercom_id" in user for user in oomnitza.users.values())
    return integration


def test_a_preset_whose_variable_is_a_custom_field_runs_for_people_read_from_oomnitza(
    home, intercom, oomnitza
) -> None:
    # 'Get Admin Details' reads {{intercom_admin_id}} from the person's 'Intercom ID',
    # which Oomnitza holds as intercom_id: read back under its name, every call works.
    integration = intercom_into_oomnitza(home, intercom, oomnitza)
    result = ok(
        "presets", "run", "intercom", "Get Admin Details", "--integration", integration,
        "--where", "true", "--linked-only", "--json",
    )  # fmt: skip
    results = json.loads(result.output)
    assert len(results) == len(oomnitza.users)
    assert all(r["ok"] for r in results), [r["error"] for r in results if not r["ok"]]
    # The mapped values went back to each person by their external ids.
    written = [u for u in oomnitza.users.values() if "intercom_has_inbox_seat" in u]
    assert len(written) == len(oomnitza.users)
    one = ok(
        "presets", "run", "intercom", "Get Admin Details", "--credential", "intercom",
        "--oomnitza", "oomnitza", "--person", next(iter(oomnitza.users.values()))["email"],
    )  # fmt: skip
    assert one.output.startswith("ok: GET ")
    assert "/admins/99" in one.output.splitlines()[0]


def test_people_from_oomnitza_show_field_names_and_explain_role_ids(
    home, intercom, oomnitza
) -> None:
    integration = intercom_into_oomnitza(home, intercom, oomnitza)
    by_file = people_json(ok("people", "--integration", integration, "--json"))
    by_token = people_json(ok("people", "--oomnitza", "oomnitza", "--json"))
    # Without the integration the installed vendors' field names still apply.
    assert [sorted(p) for p in by_token] == [sorted(p) for p in by_file]
    assert all("Intercom ID" in p and "intercom_id" not in p for p in by_token)
    assert {p["role"] for p in by_file} == {"Employee"}
    # Without [destination.roles] the role is Oomnitza's id, and the listing says so.
    assert {p["role"] for p in by_token} == {25}
    table = ok("people", "--oomnitza", "oomnitza")
    assert "Role 25 is Oomnitza's numeric role id" in table.stderr
    assert "[destination.roles]" in table.stderr
    named = ok("people", "--integration", integration)
    assert "Employee" in named.stdout
    assert "numeric role id" not in named.stderr
    csv_rows = ok("people", "--oomnitza", "oomnitza", "--csv").stdout.splitlines()
    assert "Intercom ID" in csv_rows[0].split(",")


def test_people_csv_from_oomnitza_has_a_column_for_each_field_without_a_name(
    home, oomnitza
) -> None:
    # Fields nobody names (an administrator's department, a custom field no installed
    # vendor writes) come back under their Oomnitza keys, as --json shows them.
    from oomnitza_connect.auth.credentials import default_credential_store

    default_credential_store().save(oomnitza.test_credential(name="oomnitza"))
    oomnitza.add_user({"username": "ada", "email": "ada@example.com", "department": "Finance"})
    oomnitza.add_user({"username": "bob", "email": "bob@example.com", "badge_number": 1207})
    oomnitza.add_user({"username": "cy", "email": "cy@example.com", "role": 25})
    listed = ok("people", "--oomnitza", "oomnitza", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(listed)))
    header = next(csv.reader(io.StringIO(listed)))
    assert {"department", "badge_number"} <= set(header)
    assert header[-1] == "vanished_from"
    by_name = {row["username"]: row for row in rows}
    assert by_name["ada"]["department"] == "Finance"
    assert by_name["ada"]["badge_number"] == ""
    assert by_name["bob"]["badge_number"] == "1207"
    assert by_name["cy"]["role"] == "25"
    assert len(rows) == 3
    as_json = {
        p["username"]: p for p in people_json(ok("people", "--oomnitza", "oomnitza", "--json"))
    }
    assert as_json["ada"]["department"] == "Finance"


@pytest.fixture
def webex() -> Iterator[Any]:
    pytest.importorskip("oomnitza_connect_webex")
    from oomnitza_connect_webex.emulator import WebexEmulator
    from oomnitza_connect_webex.plugin import vendor

    from oomnitza_connect.plugins import register_plugin

    with (
        register_plugin(vendor),
        WebexEmulator(users=8, seed=2, enforce_rate_limits=False) as emulator,
    ):
        yield emulator


def webex_into_oomnitza(
    home: Path, webex: Any, oomnitza: OomnitzaEmulator, fields: str = ""
) -> Path:
    from oomnitza_connect.auth.credentials import default_credential_store

    credentials = default_credential_store()
    credentials.save(webex.test_credential(name="webex"))
    credentials.save(oomnitza.test_credential(name="oomnitza"))
    integration = home / "webex-oz.toml"
    ok("integrations", "init", "webex", "--output", integration, "--name", "webex-oz")
    text = integration.read_text()
    text = text.replace('# default_role = "Employee"', 'default_role = "Employee"')
    text = text.replace('selection = "users"', 'selection = "users+saas"')
    text = text.replace('name = "webex-oz"', f'name = "webex-oz"\nbase_url = "{webex.base_url}"')
    text += (
        f'\n[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
        'credential = "oomnitza"\n[destination.roles]\nEmployee = 25\n'
    )
    if fields:
        text += "[destination.fields]\n" + fields
    integration.write_text(text)
    ok("sync", integration, "--no-pacing")
    assert oomnitza.saas_users()
    return integration


USER_ROLE_FIELDS = (
    '"saas_user.role" = "webex_roles"\n"saas_user.role_ids" = "webex_role_ids"\n'
    '"saas_user.role_names" = "webex_role_names"\n"saas_user.status" = "webex_status"\n'
    '"saas_user.last_activity" = "webex_last_activity"\n'
)


def test_user_role_into_oomnitza_is_refused_before_any_webex_call(home, webex, oomnitza) -> None:
    integration = webex_into_oomnitza(home, webex, oomnitza)
    webex.requests.clear()
    patched = len(oomnitza.patches)
    result = cli(
        "presets", "run", "webex", "User Role", "--integration", integration,
        "--where", "true", "--linked-only",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "nothing was called" in text
    assert "Oomnitza keeps no fields of its own on a SaaS user" in text
    assert "saas_user.role, saas_user.role_ids" in text
    assert '[destination.fields] table (e.g. "saas_user.role" = "webex_role"' in text
    assert list(webex.requests) == []  # not even the sign-in
    assert len(oomnitza.patches) == patched


def test_user_role_into_oomnitza_writes_the_mapped_person_fields(home, webex, oomnitza) -> None:
    integration = webex_into_oomnitza(home, webex, oomnitza, USER_ROLE_FIELDS)
    result = ok(
        "presets", "run", "webex", "User Role", "--integration", integration,
        "--where", "true", "--linked-only", "--json",
    )  # fmt: skip
    results = json.loads(result.output)
    linked = {user_id for (_, _), user_id in _saas_people(oomnitza).items()}
    assert len(results) == len(linked)
    assert all(r["ok"] for r in results), [r["error"] for r in results if not r["ok"]]
    columns = {"role": "webex_roles", "role_names": "webex_role_names", "status": "webex_status"}
    for found in results:
        user = oomnitza.users[found["person_id"]]
        for name, column in columns.items():
            value = found["mapped"][name]
            # A list (the role names) is written as comma-separated text.
            assert user[column] == (", ".join(value) if isinstance(value, list) else value)
    assert any(user.get("webex_role_names") for user in oomnitza.users.values())
    patched = {user_id for user_id, body in oomnitza.patches if "webex_role_ids" in body}
    assert patched == linked
    # The people listing's CSV has a column for each of them.
    listed = ok("people", "--integration", integration, "--csv")
    header = next(csv.reader(io.StringIO(listed.output)))
    assert set(columns.values()) <= set(header)


def _saas_people(oomnitza: OomnitzaEmulator) -> dict[tuple[str, str], str]:
    by_username = {u["username"]: user_id for user_id, u in oomnitza.users.items()}
    return {key: by_username[key[1]] for key in oomnitza.saas_users()}
