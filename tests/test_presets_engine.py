"""Presets: finding, rendering, variables, dry runs and single runs over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import attrs
import pytest
from presets_support import (
    ACME_TOKEN,
    LEAKED_CLIENT_SECRET,
    AcmeEmulator,
    acme_credential,
    body_of,
    registered_vendors,
)

from oomnitza_connect.connectors import get_connector
from oomnitza_connect.errors import PresetError, UnknownVendorError
from oomnitza_connect.models import Person, Preset, SaasUser
from oomnitza_connect.presets.engine import (
    MissingVariableError,
    PresetOverrides,
    UnsafeURLError,
    get_preset,
    list_presets,
    merge_record,
    person_variables,
    preset_variables,
    render_preset,
    run_preset,
    scrub_secrets,
    settings_variables,
)
from oomnitza_connect.redaction import MASK
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def vendors() -> Iterator[None]:
    with registered_vendors():
        yield


@pytest.fixture
def acme() -> Iterator[AcmeEmulator]:
    with AcmeEmulator() as emulator:
        yield emulator


@pytest.fixture
def session(vendors: None, acme: AcmeEmulator) -> Iterator[VendorSession]:
    with get_connector("acme").authenticate(acme_credential(acme), {"Acme.Region": "eu"}) as s:
        yield s


# -- finding presets ----------------------------------------------------------


def test_list_presets_of_one_vendor_and_of_all(vendors: None) -> None:
    acme_names = [p.name for p in list_presets("acme")]
    assert "Get User Details" in acme_names
    assert acme_names == sorted(acme_names, key=str.lower)
    everything = list_presets()
    assert {p.vendor for p in everything} >= {"acme", "replacer"}
    assert len(everything) == len(acme_names) + len(list_presets("replacer"))


def test_get_preset_is_case_insensitive_and_lists_names_when_missing(vendors: None) -> None:
    assert get_preset("acme", "get user details").name == "Get User Details"
    with pytest.raises(PresetError, match=r"no preset named 'Nope'.*Get User Details"):
        get_preset("acme", "Nope")
    with pytest.raises(UnknownVendorError):
        get_preset("nobody", "Get User Details")


def test_preset_variables_lists_declared_then_discovered(vendors: None) -> None:
    names = preset_variables(get_preset("acme", "Create User"))
    assert names[:3] == ["email", "title", "seats"]
    assert {"first_name", "last_name", "department"} <= set(names[3:])


# -- variables ---------------------------------------------------------------


def test_settings_are_reachable_by_exact_key_dotted_parts_and_flattened_name() -> None:
    variables = settings_variables({"Talkdesk.Subdomain": "acme", "Region": "eu"})
    assert variables["settings"]["Talkdesk.Subdomain"] == "acme"
    assert variables["Talkdesk_Subdomain"] == "acme"
    preset_vars = {**variables}
    from oomnitza_connect.templating import render

    assert render("{{settings['Talkdesk.Subdomain']}}", preset_vars) == "acme"
    assert render("{{settings.Talkdesk.Subdomain}}", preset_vars) == "acme"
    assert render("{{Talkdesk.Subdomain}}-{{Talkdesk_Subdomain}}", preset_vars) == "acme-acme"
    assert render("{{Region}}", preset_vars) == "eu"


def test_person_variables_flatten_labels_and_add_the_vendor_account() -> None:
    person = Person(
        id=7,
        sync_key="email",
        sync_value="ada@example.com",
        fields={"email": "ada@example.com", "Slack User Id": "W1", "Cost Center": "42"},
    )
    account = SaasUser(vendor="webex", vendor_user_id="P-9", person_id=7, role="admin")
    variables = person_variables(person, account)
    assert variables["email"] == "ada@example.com"
    assert variables["slack_user_id"] == "W1"
    assert variables["person"]["Cost Center"] == "42"
    assert variables["webex_user_id"] == "P-9"
    assert variables["vendor_user_id"] == "P-9"
    assert variables["saas_user"]["role"] == "admin"
    assert variables["person_id"] == 7


def test_caller_variables_win_over_person_and_settings(vendors: None) -> None:
    preset = get_preset("acme", "Get User Details")
    person = Person(id=1, sync_key="email", sync_value="a@x", fields={"acme_user_id": "FROM-P"})
    from oomnitza_connect.presets.engine import _effective_variables

    variables = _effective_variables(
        settings={"acme_user_id": "FROM-S"},
        person=person,
        saas_user=None,
        caller={"acme_user_id": "FROM-C"},
    )
    assert render_preset(preset, variables).url == "/users/FROM-C"
    variables = _effective_variables(
        settings={"acme_user_id": "FROM-S"}, person=person, saas_user=None, caller=None
    )
    assert render_preset(preset, variables).url == "/users/FROM-P"


# -- rendering ----------------------------------------------------------------


def test_missing_variable_names_it_and_is_never_empty(vendors: None) -> None:
    preset = get_preset("acme", "Get User Details")
    with pytest.raises(MissingVariableError, match="'acme_user_id'") as caught:
        render_preset(preset, {})
    assert caught.value.name == "acme_user_id"
    search = get_preset("acme", "Search")
    with pytest.raises(MissingVariableError, match=r"'limit'.*query 'limit'"):
        render_preset(search, {"query": "x", **settings_variables({"Acme.Region": "eu"})})


def test_path_variables_are_percent_encoded_as_one_segment(vendors: None) -> None:
    preset = get_preset("acme", "Get User Details")
    rendered = render_preset(preset, {"acme_user_id": "a/b?c=d#e f@g%h"})
    assert rendered.url == "/users/a%2Fb%3Fc%3Dd%23e%20f%40g%25h"


def test_empty_path_variable_is_refused(vendors: None) -> None:
    preset = get_preset("acme", "Delete User")
    with pytest.raises(PresetError, match="empty"):
        render_preset(preset, {"acme_user_id": ""})
    with pytest.raises(PresetError, match="empty"):
        render_preset(preset, {"acme_user_id": None})


def test_body_leaves_keep_their_types_and_strings_stay_inert(vendors: None) -> None:
    preset = get_preset("acme", "Create User")
    hostile = 'Eve", "admin": true, "x": "'
    rendered = render_preset(
        preset,
        {
            "email": "eve@example.com",
            "first_name": hostile,
            "last_name": "L",
            "title": "T",
            "seats": 3,
            "department": "Ops",
        },
    )
    assert rendered.body == {
        "email": "eve@example.com",
        "name": f"{hostile} L",
        "title": "T",
        "seats": 3,
        "tags": ["synced", "Ops"],
    }
    assert "admin" not in rendered.body


def test_overrides_replace_path_body_and_merge_query_and_headers(vendors: None) -> None:
    preset = get_preset("acme", "Search")
    variables = {"query": "ada", "limit": 5, **settings_variables({"Acme.Region": "eu"})}
    rendered = render_preset(
        preset,
        variables,
        overrides=PresetOverrides(
            path="/search/{{query}}",
            query={"limit": "9", "extra": "{{query}}"},
            headers={"X-Trace": "t-{{query}}"},
            body={"q": "{{query}}"},
        ),
    )
    assert rendered.url == "/search/ada"
    assert rendered.params == {"q": "ada", "region": "eu", "limit": "9", "extra": "ada"}
    assert rendered.headers == {"X-Acme-Region": "eu", "X-Trace": "t-ada"}
    assert rendered.body == {"q": "ada"}


def test_headers_cannot_split_the_request_or_set_the_host(vendors: None) -> None:
    preset = get_preset("acme", "Search")
    variables = {"query": "x", "limit": 1, **settings_variables({"Acme.Region": "eu\r\nX: y"})}
    with pytest.raises(PresetError, match="line break"):
        render_preset(preset, variables)
    with pytest.raises(PresetError, match="'Host'"):
        render_preset(
            preset,
            {"query": "x", "limit": 1, **settings_variables({"Acme.Region": "eu"})},
            overrides=PresetOverrides(headers={"Host": "evil.example"}),
        )


def test_merge_record_keeps_fields_the_changes_do_not_mention() -> None:
    record = {"a": 1, "nested": {"x": 1, "y": 2}, "list": [1, 2]}
    merged = merge_record(record, {"nested": {"y": 3}, "list": [9], "new": True})
    assert merged == {"a": 1, "nested": {"x": 1, "y": 3}, "list": [9], "new": True}
    assert record["nested"] == {"x": 1, "y": 2}


def test_scrub_secrets_masks_known_values_and_credential_like_keys() -> None:
    scrubbed = scrub_secrets(
        {
            "note": "token abcd-1234-efgh here",
            "client_secret": "not-known-but-secret",
            "token_type": "bearer",
            "expires_in": 3600,
            "items": ["abcd-1234-efgh"],
            "author": "Jane Doe Smith",
            "privateKey": "-----BEGIN KEY-----",
        },
        ["abcd-1234-efgh"],
    )
    assert scrubbed == {
        "note": f"token {MASK} here",
        "client_secret": MASK,
        "token_type": "bearer",
        "expires_in": 3600,
        "items": [MASK],
        "author": "Jane Doe Smith",
        "privateKey": MASK,
    }


# -- running over HTTP ---------------------------------------------------------


def test_run_preset_reads_a_user_and_maps_the_response(
    session: VendorSession, acme: AcmeEmulator
) -> None:
    preset = get_preset("acme", "Get User Details")
    result = run_preset(session, preset, variables={"acme_user_id": "U1"})
    assert result.ok, result.error
    assert result.status == 200
    assert result.response["email"] == "ada@example.com"
    assert json.loads(result.mapped["Acme Details"])["title"] == "Engineer"
    assert result.mapped["Acme Title"] == "Engineer"
    assert result.request is not None
    assert result.request["url"] == f"{acme.base_url}/users/U1"
    assert acme.requests[-1].path == "/users/U1"


def test_run_preset_maps_nested_expressions(session: VendorSession) -> None:
    app_info = get_preset("acme", "Get App Information")
    app = run_preset(session, app_info, variables={"app_id": "A1"})
    assert app.mapped == {"Acme License Type": "paid"}
    subscription = run_preset(
        session,
        get_preset("acme", "Get Installation Subscription"),
        variables={"app_id": "A1", "installation_id": "I7"},
    )
    assert subscription.mapped == {"Acme Total Licenses": 42}


def test_run_preset_sends_settings_in_query_and_headers(
    session: VendorSession, acme: AcmeEmulator
) -> None:
    result = run_preset(
        session, get_preset("acme", "Search"), variables={"query": "a&b", "limit": 3}
    )
    assert result.ok, result.error
    assert result.response == {
        "query": {"q": "a&b", "region": "eu", "limit": "3"},
        "region_header": "eu",
    }


def test_create_update_delete_round_trip(session: VendorSession, acme: AcmeEmulator) -> None:
    created = run_preset(
        session,
        get_preset("acme", "Create User"),
        variables={
            "email": "new@example.com",
            "first_name": "New",
            "last_name": "Person",
            "title": "Intern",
            "seats": 2,
            "department": "Ops",
        },
    )
    assert created.ok, created.error
    assert created.status == 201
    new_id = created.mapped["Acme Created Id"]
    assert body_of(acme.requests[-1]) == {
        "email": "new@example.com",
        "name": "New Person",
        "title": "Intern",
        "seats": 2,
        "tags": ["synced", "Ops"],
    }
    updated = run_preset(
        session,
        get_preset("acme", "Update User Title"),
        variables={"acme_user_id": new_id, "title": "Lead"},
    )
    assert updated.mapped == {"Acme Title": "Lead"}
    assert acme.users[new_id]["title"] == "Lead"
    deleted = run_preset(
        session, get_preset("acme", "Delete User"), variables={"acme_user_id": new_id}
    )
    assert deleted.ok
    assert deleted.status == 204
    assert deleted.response is None
    assert new_id not in acme.users


def test_vendor_error_is_a_failed_result_not_an_exception(session: VendorSession) -> None:
    result = run_preset(
        session, get_preset("acme", "Get User Details"), variables={"acme_user_id": "U404"}
    )
    assert not result.ok
    assert result.status == 404
    assert "404" in (result.error or "")


def test_declared_variable_missing_raises_before_any_request(
    session: VendorSession, acme: AcmeEmulator
) -> None:
    before = len(acme.requests)
    with pytest.raises(MissingVariableError, match="'title'"):
        run_preset(
            session, get_preset("acme", "Update User Title"), variables={"acme_user_id": "U1"}
        )
    assert len(acme.requests) == before


def test_dry_run_renders_without_sending(session: VendorSession, acme: AcmeEmulator) -> None:
    before = len(acme.requests)
    result = run_preset(
        session,
        get_preset("acme", "Update User Title"),
        variables={"acme_user_id": "U1", "title": "Boss"},
        dry_run=True,
    )
    assert result.ok
    assert result.dry_run
    assert result.request == {
        "method": "PATCH",
        "url": f"{acme.base_url}/users/U1",
        "headers": {},
        "body": {"title": "Boss"},
    }
    assert len(acme.requests) == before
    assert acme.users["U1"]["title"] == "Engineer"


def test_dry_run_masks_credential_headers_and_secret_values(session: VendorSession) -> None:
    result = run_preset(
        session,
        get_preset("acme", "Search"),
        variables={"query": ACME_TOKEN, "limit": 1},
        overrides=PresetOverrides(headers={"Authorization": "Bearer x", "X-Api-Key": "k"}),
        dry_run=True,
    )
    text = json.dumps(result.to_dict())
    assert ACME_TOKEN not in text
    assert result.request is not None
    assert result.request["headers"]["Authorization"] == MASK
    assert result.request["headers"]["X-Api-Key"] == MASK
    assert result.request["headers"]["X-Acme-Region"] == "eu"


def test_secrets_echoed_by_the_vendor_are_scrubbed(session: VendorSession) -> None:
    result = run_preset(session, get_preset("acme", "Who Am I"))
    assert result.ok, result.error
    text = json.dumps(result.to_dict())
    assert ACME_TOKEN not in text
    assert LEAKED_CLIENT_SECRET not in text
    assert result.response["note"] == f"you called with {MASK}"
    assert result.response["client_secret"] == MASK
    assert result.response["account"] == "acme-corp"
    assert result.mapped["Acme Note"] == f"you called with {MASK}"


def test_override_path_to_another_host_is_refused_before_any_request(
    session, acme: AcmeEmulator
) -> None:
    before = len(acme.requests)
    for path in ("http://evil.example/users", "//evil.example/users", "/../../etc"):
        with pytest.raises(UnsafeURLError):
            run_preset(
                session,
                get_preset("acme", "Who Am I"),
                overrides=PresetOverrides(path=path),
            )
    assert len(acme.requests) == before


def test_reads_are_retried_but_creates_never_repeat(
    session: VendorSession, acme: AcmeEmulator
) -> None:
    acme.faults.add(Fault.server_error(503), endpoint="users.info", times=1)
    read = run_preset(
        session, get_preset("acme", "Get User Details"), variables={"acme_user_id": "U1"}
    )
    assert read.ok, read.error
    assert [r.endpoint for r in acme.requests].count("users.info") == 2

    # Preset.idempotent defaults to True; a POST must still not be sent twice.
    create = attrs.evolve(get_preset("acme", "Create User"), idempotent=True)
    acme.faults.add(Fault.server_error(503), endpoint="users.create", times=1)
    result = run_preset(
        session,
        create,
        variables={
            "email": "x@example.com", "first_name": "X", "last_name": "Y", "title": "T",
            "seats": 1, "department": "D",
        },
    )  # fmt: skip
    assert not result.ok
    assert result.status == 503
    assert [r.endpoint for r in acme.requests].count("users.create") == 1


def test_a_stray_bracket_in_a_response_mapping_is_refused_when_the_preset_loads() -> None:
    from oomnitza_connect.presets.engine import check_preset

    broken = Preset(
        vendor="acme",
        name="Subscription",
        description="d",
        method="GET",
        path="/subscription",
        response_mappings={"Licenses": "{{response['subscription_types'][0].type]}}"},
    )
    with pytest.raises(PresetError) as refused:
        check_preset(broken)
    message = str(refused.value)
    assert "Preset 'Subscription' of acme was refused" in message
    assert "response mapping 'Licenses'" in message
    assert "at character 41, the stray ']' here: {{response['subscription_types'][0].type] <--" in (
        message
    )
    fixed = attrs.evolve(
        broken, response_mappings={"Licenses": "{{response['subscription_types'][0].type}}"}
    )
    assert check_preset(fixed) is fixed


def test_a_bracket_inside_a_quoted_key_is_not_stray() -> None:
    from oomnitza_connect.templating import unbalanced_bracket

    assert unbalanced_bracket("{{response['a]b'][0]}}") is None
    assert unbalanced_bracket("{{response[0]]}}") == 13
