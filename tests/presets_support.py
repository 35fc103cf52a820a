"""Test vendors for the preset tests: plugins, presets and loopback emulators.

``acme`` is a REST vendor with a preset for each kind of call (read, create,
update, delete, licences, role, search with settings). ``replacer`` behaves
like Webex: its base URL has a path (``/v1/``) and its PUT replaces the whole
record, so an update must read, merge and write.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import unquote

import attrs
import requests

from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import (
    AuthKind,
    Credential,
    GlobalSetting,
    Preset,
    RateBudget,
    SyncStatus,
    UserSelection,
    VendorInfo,
)
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.base import MappedRecord, Store, SyncPlan
from oomnitza_connect.sync.rules import apply_batch
from oomnitza_connect.testing.emulator import (
    Emulator,
    EmulatorRequest,
    EmulatorResponse,
    route,
)
from oomnitza_connect.transport.http import ClientOptions, HttpClient, VendorErrorInfo
from oomnitza_connect.vendors.session import VendorSession

ACME_TOKEN = "acme-token-0123456789-secret"
REPLACER_TOKEN = "replacer-token-9876543210-secret"
LEAKED_CLIENT_SECRET = "cs-live-abcdefghijklmnop"

ACME_PEOPLE = [
    ("U1", {"email": "ada@example.com", "first_name": "Ada", "Department": "R&D"}),
    ("U2", {"email": "bob@example.com", "first_name": "Bob", "Department": "Sales"}),
    ("U3", {"email": "cy@example.com", "first_name": "Cy", "Department": "Sales"}),
    ("U9", {"email": "gone@example.com", "first_name": "Gone", "Department": "Sales"}),
]
"""People of the acme store fixtures: U9 has no account at the emulator (404)."""


def _json(body: Any, status: int = 200) -> EmulatorResponse:
    return EmulatorResponse(status=status, body=body)


class BearerAuth(requests.auth.AuthBase):
    """Sends the credential's token as a bearer token (the test vendors' only auth)."""

    def __init__(self, credential: Credential) -> None:
        self._credential = credential

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._credential.token
        if token:
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
        return request


# ---------------------------------------------------------------------------
# acme: a REST vendor
# ---------------------------------------------------------------------------


class AcmeEmulator(Emulator):
    vendor = "acme"

    def __init__(self, *, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.users: dict[str, dict[str, Any]] = {
            "U1": {"id": "U1", "email": "ada@example.com", "name": "Ada", "title": "Engineer"},
            "U2": {"id": "U2", "email": "bob@example.com", "name": "Bob", "title": "Sales"},
            "U3": {"id": "U3", "email": "cy@example.com", "name": "Cy", "title": "Sales"},
        }
        self.roles = {"U1": "admin", "U2": "member", "U3": "member"}
        self._ids = itertools.count(100)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def _authorised(self, request: EmulatorRequest) -> EmulatorResponse | None:
        if request.bearer_token() != ACME_TOKEN:
            return _json({"code": "unauthorized", "message": "Bad token"}, 401)
        return None

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    @route("GET", "/users/{id}", endpoint="users.info")
    def get_user(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        with self._tracked():
            user = self.users.get(unquote(request.path_params["id"]))
        if user is None:
            return _json({"code": "not_found", "message": "User not found"}, 404)
        return _json(user)

    @route("GET", "/users/{id}/role", endpoint="users.role")
    def get_role(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        role = self.roles.get(unquote(request.path_params["id"]))
        if role is None:
            return _json({"code": "not_found", "message": "User not found"}, 404)
        return _json({"role": role})

    @route("POST", "/users", endpoint="users.create")
    def create_user(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        if "application/json" not in (request.header("Content-Type") or ""):
            return _json({"code": "bad_request", "message": "JSON expected"}, 415)
        body = request.json()
        user_id = f"U{next(self._ids)}"
        self.users[user_id] = {"id": user_id, **body}
        return _json(self.users[user_id], 201)

    @route("PATCH", "/users/{id}", endpoint="users.update")
    def update_user(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        user = self.users.get(unquote(request.path_params["id"]))
        if user is None:
            return _json({"code": "not_found", "message": "User not found"}, 404)
        user.update(request.json())
        return _json(user)

    @route("DELETE", "/users/{id}", endpoint="users.delete")
    def delete_user(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        if self.users.pop(unquote(request.path_params["id"]), None) is None:
            return _json({"code": "not_found", "message": "User not found"}, 404)
        return EmulatorResponse(status=204)

    @route("GET", "/apps/{app_id}", endpoint="apps.info")
    def get_app(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        return _json(
            {
                "id": request.path_params["app_id"],
                "name": "Acme Voice",
                "subscription_types": [
                    {"type": "paid", "license_type": "individual", "price": 15},
                    {"type": "trial", "license_type": "universal", "price": 0},
                ],
            }
        )

    @route(
        "GET",
        "/apps/{app_id}/installations/{installation_id}/subscription",
        endpoint="apps.subscription",
    )
    def get_subscription(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        return _json(
            {
                "id": f"{request.path_params['installation_id']}-sub",
                "type": "paid",
                "total_licenses": 42,
                "max_licenses": 50,
            }
        )

    @route("GET", "/search", endpoint="search")
    def search(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        return _json(
            {
                "query": dict(request.query),
                "region_header": request.header("X-Acme-Region"),
            }
        )

    @route("GET", "/whoami", endpoint="whoami")
    def whoami(self, request: EmulatorRequest) -> EmulatorResponse:
        """A careless vendor that echoes the caller's token and a client secret."""
        if (refused := self._authorised(request)) is not None:
            return refused
        token = request.bearer_token()
        return _json(
            {
                "note": f"you called with {token}",
                "client_secret": LEAKED_CLIENT_SECRET,
                "token_type": "bearer",
                "account": "acme-corp",
            }
        )


ACME_PRESETS = (
    Preset(
        vendor="acme",
        name="Get User Details",
        description="Read one user.",
        method="GET",
        path="/users/{{acme_user_id}}",
        variables=("acme_user_id",),
        response_mappings={"Acme Details": "{{response}}", "Acme Title": "{{response.title}}"},
        endpoint="users.info",
    ),
    Preset(
        vendor="acme",
        name="Get User Role",
        description="Read one user's role into the SaaS user.",
        method="GET",
        path="/users/{{acme_user_id}}/role",
        variables=("acme_user_id",),
        response_mappings={"saas_user.acme_role": "{{response.role}}"},
        endpoint="users.role",
    ),
    Preset(
        vendor="acme",
        name="Create User",
        description="Create a user from the person.",
        method="POST",
        path="/users",
        body={
            "email": "{{email}}",
            "name": "{{first_name}} {{last_name}}",
            "title": "{{title}}",
            "seats": "{{seats}}",
            "tags": ["synced", "{{department}}"],
        },
        variables=("email", "title", "seats"),
        response_mappings={"Acme Created Id": "{{response.id}}"},
        idempotent=False,
        endpoint="users.create",
    ),
    Preset(
        vendor="acme",
        name="Update User Title",
        description="Change a user's title.",
        method="PATCH",
        path="/users/{{acme_user_id}}",
        body={"title": "{{title}}"},
        variables=("acme_user_id", "title"),
        response_mappings={"Acme Title": "{{response.title}}"},
        endpoint="users.update",
    ),
    Preset(
        vendor="acme",
        name="Delete User",
        description="Delete a user.",
        method="DELETE",
        path="/users/{{acme_user_id}}",
        variables=("acme_user_id",),
        endpoint="users.delete",
    ),
    Preset(
        vendor="acme",
        name="Get App Information",
        description="Read the app's subscription types.",
        method="GET",
        path="/apps/{{app_id}}",
        variables=("app_id",),
        response_mappings={"Acme License Type": "{{response['subscription_types'][0].type}}"},
        endpoint="apps.info",
    ),
    Preset(
        vendor="acme",
        name="Get Installation Subscription",
        description="Read how many licences the installation has.",
        method="GET",
        path="/apps/{{app_id}}/installations/{{installation_id}}/subscription",
        variables=("app_id", "installation_id"),
        response_mappings={"Acme Total Licenses": "{{response.total_licenses}}"},
        endpoint="apps.subscription",
    ),
    Preset(
        vendor="acme",
        name="Search",
        description="Search with the account's region.",
        method="GET",
        path="/search",
        query={"q": "{{query}}", "region": "{{settings['Acme.Region']}}", "limit": "{{limit}}"},
        headers={"X-Acme-Region": "{{Acme_Region}}"},
        variables=("query",),
        endpoint="search",
    ),
    Preset(
        vendor="acme",
        name="Who Am I",
        description="A call whose answer echoes secrets.",
        method="GET",
        path="/whoami",
        response_mappings={"Acme Whoami": "{{response}}", "Acme Note": "{{response.note}}"},
        endpoint="whoami",
    ),
)


class AcmePlugin:
    """The acme vendor plugin (an object, so each test can register a fresh one)."""

    info = VendorInfo(
        name="acme",
        display_name="Acme",
        base_url="https://api.acme.invalid/",
        auth_kinds=(AuthKind.API_KEY,),
        global_settings=(GlobalSetting("Acme.Region", "The account's region.", default="us"),),
        rate_budgets=(RateBudget("*", 6000, burst=50),),
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
        if vendor != "acme":
            return None
        return _session(self.info, credential, settings, options)

    @hookimpl
    def workflow_presets(self, vendor: str) -> tuple[Preset, ...] | None:
        return ACME_PRESETS if vendor == "acme" else None


# ---------------------------------------------------------------------------
# replacer: PUT replaces the whole record, like Webex
# ---------------------------------------------------------------------------


class ReplacerEmulator(Emulator):
    vendor = "replacer"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.people: dict[str, dict[str, Any]] = {
            "P1": {
                "id": "P1",
                "emails": ["ada@example.com"],
                "displayName": "Ada Lovelace",
                "title": "Engineer",
                "department": "R&D",
                "licenses": ["L-CALLING", "L-MEETINGS"],
                "loginEnabled": True,
            }
        }

    def _authorised(self, request: EmulatorRequest) -> EmulatorResponse | None:
        if request.bearer_token() != REPLACER_TOKEN:
            return _json({"message": "The request requires a valid access token."}, 401)
        return None

    @route("GET", "/v1/people/{id}", endpoint="people.get")
    def get_person(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        person = self.people.get(request.path_params["id"])
        if person is None:
            return _json({"message": "Person not found"}, 404)
        return _json(person)

    @route("PUT", "/v1/people/{id}", endpoint="people.update")
    def put_person(self, request: EmulatorRequest) -> EmulatorResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        person_id = request.path_params["id"]
        if person_id not in self.people:
            return _json({"message": "Person not found"}, 404)
        body = request.json()
        if not isinstance(body, dict) or "displayName" not in body:
            return _json({"message": "displayName is required"}, 400)
        # The whole record is replaced: fields left out are gone.
        self.people[person_id] = {**body, "id": person_id}
        return _json(self.people[person_id])


REPLACER_PRESETS = (
    Preset(
        vendor="replacer",
        name="Get User Details",
        description="Read one person.",
        method="GET",
        path="people/{{replacer_user_id}}",
        variables=("replacer_user_id",),
        endpoint="people.get",
    ),
    Preset(
        vendor="replacer",
        name="Update User",
        description="Change a person's title, keeping every other field.",
        method="PUT",
        path="people/{{replacer_user_id}}",
        body={"title": "{{title}}"},
        variables=("replacer_user_id", "title"),
        response_mappings={"Replacer Title": "{{response.title}}"},
        read_merge_write="Get User Details",
        endpoint="people.update",
    ),
    Preset(
        vendor="replacer",
        name="Replace User",
        description="Send the body as the whole record (no read first).",
        method="PUT",
        path="people/{{replacer_user_id}}",
        body={"displayName": "{{display_name}}", "title": "{{title}}"},
        variables=("replacer_user_id", "display_name", "title"),
        endpoint="people.update",
    ),
)


class ReplacerPlugin:
    info = VendorInfo(
        name="replacer",
        display_name="Replacer",
        base_url="https://replacer.invalid/v1/",
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
        if vendor != "replacer":
            return None
        return _session(self.info, credential, settings, options)

    @hookimpl
    def workflow_presets(self, vendor: str) -> tuple[Preset, ...] | None:
        return REPLACER_PRESETS if vendor == "replacer" else None


# ---------------------------------------------------------------------------
# Sessions and registration
# ---------------------------------------------------------------------------


def _session(
    info: VendorInfo, credential: Credential, settings: Mapping[str, str], options: ClientOptions
) -> VendorSession:
    base_url = options.base_url or credential.base_url or info.base_url
    client = HttpClient(
        info.name,
        base_url,
        auth=BearerAuth(credential),
        options=attrs.evolve(options, base_url=base_url, pace_requests=False),
        error_parser=_error_of,
        sleep=lambda seconds: None,  # retries and pacing never wait in tests
    )
    return VendorSession(info.name, client, credential, settings=dict(settings))


def _error_of(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code < 400:
        return None
    try:
        message = response.json().get("message")
    except ValueError:
        message = None
    return VendorErrorInfo(message=message or response.reason or f"HTTP {response.status_code}")


def acme_credential(emulator: Emulator, *, token: str = ACME_TOKEN) -> Credential:
    return Credential(
        name="acme-test",
        vendor="acme",
        kind=AuthKind.API_KEY,
        token=token,
        base_url=emulator.base_url,
    )


def replacer_credential(emulator: Emulator) -> Credential:
    return Credential(
        name="replacer-test",
        vendor="replacer",
        kind=AuthKind.API_KEY,
        token=REPLACER_TOKEN,
        base_url=emulator.base_url + "/v1/",
    )


@contextmanager
def registered_vendors() -> Iterator[None]:
    """Register the acme and replacer plugins for the duration of a block."""
    with ExitStack() as stack:
        stack.enter_context(register_plugin(AcmePlugin(), name="test-acme"))
        stack.enter_context(register_plugin(ReplacerPlugin(), name="test-replacer"))
        yield


def body_of(request: EmulatorRequest) -> Any:
    return json.loads(request.body) if request.body else None


def add_people(store: Store, vendor: str, people: list[tuple[str, dict[str, Any]]]) -> None:
    """Create people linked to *vendor* accounts through a real sync batch.

    :param people: ``(vendor_user_id, person fields)`` pairs; fields need ``email``.
    """
    plan = SyncPlan(
        integration=f"{vendor}-presets-test",
        vendor=vendor,
        sync_key="email",
        selection=UserSelection.USERS_AND_SAAS,
    )
    store.prepare_run(plan, test_run=False)
    session = store.start_session(plan)
    outcome = apply_batch(
        store,
        store,
        session.id,
        plan,
        [MappedRecord(vendor_user_id=user_id, fields=fields) for user_id, fields in people],
    )
    assert not outcome.errors, outcome.errors
    store.finish_session(session.id, status=SyncStatus.SUCCEEDED)
