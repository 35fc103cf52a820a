"""Presets against people in a real SQLite store: mapping, run records, bulk runs, merges."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from presets_support import (
    ACME_PEOPLE,
    ACME_TOKEN,
    LEAKED_CLIENT_SECRET,
    REPLACER_TOKEN,
    AcmeEmulator,
    ReplacerEmulator,
    acme_credential,
    add_people,
    body_of,
    registered_vendors,
    replacer_credential,
)

from oomnitza_connect.connectors import get_connector
from oomnitza_connect.errors import PresetError
from oomnitza_connect.models import FieldType, Person, WorkflowRun
from oomnitza_connect.presets.engine import (
    PresetOverrides,
    PresetResult,
    get_preset,
    run_preset,
    run_preset_bulk,
)
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "store.db")
    try:
        add_people(opened, "acme", ACME_PEOPLE)
        yield opened
    finally:
        opened.close()


@pytest.fixture
def acme() -> Iterator[AcmeEmulator]:
    with registered_vendors(), AcmeEmulator() as emulator:
        yield emulator


@pytest.fixture
def session(acme: AcmeEmulator) -> Iterator[VendorSession]:
    with get_connector("acme").authenticate(acme_credential(acme)) as opened:
        yield opened


def person(store: SQLiteStore, email: str) -> Person:
    found = store.find_person("email", email)
    assert found is not None
    return found


def runs(store: SQLiteStore, preset: str | None = None) -> list[WorkflowRun]:
    return list(store.iter_workflow_runs(vendor="acme", preset=preset))


# -- one person ------------------------------------------------------------------


def test_person_variables_come_from_the_store_and_results_land_on_the_person(
    store: SQLiteStore, session: VendorSession, acme: AcmeEmulator
) -> None:
    ada = person(store, "ada@example.com")
    result = run_preset(session, get_preset("acme", "Get User Details"), person=ada, store=store)
    assert result.ok, result.error
    assert acme.requests[-1].path == "/users/U1"  # acme_user_id from Ada's acme account
    updated = person(store, "ada@example.com")
    assert updated.fields["Acme Title"] == "Engineer"
    assert json.loads(updated.fields["Acme Details"])["email"] == "ada@example.com"
    [run] = runs(store)
    assert run.ok
    assert run.person_id == ada.id
    assert run.status == 200
    assert run.preset == "Get User Details"
    assert run.request["url"].endswith("/users/U1")
    assert run.response["title"] == "Engineer"
    assert run.mapped["Acme Title"] == "Engineer"
    assert run.id == result.run_id


def test_saas_user_targets_are_written_to_the_vendor_account(
    store: SQLiteStore, session: VendorSession
) -> None:
    bob = person(store, "bob@example.com")
    result = run_preset(session, get_preset("acme", "Get User Role"), person=bob, store=store)
    assert result.ok, result.error
    [account] = [a for a in store.iter_saas_users(vendor="acme") if a.vendor_user_id == "U2"]
    assert account.fields["acme_role"] == "member"
    assert "acme_role" not in person(store, "bob@example.com").fields


def test_a_failed_call_is_recorded_and_changes_nothing(
    store: SQLiteStore, session: VendorSession
) -> None:
    gone = person(store, "gone@example.com")
    result = run_preset(session, get_preset("acme", "Get User Details"), person=gone, store=store)
    assert not result.ok
    assert result.status == 404
    [run] = runs(store)
    assert not run.ok
    assert run.status == 404
    assert "User not found" in (run.error or "")
    assert "Acme Title" not in person(store, "gone@example.com").fields


def test_a_dry_run_is_recorded_as_such_and_writes_no_fields(
    store: SQLiteStore, session: VendorSession, acme: AcmeEmulator
) -> None:
    before = len(acme.requests)
    ada = person(store, "ada@example.com")
    result = run_preset(
        session, get_preset("acme", "Get User Details"), person=ada, store=store, dry_run=True
    )
    assert result.dry_run
    assert len(acme.requests) == before
    [run] = runs(store)
    assert run.dry_run
    assert run.request["method"] == "GET"
    assert "Acme Title" not in person(store, "ada@example.com").fields


def test_no_secret_reaches_the_store(store: SQLiteStore, session: VendorSession) -> None:
    ada = person(store, "ada@example.com")
    result = run_preset(
        session,
        get_preset("acme", "Who Am I"),
        person=ada,
        store=store,
        overrides=PresetOverrides(query={"echo": ACME_TOKEN}, headers={"X-Trace": "t"}),
    )
    assert result.ok, result.error
    store_file = Path(store.path).read_bytes()
    for suffix in ("-wal", ""):
        wal = Path(store.path + suffix)
        if wal.exists():
            store_file += wal.read_bytes()
    assert ACME_TOKEN.encode() not in store_file
    assert LEAKED_CLIENT_SECRET.encode() not in store_file
    [run] = runs(store)
    recorded = json.dumps([run.request, run.response, run.mapped, run.error])
    assert "Authorization" not in recorded
    assert ACME_TOKEN not in recorded
    assert person(store, "ada@example.com").fields["Acme Note"] == "you called with **********"


# -- many people -------------------------------------------------------------------


def test_bulk_runs_the_preset_for_every_matching_person(
    store: SQLiteStore, session: VendorSession, acme: AcmeEmulator
) -> None:
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        store,
        where="department == 'Sales'",
    )
    by_person = {r.person: r for r in results}
    assert set(by_person) == {"bob@example.com", "cy@example.com", "gone@example.com"}
    assert by_person["bob@example.com"].ok
    assert by_person["cy@example.com"].ok
    assert not by_person["gone@example.com"].ok  # one failure does not stop the others
    assert "404" in (by_person["gone@example.com"].error or "")
    assert person(store, "bob@example.com").fields["Acme Title"] == "Sales"
    assert "Acme Title" not in person(store, "ada@example.com").fields
    assert sorted(r.request["url"].rsplit("/", 1)[1] for r in results) == ["U2", "U3", "U9"]
    assert len(runs(store)) == 3


def test_bulk_without_a_filter_runs_for_everyone_in_store_order(
    store: SQLiteStore, session: VendorSession
) -> None:
    seen: list[PresetResult] = []
    counted: list[int] = []
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Role"),
        store,
        on_start=counted.append,
        on_result=seen.append,
    )
    assert counted == [4]
    assert [r.person for r in results] == [email for _, email in _emails()]
    assert sorted(r.person or "" for r in seen) == sorted(r.person or "" for r in results)
    assert [r.ok for r in results] == [True, True, True, False]


def _emails() -> list[tuple[str, str]]:
    return [(user_id, fields["email"]) for user_id, fields in ACME_PEOPLE]


def test_bulk_concurrency_is_bounded_and_parallel(store: SQLiteStore, tmp_path: Path) -> None:
    with registered_vendors(), AcmeEmulator(delay=0.15) as slow:
        more = [(f"U{n}", {"email": f"p{n}@example.com"}) for n in range(10, 18)]
        add_people(store, "acme", more)
        slow.users.update({uid: {"id": uid, "title": "x"} for uid, _ in more})
        with get_connector("acme").authenticate(acme_credential(slow)) as session:
            started = time.monotonic()
            results = run_preset_bulk(
                session,
                get_preset("acme", "Get User Details"),
                store,
                where="email.startswith('p')",
                concurrency=3,
            )
            elapsed = time.monotonic() - started
    assert len(results) == 8
    assert all(r.ok for r in results), [r.error for r in results]
    assert slow.max_in_flight <= 3
    assert slow.max_in_flight >= 2
    assert elapsed < 8 * 0.15  # would be at least 1.2 s one at a time


def test_bulk_reports_a_variable_missing_for_one_person_and_goes_on(
    store: SQLiteStore, session: VendorSession
) -> None:
    add_people(store, "other", [("O1", {"email": "solo@example.com"})])
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        store,
        where="email in ['solo@example.com', 'ada@example.com']",
    )
    by_person = {r.person: r for r in results}
    assert by_person["ada@example.com"].ok
    solo = by_person["solo@example.com"]
    assert not solo.ok
    assert "'acme_user_id'" in (solo.error or "")


def test_bulk_linked_only_skips_people_without_an_account(
    store: SQLiteStore, session: VendorSession
) -> None:
    add_people(store, "other", [("O1", {"email": "solo@example.com"})])
    results = run_preset_bulk(session, get_preset("acme", "Get User Role"), store, linked_only=True)
    assert "solo@example.com" not in {r.person for r in results}
    assert len(results) == 4


def test_bulk_filter_naming_an_unknown_field_is_an_error(
    store: SQLiteStore, session: VendorSession
) -> None:
    with pytest.raises(PresetError, match="'no_such_field'"):
        run_preset_bulk(
            session, get_preset("acme", "Get User Details"), store, where="no_such_field == 1"
        )
    with pytest.raises(PresetError, match="syntax"):
        run_preset_bulk(session, get_preset("acme", "Get User Details"), store, where="a ==")


def test_bulk_dry_run_sends_nothing(
    store: SQLiteStore, session: VendorSession, acme: AcmeEmulator
) -> None:
    before = len(acme.requests)
    results = run_preset_bulk(
        session,
        get_preset("acme", "Update User Title"),
        store,
        variables={"title": "Boss"},
        dry_run=True,
    )
    assert len(results) == 4
    assert all(r.dry_run and r.ok for r in results)
    assert {r.request["body"]["title"] for r in results if r.request} == {"Boss"}
    assert len(acme.requests) == before
    assert acme.users["U1"]["title"] == "Engineer"


# -- read-merge-write ------------------------------------------------------------------


@pytest.fixture
def replacer(store: SQLiteStore) -> Iterator[tuple[ReplacerEmulator, VendorSession]]:
    add_people(store, "replacer", [("P1", {"email": "ada@example.com"})])
    with registered_vendors(), ReplacerEmulator() as emulator:
        credential = replacer_credential(emulator)
        with get_connector("replacer").authenticate(credential) as opened:
            yield emulator, opened


def test_read_merge_write_keeps_fields_the_update_does_not_mention(
    store: SQLiteStore, replacer: tuple[ReplacerEmulator, VendorSession]
) -> None:
    emulator, session = replacer
    ada = person(store, "ada@example.com")
    result = run_preset(
        session,
        get_preset("replacer", "Update User"),
        person=ada,
        store=store,
        variables={"title": "Chief Engineer"},
    )
    assert result.ok, result.error
    stored = emulator.people["P1"]
    assert stored["title"] == "Chief Engineer"
    assert stored["department"] == "R&D"
    assert stored["licenses"] == ["L-CALLING", "L-MEETINGS"]
    assert stored["displayName"] == "Ada Lovelace"
    methods = [(r.method, r.path) for r in list(emulator.requests)[-2:]]
    assert methods == [("GET", "/v1/people/P1"), ("PUT", "/v1/people/P1")]
    assert body_of(emulator.requests[-1])["department"] == "R&D"
    assert person(store, "ada@example.com").fields["Replacer Title"] == "Chief Engineer"
    assert REPLACER_TOKEN not in json.dumps(result.to_dict())


def test_without_the_merge_the_vendor_drops_unmentioned_fields(
    replacer: tuple[ReplacerEmulator, VendorSession],
) -> None:
    # The control: proves the emulator really replaces the whole record.
    emulator, session = replacer
    result = run_preset(
        session,
        get_preset("replacer", "Replace User"),
        variables={"replacer_user_id": "P1", "display_name": "Ada", "title": "CEO"},
    )
    assert result.ok, result.error
    assert "department" not in emulator.people["P1"]


def test_read_merge_write_dry_run_shows_both_requests_and_sends_none(
    replacer: tuple[ReplacerEmulator, VendorSession],
) -> None:
    emulator, session = replacer
    before = len(emulator.requests)
    result = run_preset(
        session,
        get_preset("replacer", "Update User"),
        variables={"replacer_user_id": "P1", "title": "X"},
        dry_run=True,
    )
    assert result.request is not None
    assert result.request["method"] == "PUT"
    assert result.request["body"] == {"title": "X"}
    assert result.request["read_request"]["method"] == "GET"
    assert result.request["read_request"]["url"].endswith("/v1/people/P1")
    assert len(emulator.requests) == before


# -- mapping details -----------------------------------------------------------------


def test_a_whole_response_goes_to_a_long_text_custom_field(
    store: SQLiteStore, session: VendorSession
) -> None:
    ada = person(store, "ada@example.com")
    run_preset(session, get_preset("acme", "Get User Details"), person=ada, store=store)
    types = {field.label: field.type for field in store.custom_fields()}
    assert types["Acme Details"] == FieldType.TEXT
    assert types["Acme Title"] != FieldType.TEXT


def test_caller_mappings_replace_the_defaults_and_standard_labels_use_their_keys(
    store: SQLiteStore, session: VendorSession
) -> None:
    ada = person(store, "ada@example.com")
    result = run_preset(
        session,
        get_preset("acme", "Get User Details"),
        person=ada,
        store=store,
        overrides=PresetOverrides(
            response_mappings={"Position": "{{response.title}}", "Role": "{{response.name}}"}
        ),
    )
    assert result.mapped == {"position": "Engineer", "role": "Ada"}
    fields = person(store, "ada@example.com").fields
    assert fields["position"] == "Engineer"
    assert fields["role"] == "Ada"
    assert "Acme Title" not in fields
    nothing = run_preset(
        session,
        get_preset("acme", "Get User Details"),
        person=ada,
        store=store,
        overrides=PresetOverrides(response_mappings={}),
    )
    assert nothing.ok
    assert nothing.mapped == {}


def test_a_mapping_the_store_refuses_fails_that_person_only(
    store: SQLiteStore, session: VendorSession
) -> None:
    # Every acme user maps to the same email, which is unique: only the
    # person who already has it can take it.
    results = run_preset_bulk(
        session,
        get_preset("acme", "Get User Details"),
        store,
        where="email in ['ada@example.com', 'bob@example.com']",
        overrides=PresetOverrides(response_mappings={"Email": "ada@example.com"}),
    )
    by_person = {r.person: r for r in results}
    assert by_person["ada@example.com"].ok
    bob = by_person["bob@example.com"]
    assert not bob.ok
    assert "could not be stored" in (bob.error or "")
    assert person(store, "bob@example.com").fields["email"] == "bob@example.com"
    [bob_run] = [r for r in runs(store) if r.person_id == bob.person_id]
    assert not bob_run.ok


def test_a_mapping_that_finds_nothing_fails_with_its_target(
    store: SQLiteStore, session: VendorSession
) -> None:
    result = run_preset(
        session,
        get_preset("acme", "Delete User"),
        variables={"acme_user_id": "U3"},
        store=store,
        overrides=PresetOverrides(response_mappings={"Deleted Id": "{{response.id}}"}),
    )
    assert not result.ok
    assert result.status == 204
    assert "'Deleted Id'" in (result.error or "")
