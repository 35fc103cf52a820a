"""Create, read, update and delete people, and the presets that do it, against the emulator."""

from __future__ import annotations

import pytest
from oomnitza_connect_webex.emulator import PEOPLE_READ, SPECIAL_KINDS, WebexEmulator, WebexFault
from oomnitza_connect_webex.people import (
    RoleNames,
    create_user,
    delete_user,
    find_user_by_email,
    merge_for_update,
    update_user,
    user_role,
)
from webex_support import fast_options, load_sample

from oomnitza_connect.errors import VendorAPIError
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.presets.engine import get_preset, run_preset


def _creates(emulator: WebexEmulator) -> int:
    return sum(1 for r in emulator.requests if r.endpoint == "people.create")


def test_create_user_adds_the_person_once(emulator, session) -> None:
    made = create_user(session, email="new.hire@example.com", first_name="New", last_name="Hire")
    assert made.created
    assert made.despite_error is None
    assert emulator.person(emulator.index_of(made.id))["displayName"] == "New Hire"
    again = create_user(session, email="new.hire@example.com", first_name="New", last_name="Hire")
    assert (again.id, again.created) == (made.id, False)
    assert _creates(emulator) == 1  # the second call looked the email up and stopped


def test_create_user_after_a_false_400_finds_the_person(emulator, session) -> None:
    emulator.faults.add(WebexFault.created_but_400(), endpoint="people.create")
    made = create_user(session, email="ghost@example.com", first_name="G", last_name="Host")
    assert made.created
    assert "HTTP 400" in (made.despite_error or "") or "400" in (made.despite_error or "")
    assert find_user_by_email(session, "ghost@example.com")["id"] == made.id
    assert _creates(emulator) == 1


def test_create_user_that_really_failed_raises(emulator, session) -> None:
    with pytest.raises(VendorAPIError) as raised:
        create_user(session, email="not-an-address", first_name="", last_name="")
    assert raised.value.status == 400
    assert raised.value.request_id


def test_update_user_reads_merges_and_puts_the_whole_record(emulator, session) -> None:
    person_id = emulator.person_ids()[12]
    before = emulator.person(12)
    updated = update_user(session, person_id, {"title": "Chief Tester"})
    assert updated["title"] == "Chief Tester"
    after = emulator.person(12)
    # Nothing else was lost, although the PUT replaces the whole record.
    for key in ("firstName", "lastName", "displayName", "department", "phoneNumbers"):
        assert after[key] == before[key]
    put = [r for r in emulator.requests if r.endpoint == "people.update"][-1].json()
    assert isinstance(put["loginEnabled"], bool)
    assert "id" not in put
    assert "status" not in put


def test_update_user_explains_a_missing_required_field(emulator, session) -> None:
    person_id = emulator.person_ids()[13]
    emulator.update_person(person_id, displayName=None)
    with pytest.raises(VendorAPIError) as raised:
        update_user(session, person_id, {"title": "X"})
    message = str(raised.value)
    assert raised.value.status == 400
    assert "displayName" in message
    assert "replaces the whole person" in message


def test_merge_for_update_keeps_writable_fields_and_booleans() -> None:
    sample = load_sample("webex_person_get.json")
    body = merge_for_update(sample, {"title": "CEO"})
    expected = load_sample("webex_person_update_request.json")
    assert set(body) - {"title"} <= set(expected) | {"title"}
    assert body["loginEnabled"] is True
    assert body["title"] == "CEO"
    assert len(body["roles"]) == 2  # the comma-joined ids went back as two ids


def test_delete_user_removes_the_person(emulator, session) -> None:
    person_id = emulator.person_ids()[20]
    delete_user(session, person_id)
    assert person_id not in emulator.expected_user_ids()


def test_delete_without_the_write_scope_names_it(connector, emulator) -> None:
    token = emulator.issue_person_token(0, scopes=(PEOPLE_READ,))
    credential = Credential(name="ro", vendor="webex", kind=AuthKind.API_KEY, token=token)
    session = connector.authenticate(credential, {}, options=fast_options(emulator))
    with session, pytest.raises(VendorAPIError) as raised:
        delete_user(session, emulator.person_ids()[20])
    assert "spark-admin:people_write" in str(raised.value)


def test_user_role_names_roles_with_one_roles_call(emulator, session) -> None:
    roles = RoleNames(session.http)
    admin = user_role(session, emulator.person_id(0), roles)
    user_admin = user_role(session, emulator.person_id(SPECIAL_KINDS.index("user_admin")), roles)
    plain = user_role(session, emulator.person_ids()[15], roles)
    assert admin.role_names == ("Full Administrator",)
    assert admin.status == "active"
    assert admin.last_activity is not None
    assert user_admin.role == "User and Device Administrator"
    assert plain.role is None
    assert sum(1 for r in emulator.requests if r.endpoint == "roles.list") == 1


@pytest.mark.parametrize("listed", ["after", "before"])
def test_a_role_id_two_roles_share_is_named_by_both_whatever_the_order(
    emulator, session, caplog, listed
) -> None:
    # Webex ids name one role each; an org that lists one id twice (two pages of one
    # listing, a renamed role) gets both names, sorted: the same answer in any order.
    shared = (emulator.role_id("full_admin"), "Full Administrator (EU)")
    if listed == "before":
        emulator.roles.insert(0, shared)
    else:
        emulator.roles.append(shared)
    emulator.roles.append((emulator.role_id("user_admin"), "User and Device Administrator"))
    roles = RoleNames(session.http)
    admin = user_role(session, emulator.person_id(0), roles)
    assert admin.role_names == ("Full Administrator / Full Administrator (EU)",)
    assert admin.role == "Full Administrator / Full Administrator (EU)"
    assert admin.role_ids == (emulator.role_id("full_admin"),)
    # The same name listed twice is one name.
    user_admin = user_role(session, emulator.person_id(SPECIAL_KINDS.index("user_admin")), roles)
    assert user_admin.role == "User and Device Administrator"
    (said,) = [r.getMessage() for r in caplog.records if "several names" in r.getMessage()]
    assert emulator.role_id("full_admin") in said
    assert "Full Administrator, Full Administrator (EU)" in said


def test_user_role_declares_the_targets_its_mapper_writes(emulator, session) -> None:
    # A destination that cannot keep SaaS-user fields refuses User Role from these,
    # before any call; they must be exactly what the mapper returns.
    from oomnitza_connect_webex.people import USER_ROLE_TARGETS, user_role_mappings

    from oomnitza_connect.presets.engine import preset_targets

    preset = get_preset("webex", "User Role")
    assert preset_targets(preset) == list(USER_ROLE_TARGETS)
    raw = session.http.request_json(
        "GET", f"people/{emulator.person_id(0)}", endpoint="people.get"
    ).data
    assert tuple(user_role_mappings(session, raw)) == USER_ROLE_TARGETS


def test_the_presets_run_through_the_core(emulator, session) -> None:
    person_id = emulator.person_ids()[14]
    details = run_preset(
        session, get_preset("webex", "Get User Details"), variables={"webex_user_id": person_id}
    )
    assert details.ok, details.error
    assert details.mapped["Webex User Id"] == person_id
    assert details.mapped["Webex Status"] == emulator.person(14).get("status")
    update = run_preset(
        session,
        get_preset("webex", "Update User"),
        variables={"webex_user_id": person_id, "first_name": "Renamed", "last_name": "Person"},
    )
    assert update.ok, update.error
    assert emulator.person(14)["displayName"] == "Renamed Person"
    assert emulator.person(14)["department"]  # kept: the record was read and merged
    created = run_preset(
        session,
        get_preset("webex", "Create User"),
        variables={"email": "preset.made@example.com", "first_name": "Pre", "last_name": "Set"},
    )
    assert created.ok, created.error
    deleted = run_preset(
        session, get_preset("webex", "Delete User"), variables={"webex_user_id": person_id}
    )
    assert deleted.ok, deleted.error
    assert deleted.status == 204
    assert person_id not in emulator.expected_user_ids()
