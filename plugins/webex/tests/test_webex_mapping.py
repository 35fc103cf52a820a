"""The real Webex samples parse and map; the wire's quirks are read correctly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from oomnitza_connect_webex.mapping import FIELDS, parse_flag, role_ids
from oomnitza_connect_webex.plugin import vendor
from webex_support import load_sample

from oomnitza_connect.errors import MappingError

to_record = vendor.to_record  # the one reading of a person: the description's field paths

SAMPLE_ID = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9mNWIzNjE4Ny1jOGRkLTQ3MjctOGIyZi1mOWM0NDdmMjkwNDY"


@pytest.mark.parametrize(
    "name",
    [
        "webex_people_list.json",
        "webex_person_get.json",
        "webex_person_create_response.json",
        "webex_person_update_response.json",
    ],
)
def test_every_real_person_sample_parses(name) -> None:
    data = load_sample(name)
    raw = data["items"][0] if "items" in data else data
    record = to_record(raw)
    person = record.fields
    assert record.id == person["user_id"] == SAMPLE_ID
    assert person["email"] == "john.andersen@example.com"
    assert (person["first_name"], person["last_name"]) == ("John", "Andersen")
    assert person["invite_pending"] is False  # the sample sends the string "false"
    assert person["login_enabled"] is True  # ... and "true"
    assert person["type"] == "person"
    assert person["last_activity"] == datetime(2015, 10, 18, 14, 26, 16, 28000, tzinfo=UTC)
    # The spec's example joins two role ids into one string.
    assert len(person["role_ids"]) == 2


def test_the_sample_maps_to_every_declared_field_and_the_standard_mapping(connector) -> None:
    record = to_record(load_sample("webex_people_list.json")["items"][0])
    assert set(record.fields) == {spec.key for spec in FIELDS}
    mapped = connector.map_record(record)
    assert mapped["username"] == mapped["email"] == "john.andersen@example.com"
    assert mapped["Webex User Id"] == SAMPLE_ID
    assert (mapped["first_name"], mapped["last_name"], mapped["position"]) == (
        "John",
        "Andersen",
        "GM",
    )
    assert record.fields["org_id"].startswith("Y2lzY29")
    assert record.fields["status"] == "active"
    assert record.fields["created"] == datetime(2015, 10, 18, 14, 26, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wire", "read"),
    [("true", True), ("false", False), (True, True), (False, False), ("TRUE", True), (None, None)],
)
def test_flags_are_read_from_strings_and_booleans(wire, read) -> None:
    assert parse_flag(wire) is read
    raw = {"id": "p1", "emails": ["a@example.com"], "invitePending": wire, "loginEnabled": wire}
    fields = to_record(raw).fields
    assert fields["invite_pending"] is read
    assert fields["login_enabled"] is read


def test_status_and_last_activity_may_be_absent() -> None:
    record = to_record({"id": "p2", "emails": ["b@example.com"], "type": "appuser"})
    assert record.fields["status"] is None
    assert record.fields["last_activity"] is None
    assert record.fields["invite_pending"] is None
    assert record.fields["type"] == "appuser"


def test_role_ids_split_a_comma_joined_string() -> None:
    assert role_ids(["a,b", "c"]) == ("a", "b", "c")
    assert role_ids(None) == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["Y2lzY29zcGFyazovL3VzL1JPTEUvaWQ"], ("Y2lzY29zcGFyazovL3VzL1JPTEUvaWQ",)),
        (["a,b"], ("a", "b")),
        ([" a "], ("a",)),
        ([""], ()),
        ([7], ("7",)),
        (["a-b"], ("a-b",)),
    ],
)
def test_a_single_role_id_is_split_and_trimmed_like_many(raw, expected) -> None:
    assert role_ids(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"emails": ["x@example.com"]},
        {"id": "p3", "invitePending": "maybe"},
        {"id": "p4", "lastActivity": "yesterday"},
    ],
)
def test_a_malformed_person_is_a_mapping_error(raw) -> None:
    with pytest.raises(MappingError):
        to_record(raw)


def test_bots_are_filtered_by_default_and_guests_are_kept(connector) -> None:
    assert connector.info.default_filters == ("type != 'bot'",)


def test_one_unreadable_person_fails_alone(connector, emulator, session) -> None:
    broken = emulator.person_ids()[5]
    emulator.update_person(broken, loginEnabled="sometimes")
    unread = list(vendor.iter_users(session))
    assert [u.id_hint() for u in unread] == emulator.person_ids()
    failures = []
    for item in unread:
        try:
            record = item.read()
        except MappingError as exc:
            failures.append((item.id_hint(), str(exc)))
            continue
        assert connector.map_record(record)["Webex User Id"] == record.id
    assert len(failures) == 1
    assert failures[0][0] == broken
    assert "login_enabled" in failures[0][1]
    assert "sometimes" in failures[0][1]
