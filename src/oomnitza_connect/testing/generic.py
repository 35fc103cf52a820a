"""A generic vendor: the test kit's demo plugin and its emulator.

The generic vendor speaks the most common shape of a SaaS user API: a bearer
token, ``GET /api/me`` to prove it, and ``GET /api/users?page=N&per_page=M``
returning ``{"users": [...], "next_page": N+1 | null}``. It serves three
purposes: the model the ``new-plugin`` template is written from, the
conformance suite's self-test (``tests/test_generic_conformance.py``) and a
vendor to demo the SDK with when no real vendor is at hand.

It is deliberately *not* registered through an entry point of the core, so it
never shows up as an installed vendor; register it explicitly::

    from oomnitza_connect.plugins import register_plugin
    from oomnitza_connect.testing import generic

    with register_plugin(generic.vendor), generic.GenericEmulator(users=10) as emulator:
        connector = oomnitza_connect.get_connector("generic")
        session = connector.authenticate(
            generic.credential_for(emulator), options=ClientOptions(base_url=emulator.base_url)
        )
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ..models import (
    AuthKind,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    Preset,
    RateBudget,
    SettingKind,
    VendorInfo,
)
from ..vendors.base import RestVendor
from ..vendors.description import ErrorRules, PageNumberPaging, UsersEndpoint, WhoAmI
from .emulator import Emulator, EmulatorRequest, EmulatorResponse, json_response, route

__all__ = [
    "VENDOR",
    "GenericEmulator",
    "GenericVendor",
    "credential_for",
    "vendor",
    "vendor_info",
]

VENDOR = "generic"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 200
LIST_ENDPOINT = "users.list"


# ---------------------------------------------------------------------------
# The vendor, described
# ---------------------------------------------------------------------------


class GenericVendor(RestVendor):
    """The generic vendor on the declarative description: no code of its own."""

    name = VENDOR
    display_name = "Generic SaaS"
    description = "A stand-in vendor with page/per_page pagination and a bearer token."
    base_url = "https://api.generic.example"
    auth_kinds = (AuthKind.API_KEY,)
    api_version = "v1"
    settings = (
        GlobalSetting(
            key="per_page",
            description=f"How many users to ask for per page (at most {MAX_PAGE_SIZE}).",
            default=str(DEFAULT_PAGE_SIZE),
            kind=SettingKind.INTEGER,
            minimum=1,
            maximum=MAX_PAGE_SIZE,
        ),
    )
    who_am_i = WhoAmI("/api/me", endpoint="me", identity={"id": "id", "account": "account"})
    users = UsersEndpoint(
        "/api/users",
        items="users",
        paging=PageNumberPaging(next_page_path="next_page"),
        endpoint=LIST_ENDPOINT,
        page_size_param="per_page",
        page_size_setting="per_page",
        default_page_size=DEFAULT_PAGE_SIZE,
    )
    fields = (
        FieldSpec("id", "User Id", unique=True),
        FieldSpec("username", "Username", unique=True),
        FieldSpec("email", "Email", unique=True),
        FieldSpec("first_name", "First Name"),
        FieldSpec("last_name", "Last Name"),
        FieldSpec("role", "Role"),
        FieldSpec("active", "Active", FieldType.BOOLEAN),
        FieldSpec("created_at", "Created At", FieldType.DATETIME),
    )
    standard_mapping = (
        FieldMapping("username", source="username"),
        FieldMapping("email", source="email"),
        FieldMapping("first_name", source="first_name"),
        FieldMapping("last_name", source="last_name"),
        FieldMapping("role", source="role"),
        FieldMapping("Generic User Id", source="id", unique=True),
    )
    default_filters = ("active",)
    rate_budgets = (
        RateBudget(LIST_ENDPOINT, requests_per_minute=600, burst=10),
        RateBudget("*", requests_per_minute=300, burst=5),
    )
    errors = ErrorRules(code=("error.code",), message=("error.message",))
    presets = (
        Preset(
            vendor=VENDOR,
            name="Get user",
            description="Read one user.",
            method="GET",
            path="/api/users/{{user_id}}",
            variables=("user_id",),
            response_mappings={"Generic Role": "{{response.role}}"},
            endpoint="users.get",
        ),
        Preset(
            vendor=VENDOR,
            name="Set role",
            description="Change a user's role.",
            method="PATCH",
            path="/api/users/{{user_id}}",
            body={"role": "{{role}}"},
            variables=("user_id", "role"),
            endpoint="users.update",
        ),
        Preset(
            vendor=VENDOR,
            name="Deactivate user",
            description="Turn a user's access off.",
            method="PATCH",
            path="/api/users/{{user_id}}",
            body={"active": False},
            variables=("user_id",),
            endpoint="users.update",
        ),
    )
    emulator = "oomnitza_connect.testing.generic:GenericEmulator"


vendor = GenericVendor()
"""The object to register: ``register_plugin(generic.vendor)``."""


def vendor_info() -> VendorInfo:
    """Return the generic vendor's description."""
    return vendor.info


def credential_for(emulator: GenericEmulator, name: str = "generic-demo") -> Credential:
    """Return a credential holding *emulator*'s API token."""
    return Credential(name=name, vendor=VENDOR, kind=AuthKind.API_KEY, token=emulator.api_token)


# ---------------------------------------------------------------------------
# Emulator
# ---------------------------------------------------------------------------

_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton")


class GenericEmulator(Emulator):
    """The generic vendor's API on 127.0.0.1.

    :param users: how many users to generate (deterministic for a given *seed*).
    :param token: the API token to accept; a random one is issued otherwise
        (``api_token`` holds it).
    :param max_page_size: the most users one page returns, whatever ``per_page`` asks.
    """

    vendor = VENDOR
    request_id_header = "X-Request-Id"

    def __init__(
        self,
        *,
        users: int = 25,
        seed: int = 0,
        token: str | None = None,
        max_page_size: int = MAX_PAGE_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_page_size = max_page_size
        self.users: dict[str, dict[str, Any]] = {}
        rng = random.Random(seed)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        for number in range(1, users + 1):
            first = rng.choice(_FIRST_NAMES)
            last = rng.choice(_LAST_NAMES)
            user_id = f"u{number:05d}"
            self.users[user_id] = {
                "id": user_id,
                "username": f"{first.lower()}.{last.lower()}{number}",
                "email": f"{first.lower()}.{last.lower()}{number}@example.com",
                "first_name": first,
                "last_name": last,
                "role": "admin" if number == 1 else "member",
                "active": number % 10 != 0,
                "created_at": (start + timedelta(days=number)).isoformat(),
            }
        self.api_token = self.issue_token(value=token, prefix="gen-").value
        self._request_counter = 0

    def expected_user_ids(self) -> set[str]:
        return set(self.users)

    def test_credential(self, name: str = "") -> Credential:
        """Return a credential for this running emulator (the emulator command prints it)."""
        credential = credential_for(self)
        return attrs.evolve(credential, name=name or credential.name, base_url=self.base_url)

    # -- vendor behaviour ---------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> EmulatorResponse:
        return json_response({"error": {"code": code, "message": message}}, status)

    def _authorize(self, request: EmulatorRequest) -> EmulatorResponse | None:
        token = self.lookup_token(request.bearer_token())
        if token is None:
            return self._error(401, "invalid_token", "The API token is not valid")
        if token.expired():
            return self._error(401, "token_expired", "The API token has expired")
        return None

    def rate_limited_response(
        self, retry_after: float, request: EmulatorRequest
    ) -> EmulatorResponse:
        response = self._error(429, "rate_limited", "Too many requests")
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
        return response

    def server_error_response(self, status: int, request: EmulatorRequest) -> EmulatorResponse:
        return self._error(status, "unavailable", "The service is temporarily unavailable")

    def not_found_response(self, request: EmulatorRequest) -> EmulatorResponse:
        return self._error(404, "not_found", f"No route for {request.method} {request.path}")

    @route("GET", "/api/me", endpoint="me")
    def me(self, request: EmulatorRequest) -> EmulatorResponse:
        return self._authorize(request) or json_response(
            {"id": "admin", "account": "Generic Demo Inc."}
        )

    @route("GET", "/api/users", endpoint=LIST_ENDPOINT)
    def list_users(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        try:
            page = int(request.query.get("page", "1"))
            per_page = int(request.query.get("per_page", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return self._error(400, "bad_request", "page and per_page must be integers")
        if page < 1 or per_page < 1:
            return self._error(400, "bad_request", "page and per_page must be positive")
        per_page = min(per_page, self.max_page_size)
        ordered = list(self.users.values())
        start = (page - 1) * per_page
        chunk = ordered[start : start + per_page]
        more = start + per_page < len(ordered)
        return json_response(
            {
                "users": chunk,
                "page": page,
                "per_page": per_page,
                "total": len(ordered),
                "next_page": page + 1 if more else None,
            }
        )

    @route("GET", "/api/users/{user_id}", endpoint="users.get")
    def get_user(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        user = self.users.get(request.path_params["user_id"])
        if user is None:
            return self._error(404, "user_not_found", "No such user")
        return json_response(user)

    @route("PATCH", "/api/users/{user_id}", endpoint="users.update")
    def update_user(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        user = self.users.get(request.path_params["user_id"])
        if user is None:
            return self._error(404, "user_not_found", "No such user")
        changes = request.json()
        if not isinstance(changes, dict) or not set(changes) <= {"role", "active"}:
            return self._error(400, "bad_request", "Only 'role' and 'active' can be changed")
        user.update(changes)
        return json_response(user)
