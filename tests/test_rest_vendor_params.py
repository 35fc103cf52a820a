"""The description's query parameters: a who-am-I call's own, and a page size left to the vendor."""

from __future__ import annotations

from typing import ClassVar

from oomnitza_connect.models import GlobalSetting, SettingKind
from oomnitza_connect.testing import generic
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors import SinglePage, UsersEndpoint, WhoAmI


class SizeLeftToTheVendor(generic.GenericVendor):
    """The generic API read as one page, asking for a page size only when one is set."""

    settings: ClassVar = (GlobalSetting("per_page", "Page size", kind=SettingKind.INTEGER),)
    who_am_i = WhoAmI("/api/me", endpoint="me", params={"verbose": "1"})
    users = UsersEndpoint(
        "/api/users",
        items="users",
        paging=SinglePage(),
        endpoint=generic.LIST_ENDPOINT,
        page_size_param="per_page",
        page_size_setting="per_page",
        default_page_size=None,
    )


def _listed(settings: dict[str, str]) -> tuple[list[dict[str, str]], int]:
    vendor = SizeLeftToTheVendor()
    with generic.GenericEmulator(users=7) as emulator:
        options = ClientOptions(base_url=emulator.base_url, pace_requests=False)
        with vendor.authenticate(generic.credential_for(emulator), settings, options) as session:
            users = sum(1 for _ in vendor.iter_users(session))
        return [dict(r.query) for r in emulator.requests], users


def test_the_who_am_i_call_sends_its_params_and_no_page_size_is_sent_unless_set() -> None:
    queries, users = _listed({})
    assert queries[0] == {"verbose": "1"}
    assert "per_page" not in queries[1]
    assert users == 7


def test_a_page_size_setting_is_still_sent() -> None:
    queries, _ = _listed({"per_page": "3"})
    assert queries[1]["per_page"] == "3"


class AvatarsOnRequest(generic.GenericVendor):
    """The generic API with a parameter it needs only for one field (Intercom's avatars)."""

    users = UsersEndpoint(
        "/api/users",
        items="users",
        paging=SinglePage(),
        endpoint=generic.LIST_ENDPOINT,
        field_params={"role": {"with_roles": "true"}},
    )


def test_a_field_parameter_is_sent_only_when_the_field_is_read() -> None:
    vendor = AvatarsOnRequest()
    queries = {}
    with generic.GenericEmulator(users=2) as emulator:
        options = ClientOptions(base_url=emulator.base_url, pace_requests=False)
        for wanted in (None, frozenset({"email", "role"}), frozenset({"email"})):
            before = len(emulator.requests)
            with vendor.authenticate(generic.credential_for(emulator), {}, options) as session:
                session.wanted_fields = wanted
                assert sum(1 for _ in vendor.iter_users(session)) == 2
            (listing,) = [r for r in list(emulator.requests)[before:] if r.path == "/api/users"]
            queries[wanted] = dict(listing.query)
    assert queries[None] == {"with_roles": "true"}  # nobody said: sent
    assert queries[frozenset({"email", "role"})] == {"with_roles": "true"}
    assert queries[frozenset({"email"})] == {}
