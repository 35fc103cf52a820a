"""Presets with Oomnitza as the destination: people read through GET /api/v3/users,
mapped results written back through PATCH /api/v3/users/{ident}, calls recorded locally.

Every check reads the Oomnitza emulator's final state or its request log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result
from presets_support import (
    ACME_PEOPLE,
    ACME_TOKEN,
    AcmeEmulator,
    acme_credential,
    registered_vendors,
)

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.connectors import get_connector
from oomnitza_connect.destinations.oomnitza import OomnitzaDestination
from oomnitza_connect.errors import PresetError
from oomnitza_connect.models import DestinationKind, DestinationSettings
from oomnitza_connect.presets.engine import (
    PresetOverrides,
    get_preset,
    run_preset,
    run_preset_bulk,
)
from oomnitza_connect.presets.people import PeopleDirectory, WorkflowLog
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator
from oomnitza_connect.vendors.session import VendorSession

EXTRA_PEOPLE = 450
"""Unlinked people beyond the four, so that people are read in several pages of 200."""


def seed(oomnitza: OomnitzaEmulator) -> dict[str, str]:
    """The preset people in Oomnitza, linked to their acme accounts; email -> user_id."""
    ids = {}
    for vendor_user_id, fields in ACME_PEOPLE:
        email = fields["email"]
        ids[email] = oomnitza.add_user(
            {
                "username": email.split("@")[0],
                "email": email,
                "first_name": fields["first_name"],
                "department": fields["Department"],
            },
            saas={"name": "acme", "sync_key": vendor_user_id, "role": "member"},
        )
    for index in range(EXTRA_PEOPLE):
        oomnitza.add_user(
            {"username": f"extra{index}", "email": f"extra{index}@example.com", "department": "Ops"}
        )
    return ids


@pytest.fixture
def oomnitza() -> Iterator[OomnitzaEmulator]:
    with OomnitzaEmulator() as emulator:
        yield emulator


@pytest.fixture
def ids(oomnitza: OomnitzaEmulator) -> dict[str, str]:
    return seed(oomnitza)


@pytest.fixture
def destination(oomnitza: OomnitzaEmulator) -> Iterator[OomnitzaDestination]:
    table = DestinationSettings(
        type=DestinationKind.OOMNITZA, url=oomnitza.base_url, credential="oomnitza-test"
    )
    with OomnitzaDestination(table, oomnitza.test_credential()) as opened:
        yield opened


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "ledger.db") as opened:
        yield opened


@pytest.fixture
def acme() -> Iterator[AcmeEmulator]:
    with registered_vendors(), AcmeEmulator() as emulator:
        yield emulator


@pytest.fixture
def session(acme: AcmeEmulator) -> Iterator[VendorSession]:
    with get_connector("acme").authenticate(acme_credential(acme)) as opened:
        yield opened


def patches(oomnitza: OomnitzaEmulator) -> list[tuple[str, dict[str, Any]]]:
    return list(oomnitza.patches)


def test_both_destinations_are_people_directories(destination, ledger) -> None:
    assert isinstance(destination, PeopleDirectory)
    assert isinstance(ledger, PeopleDirectory)
    assert isinstance(ledger, WorkflowLog)
    assert not isinstance(destination, WorkflowLog)  # calls are recorded locally


def test_one_person_is_found_in_oomnitza_and_the_result_is_patched_back(
    oomnitza, ids, destination, ledger, session, acme
) -> None:
    ada = destination.find_person("email", "ada@example.com")
    assert ada is not None
    assert ada.id == ids["ada@example.com"]
    result = run_preset(
        session,
        get_preset("acme", "Get User Details"),
        person=ada,
        store=destination,
        ledger=ledger,
    )
    assert result.ok, result.error
    assert acme.requests[-1].path == "/users/U1"  # from Ada's acme SaaS account in Oomnitza
    user = oomnitza.users[ids["ada@example.com"]]
    assert user["acme_title"] == "Engineer"
    assert json.loads(user["acme_details"])["email"] == "ada@example.com"
    assert [user_id for user_id, _ in patches(oomnitza)] == [ids["ada@example.com"]]
    [run] = list(ledger.iter_workflow_runs(vendor="acme"))
    assert run.ok
    assert run.person_id == ids["ada@example.com"]
    assert run.mapped["Acme Title"] == "Engineer"


def test_a_value_with_a_quote_is_found_by_an_escaped_filter(oomnitza, destination) -> None:
    user_id = oomnitza.add_user({"username": "obrien", "email": "o'brien@example.com"})
    found = destination.find_person("email", "o'brien@example.com")
    assert found is not None
    assert found.id == user_id
    assert destination.find_person("email", "nobody@example.com") is None


def user_reads(oomnitza: OomnitzaEmulator) -> list[tuple[int, str | None]]:
    """``(skip, filter)`` of every ``GET /api/v3/users`` page read."""
    return [
        (int(r.query["skip"]), r.query.get("filter"))
        for r in oomnitza.requests
        if r.endpoint == "users"
    ]


def test_where_is_narrowed_by_oomnitzas_filter_and_patches_only_the_matching_people(
    oomnitza, ids, destination, ledger, session
) -> None:
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        destination,
        ledger=ledger,
        where="department == 'Sales'",
    )
    by_person = {r.person: r for r in results}
    assert set(by_person) == {"bob@example.com", "cy@example.com", "gone@example.com"}
    assert by_person["bob@example.com"].ok
    assert by_person["cy@example.com"].ok
    assert not by_person["gone@example.com"].ok  # 404 at acme; the others go on
    assert oomnitza.users[ids["bob@example.com"]]["acme_title"] == "Sales"
    assert "acme_title" not in oomnitza.users[ids["ada@example.com"]]
    assert "acme_title" not in oomnitza.users[ids["gone@example.com"]]
    assert sorted(user_id for user_id, _ in patches(oomnitza)) == sorted(
        [ids["bob@example.com"], ids["cy@example.com"]]
    )
    # One page of the three matching users, not the 454 in three pages.
    assert user_reads(oomnitza) == [(0, "(department eq 'Sales')")]
    assert len(list(ledger.iter_workflow_runs(vendor="acme"))) == 3


def test_where_without_translation_reads_every_page_and_selects_the_same(
    oomnitza, ids, ledger, session
) -> None:
    table = DestinationSettings(
        type=DestinationKind.OOMNITZA,
        url=oomnitza.base_url,
        credential="oomnitza-test",
        translate_where=False,
    )
    with OomnitzaDestination(table, oomnitza.test_credential()) as untranslated:
        results = run_preset_bulk(
            session,
            get_preset("acme", "Get User Details"),
            untranslated,
            ledger=ledger,
            where="department == 'Sales'",
            dry_run=True,
        )
    assert sorted(r.person or "" for r in results) == [
        "bob@example.com",
        "cy@example.com",
        "gone@example.com",
    ]
    assert user_reads(oomnitza) == [(0, None), (200, None), (400, None)]  # 454 people


@pytest.mark.parametrize(
    ("where", "sent", "selected"),
    [
        # What cannot be translated is still evaluated on each person read.
        (
            "department == 'Sales' and email.startswith('b')",
            "(department eq 'Sales')",
            ["bob@example.com"],
        ),
        (
            "person['department'] == 'Sales' and first_name == 'Cy'",
            "(department eq 'Sales') and (first_name eq 'Cy')",
            ["cy@example.com"],
        ),
        ('email == "o\'brien@example.com"', "(email eq 'o''brien@example.com')", []),
        # An 'or', a comparison other than ==, a number: read everything, decide here.
        ("department == 'Sales' or first_name == 'Ada'", None, None),
        ("department != 'Ops'", None, None),
    ],
)
def test_only_what_can_be_translated_goes_into_the_filter(
    oomnitza, ids, destination, ledger, session, where, sent, selected
) -> None:
    # The answer without any filter: every user read and *where* evaluated on each.
    table = attrs.evolve(destination.settings, translate_where=False)
    with OomnitzaDestination(table, oomnitza.test_credential()) as untranslated:
        expected = sorted(
            r.person or ""
            for r in run_preset_bulk(
                session,
                get_preset("acme", "Get User Details"),
                untranslated,
                ledger=ledger,
                where=where,
                dry_run=True,
            )
        )
    oomnitza.requests.clear()
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        destination,
        ledger=ledger,
        where=where,
        dry_run=True,
    )
    assert sorted(r.person or "" for r in results) == expected
    if selected is not None:
        assert expected == selected
    reads = user_reads(oomnitza)
    if sent is None:
        assert reads == [(0, None), (200, None), (400, None)]
    else:
        assert reads == [(0, sent)]


def test_a_quoted_value_holding_and_or_a_quote_is_one_filter_term(oomnitza, destination) -> None:
    dee = oomnitza.add_user(
        {"username": "dee", "email": "dee@example.com", "department": "R and D"}
    )
    oomnitza.add_user({"username": "obi", "email": "obi@example.com", "department": "R and D"})
    where = "department == 'R and D' and first_name == \"D'Arcy\""
    assert destination.where_filter(where) == (
        "(department eq 'R and D') and (first_name eq 'D''Arcy')"
    )
    assert list(destination.iter_candidates(where)) == []
    oomnitza.users[dee]["first_name"] = "D'Arcy"
    assert [p.id for p in destination.iter_candidates(where)] == [dee]
    assert [r[1] for r in user_reads(oomnitza)][-1] == destination.where_filter(where)


def test_a_filter_on_a_field_no_one_names_that_matches_nobody_says_so(
    oomnitza, ids, destination, ledger, session, caplog
) -> None:
    # Oomnitza's fields are the instance's own and no confirmed call lists them, so
    # 'departmnt' cannot be refused up front; matching nobody, it is at least said.
    preset = get_preset("acme", "Get User Details")
    typo = "departmnt == 'Sales' and first_name == 'Ada'"
    assert run_preset_bulk(session, preset, destination, ledger=ledger, where=typo) == []
    (said,) = [r.getMessage() for r in caplog.records if "matched nobody" in r.getMessage()]
    assert "filter=(departmnt eq 'Sales') and (first_name eq 'Ada')" in said
    assert "'departmnt' is no field the integration" in said
    assert "first_name' is" not in said  # a standard field: it exists
    assert "translate_where = false" in said
    # What that says: the read of every user names the field no one has.
    table = attrs.evolve(destination.settings, translate_where=False)
    with (
        OomnitzaDestination(table, oomnitza.test_credential()) as every_user,
        pytest.raises(PresetError, match="uses 'departmnt', which no selected person has"),
    ):
        run_preset_bulk(session, preset, every_user, ledger=ledger, where=typo)
    # Named fields that match nobody, or a guess that matches someone, say nothing.
    caplog.clear()
    assert (
        run_preset_bulk(
            session, preset, destination, ledger=ledger, where="email == 'nobody@example.com'"
        )
        == []
    )
    found = run_preset_bulk(
        session, preset, destination, ledger=ledger, where="department == 'Sales'", dry_run=True
    )
    assert len(found) == 3
    assert not [r for r in caplog.records if "matched nobody" in r.getMessage()]


def test_a_filter_oomnitza_refuses_falls_back_to_reading_every_user(
    oomnitza, ids, destination, ledger, session
) -> None:
    from oomnitza_connect.testing.emulator import Fault

    oomnitza.faults.add(Fault.server_error(400), endpoint="users", times=1)
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        destination,
        ledger=ledger,
        where="department == 'Sales'",
        dry_run=True,
    )
    assert len(results) == 3
    assert user_reads(oomnitza) == [
        (0, "(department eq 'Sales')"),
        (0, None),
        (200, None),
        (400, None),
    ]


def test_a_role_name_is_filtered_by_its_oomnitza_id(oomnitza, ids, ledger, session) -> None:
    oomnitza.add_user({"username": "boss", "email": "boss@example.com", "role": 3})
    table = DestinationSettings(
        type=DestinationKind.OOMNITZA,
        url=oomnitza.base_url,
        credential="oomnitza-test",
        roles={"Admin": 3, "Employee": 25},
    )
    with OomnitzaDestination(table, oomnitza.test_credential()) as named:
        assert named.where_filter("role == 'Admin'") == "(role eq 3)"
        assert named.where_filter("role == 'Nobody'") is None  # no id: decided here
        people = list(named.iter_candidates("role == 'Admin'"))
    assert [p.fields["email"] for p in people] == ["boss@example.com"]
    assert people[0].fields["role"] == "Admin"


def test_linked_only_takes_only_people_with_an_account_at_the_vendor(
    ids, destination, ledger, session
) -> None:
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        destination,
        ledger=ledger,
        where="true",
        linked_only=True,
    )
    assert sorted(r.person or "" for r in results) == sorted(
        fields["email"] for _, fields in ACME_PEOPLE
    )


def test_a_patch_oomnitza_refuses_fails_that_person_alone(
    oomnitza, ids, destination, ledger, session
) -> None:
    # Mapping Bob's email onto Cy's: Oomnitza answers 400, the email is unique.
    overrides = PresetOverrides(response_mappings={"email": "cy@example.com"})
    bob = destination.find_person("email", "bob@example.com")
    result = run_preset(
        session,
        get_preset("acme", "Get User Details"),
        person=bob,
        store=destination,
        ledger=ledger,
        overrides=overrides,
    )
    assert not result.ok
    assert "could not be stored" in (result.error or "")
    assert "oomnitza" in (result.error or "")
    assert "400" in (result.error or "")
    assert oomnitza.users[ids["bob@example.com"]]["email"] == "bob@example.com"
    [run] = list(ledger.iter_workflow_runs(vendor="acme"))
    assert not run.ok


def test_a_saas_user_target_is_refused_before_any_call(
    ids, destination, ledger, session, acme
) -> None:
    bob = destination.find_person("email", "bob@example.com")
    acme.requests.clear()
    with pytest.raises(PresetError) as refused:
        run_preset(
            session,
            get_preset("acme", "Get User Role"),
            person=bob,
            store=destination,
            ledger=ledger,
        )
    message = str(refused.value)
    assert "nothing was called" in message
    assert "saas_user.acme_role" in message
    assert "Oomnitza keeps no fields of its own on a SaaS user" in message
    assert '[destination.fields] table (e.g. "saas_user.acme_role" = "acme_acme_role"' in message
    with pytest.raises(PresetError, match=r"saas_user\.acme_role"):
        run_preset_bulk(
            session, get_preset("acme", "Get User Role"), destination, ledger=ledger, where="true"
        )
    assert list(acme.requests) == []
    assert list(ledger.iter_workflow_runs(vendor="acme")) == []


@pytest.mark.parametrize(
    "field",
    ["role", "PERMISSIONS_ID", "email", "user_id", "uid", "Role", "full_name", "last_login"],
)
def test_a_saas_user_field_sent_to_oomnitzas_own_user_field_is_refused(
    oomnitza, ids, ledger, session, acme, field
) -> None:
    table = DestinationSettings(
        type=DestinationKind.OOMNITZA,
        url=oomnitza.base_url,
        credential="oomnitza-test",
        fields={"saas_user.acme_role": field},
    )
    acme.requests.clear()
    with (
        OomnitzaDestination(table, oomnitza.test_credential()) as mapped,
        pytest.raises(PresetError, match=f"Oomnitza's own user field '{field}'"),
    ):
        run_preset_bulk(
            session, get_preset("acme", "Get User Role"), mapped, ledger=ledger, where="true"
        )
    assert list(acme.requests) == []
    assert oomnitza.patches == []


def test_a_saas_user_field_named_in_the_fields_table_goes_to_the_person(
    oomnitza, ids, ledger, session
) -> None:
    table = DestinationSettings(
        type=DestinationKind.OOMNITZA,
        url=oomnitza.base_url,
        credential="oomnitza-test",
        fields={"saas_user.acme_role": "acme_role"},
    )
    with OomnitzaDestination(table, oomnitza.test_credential()) as mapped:
        results = run_preset_bulk(
            session,
            get_preset("acme", "Get User Role"),
            mapped,
            ledger=ledger,
            where="department == 'Sales'",
            linked_only=True,
        )
    by_person = {r.person: r for r in results}
    assert by_person["bob@example.com"].ok, by_person["bob@example.com"].error
    assert by_person["bob@example.com"].mapped == {"acme_role": "member"}
    assert oomnitza.users[ids["bob@example.com"]]["acme_role"] == "member"
    assert "acme_role" not in oomnitza.users[ids["ada@example.com"]]
    assert (ids["bob@example.com"], {"acme_role": "member"}) in patches(oomnitza)


# -- the CLI ---------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path, acme, oomnitza) -> Path:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.delenv("OOMNITZA_CONNECT_DB", raising=False)
    acme_data = {
        "name": "acme-test",
        "vendor": "acme",
        "kind": "api_key",
        "token": ACME_TOKEN,
        "base_url": acme.base_url,
    }
    monkeypatch.setenv(credential_env_name("acme-test"), json.dumps(acme_data))
    oomnitza_data = {
        "name": "oomnitza-test",
        "vendor": "oomnitza",
        "kind": "api_key",
        "token": oomnitza.api_token,
        "header_name": "Authorization2",
        "header_prefix": "",
        "base_url": oomnitza.base_url,
    }
    monkeypatch.setenv(credential_env_name("oomnitza-test"), json.dumps(oomnitza_data))
    return tmp_path / "ledger.db"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main_command(), list(args), catch_exceptions=False)


def main_command() -> Any:
    from oomnitza_connect.cli import main

    return main


def test_cli_presets_run_for_a_person_in_oomnitza_writes_back(cli_env, oomnitza, ids) -> None:
    result = invoke(
        "presets", "run", "acme", "Get User Details", "--credential", "acme-test",
        "--person", "ada@example.com", "--oomnitza", "oomnitza-test", "--db", str(cli_env),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mapped"]["Acme Title"] == "Engineer"
    assert oomnitza.users[ids["ada@example.com"]]["acme_title"] == "Engineer"
    with SQLiteStore(cli_env) as ledger:
        assert [r.person_id for r in ledger.iter_workflow_runs()] == [ids["ada@example.com"]]
        assert list(ledger.iter_people()) == []  # nobody was copied into the store


def test_cli_presets_run_takes_the_integrations_oomnitza_destination(
    cli_env, oomnitza, ids, tmp_path, acme
) -> None:
    integration = tmp_path / "acme.toml"
    integration.write_text(
        'name = "acme-int"\nvendor = "acme"\ncredential = "acme-test"\n'
        f'base_url = "{acme.base_url}"\n'
        f'[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
        'credential = "oomnitza-test"\n[destination.fields]\n"Acme Title" = "title_at_acme"\n',
        encoding="utf-8",
    )
    result = invoke(
        "presets", "run", "acme", "Get User Details", "--integration", str(integration),
        "--where", "department == 'Sales'", "--db", str(cli_env), "--json",
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # gone@example.com has no acme account
    assert oomnitza.users[ids["bob@example.com"]]["title_at_acme"] == "Sales"
    assert oomnitza.users[ids["cy@example.com"]]["title_at_acme"] == "Sales"
    assert "title_at_acme" not in oomnitza.users[ids["ada@example.com"]]
    missing = invoke(
        "presets", "run", "acme", "Get User Details", "--integration", str(integration),
        "--person", "nobody@example.com", "--db", str(cli_env),
    )  # fmt: skip
    assert missing.exit_code == 2
    assert "nobody@example.com" in missing.output


def test_cli_people_lists_oomnitza(cli_env, oomnitza, ids) -> None:
    result = invoke("people", "--oomnitza", "oomnitza-test", "--json")
    assert result.exit_code == 0, result.output
    people = json.loads(result.output)
    assert len(people) == len(ACME_PEOPLE) + EXTRA_PEOPLE
    ada = next(p for p in people if p["email"] == "ada@example.com")
    assert ada["id"] == ids["ada@example.com"]
    linked = invoke("people", "--oomnitza", "oomnitza-test", "--vendor", "acme", "--csv")
    assert linked.exit_code == 0, linked.output
    rows = linked.output.strip().splitlines()
    assert len(rows) == 1 + len(ACME_PEOPLE)
    assert not cli_env.exists()  # listing Oomnitza needs no local store


def test_cli_oomnitza_option_refuses_another_vendors_credential(cli_env) -> None:
    result = CliRunner().invoke(main_command(), ["people", "--oomnitza", "acme-test"])
    assert result.exit_code == 2
    assert "not oomnitza" in result.output
