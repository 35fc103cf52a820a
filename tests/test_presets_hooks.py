"""The Python parts of a preset, without any real vendor: find_existing, mapper, merge.

``keeper`` is a test vendor whose create may answer an error although it made
the record (as Webex's does), whose PUT keeps whatever it is sent, and whose
reads carry a secret. Its presets use each hook of
:class:`~oomnitza_connect.models.Preset` the engine runs in Python.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from presets_support import add_people, body_of

from oomnitza_connect.connectors import get_connector
from oomnitza_connect.errors import PresetError
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import AuthKind, Credential, FindExisting, Preset, VendorInfo
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.presets.engine import PresetOverrides, get_preset, run_preset
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.testing.emulator import Emulator, EmulatorRequest, EmulatorResponse, route
from oomnitza_connect.transport.http import ClientOptions, HttpClient, VendorErrorInfo
from oomnitza_connect.vendors.session import VendorSession

TOKEN = "keeper-token-5555555555-secret"
READ_ONLY = ("id", "created")


class KeeperEmulator(Emulator):
    vendor = "keeper"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.users: dict[str, dict[str, Any]] = {
            "K1": {"id": "K1", "email": "ada@example.com", "name": "Ada", "title": "Engineer",
                   "role": "owner", "created": "2020-01-01", "api_key": TOKEN},
            "K2": {"id": "K2", "email": "bob@example.com", "name": "Bob", "title": "Sales",
                   "role": "member", "created": "2021-01-01", "api_key": TOKEN},
        }  # fmt: skip
        self.create_answer: str | None = None
        """``"400_after_creating"`` or ``"400"`` (refused, nothing made)."""
        self.lookups_refused_after: int | None = None
        self._lookups = 0
        self._ids = itertools.count(10)

    def _refused(self, request: EmulatorRequest) -> EmulatorResponse | None:
        if request.bearer_token() != TOKEN:
            return EmulatorResponse(status=401, body={"message": "bad token"})
        return None

    @route("GET", "/users", endpoint="users.find")
    def find(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        self._lookups += 1
        if self.lookups_refused_after is not None and self._lookups > self.lookups_refused_after:
            return EmulatorResponse(status=403, body={"message": "look-ups are off"})
        email = request.query.get("email")
        items = [user for user in self.users.values() if user["email"] == email]
        return EmulatorResponse(status=200, body={"items": items})

    @route("POST", "/users", endpoint="users.create")
    def create(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        if self.create_answer == "400":
            return EmulatorResponse(status=400, body={"message": "refused"})
        user_id = f"K{next(self._ids)}"
        self.users[user_id] = {"id": user_id, **(request.json() or {})}
        if self.create_answer == "400_after_creating":
            return EmulatorResponse(status=400, body={"message": "try again later"})
        return EmulatorResponse(status=201, body=self.users[user_id])

    @route("GET", "/users/{id}", endpoint="users.get")
    def get(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        user = self.users.get(request.path_params["id"])
        if user is None:
            return EmulatorResponse(status=404, body={"message": "no such user"})
        return EmulatorResponse(status=200, body=user)

    @route("PUT", "/users/{id}", endpoint="users.update")
    def put(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        user_id = request.path_params["id"]
        self.users[user_id] = {**(request.json() or {}), "id": user_id}
        return EmulatorResponse(status=200, body=self.users[user_id])

    def calls(self, endpoint: str) -> int:
        return sum(1 for r in self.requests if r.endpoint == endpoint)


MAPPER_CALLS: list[Any] = []


def role_mapper(session: Any, response: Any) -> Mapping[str, Any]:
    MAPPER_CALLS.append(response)
    # Wins over the template mapping of the same target.
    return {"saas_user.role": str(response["role"]).title(), "Keeper Title": "from the mapper"}


def broken_mapper(session: Any, response: Any) -> Mapping[str, Any]:
    raise ValueError("no role in this answer")


def writable_only(record: Mapping[str, Any], changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in record.items() if k not in READ_ONLY}, **changes}


_FIRST_ITEM = "{{(response.get('items') or [None])[0]}}"
_USER = "/users/{{keeper_user_id}}"
PRESETS = (
    Preset("keeper", "Find User", "Look up by email.", "GET", "/users",
           query={"email": "{{email}}"}, variables=("email",), endpoint="users.find"),
    Preset("keeper", "Create User", "Create, safely.", "POST", "/users",
           body={"email": "{{email}}", "name": "{{name}}"}, variables=("email", "name"),
           response_mappings={"Keeper Id": "{{response.id}}"}, idempotent=False,
           find_existing=FindExisting("Find User", record=_FIRST_ITEM), endpoint="users.create"),
    Preset("keeper", "Create Via Missing", "Its look-up is not offered.", "POST", "/users",
           body={"email": "{{email}}"}, variables=("email",),
           find_existing=FindExisting("No Such Preset"), endpoint="users.create"),
    Preset("keeper", "Create Misread", "Its record expression fails.", "POST", "/users",
           body={"email": "{{email}}"}, variables=("email",),
           find_existing=FindExisting("Find User", record="{{response.items.nope.deeper}}"),
           endpoint="users.create"),
    Preset("keeper", "Get User", "Read one.", "GET", _USER, variables=("keeper_user_id",),
           endpoint="users.get"),
    Preset("keeper", "Get Role", "Role by mapper.", "GET", _USER, variables=("keeper_user_id",),
           response_mappings={"Keeper Name": "{{response.name}}",
                              "Keeper Title": "{{response.title}}"},
           mapper=role_mapper, endpoint="users.get"),
    Preset("keeper", "Get Broken", "Mapper fails.", "GET", _USER,
           variables=("keeper_user_id",), mapper=broken_mapper, endpoint="users.get"),
    Preset("keeper", "Update Writable", "Read, keep writable fields, write.", "PUT", _USER,
           body={"title": "{{title}}"}, variables=("keeper_user_id", "title"),
           read_merge_write="Get User", merge=writable_only, endpoint="users.update"),
    Preset("keeper", "Update Whole", "Read, merge everything, write.", "PUT", _USER,
           body={"title": "{{title}}"}, variables=("keeper_user_id", "title"),
           read_merge_write="Get User", endpoint="users.update"),
)  # fmt: skip


def _error_of(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code < 400:
        return None
    return VendorErrorInfo(message=str(response.json().get("message")))


class _Bearer(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {TOKEN}"
        return request


class KeeperPlugin:
    info = VendorInfo(
        name="keeper",
        display_name="Keeper",
        base_url="https://keeper.invalid/",
        auth_kinds=(AuthKind.API_KEY,),
    )

    @hookimpl
    def register_vendors(self, register: Any) -> None:
        register(self.info)

    @hookimpl
    def authenticate(
        self,
        vendor: str,
        credential: Credential,
        settings: Mapping[str, str],
        options: ClientOptions,
    ) -> VendorSession | None:
        if vendor != "keeper":
            return None
        base_url = options.base_url or credential.base_url or self.info.base_url
        client = HttpClient(
            "keeper",
            base_url,
            auth=_Bearer(),
            options=attrs.evolve(options, base_url=base_url, pace_requests=False),
            error_parser=_error_of,
            sleep=lambda seconds: None,
        )
        return VendorSession("keeper", client, credential, settings=dict(settings))

    @hookimpl
    def workflow_presets(self, vendor: str) -> tuple[Preset, ...] | None:
        return PRESETS if vendor == "keeper" else None


@pytest.fixture
def keeper() -> Iterator[KeeperEmulator]:
    MAPPER_CALLS.clear()
    with register_plugin(KeeperPlugin(), name="test-keeper"), KeeperEmulator() as emulator:
        yield emulator


@pytest.fixture
def session(keeper: KeeperEmulator) -> Iterator[VendorSession]:
    credential = Credential(
        name="keeper", vendor="keeper", kind=AuthKind.API_KEY, token=TOKEN,
        base_url=keeper.base_url,
    )  # fmt: skip
    with get_connector("keeper").authenticate(credential) as opened:
        yield opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "keeper.db") as opened:
        add_people(opened, "keeper", [("K1", {"email": "ada@example.com", "first_name": "Ada"})])
        yield opened


def _run(session: VendorSession, name: str, **kwargs: Any) -> Any:
    return run_preset(session, get_preset("keeper", name), **kwargs)


# -- find_existing ---------------------------------------------------------------------


def test_a_record_found_first_is_not_created_again(keeper, session) -> None:
    result = _run(session, "Create User", variables={"email": "bob@example.com", "name": "B"})
    assert result.ok, result.error
    assert result.existing is True
    assert result.mapped == {"Keeper Id": "K2"}  # mapped from the record the look-up found
    assert keeper.calls("users.create") == 0
    assert keeper.calls("users.find") == 1


def test_a_new_record_is_created_after_one_look_up(keeper, session) -> None:
    result = _run(session, "Create User", variables={"email": "new@example.com", "name": "N"})
    assert result.ok, result.error
    assert (result.existing, result.despite_error) == (False, None)
    assert keeper.calls("users.create") == 1
    assert keeper.calls("users.find") == 1
    assert keeper.users[result.mapped["Keeper Id"]]["email"] == "new@example.com"


def test_an_error_although_created_counts_as_done_and_is_never_repeated(keeper, session) -> None:
    keeper.create_answer = "400_after_creating"
    variables = {"email": "ghost@example.com", "name": "G"}
    result = _run(session, "Create User", variables=variables)
    assert result.ok, result.error
    assert "try again later" in (result.despite_error or "")
    assert keeper.calls("users.create") == 1
    assert keeper.calls("users.find") == 2  # before the create and after its error
    again = _run(session, "Create User", variables=variables)
    assert again.existing is True
    assert again.mapped == result.mapped
    assert keeper.calls("users.create") == 1


def test_a_create_that_really_failed_fails_after_looking_again(keeper, session) -> None:
    keeper.create_answer = "400"
    result = _run(session, "Create User", variables={"email": "no@example.com", "name": "N"})
    assert not result.ok
    assert "refused" in (result.error or "")
    assert result.despite_error is None
    assert keeper.calls("users.find") == 2


def test_a_failed_look_up_after_the_error_reports_the_create_error(keeper, session) -> None:
    keeper.create_answer = "400"
    keeper.lookups_refused_after = 1
    result = _run(session, "Create User", variables={"email": "no@example.com", "name": "N"})
    assert not result.ok
    assert "refused" in (result.error or "")
    assert "look-ups are off" not in (result.error or "")


def test_a_dry_run_shows_the_look_up_and_sends_nothing(keeper, session) -> None:
    result = _run(
        session, "Create User", variables={"email": "x@example.com", "name": "X"}, dry_run=True
    )
    assert result.request["find_request"]["url"].endswith("/users?email=x%40example.com")
    assert result.request["method"] == "POST"
    assert not keeper.requests


def test_a_look_up_preset_the_vendor_lacks_is_named(keeper, session) -> None:
    with pytest.raises(PresetError, match="No Such Preset"):
        _run(session, "Create Via Missing", variables={"email": "x@example.com"})
    assert not keeper.requests


def test_a_record_expression_that_fails_fails_the_call_before_creating(keeper, session) -> None:
    result = _run(session, "Create Misread", variables={"email": "x@example.com"})
    assert not result.ok
    assert "could not read the record" in (result.error or "")
    assert keeper.calls("users.create") == 0


# -- mapper ----------------------------------------------------------------------------


def test_the_mapper_adds_values_that_win_and_reach_the_saas_user(keeper, session, store) -> None:
    ada = store.find_person("email", "ada@example.com")
    result = _run(session, "Get Role", person=ada, store=store)
    assert result.ok, result.error
    assert result.mapped["Keeper Name"] == "Ada"  # the template mapping
    assert result.mapped["Keeper Title"] == "from the mapper"  # the mapper wins
    assert result.mapped["role"] == "Owner"
    (account,) = store.iter_saas_users(vendor="keeper")
    assert account.role == "Owner"
    stored = store.find_person("email", "ada@example.com")
    assert stored.fields["Keeper Title"] == "from the mapper"


def test_the_mapper_sees_the_response_scrubbed_of_secrets(keeper, session) -> None:
    _run(session, "Get Role", variables={"keeper_user_id": "K2"})
    (seen,) = MAPPER_CALLS
    assert seen["name"] == "Bob"
    assert TOKEN not in str(seen)


def test_the_mapper_is_not_called_in_a_dry_run_nor_when_mappings_are_replaced(
    keeper, session
) -> None:
    dry = _run(session, "Get Role", variables={"keeper_user_id": "K1"}, dry_run=True)
    assert dry.mapped == {}
    replaced = _run(
        session,
        "Get Role",
        variables={"keeper_user_id": "K1"},
        overrides=PresetOverrides(response_mappings={"Only": "{{response.name}}"}),
    )
    assert replaced.mapped == {"Only": "Ada"}
    nothing = _run(
        session,
        "Get Role",
        variables={"keeper_user_id": "K1"},
        overrides=PresetOverrides(response_mappings={}),
    )
    assert nothing.mapped == {}
    assert MAPPER_CALLS == []


def test_a_mapper_that_fails_fails_the_call_and_stores_nothing(keeper, session, store) -> None:
    ada = store.find_person("email", "ada@example.com")
    result = _run(session, "Get Broken", person=ada, store=store)
    assert not result.ok
    assert "could not be mapped" in (result.error or "")
    assert "no role in this answer" in (result.error or "")
    (run,) = store.iter_workflow_runs()
    assert run.ok is False


# -- by variable: the account the variable names, as --person would ---------------------


def test_the_vendor_user_id_variable_finds_the_account_and_its_person(
    keeper, session, store
) -> None:
    result = _run(session, "Get Role", variables={"keeper_user_id": "K1"}, store=store)
    assert result.ok, result.error
    assert result.person == "ada@example.com"
    (account,) = store.iter_saas_users(vendor="keeper")
    assert account.role == "Owner"
    assert store.find_person("email", "ada@example.com").fields["Keeper Name"] == "Ada"


def test_the_email_variable_finds_the_person_when_the_account_id_is_needed(
    keeper, session, store
) -> None:
    result = _run(session, "Get Role", variables={"email": "ada@example.com"}, store=store)
    assert result.ok, result.error
    assert result.request["url"].endswith("/users/K1")
    assert next(store.iter_saas_users(vendor="keeper")).role == "Owner"


def test_an_account_the_store_lacks_is_reported_not_stored(keeper, session, store) -> None:
    result = _run(session, "Get Role", variables={"keeper_user_id": "K2"}, store=store)
    assert result.ok, result.error
    assert result.mapped["role"] == "Member"
    assert result.person is None
    assert next(store.iter_saas_users(vendor="keeper")).role != "Member"
    without_store = _run(session, "Get Role", variables={"keeper_user_id": "K2"})
    assert without_store.ok, without_store.error
    assert without_store.mapped["role"] == "Member"


# -- merge -----------------------------------------------------------------------------


def test_merge_decides_the_body_of_a_read_merge_write(keeper, session) -> None:
    result = _run(session, "Update Writable", variables={"keeper_user_id": "K1", "title": "CTO"})
    assert result.ok, result.error
    sent = body_of(keeper.requests[-1])
    assert sent["title"] == "CTO"
    assert sent["name"] == "Ada"  # read and kept
    assert not set(sent) & set(READ_ONLY)
    # The default merge sends every field read, read-only ones too.
    _run(session, "Update Whole", variables={"keeper_user_id": "K2", "title": "VP"})
    whole = body_of(keeper.requests[-1])
    assert {"id", "created"} <= set(whole)
    assert whole["title"] == "VP"


def test_a_replaced_body_no_longer_needs_the_old_bodys_variables(keeper, session) -> None:
    result = _run(
        session,
        "Update Writable",
        variables={"keeper_user_id": "K1", "changes": {"name": "Ada L."}},
        overrides=PresetOverrides(body="{{changes}}"),
    )
    assert result.ok, result.error
    assert body_of(keeper.requests[-1])["name"] == "Ada L."
    assert keeper.users["K1"]["title"] == "Engineer"
