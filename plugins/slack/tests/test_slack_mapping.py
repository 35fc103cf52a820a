"""Slack's real sample payloads and every special kind of user parse and map."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oomnitza_connect_slack.emulator import SPECIAL_KINDS, SlackEmulator
from oomnitza_connect_slack.vendor import vendor
from slack_support import load_sample

from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import MappingError
from oomnitza_connect.sync.mapping import record_passes, record_variables

FIELDS = vendor.fields
DEFAULT_FILTERS = vendor.default_filters
to_record = vendor.to_record
DECLARED = {spec.key for spec in FIELDS}


def _passes_default_filters(record) -> bool:
    return record_passes(DEFAULT_FILTERS, record_variables(record, {}))


def test_users_list_sample_parses_into_records() -> None:
    members = load_sample("slack_users_list.json")["members"]
    records = [to_record(member) for member in members]
    spengler, glinda = records
    assert spengler.id == "W012A3CDE"
    assert spengler.fields["user_name"] == "spengler"
    assert spengler.fields["email"] == "spengler@ghostbusters.example.com"
    assert spengler.fields["real_name"] == "Egon Spengler"  # the profile's, not "spengler"
    assert spengler.fields["first_name"] is None  # absent in the profile
    assert spengler.fields["is_admin"] is True
    assert spengler.fields["team_id"] == "T012AB3C4"
    assert spengler.fields["updated"] == datetime(2017, 8, 7, 20, 44, 46, tzinfo=UTC)
    assert glinda.fields["title"] == "Glinda the Good"
    assert glinda.fields["first_name"] == "Glinda"
    assert glinda.fields["last_name"] == "Southgood"
    # Slack's blank strings mean "not filled in".
    assert glinda.fields["phone"] is None
    assert glinda.fields["skype"] is None
    # The second member has no is_app_user at all: a real missing optional field.
    assert "is_app_user" not in members[1]
    assert glinda.fields["is_app_user"] is False
    for record in records:
        assert set(record.fields) == DECLARED
        assert record.raw["id"] == record.id


@pytest.mark.parametrize("sample", ["slack_users_info.json", "slack_users_lookupByEmail.json"])
def test_single_user_samples_parse(sample: str) -> None:
    record = to_record(load_sample(sample)["user"])
    assert record.id == "W012A3CDE"
    assert record.fields["email"] == "spengler@ghostbusters.example.com"
    assert record.fields["time_zone"] == "America/Los_Angeles"


def test_sample_maps_with_the_standard_mapping(connector: Connector) -> None:
    glinda = to_record(load_sample("slack_users_list.json")["members"][1])
    person = connector.map_record(glinda)
    assert person["username"] == "glinda"
    assert person["email"] == "glenda@south.oz.coven"
    assert person["Slack User Id"] == "W07QCRPA4"
    assert person["first_name"] == "Glinda"
    assert person["last_name"] == "Southgood"
    assert person["position"] == "Glinda the Good"
    assert person["phone_number"] is None
    assert isinstance(person["connector_sync_time"], datetime)


def test_email_is_lower_cased_by_the_standard_mapping(connector: Connector) -> None:
    raw = load_sample("slack_users_info.json")["user"]
    raw = {**raw, "profile": {**raw["profile"], "email": "Egon.Spengler@GhostBusters.example.com"}}
    record = to_record(raw)
    assert record.fields["email"] == "Egon.Spengler@GhostBusters.example.com"  # faithful
    assert connector.map_record(record)["email"] == "egon.spengler@ghostbusters.example.com"


def test_null_and_missing_profile_fields_are_tolerated() -> None:
    for raw in (
        {"id": "U1"},
        {"id": "U2", "profile": None, "is_bot": None, "deleted": None, "updated": None},
        {"id": "U3", "profile": {"email": None, "title": "", "phone": "   ", "first_name": None}},
    ):
        record = to_record(raw)
        assert set(record.fields) == DECLARED
        assert record.fields["email"] is None
        assert record.fields["title"] is None
        assert record.fields["phone"] is None
        assert record.fields["is_bot"] is False
        assert record.fields["deleted"] is False
        assert record.fields["updated"] is None


def test_a_user_without_an_id_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="without an id"):
        to_record({"name": "ghost", "profile": {}})


def test_renames_are_declared_once_in_the_field_paths() -> None:
    record = to_record({"id": "U9", "name": "handle", "tz": "Europe/Berlin"})
    assert record.fields["user_name"] == "handle"
    assert record.fields["time_zone"] == "Europe/Berlin"
    paths = {spec.key: spec.path for spec in FIELDS}
    assert (paths["user_name"], paths["time_zone"]) == ("name", "tz")


def test_every_special_kind_is_represented_faithfully() -> None:
    emulator = SlackEmulator(users=len(SPECIAL_KINDS), seed=3)
    records = {kind: to_record(emulator.user_at(index)) for index, kind in enumerate(SPECIAL_KINDS)}
    assert records["slackbot"].id == "USLACKBOT"
    assert records["slackbot"].fields["is_bot"] is False  # as Slack reports Slackbot
    assert records["bot"].fields["is_bot"] is True
    assert records["bot"].fields["email"] is None
    assert records["app_user"].fields["is_app_user"] is True
    assert records["deleted"].fields["deleted"] is True
    assert records["restricted"].fields["is_restricted"] is True
    assert records["restricted"].fields["is_ultra_restricted"] is False
    assert records["ultra_restricted"].fields["is_ultra_restricted"] is True
    assert records["invited"].fields["is_invited_user"] is True
    assert records["invited"].fields["first_name"] is None
    assert records["sparse"].fields["title"] is None
    assert records["sparse"].fields["phone"] is None
    assert records["sparse"].fields["time_zone"] is None
    assert records["installer"].fields["is_primary_owner"] is True


def test_default_filters_drop_bots_and_slackbot_only() -> None:
    emulator = SlackEmulator(users=len(SPECIAL_KINDS), seed=3)
    kept = {
        kind
        for index, kind in enumerate(SPECIAL_KINDS)
        if _passes_default_filters(to_record(emulator.user_at(index)))
    }
    assert kept == set(SPECIAL_KINDS) - {"bot", "slackbot"}


_PROFILE_KEYS = ("email", "first_name", "last_name", "real_name", "display_name", "title",
                 "phone", "skype", "team", "bot_id")  # fmt: skip
_FLAGS = ("deleted", "is_admin", "is_bot", "is_app_user", "is_restricted",
          "is_ultra_restricted", "is_invited_user", "is_owner")  # fmt: skip
_maybe_text = st.one_of(st.none(), st.just(""), st.just("  "), st.text(max_size=12))


@settings(max_examples=150, deadline=None)
@given(
    profile=st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(_PROFILE_KEYS), _maybe_text, max_size=len(_PROFILE_KEYS)),
    ),
    flags=st.dictionaries(st.sampled_from(_FLAGS), st.one_of(st.none(), st.booleans())),
    updated=st.one_of(st.none(), st.integers(min_value=0, max_value=2_000_000_000)),
)
def test_any_mix_of_missing_null_and_blank_values_parses(profile, flags, updated) -> None:
    raw = {"id": "U0TEST", "profile": profile, "updated": updated, **flags}
    record = to_record(raw)
    assert set(record.fields) == DECLARED
    for key in _FLAGS:
        assert record.fields[key] is bool(flags.get(key))
    for key in ("email", "title", "phone", "first_name"):
        value = (profile or {}).get(key)
        expected = value if isinstance(value, str) and value.strip() else None
        assert record.fields[key] == expected
