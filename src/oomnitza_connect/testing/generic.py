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

    with register_plugin(generic), generic.GenericEmulator(users=10) as emulator:
        connector = oomnitza_connect.get_connector("generic")
        session = connector.authenticate(
            generic.credential_for(emulator), options=ClientOptions(base_url=emulator.base_url)
        )
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import requests

from ..errors import AuthenticationError, PaginationError, VendorAPIError
from ..hookspecs import hookimpl
from ..models import (
    AuthKind,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    Preset,
    RateBudget,
    VendorInfo,
    VendorRecord,
)
from ..redaction import Secret
from ..transport.http import ClientOptions, HttpClient, VendorErrorInfo
from ..vendors.session import VendorSession
from .emulator import Emulator, EmulatorRequest, EmulatorResponse, json_response, route

__all__ = [
    "VENDOR",
    "GenericEmulator",
    "authenticate",
    "create_emulator",
    "credential_for",
    "list_users",
    "register_vendors",
    "vendor_info",
    "workflow_presets",
]

VENDOR = "generic"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 200
LIST_ENDPOINT = "users.list"


# ---------------------------------------------------------------------------
# Vendor description
# ---------------------------------------------------------------------------


def vendor_info() -> VendorInfo:
    """Return the generic vendor's description."""
    return VendorInfo(
        name=VENDOR,
        display_name="Generic SaaS",
        base_url="https://api.generic.example",
        auth_kinds=(AuthKind.API_KEY,),
        description="A stand-in vendor with page/per_page pagination and a bearer token.",
        global_settings=(
            GlobalSetting(
                key="per_page",
                description="How many users to ask for per page (at most 200).",
                default=str(DEFAULT_PAGE_SIZE),
            ),
        ),
        fields=(
            FieldSpec("id", "User Id", unique=True),
            FieldSpec("username", "Username", unique=True),
            FieldSpec("email", "Email", unique=True),
            FieldSpec("first_name", "First Name"),
            FieldSpec("last_name", "Last Name"),
            FieldSpec("role", "Role"),
            FieldSpec("active", "Active", FieldType.BOOLEAN),
            FieldSpec("created_at", "Created At", FieldType.DATETIME),
        ),
        standard_mapping=(
            FieldMapping("username", source="username"),
            FieldMapping("email", source="email"),
            FieldMapping("first_name", source="first_name"),
            FieldMapping("last_name", source="last_name"),
            FieldMapping("role", source="role"),
            FieldMapping("Generic User Id", source="id", unique=True),
        ),
        default_filters=("active",),
        rate_budgets=(
            RateBudget(LIST_ENDPOINT, requests_per_minute=600, burst=10),
            RateBudget("*", requests_per_minute=300, burst=5),
        ),
        api_version="v1",
    )


# ---------------------------------------------------------------------------
# Hook implementations
# ---------------------------------------------------------------------------


@hookimpl
def register_vendors(register: Any) -> None:
    register(vendor_info())


class _BearerToken(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer …``; holding a Secret keeps the token out of reprs."""

    def __init__(self, token: Secret) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token.reveal()}"
        return request


def _parse_error(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code < 400:
        return None
    code = None
    message = response.reason or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        message = body["error"].get("message") or message
    retry_after = response.headers.get("Retry-After")
    return VendorErrorInfo(
        message=message,
        code=code,
        request_id=response.headers.get("X-Request-Id"),
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


def _json(response: requests.Response, endpoint: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise VendorAPIError(
            "The vendor answered with a body that is not valid JSON",
            vendor=VENDOR,
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
            method=response.request.method,
            endpoint=endpoint,
        ) from None


@hookimpl
def authenticate(
    vendor: str,
    credential: Credential,
    settings: Mapping[str, str],
    options: ClientOptions,
) -> VendorSession | None:
    if vendor != VENDOR:
        return None
    if credential.token is None:
        raise AuthenticationError(
            f"Credential '{credential.name}' has no token; the generic vendor needs an API token.",
            vendor=VENDOR,
        )
    info = vendor_info()
    client = HttpClient(
        VENDOR,
        info.base_url,
        auth=_BearerToken(credential.token),
        options=options,
        rate_budgets=info.rate_budgets,
        error_parser=_parse_error,
    )
    try:
        response = client.request("GET", "/api/me", endpoint="me")
    except VendorAPIError as exc:
        client.close()
        if exc.status in (401, 403):
            raise AuthenticationError(
                f"The generic vendor refused credential '{credential.name}': {exc.vendor_message}.",
                vendor=VENDOR,
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
            ) from None
        raise
    except Exception:
        client.close()
        raise
    return VendorSession(
        vendor=VENDOR,
        http=client,
        credential=credential,
        settings=dict(settings),
        identity=_json(response, "me"),
    )


@hookimpl
def list_users(vendor: str, session: VendorSession) -> Iterator[VendorRecord] | None:
    if vendor != VENDOR:
        return None
    return _iter_users(session)


def _iter_users(session: VendorSession) -> Iterator[VendorRecord]:
    per_page = int(session.settings.get("per_page") or DEFAULT_PAGE_SIZE)
    page = 1
    while True:
        response = session.http.request(
            "GET",
            "/api/users",
            endpoint=LIST_ENDPOINT,
            params={"page": page, "per_page": per_page},
        )
        body = _json(response, LIST_ENDPOINT)
        for raw in body.get("users") or ():
            yield _record(raw)
        next_page = body.get("next_page")
        if not next_page:
            return
        if not isinstance(next_page, int) or next_page <= page:
            raise PaginationError(
                f"The vendor sent next_page {next_page!r} after page {page}; "
                "pagination would repeat or go backwards",
                vendor=VENDOR,
                endpoint=LIST_ENDPOINT,
            )
        page = next_page


def _record(raw: Mapping[str, Any]) -> VendorRecord:
    created = raw.get("created_at")
    fields = {
        "id": str(raw["id"]),
        "username": raw.get("username"),
        "email": raw.get("email"),
        "first_name": raw.get("first_name"),
        "last_name": raw.get("last_name"),
        "role": raw.get("role"),
        "active": bool(raw.get("active", True)),
        "created_at": datetime.fromisoformat(created) if created else None,
    }
    return VendorRecord(vendor=VENDOR, id=str(raw["id"]), fields=fields, raw=raw)


@hookimpl
def workflow_presets(vendor: str) -> list[Preset] | None:
    if vendor != VENDOR:
        return None
    return [
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
    ]


@hookimpl
def create_emulator(vendor: str, options: Mapping[str, Any]) -> GenericEmulator | None:
    if vendor != VENDOR:
        return None
    return GenericEmulator(
        users=int(options.get("users", 25)),
        seed=int(options.get("seed", 0)),
        port=int(options.get("port", 0)),
        token=options.get("token"),
        max_page_size=int(options.get("max_page_size", MAX_PAGE_SIZE)),
    )


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

    def test_credential(self) -> Credential:
        """Return a credential for this running emulator (the emulator command prints it)."""
        return attrs.evolve(credential_for(self), base_url=self.base_url)

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
