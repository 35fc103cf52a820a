"""Pagination helpers against the directory emulator: lazy, loop-safe, same-host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from http_support import STATIC_TOKEN, DirectoryEmulator, Recorder

from oomnitza_connect.errors import PaginationError, VendorAPIError
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions, HttpClient, MalformedResponseError
from oomnitza_connect.transport.pagination import (
    iter_cursor_pages,
    iter_hal_pages,
    iter_link_header_pages,
    iter_offset_pages,
    iter_page_number_pages,
    iter_single_page,
    restore_dropped_params,
)


class BearerAuth(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {STATIC_TOKEN}"
        return request


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator(users=25, page_size=10) as emu:
        yield emu


@pytest.fixture
def client(emulator: DirectoryEmulator) -> Iterator[HttpClient]:
    with HttpClient(
        "directory",
        emulator.base_url,
        auth=BearerAuth(),
        sleep=Recorder(),
        options=ClientOptions(max_retries=2),
    ) as http:
        yield http


def ids(pages: Iterator[Any], key: str) -> list[str]:
    found = []
    for page in pages:
        value: Any = page
        for part in key.split("."):
            value = value[part]
        found.extend(user["id"] for user in value)
    return found


EVERYONE = [f"U{i:04d}" for i in range(25)]


def test_cursor_pages_are_fetched_lazily(client: HttpClient, emulator: DirectoryEmulator) -> None:
    pages = iter_cursor_pages(
        client, "/api/users.list", params={"limit": 10}, endpoint="users.list"
    )
    assert len(emulator.requests) == 0
    first = next(pages)
    assert len(emulator.requests) == 1
    assert [u["id"] for u in first["members"]] == EVERYONE[:10]
    rest = ids(pages, "members")
    assert rest == EVERYONE[10:]
    assert len(emulator.requests) == 3
    assert [r.query.get("cursor") for r in emulator.requests] == [None, "10", "20"]


def test_repeated_cursor_stops_with_pagination_error(
    client: HttpClient, emulator: DirectoryEmulator
) -> None:
    emulator.repeat_cursor = True
    pages = iter_cursor_pages(
        client, "/api/users.list", params={"limit": 10}, endpoint="users.list"
    )
    with pytest.raises(PaginationError) as raised:
        list(pages)
    assert "cursor '10' a second time" in str(raised.value)
    assert raised.value.vendor == "directory"
    assert len(emulator.requests) == 2


def test_malformed_page_in_the_middle(client: HttpClient, emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.malformed_json(), endpoint="users.list", after=1, times=-1)
    pages = iter_cursor_pages(
        client, "/api/users.list", params={"limit": 10}, endpoint="users.list"
    )
    assert next(pages)["members"][0]["id"] == "U0000"
    with pytest.raises(MalformedResponseError) as raised:
        next(pages)
    assert raised.value.endpoint == "users.list"


def test_503_in_the_middle_of_pagination_is_retried(
    client: HttpClient, emulator: DirectoryEmulator
) -> None:
    emulator.faults.add(Fault.server_error(503), endpoint="users.list", after=1)
    pages = iter_cursor_pages(
        client, "/api/users.list", params={"limit": 10}, endpoint="users.list"
    )
    assert ids(pages, "members") == EVERYONE


def test_link_header_pages(client: HttpClient, emulator: DirectoryEmulator) -> None:
    pages = iter_link_header_pages(client, "/v1/people", params={"max": 10}, endpoint="people")
    assert ids(pages, "items") == EVERYONE
    assert [r.query.get("after") for r in emulator.requests] == [None, "10", "20"]


def test_link_header_that_drops_params_is_repaired(
    client: HttpClient, emulator: DirectoryEmulator
) -> None:
    emulator.drop_query_in_next = True
    with pytest.raises(VendorAPIError) as raised:
        list(iter_link_header_pages(client, "/v1/people", params={"max": 10}))
    assert raised.value.status == 400
    seen: list[tuple[str, dict[str, Any], str]] = []

    def repair(previous_url: str, params: Any, next_link: str) -> str:
        seen.append((previous_url, dict(params), next_link))
        return restore_dropped_params(previous_url, params, next_link)

    pages = iter_link_header_pages(client, "/v1/people", params={"max": 10}, repair_next=repair)
    assert ids(pages, "items") == EVERYONE
    assert seen[0][0].endswith("/v1/people?max=10")
    assert seen[0][2].endswith("/v1/people?after=10")


def test_restore_dropped_params_replaces_null() -> None:
    fixed = restore_dropped_params(
        "https://h/v1/people?max=10&displayName=Ann",
        {"max": 10, "displayName": "Ann"},
        "https://h/v1/people?max=null&after=Y2l",
    )
    assert fixed == "https://h/v1/people?after=Y2l&max=10&displayName=Ann"


def test_next_link_to_another_host_is_refused(
    client: HttpClient, emulator: DirectoryEmulator
) -> None:
    emulator.foreign_next_host = "http://evil.example"
    pages = iter_link_header_pages(client, "/v1/people", params={"max": 10})
    next(pages)
    with pytest.raises(PaginationError) as raised:
        next(pages)
    assert "leads to http://evil.example" in str(raised.value)
    assert all("evil" not in (r.header("Host") or "") for r in emulator.requests)


def test_hal_pages(client: HttpClient, emulator: DirectoryEmulator) -> None:
    pages = iter_hal_pages(client, "/hal/users", params={"per_page": 10}, endpoint="hal.users")
    assert ids(pages, "_embedded.users") == EVERYONE
    assert len(emulator.requests) == 3


def test_hal_next_link_repeating_stops(client: HttpClient, emulator: DirectoryEmulator) -> None:
    emulator.repeat_cursor = True
    with pytest.raises(PaginationError) as raised:
        list(iter_hal_pages(client, "/hal/users", params={"page": 1, "per_page": 10}))
    assert "already fetched" in str(raised.value)


def test_page_number_pages(client: HttpClient, emulator: DirectoryEmulator) -> None:
    pages = iter_page_number_pages(client, "/paged/users", items="users", per_page=10)
    assert ids(pages, "users") == EVERYONE
    assert [r.query["page"] for r in emulator.requests] == ["1", "2", "3"]


def test_page_number_pages_stop_on_an_empty_page(
    emulator: DirectoryEmulator, client: HttpClient
) -> None:
    emulator.users = emulator.users[:20]
    pages = iter_page_number_pages(client, "/paged/users", items="users", per_page=10)
    assert len(ids(pages, "users")) == 20
    assert len(emulator.requests) == 3


def test_offset_pages(client: HttpClient, emulator: DirectoryEmulator) -> None:
    pages = iter_offset_pages(client, "/offset/users", items=lambda page: page["data"], limit=10)
    assert ids(pages, "data") == EVERYONE
    assert [r.query["offset"] for r in emulator.requests] == ["0", "10", "20"]


def test_single_page(client: HttpClient, emulator: DirectoryEmulator) -> None:
    assert list(iter_single_page(client, "/open")) == [{"ok": True}]


def test_cursor_pages_sent_as_a_form_post(client: HttpClient, emulator: DirectoryEmulator) -> None:
    pages = iter_cursor_pages(client, "/api/users.list", params={"limit": 10}, method="POST")
    assert ids(pages, "members") == EVERYONE
    assert [r.form().get("cursor") for r in emulator.requests] == [None, "10", "20"]
    assert all(r.method == "POST" for r in emulator.requests)


@pytest.mark.parametrize("style", ["page", "offset"])
def test_a_repeated_page_without_a_cursor_is_refused_before_its_users_repeat(
    client: HttpClient, emulator: DirectoryEmulator, style: str
) -> None:
    # Issue 14, fault matrix: the second answer is the first one again.
    from oomnitza_connect.testing.emulator import Fault

    endpoint = "paged.users" if style == "page" else "offset.users"
    key = "users" if style == "page" else "data"
    emulator.faults.add(Fault.repeat_answer(), endpoint=endpoint, after=1)
    if style == "page":
        pages = iter_page_number_pages(client, "/paged/users", items=key, per_page=10)
    else:
        pages = iter_offset_pages(client, "/offset/users", items=key, limit=10)
    seen: list[str] = []

    def walk() -> None:
        for page in pages:
            seen.extend(user["id"] for user in page[key])

    with pytest.raises(PaginationError, match="same users"):
        walk()
    assert len(seen) == len(set(seen)) == 10
