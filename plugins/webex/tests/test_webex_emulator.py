"""The emulator behaves as the Webex fact sheet says, and stays cheap at 100,000 people."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oomnitza_connect_webex.emulator import (
    PEOPLE_READ,
    SPECIAL_KINDS,
    WebexEmulator,
    WebexFault,
    decode_id,
)
from webex_support import call

from oomnitza_connect.testing.emulator import Fault


@pytest.fixture
def webex():
    with WebexEmulator(users=30, seed=3, enforce_rate_limits=False) as running:
        yield running


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_people_are_deterministic_by_seed() -> None:
    first, again, other = (WebexEmulator(users=30, seed=s) for s in (1, 1, 2))
    people = [first.person(i) for i in range(30)]
    assert people == [again.person(i) for i in range(30)]
    assert first.person_ids() != other.person_ids()
    assert decode_id(first.person_id(4)) == ("PEOPLE", first._person_uuid(4))


def test_even_a_small_org_has_every_special_kind() -> None:
    emulator = WebexEmulator(users=len(SPECIAL_KINDS))
    assert [emulator.kind_of(i) for i in range(len(SPECIAL_KINDS))] == list(SPECIAL_KINDS)
    types = {emulator.person(i)["type"] for i in range(len(SPECIAL_KINDS))}
    assert types == {"person", "bot", "appuser"}
    hidden = emulator.person(SPECIAL_KINDS.index("status_hidden"))
    assert "status" not in hidden
    assert "lastActivity" not in hidden
    pending = emulator.person(SPECIAL_KINDS.index("invite_pending"))
    assert pending["status"] == "pending"
    assert pending["invitePending"] in ("true", True)


def test_flags_go_out_as_strings_or_booleans_as_chosen() -> None:
    strings = WebexEmulator(users=40, bool_style="string")
    booleans = WebexEmulator(users=40, bool_style="boolean")
    mixed = WebexEmulator(users=40, bool_style="mixed")
    assert {type(strings.person(i)["loginEnabled"]) for i in range(40)} == {str}
    assert {type(booleans.person(i)["loginEnabled"]) for i in range(40)} == {bool}
    assert {type(mixed.person(i)["loginEnabled"]) for i in range(40)} == {str, bool}


def test_a_hundred_thousand_people_cost_nothing_until_listed() -> None:
    with WebexEmulator(users=100_000, seed=1, enforce_rate_limits=False) as emulator:
        page = call(emulator, "GET", "people", params={"max": 1000})
        last = emulator.person_ids()[-1]
        one = call(emulator, "GET", f"people/{last}").json()
        found = call(emulator, "GET", "people", params={"email": one["emails"][0]}).json()
        stored = dict(emulator._records)
    assert len(page.json()["items"]) == 1000
    assert 'rel="next"' in page.headers["Link"]
    assert found["items"][0]["id"] == last
    assert stored == {}  # people are computed from the seed, not stored


def test_link_paging_serves_every_person_once_with_first_and_prev_links(webex) -> None:
    seen: list[str] = []
    response = call(webex, "GET", "people", params={"max": 7})
    rels_seen: set[str] = set()
    while True:
        assert response.status_code == 200
        seen += [item["id"] for item in response.json()["items"]]
        rels_seen |= set(response.links)
        if "next" not in response.links:
            break
        next_url = response.links["next"]["url"]
        assert _query(next_url)["max"] == ["7"]
        assert _query(next_url)["before"] == [""]
        response = requests.get(
            next_url, headers={"Authorization": f"Bearer {webex.token}"}, timeout=5
        )
    assert seen == webex.person_ids()
    assert rels_seen == {"first", "prev", "next"}
    assert "first" in response.links  # the last page still has first/prev, and no next


def test_the_broken_next_link_drops_filters_or_sends_max_null(webex) -> None:
    webex.faults.add(WebexFault.broken_next_link("drop_params"), endpoint="people.list")
    webex.faults.add(WebexFault.broken_next_link("max_null"), endpoint="people.list")
    dropped = call(webex, "GET", "people", params={"max": 3, "excludeStatus": "true"})
    nulled = call(webex, "GET", "people", params={"max": 3})
    assert set(_query(dropped.links["next"]["url"])) == {"after"}
    assert _query(nulled.links["next"]["url"])["max"] == ["null"]
    refused = requests.get(
        nulled.links["next"]["url"], headers={"Authorization": f"Bearer {webex.token}"}, timeout=5
    )
    assert refused.status_code == 400
    assert "max" in refused.json()["message"]


def test_non_admins_must_filter_and_do_not_see_admin_fields(webex) -> None:
    plain = webex.issue_person_token(12, scopes=("spark:people_read",))
    refused = call(webex, "GET", "people", token=plain)
    target = webex.person(15)
    found = call(webex, "GET", "people", token=plain, params={"email": target["emails"][0]})
    assert refused.status_code == 400
    person = found.json()["items"][0]
    assert person["id"] == target["id"]
    assert not {"roles", "licenses", "invitePending", "loginEnabled"} & set(person)
    admin_view = call(webex, "GET", f"people/{target['id']}").json()
    assert {"roles", "licenses", "invitePending", "loginEnabled"} <= set(admin_view)


def test_id_lists_omit_presence_and_report_ids_not_found(webex) -> None:
    wanted = [webex.person_id(10), webex.person_id(11), "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ub25l"]
    body = call(webex, "GET", "people", params={"id": ",".join(wanted)}).json()
    assert [item["id"] for item in body["items"]] == wanted[:2]
    assert body["notFoundIds"] == wanted[2:]
    assert all("status" not in item and "lastActivity" not in item for item in body["items"])


def test_roles_are_listed_for_admins_and_filter_people(webex) -> None:
    roles = call(webex, "GET", "roles").json()["items"]
    names = {role["id"]: role["name"] for role in roles}
    assert "Full Administrator" in names.values()
    admins = call(webex, "GET", "people", params={"roles": webex.role_id("full_admin")}).json()
    assert [item["id"] for item in admins["items"]] == [webex.person_id(0)]
    one = call(webex, "GET", f"roles/{webex.role_id('user_admin')}").json()
    assert one["name"] == names[webex.role_id("user_admin")]
    no_scope = webex.issue_person_token(0, scopes=(PEOPLE_READ,))
    refused = call(webex, "GET", "roles", token=no_scope)
    assert refused.status_code == 403
    assert "spark-admin:roles_read" in refused.json()["message"]


def test_create_get_update_delete_round_trip(webex) -> None:
    created = call(
        webex, "POST", "people",
        json={"emails": ["New.Person@example.com"], "firstName": "New", "lastName": "Person"},
    )  # fmt: skip
    assert created.status_code == 200
    person = created.json()
    assert person["emails"] == ["new.person@example.com"]
    assert person["displayName"] == "New Person"
    duplicate = call(webex, "POST", "people", json={"emails": ["new.person@example.com"],
                                                    "firstName": "Again"})  # fmt: skip
    assert duplicate.status_code == 409
    no_name = call(webex, "POST", "people", json={"emails": ["x@example.com"]})
    assert no_name.status_code == 400
    # PUT replaces the record: a field left out is cleared, displayName is required.
    missing = call(webex, "PUT", f"people/{person['id']}", json={"firstName": "Only"})
    assert missing.status_code == 400
    assert "displayName" in missing.json()["message"]
    assert missing.json()["trackingId"] == missing.headers["trackingId"]
    updated = call(
        webex, "PUT", f"people/{person['id']}",
        json={"displayName": "Renamed", "firstName": "Re", "title": "Boss"},
    ).json()  # fmt: skip
    assert (updated["displayName"], updated["nickName"], updated["title"]) == (
        "Renamed",
        "Re",
        "Boss",
    )
    assert "lastName" not in updated
    assert call(webex, "GET", f"people/{person['id']}").json()["title"] == "Boss"
    assert call(webex, "DELETE", f"people/{person['id']}").status_code == 204
    assert call(webex, "GET", f"people/{person['id']}").status_code == 404
    assert person["id"] not in webex.expected_user_ids()


def test_only_full_or_user_admins_may_delete(webex) -> None:
    readonly = webex.issue_person_token(SPECIAL_KINDS.index("readonly_admin"))
    victim = webex.person_id(20)
    refused = call(webex, "DELETE", f"people/{victim}", token=readonly)
    no_write = webex.issue_person_token(0, scopes=(PEOPLE_READ,))
    no_scope = call(webex, "DELETE", f"people/{victim}", token=no_write)
    assert refused.status_code == 403
    assert no_scope.status_code == 403
    assert "spark-admin:people_write" in no_scope.json()["message"]
    assert victim in webex.expected_user_ids()


def test_a_create_can_fail_with_400_although_the_person_exists(webex) -> None:
    webex.faults.add(WebexFault.created_but_400(), endpoint="people.create")
    answer = call(webex, "POST", "people", json={"emails": ["ghost@example.com"], "firstName": "G"})
    assert answer.status_code == 400
    found = call(webex, "GET", "people", params={"email": "ghost@example.com"}).json()
    assert len(found["items"]) == 1


def test_throttling_with_and_without_retry_after(webex) -> None:
    webex.faults.add(Fault.rate_limited(retry_after=4), endpoint="people.list")
    webex.faults.add(Fault.rate_limited(retry_after=2, status=423), endpoint="people.list")
    webex.faults.add(WebexFault.throttled_without_retry_after(), endpoint="people.list")
    limited, locked, bare = (call(webex, "GET", "people") for _ in range(3))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "4")
    assert (locked.status_code, locked.headers["Retry-After"]) == (423, "2")
    assert bare.status_code == 429
    assert "Retry-After" not in bare.headers
    assert bare.json()["trackingId"]


def test_unknown_tokens_and_paths_use_the_webex_error_body(webex) -> None:
    refused = call(webex, "GET", "people", token="not-a-token")
    unknown = call(webex, "GET", "nothing/here")
    assert refused.status_code == 401
    assert set(refused.json()) == {"message", "errors", "trackingId"}
    assert unknown.status_code == 404


def test_a_504_suggests_a_smaller_max(webex) -> None:
    webex.faults.add(Fault.server_error(504), endpoint="people.list")
    answer = call(webex, "GET", "people", params={"max": 1000})
    assert answer.status_code == 504
    assert "reduce" in answer.json()["message"]
