"""The test kit's shared emulator helpers: generated users, refusals, request ids,
opaque cursors and cassette scrubbing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from oomnitza_connect.testing.cassettes import SCRUBBED, response_scrubber, scrub_tokens
from oomnitza_connect.testing.emulator import (
    Emulator,
    EmulatorRequest,
    EmulatorResponse,
    Refusal,
    decode_cursor,
    encode_cursor,
    json_response,
    route,
)
from oomnitza_connect.testing.fakes import FakePeople
from oomnitza_connect.testing.users import GeneratedUsers, pick_kind


class _Directory(GeneratedUsers, Emulator):
    merged_fields = ("profile",)
    request_id_header = "X-Req"
    request_id_format = "emu{emulator.user_count}-{number}"

    def __init__(self, users: int, **options: Any) -> None:
        super().__init__(**options)
        self.user_count = users
        self.changes_seen = 0

    def user_id(self, index: int) -> str:
        return f"u{index}"

    def generate_user(self, index: int) -> dict[str, Any]:
        person = FakePeople()[index]
        return {"id": self.user_id(index), "name": person.full_name, "profile": {"a": 1, "b": 2}}

    def users_changed(self) -> None:
        self.changes_seen += 1

    @route("GET", "/users/{user_id}")
    def get_user(self, request: EmulatorRequest) -> EmulatorResponse:
        user = self.user(request.path_params["user_id"])
        if user is None:
            raise Refusal(json_response({"error": "no_such_user"}, status=404))
        return json_response(user)


def test_changes_apply_to_one_user_and_merge_the_merged_fields() -> None:
    directory = _Directory(users=4)
    directory.update_user("u1", name="Renamed", profile={"b": 3})
    directory.update_user("u1", profile={"c": 4})
    assert directory.user("u1") == {
        "id": "u1",
        "name": "Renamed",
        "profile": {"a": 1, "b": 3, "c": 4},
    }
    assert directory.user("u2") == directory.generate_user(2)
    assert directory.changes_seen == 2


def test_removed_users_leave_the_listing_and_unknown_users_raise() -> None:
    directory = _Directory(users=4)
    directory.remove_user("u2")
    assert directory.user_ids() == ["u0", "u1", "u3"]
    assert directory.expected_user_ids() == {"u0", "u1", "u3"}
    assert directory.user("u2") is None
    with pytest.raises(KeyError):
        directory.update_user("u2", name="x")
    with pytest.raises(KeyError):
        directory.serve_raw_user("u9", None)
    directory.serve_raw_user("u3", [1, 2])
    assert directory.raw_records == {3: [1, 2]}


def test_a_refusal_answers_and_every_answer_gets_a_fresh_request_id() -> None:
    with _Directory(users=2) as directory:
        found = requests.get(f"{directory.base_url}/users/u1", timeout=5)
        missing = requests.get(f"{directory.server_url}/users/u7", timeout=5)
    assert found.json()["id"] == "u1"
    assert (missing.status_code, missing.json()) == (404, {"error": "no_such_user"})
    assert [found.headers["X-Req"], missing.headers["X-Req"]] == ["emu2-1", "emu2-2"]


def test_cursors_round_trip_and_forged_ones_read_as_none() -> None:
    cursor = encode_cursor("user:U042")
    assert cursor != "user:U042"
    assert decode_cursor(cursor) == "user:U042"
    assert decode_cursor("not base64!") is None
    assert decode_cursor("//79") is None  # Base64, but not UTF-8


def test_scrubbing_replaces_tokens_at_any_depth_and_rewrites_addresses() -> None:
    body = {"token": "t", "empty": {"access_token": ""}, "list": [{"refresh_token": "r"}]}
    assert scrub_tokens(body) == {
        "token": SCRUBBED,
        "empty": {"access_token": ""},
        "list": [{"refresh_token": SCRUBBED}],
    }
    addresses: dict[str, str] = {}
    scrub = response_scrubber(token_keys=("secret",), token_pattern=r"tok-\w+", addresses=addresses)
    addresses["http://127.0.0.1:4000"] = "http://127.0.0.1:9"
    json_answer = {
        "headers": {"Link": ["<http://127.0.0.1:4000/p?page=2>; rel=next"]},
        "body": {"string": b'{"secret": "s", "token": "kept", "self": "http://127.0.0.1:4000/u"}'},
    }
    scrubbed = scrub(json_answer)
    assert scrubbed["body"]["string"] == (
        b'{"secret": "SCRUBBED", "token": "kept", "self": "http://127.0.0.1:9/u"}'
    )
    assert scrubbed["headers"]["Link"] == ["<http://127.0.0.1:9/p?page=2>; rel=next"]
    text_answer = {"headers": {}, "body": {"string": "access tok-abc123 granted"}}
    assert scrub(text_answer)["body"]["string"] == b"access SCRUBBED granted"


def test_the_documented_cassette_example_runs() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "plugins" / "testing.md").read_text()
    section = page.split("## Recorded cassettes", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/plugins/testing.md", "exec"), {})


class _PeopleDirectory(GeneratedUsers, Emulator):
    """Users made from fake people, with their address in a profile."""

    def __init__(self, users: int) -> None:
        super().__init__()
        self.user_count = users
        self.people = FakePeople(seed=3, email_domain="acme.example.com")
        self.computed = 0

    def user_id(self, index: int) -> str:
        return f"p{index}"

    def generate_user(self, index: int) -> dict[str, Any]:
        return {"id": self.user_id(index), "profile": {"email": self.people[index].email}}

    def email_of(self, user: dict[str, Any]) -> str | None:
        return user["profile"].get("email")

    def count_users(self) -> int:
        self.computed += 1
        return len(list(self.listed_indexes()))


def test_an_address_is_found_without_a_walk_and_changes_are_followed() -> None:
    directory = _PeopleDirectory(users=50)
    address = directory.people[17].email  # type: ignore[index]
    assert directory.index_of_email(address.upper()) == 17
    directory.update_user("p17", profile={"email": "moved@acme.example.com"})
    assert directory.index_of_email(address) is None
    assert directory.index_of_email(" Moved@acme.example.com") == 17
    directory.remove_user("p17")
    assert directory.index_of_email("moved@acme.example.com") is None
    assert directory.index_of_email(directory.people[60].email) is None  # type: ignore[index]


def test_derived_values_are_kept_until_the_directory_changes() -> None:
    directory = _PeopleDirectory(users=5)
    assert directory.derived("count", directory.count_users) == 5
    assert directory.derived("count", directory.count_users) == 5
    assert directory.computed == 1
    directory.remove_user("p0")
    assert directory.derived("count", directory.count_users) == 4
    directory.user_count = 9  # grown directly, as tests do
    assert directory.derived("count", directory.count_users) == 8
    assert directory.computed == 3


def test_kinds_come_first_from_the_special_list_then_from_the_shares() -> None:
    special, shares = ("owner", "bot"), (("guest", 0.1), ("deleted", 0.3))
    assert [pick_kind(i, 0.99, special, shares) for i in range(3)] == ["owner", "bot", "person"]
    assert [pick_kind(5, roll, special, shares) for roll in (0.0, 0.1, 0.29, 0.3)] == [
        "guest",
        "deleted",
        "deleted",
        "person",
    ]
