"""Smart mapping: names, synonyms and value types decide the proposed target."""

from __future__ import annotations

from sync_support import ACME, AcmePlugin

from oomnitza_connect.models import FieldSpec, FieldType, VendorInfo
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.sync.smart_mapping import suggest_mapping


def by_source(info):
    return {s.source: s for s in suggest_mapping(info)}


def test_every_vendor_field_gets_a_suggestion_in_order():
    suggestions = suggest_mapping(ACME)
    assert [s.source for s in suggestions] == [f.key for f in ACME.fields]


def test_names_and_synonyms_pick_standard_targets():
    found = by_source(ACME)
    assert (found["mail"].target, found["mail"].converter) == ("email", "email")
    assert found["login"].target == "username"
    assert found["job_title"].target == "position"
    assert found["phone"].target == "phone_number"
    assert found["full_name"].target == "full_name"
    assert found["mail"].confidence >= 0.9


def test_fields_without_a_match_become_typed_custom_fields():
    found = by_source(ACME)
    admin = found["is_admin"]
    assert (admin.target, admin.converter, admin.custom) == ("Acme Is Admin?", "bool", True)
    assert admin.confidence < 0.5
    assert admin.to_mapping().source == "is_admin"


def test_value_types_outweigh_a_name_match():
    info = VendorInfo(
        name="v",
        display_name="V",
        base_url="https://v",
        auth_kinds=(),
        fields=(
            FieldSpec("phone", "Phone", FieldType.DATETIME),
            FieldSpec("last_seen", "Last Seen", FieldType.DATETIME),
            FieldSpec("last_login", "Last Login", FieldType.STRING),
        ),
    )
    found = by_source(info)
    assert found["phone"].target == "V Phone"
    assert found["last_seen"].target == "last_login"
    assert found["last_login"].target == "V Last Login"


def test_each_standard_target_is_given_once_to_the_best_match():
    info = VendorInfo(
        name="v",
        display_name="V",
        base_url="https://v",
        auth_kinds=(),
        fields=(
            FieldSpec("work_email", "Work Email"),
            FieldSpec("email", "Email", unique=True),
        ),
    )
    found = by_source(info)
    assert found["email"].target == "email"
    assert found["work_email"].target == "V Work Email"


def test_unique_vendor_fields_stay_unique_as_custom_fields():
    info = VendorInfo(
        name="v",
        display_name="V",
        base_url="https://v",
        auth_kinds=(),
        fields=(FieldSpec("badge", "Badge", unique=True),),
    )
    assert by_source(info)["badge"].unique is True


def test_a_vendor_name_is_looked_up():
    with register_plugin(AcmePlugin(), name="acme-test"):
        assert by_source("acme")["mail"].target == "email"
