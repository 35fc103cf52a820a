"""The real Intercom samples parse and map through the declared field paths; sparse and odd
admins are tolerated, teams listed among them are skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from intercom_support import load_sample
from oomnitza_connect_intercom import vendor
from oomnitza_connect_intercom.vendor import NOT_AN_ADMIN

from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import MappingError

SYNC_TIME = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
FIELDS = vendor.fields
STANDARD_MAPPING = vendor.standard_mapping

STANDARD_LABELS = [
    "Avatar",
    "Away Mode Enabled?",
    "Away Mode Reassign?",
    "Connect: Intercom Version",
    "Connector Sync Time",
    "Email",
    "Has Inbox Seat?",
    "Intercom ID",
    "Job Title",
    "Name",
    "Primary Team IDs",
    "Type",
]


def test_the_standard_fields_are_exactly_the_products_list() -> None:
    assert [spec.label for spec in FIELDS] == STANDARD_LABELS
    assert [spec.key for spec in FIELDS if spec.unique] == ["intercom_id"]


def test_the_standard_mapping(connector: Connector) -> None:
    by_target = {m.target: m for m in STANDARD_MAPPING}
    assert by_target["username"].source == by_target["email"].source == "email"
    assert by_target["Intercom ID"].source == "intercom_id"
    assert by_target["Intercom ID"].unique
    assert by_target["Connect: Intercom Version"].source == "intercom_version"
    assert by_target["connector_sync_time"].source == "connector_sync_time"
    # Teams are skipped while listing (skip_reason), so no filter is needed for them.
    assert connector.info.default_filters == ()


def test_the_admins_list_sample_parses_and_maps(connector: Connector) -> None:
    (raw,) = load_sample("intercom_2.11_admins_list.json")["admins"]
    record = vendor.to_record(raw, api_version="2.11", fetched_at=SYNC_TIME)
    assert record.id == "991267397"
    assert record.fields["job_title"] is None  # Intercom's own example has none
    assert record.fields["avatar"] is None
    assert record.fields["primary_team_ids"] == []
    assert record.fields["has_inbox_seat"] is True
    person = connector.map_record(record)
    assert person["username"] == person["email"] == "admin7@email.com"
    assert person["Intercom ID"] == "991267397"
    assert person["Connect: Intercom Version"] == "2.11"
    assert person["connector_sync_time"] == SYNC_TIME


def test_the_retrieve_and_me_samples_parse() -> None:
    retrieved = vendor.to_record(load_sample("intercom_2.11_admin_retrieve.json"))
    me = vendor.to_record(load_sample("intercom_2.11_me.json"))
    assert (retrieved.id, retrieved.fields["name"]) == ("991267399", "Ciaran9 Lee")
    assert me.fields["avatar"] == (
        "https://static.intercomassets.com/assets/default-avatars/admins/128.png"
    )
    # /me's example has no team_priority_level (nor team_ids) at all.
    assert me.fields["primary_team_ids"] == []
    assert (me.fields["type"], me.fields["has_inbox_seat"]) == ("admin", True)


@pytest.mark.parametrize(
    "changes",
    [
        {"avatar": None},
        {"team_ids": None, "team_priority_level": None},
        {"team_priority_level": {"primary_team_ids": None, "secondary_team_ids": None}},
        {"job_title": None},
        {"name": "", "job_title": "   "},
    ],
)
def test_sparse_admins_are_tolerated(changes) -> None:
    raw = {**load_sample("intercom_2.11_admin_retrieve.json"), **changes}
    record = vendor.to_record(raw, api_version="2.11")
    assert record.fields["primary_team_ids"] == []
    assert record.fields["avatar"] is None
    assert record.fields["intercom_id"] == "991267399"


def test_team_priority_and_avatar_are_read() -> None:
    raw = {
        **load_sample("intercom_2.11_admin_retrieve.json"),
        "team_ids": [814000, 814002],
        "team_priority_level": {"primary_team_ids": [814000], "secondary_team_ids": [814002]},
        "avatar": {"type": "avatar", "image_url": "https://example.com/a.png"},
        "away_mode_enabled": True,
        "job_title": "Support Lead",
    }
    fields = vendor.to_record(raw, api_version="2.11").fields
    assert fields["primary_team_ids"] == [814000]
    assert fields["avatar"] == "https://example.com/a.png"
    assert fields["away_mode_enabled"] is True
    assert fields["job_title"] == "Support Lead"


def test_a_team_entry_is_skipped_and_an_admin_is_not() -> None:
    team = {"type": "team", "id": "814000", "name": "Support", "admin_ids": ["1"]}
    assert vendor.skip_reason(team) == NOT_AN_ADMIN
    # Whatever the vendor sends as a type, the reason stays the same short text.
    assert vendor.skip_reason({**team, "type": "lone \ud800 " + "h" * 1000}) == NOT_AN_ADMIN
    admin = load_sample("intercom_2.11_admin_retrieve.json")
    assert vendor.skip_reason(admin) is None
    assert vendor.skip_reason({**admin, "type": None}) is None  # no type: an admin
    assert vendor.to_record({**admin, "type": None}).fields["type"] == "admin"


def test_an_entry_without_an_id_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="without an id"):
        vendor.to_record({"type": "admin", "email": "x@example.com"})


@pytest.mark.parametrize(
    "team_priority_level",
    [{"primary_team_ids": "lots"}, {"primary_team_ids": 814000}, {"primary_team_ids": ["x"]}],
)
def test_wrongly_typed_team_ids_name_the_admin(team_priority_level) -> None:
    raw = {
        **load_sample("intercom_2.11_admin_retrieve.json"),
        "team_priority_level": team_priority_level,
    }
    with pytest.raises(MappingError, match="991267399") as caught:
        vendor.to_record(raw)
    assert caught.value.field == "primary_team_ids"


def test_a_wrongly_typed_flag_names_the_admin_and_the_field() -> None:
    raw = {**load_sample("intercom_2.11_admin_retrieve.json"), "away_mode_enabled": "maybe"}
    with pytest.raises(MappingError, match="991267399") as caught:
        vendor.to_record(raw)
    assert caught.value.field == "away_mode_enabled"
