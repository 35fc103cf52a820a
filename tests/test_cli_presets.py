"""``oomnitza-connect presets``: list, show and run, end to end over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from presets_support import (
    ACME_PEOPLE,
    ACME_TOKEN,
    LEAKED_CLIENT_SECRET,
    AcmeEmulator,
    add_people,
    registered_vendors,
)

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.cli import main
from oomnitza_connect.store.sqlite import SQLiteStore


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AcmeEmulator]:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.delenv("OOMNITZA_CONNECT_DB", raising=False)
    with registered_vendors(), AcmeEmulator() as emulator:
        credential = {
            "name": "acme-test",
            "vendor": "acme",
            "kind": "api_key",
            "token": ACME_TOKEN,
            "base_url": emulator.base_url,
        }
        monkeypatch.setenv(credential_env_name("acme-test"), json.dumps(credential))
        yield emulator


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "people.db"
    store = SQLiteStore(path)
    try:
        add_people(store, "acme", ACME_PEOPLE)
    finally:
        store.close()
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(*args: str) -> Result:
    return invoke("presets", "run", "acme", *args)


def fields_of(db: Path, email: str) -> dict[str, object]:
    store = SQLiteStore(db)
    try:
        person = store.find_person("email", email)
        assert person is not None
        return dict(person.fields)
    finally:
        store.close()


# -- list and show -------------------------------------------------------------------


def test_list_shows_every_vendor_or_one(acme: AcmeEmulator) -> None:
    everything = invoke("presets", "list", "--json")
    assert everything.exit_code == 0
    vendors = {p["vendor"] for p in json.loads(everything.output)}
    assert {"acme", "replacer"} <= vendors
    only = json.loads(invoke("presets", "list", "acme", "--json").output)
    assert {p["vendor"] for p in only} == {"acme"}
    assert "Get User Details" in {p["name"] for p in only}
    table = invoke("presets", "list", "replacer")
    assert table.exit_code == 0
    assert "Update User" in table.output


def test_show_prints_templates_variables_and_mappings(acme: AcmeEmulator) -> None:
    text = invoke("presets", "show", "acme", "create user")
    assert text.exit_code == 0
    assert "POST /users" in text.output
    assert "Variables: email, title, seats" in text.output
    data = json.loads(invoke("presets", "show", "replacer", "Update User", "--json").output)
    assert data["read_merge_write"] == "Get User Details"
    assert data["variables"] == ["replacer_user_id", "title"]


def test_show_unknown_preset_or_vendor_is_a_usage_error(acme: AcmeEmulator) -> None:
    result = invoke("presets", "show", "acme", "Nope")
    assert result.exit_code == 2
    assert "no preset named 'Nope'" in result.output
    assert invoke("presets", "show", "nobody", "x").exit_code == 2


# -- run once --------------------------------------------------------------------------


def test_run_with_variables_prints_the_result(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Get User Details", "--credential", "acme-test", "--var", "acme_user_id=U1",
        "--db", str(db), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["status"] == 200
    assert data["mapped"]["Acme Title"] == "Engineer"
    assert acme.requests[-1].path == "/users/U1"


def test_run_for_nobody_in_the_store_says_the_mapped_fields_were_not_stored(
    acme: AcmeEmulator, db: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    SQLiteStore(empty).close()
    result = run(
        "Get User Details", "--credential", "acme-test", "--var", "acme_user_id=U1",
        "--db", str(empty),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Acme Title = Engineer" in result.output
    assert (
        "(not stored: no person in the store goes with this call; --person EMAIL keeps them"
        in result.output
    )
    # U1's account is linked in this store: its person is found, and the fields kept.
    linked = run(
        "Get User Details", "--credential", "acme-test", "--var", "acme_user_id=U1",
        "--db", str(db),
    )  # fmt: skip
    assert linked.exit_code == 0, linked.output
    assert "not stored" not in linked.output


def test_run_for_a_person_writes_to_the_store(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Get User Details", "--credential", "acme-test", "--person", "bob@example.com",
        "--db", str(db),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ok: GET" in result.output
    assert "Acme Title = Sales" in result.output
    assert fields_of(db, "bob@example.com")["Acme Title"] == "Sales"


def test_run_uses_the_default_store_from_the_environment(
    acme: AcmeEmulator, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_DB", str(db))
    result = run("Get User Role", "--credential", "acme-test", "--person", "ada@example.com")
    assert result.exit_code == 0, result.output
    store = SQLiteStore(db)
    try:
        [account] = [a for a in store.iter_saas_users(vendor="acme") if a.vendor_user_id == "U1"]
        assert account.fields["acme_role"] == "admin"
    finally:
        store.close()


def test_typed_variables_settings_and_overrides(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Search", "--credential", "acme-test", "--db", str(db),
        "--var", "query=ada", "--var", "limit:=5", "--setting", "Acme.Region=ap",
        "--override-query", "extra=x", "--override-header", "X-Trace=t1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["response"] == {
        "query": {"q": "ada", "region": "ap", "limit": "5", "extra": "x"},
        "region_header": "ap",
    }
    assert acme.requests[-1].header("X-Trace") == "t1"


def test_override_body_is_sent_as_json(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Update User Title", "--credential", "acme-test", "--db", str(db),
        "--var", "acme_user_id=U2", "--var", "title=unused",
        "--override-body", '{"title": "{{title | upper}}", "level": 3}',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert acme.users["U2"]["title"] == "UNUSED"
    assert acme.users["U2"]["level"] == 3


def test_missing_variable_exits_2_and_names_it(acme: AcmeEmulator, db: Path) -> None:
    before = len(acme.requests)
    result = run("Get User Details", "--credential", "acme-test", "--db", str(db))
    assert result.exit_code == 2
    assert "'acme_user_id'" in result.output
    assert len(acme.requests) == before


def test_unknown_person_and_unknown_credential_exit_2(acme: AcmeEmulator, db: Path) -> None:
    nobody = run(
        "Get User Details", "--credential", "acme-test", "--person", "no@example.com",
        "--db", str(db),
    )  # fmt: skip
    assert nobody.exit_code == 2
    assert "no@example.com" in nobody.output
    no_credential = run("Get User Details", "--credential", "missing", "--db", str(db))
    assert no_credential.exit_code == 2
    assert "missing" in no_credential.output


def test_bad_usage_exits_2(acme: AcmeEmulator, db: Path) -> None:
    both = run(
        "Get User Details", "--credential", "acme-test", "--person", "a@x", "--where", "true",
    )  # fmt: skip
    assert both.exit_code == 2
    bad_var = run("Get User Details", "--credential", "acme-test", "--var", "novalue")
    assert bad_var.exit_code == 2
    bad_body = run("Get User Details", "--credential", "acme-test", "--override-body", "{")
    assert bad_body.exit_code == 2
    assert "Invalid value for --override-body: '{' is not valid JSON" in bad_body.output


def test_override_path_to_another_host_exits_2(acme: AcmeEmulator, db: Path) -> None:
    before = len(acme.requests)
    result = run(
        "Who Am I", "--credential", "acme-test", "--db", str(db),
        "--override-path", "http://evil.example/collect",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "refused" in result.output
    assert len(acme.requests) == before


def test_a_failed_call_exits_1(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Get User Details", "--credential", "acme-test", "--var", "acme_user_id=U404",
        "--db", str(db),
    )  # fmt: skip
    assert result.exit_code == 1
    # Said once: the result's lines give the reason; no error line repeats it.
    assert result.output.count("User not found") == 1, result.output
    assert result.stderr == ""
    as_json = run(
        "Get User Details", "--credential", "acme-test", "--var", "acme_user_id=U404",
        "--db", str(db), "--json",
    )  # fmt: skip
    assert as_json.exit_code == 1
    assert "User not found" in json.loads(as_json.stdout)["error"]
    assert as_json.stderr == ""


def test_secrets_never_reach_the_output(acme: AcmeEmulator, db: Path) -> None:
    result = run("Who Am I", "--credential", "acme-test", "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    assert ACME_TOKEN not in result.output
    assert LEAKED_CLIENT_SECRET not in result.output
    assert json.loads(result.output)["response"]["account"] == "acme-corp"


def test_dry_run_sends_nothing_and_shows_the_request(acme: AcmeEmulator, db: Path) -> None:
    before = len(acme.requests)
    result = run(
        "Update User Title", "--credential", "acme-test", "--db", str(db),
        "--person", "ada@example.com", "--var", "title=Boss", "--dry-run",
        "--override-header", "Authorization=Bearer " + ACME_TOKEN,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was sent." in result.output
    assert f"PATCH {acme.base_url}/users/U1" in result.output
    assert '"title": "Boss"' in result.output
    assert ACME_TOKEN not in result.output
    assert len(acme.requests) == before
    assert acme.users["U1"]["title"] == "Engineer"


# -- run for many ------------------------------------------------------------------------


def test_where_runs_for_matching_people_and_exits_1_on_any_failure(
    acme: AcmeEmulator, db: Path
) -> None:
    result = run(
        "Get User Details", "--credential", "acme-test", "--db", str(db),
        "--where", "department == 'Sales'", "--concurrency", "2",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "bob@example.com: ok (HTTP 200)" in result.output
    assert "gone@example.com: failed" in result.output
    assert "3 people: 2 ok, 1 failed." in result.output
    assert result.output.count("failed") == 2, result.output  # gone's line and the count
    assert result.stderr == ""
    assert fields_of(db, "cy@example.com")["Acme Title"] == "Sales"


def test_where_with_every_call_ok_exits_0_and_prints_json(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Get User Role", "--credential", "acme-test", "--db", str(db),
        "--where", "email != 'gone@example.com'", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert sorted(r["person"] for r in data) == [
        "ada@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert all(r["ok"] for r in data)


def test_where_dry_run_lists_every_request(acme: AcmeEmulator, db: Path) -> None:
    before = len(acme.requests)
    result = run(
        "Delete User", "--credential", "acme-test", "--db", str(db), "--where", "true",
        "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for user_id in ("U1", "U2", "U3", "U9"):
        assert f"DELETE {acme.base_url}/users/{user_id}" in result.output
    assert len(acme.requests) == before
    assert len(acme.users) == 3


def test_where_naming_no_field_is_a_usage_error(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Get User Details", "--credential", "acme-test", "--db", str(db),
        "--where", "shoe_size > 40",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "'shoe_size'" in result.output


def test_map_replaces_the_default_mappings(acme: AcmeEmulator, db: Path) -> None:
    result = run(
        "Get User Details", "--credential", "acme-test", "--db", str(db),
        "--person", "cy@example.com", "--map", "Acme Name={{response.name | upper}}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fields = fields_of(db, "cy@example.com")
    assert fields["Acme Name"] == "CY"
    assert "Acme Title" not in fields
    nothing = run(
        "Get User Details", "--credential", "acme-test", "--db", str(db),
        "--person", "bob@example.com", "--no-mapping",
    )  # fmt: skip
    assert nothing.exit_code == 0, nothing.output
    assert "Acme Title" not in fields_of(db, "bob@example.com")


def test_integration_file_gives_credential_settings_and_base_url(
    acme: AcmeEmulator, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stored credential points nowhere; the integration's base_url wins.
    credential = {"name": "acme-prod", "vendor": "acme", "kind": "api_key", "token": ACME_TOKEN}
    monkeypatch.setenv(credential_env_name("acme-prod"), json.dumps(credential))
    integration = tmp_path / "acme.toml"
    integration.write_text(
        'name = "acme-int"\nvendor = "acme"\ncredential = "acme-prod"\n'
        f'base_url = "{acme.base_url}"\n[settings]\n"Acme.Region" = "sa"\n',
        encoding="utf-8",
    )
    result = run(
        "Search", "--integration", str(integration), "--db", str(db),
        "--var", "query=q", "--var", "limit=1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["response"]["region_header"] == "sa"
    overridden = run(
        "Search", "--integration", str(integration), "--db", str(db), "--setting",
        "Acme.Region=eu", "--var", "query=q", "--var", "limit=1", "--json",
    )  # fmt: skip
    assert json.loads(overridden.output)["response"]["region_header"] == "eu"
    neither = run("Search", "--db", str(db), "--var", "query=q")
    assert neither.exit_code == 2


def test_progress_bar_counts_people_and_failures(acme: AcmeEmulator, db: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "presets", "run", "acme", "Get User Details", "--credential", "acme-test",
            "--db", str(db), "--where", "true", "--progress",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Running preset" in result.stderr
    assert "4/4" in result.stderr, result.stderr
    assert "1 failed" in result.stderr
    assert "Running preset" not in result.stdout
