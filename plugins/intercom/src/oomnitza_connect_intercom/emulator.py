"""A local Intercom REST API (version 2.11) for tests, demos and benchmarks.

It serves ``GET /admins`` (one unpaginated list, ``display_avatar``),
``GET /admins/{id}``, ``GET /me``, the OAuth token exchange
``POST /auth/eagle/token`` and an auto-approving ``GET /oauth``, the way
Intercom does:

* errors are ``error.list`` envelopes with a ``request_id``;
* the ``Intercom-Version`` header picks the API version; an unknown one
  answers 400 ``intercom_version_invalid``;
* every API answer carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``
  for a fixed 10-second window, and going over answers 429
  ``rate_limit_exceeded`` (Intercom spreads its per-minute limit over
  10-second windows);
* three regional hosts (US, EU, AU) listen on three ports. The workspace lives
  in one region; its tokens get 401 ``unauthorized`` on the other two hosts, as
  a token of one region does on Intercom's other hosts.

Admins are not stored: admin *i* is the test kit's fake person *i*
(:class:`~oomnitza_connect.testing.fakes.FakePeople`), computed from the seed
when a listing needs it, so a workspace of 100,000 admins costs nothing until
it is listed.
The first admins are one of each odd kind (see :data:`SPECIAL_KINDS`): a
missing ``job_title``, a null avatar, null team fields, away mode, no inbox
seat. Old API versions (1.x and 2.0) list teams among the admins
(``type: "team"``); ``teams_in_list=True`` does so on every version.

>>> with IntercomEmulator(users=50, seed=1) as intercom:
...     credential = intercom.test_credential()
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import attrs

from oomnitza_connect.testing.emulator import (
    AccessProblem,
    Emulator,
    EmulatorRequest,
    EmulatorResponse,
    IssuedToken,
    Refusal,
    json_response,
    route,
)
from oomnitza_connect.testing.fakes import FakePeople, FakePerson
from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin

__all__ = [
    "KNOWN_VERSIONS",
    "LEGACY_VERSIONS",
    "REGIONS",
    "SPECIAL_KINDS",
    "IntercomEmulator",
]

REGIONS = ("US", "EU", "AU")
DEFAULT_VERSION = "2.11"
KNOWN_VERSIONS = frozenset(
    {"1.0", "1.1", "1.2", "1.3", "1.4"} | {f"2.{minor}" for minor in range(17)} | {"Preview"}
)
"""The versions of Intercom's API description repository (1.0 to 2.16 and Preview)."""
LEGACY_VERSIONS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4", "2.0"})
"""Versions whose ``/admins`` also listed teams (``type: "team"`` entries)."""

SPECIAL_KINDS = (
    "owner",
    "no_job_title",
    "null_avatar",
    "null_teams",
    "null_priority",
    "away",
    "no_inbox_seat",
)
"""The kinds of admins 0 to 6, so that even a tiny workspace has one of each.

``owner`` is the admin the ready-made token belongs to (``/me``);
``no_job_title`` has no ``job_title`` key (as Intercom's own example);
``null_avatar`` has ``"avatar": null``; ``null_teams`` has ``team_ids`` and
``team_priority_level`` null; ``null_priority`` has both priority lists null;
``away`` has away mode (and reassignment) on; ``no_inbox_seat`` has no seat.
"""

_TEAM_NAMES = ("Support", "Sales", "Billing", "Onboarding")
_REGION_ZONES = {"US": "America/Los_Angeles", "EU": "Europe/Dublin", "AU": "Australia/Sydney"}
_TEAM_ID_BASE = 814_000
_ADMIN_ID_BASE = 991_000_000
_ACCESS_ERRORS = {
    "unknown": ("unauthorized", "Access Token Invalid"),
    "revoked": ("token_revoked", "Token revoked"),
    "expired": ("token_expired", "Token expired"),
}
"""How Intercom refuses a token (one sent without a token is "unknown")."""
_WINDOW_SECONDS = 10.0


def _error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message}],
    }


class _RateWindow:
    """Fixed windows of ``window`` seconds aligned to the epoch, as Intercom counts."""

    def __init__(self, per_window: int, window: float) -> None:
        self.per_window = max(1, per_window)
        self.window = window
        self._lock = threading.Lock()
        self._start = 0.0
        self._used = 0

    def admit(self) -> tuple[bool, int, int]:
        """Count one call; return (admitted, remaining, reset as epoch seconds)."""
        now = time.time()
        start = math.floor(now / self.window) * self.window
        with self._lock:
            if start != self._start:
                self._start, self._used = start, 0
            admitted = self._used < self.per_window
            if admitted:
                self._used += 1
            remaining = self.per_window - self._used
        return admitted, remaining, math.ceil(start + self.window)


class _ForeignRegionHost(Emulator):
    """An Intercom host of a region the workspace is not in: every call is 401."""

    vendor = "intercom"

    def __init__(self, home: IntercomEmulator, region: str, **options: Any) -> None:
        super().__init__(**options)
        self.home = home
        self.region = region

    def not_found_response(self, request: EmulatorRequest) -> EmulatorResponse:
        # A token is valid only on its own region's host; Intercom answers the
        # other hosts as if the token did not exist.
        request_id = self.home.next_request_id()
        return json_response(
            _error_body("unauthorized", "Access Token Invalid", request_id),
            status=401,
            **{"X-Request-Id": request_id},
        )


class IntercomEmulator(OAuthTokenEndpointMixin):
    """An emulated Intercom workspace with *users* generated admins.

    :param users: how many admins ``/admins`` lists (change :attr:`user_count`
        later to grow or shrink the workspace).
    :param seed: makes names, ids and kinds reproducible.
    :param token: the value of the ready-made access token (default: a fresh one).
    :param region: the workspace's region (``US``, ``EU`` or ``AU``); its host
        is :attr:`base_url`, the other two answer 401.
    :param app_version: the version used when a request sends no ``Intercom-Version``
        (Intercom's "version set in the app package").
    :param requests_per_minute: the rate limit, spread over 10-second windows
        (``requests_per_minute / 6`` calls per window).
    :param teams_in_list: list teams among the admins on every version, not
        only on the legacy ones.
    :param plan_restricted: endpoint names (``admins.list``, ``admins.retrieve``,
        ``me``) that answer 403 ``api_plan_restricted``.
    :param client_id: the OAuth app's client id; :param client_secret: its secret.
    :param options: passed to :class:`~oomnitza_connect.testing.emulator.Emulator`
        (``port``, ``enforce_rate_limits`` …). ``max_page_size`` is accepted and
        ignored: ``/admins`` has no pages.
    """

    vendor = "intercom"
    access_token_ttl = None
    """Intercom access tokens do not expire, and no refresh token is issued."""

    def __init__(
        self,
        *,
        users: int = 25,
        seed: int = 0,
        token: str | None = None,
        region: str = "US",
        app_version: str = DEFAULT_VERSION,
        requests_per_minute: float = 1000,
        teams_in_list: bool = False,
        plan_restricted: Iterable[str] = (),
        client_id: str | None = None,
        client_secret: str | None = None,
        max_page_size: int | None = None,
        **options: Any,
    ) -> None:
        region = region.upper()
        if region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, not {region!r}")
        super().__init__(**options)
        self.user_count = users
        self.seed = seed
        self.region = region
        self.app_version = app_version
        self.teams_in_list = teams_in_list
        self.plan_restricted = set(plan_restricted)
        self.requests_per_minute = requests_per_minute
        self.rate_window = _RateWindow(int(requests_per_minute // 6), _WINDOW_SECONDS)
        self.app_id = (
            f"emu{seed % 10_000:04d}" + hashlib.blake2b(b"%d" % seed, digest_size=8).hexdigest()
        )
        self.app_name = f"Emulated Workspace {seed}"
        # Its own domain: a demo syncs several vendors' fake people into one store.
        self.email_domain = f"intercom-{seed}.example.com"
        self.people = FakePeople(seed=seed, email_domain=self.email_domain)
        self._id_base = _ADMIN_ID_BASE + (seed % 900) * 1_000_000
        self._lock = threading.Lock()
        self._overrides: dict[int, dict[str, Any]] = {}
        self._removed: set[int] = set()
        self._request_ids = itertools.count(1)
        self._foreign: dict[str, _ForeignRegionHost] = {}
        self._answering = threading.local()
        self.client_id = client_id or f"emu-client-{seed}"
        self.client_secret = client_secret or secrets.token_hex(16)
        self.register_client(self.client_id, client_secret=self.client_secret)
        self.token = self.issue_token(
            value=token, prefix="dG9rOmVtdS", subject=self.admin_id(0)
        ).value

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> IntercomEmulator:
        """Build an emulator from ``create_emulator`` options, ignoring unknown ones."""
        known = (
            "users", "seed", "token", "region", "app_version", "requests_per_minute",
            "teams_in_list", "plan_restricted", "client_id", "client_secret", "host", "port",
            "enforce_rate_limits",
        )  # fmt: skip
        chosen = {key: options[key] for key in known if options.get(key) is not None}
        return cls(**chosen)

    # -- life cycle: one host per region ----------------------------------------

    def start(self) -> IntercomEmulator:
        super().start()
        try:
            for region in REGIONS:
                if region != self.region:
                    host = _ForeignRegionHost(self, region, host=self.host)
                    self._foreign[region] = host
                    host.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for host in self._foreign.values():
            host.stop()
        self._foreign.clear()
        super().stop()

    @property
    def region_urls(self) -> dict[str, str]:
        """The API root of each region's host (the workspace's own is :attr:`base_url`)."""
        urls = {self.region: self.base_url}
        urls.update({region: host.base_url for region, host in self._foreign.items()})
        return {region: urls[region] for region in REGIONS if region in urls}

    def region_url(self, region: str) -> str:
        """The API root of *region*'s host, like ``https://api.eu.intercom.io``."""
        return self.region_urls[region.upper()]

    def foreign_requests(self) -> list[EmulatorRequest]:
        """Requests the other regions' hosts received (and refused)."""
        return [request for host in self._foreign.values() for request in host.requests]

    @property
    def token_url(self) -> str:
        return self.base_url + "/auth/eagle/token"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/oauth"

    def next_request_id(self) -> str:
        number = next(self._request_ids)
        return str(uuid.UUID(int=(self.seed % 2**32) << 96 | number, version=4))

    def current_request_id(self) -> str:
        """The id of the request being answered on this thread (the header and body share it)."""
        current = getattr(self._answering, "request_id", None)
        return current if isinstance(current, str) else self.next_request_id()

    # -- generated admins ---------------------------------------------------------

    def admin_id(self, index: int) -> str:
        return str(self._id_base + index)

    def index_of(self, admin_id: str) -> int | None:
        try:
            index = int(admin_id) - self._id_base
        except ValueError:
            return None
        return index if self._exists(index) else None

    def _exists(self, index: int) -> bool:
        return 0 <= index < self.user_count and index not in self._removed

    def _team_numbers(self, person: FakePerson) -> list[int]:
        # From the bits the fake person leaves free (144 and up): its one or two teams.
        bits = person.bits >> 144
        return sorted({bits % len(_TEAM_NAMES), (bits >> 4) % len(_TEAM_NAMES)})

    def kind_of(self, index: int) -> str:
        """Return the kind of admin *index*: one of :data:`SPECIAL_KINDS` or ``person``."""
        return self._kind_from(index, self.people[index])

    @staticmethod
    def _kind_from(index: int, person: FakePerson) -> str:
        if index < len(SPECIAL_KINDS):
            return SPECIAL_KINDS[index]
        roll = person.roll
        for kind, upper in (
            ("no_job_title", 0.10),
            ("null_avatar", 0.18),
            ("null_teams", 0.22),
            ("null_priority", 0.26),
            ("away", 0.31),
            ("no_inbox_seat", 0.38),
        ):
            if roll < upper:
                return kind
        return "person"

    def admin_ids(self) -> list[str]:
        """Every admin id the workspace lists now, in listing order."""
        return [self.admin_id(i) for i in range(self.user_count) if i not in self._removed]

    def expected_user_ids(self) -> set[str]:
        return set(self.admin_ids())

    def team_ids(self) -> list[str]:
        return [str(_TEAM_ID_BASE + number) for number in range(len(_TEAM_NAMES))]

    def update_admin(self, admin_id: str, **changes: Any) -> None:
        """Change an admin's fields (the next answers carry the new values)."""
        index = self.index_of(admin_id)
        if index is None:
            raise KeyError(admin_id)
        with self._lock:
            self._overrides.setdefault(index, {}).update(changes)

    def remove_admin(self, admin_id: str) -> None:
        """Take an admin out of the workspace entirely."""
        index = self.index_of(admin_id)
        if index is None:
            raise KeyError(admin_id)
        with self._lock:
            self._removed.add(index)

    def admin(self, admin_id: str, *, display_avatar: bool = True) -> dict[str, Any] | None:
        """Return the JSON of *admin_id* as ``/admins`` lists it."""
        index = self.index_of(admin_id)
        return None if index is None else self._admin_at(index, display_avatar=display_avatar)

    def _admin_at(self, index: int, *, display_avatar: bool) -> dict[str, Any]:
        person = self.people[index]
        kind = self._kind_from(index, person)
        # Some addresses carry capitals, as real ones do, to exercise lower-casing.
        email = person.email_as_typed if index % 5 == 2 else person.email
        team_ids = [_TEAM_ID_BASE + n for n in self._team_numbers(person)]
        admin: dict[str, Any] = {
            "type": "admin",
            "email": email,
            "id": self.admin_id(index),
            "name": person.full_name,
            "away_mode_enabled": False,
            "away_mode_reassign": False,
            "has_inbox_seat": True,
            "team_ids": team_ids,
            "job_title": person.title,
            "team_priority_level": {
                "primary_team_ids": team_ids[:1],
                "secondary_team_ids": team_ids[1:],
            },
        }
        if display_avatar:
            admin["avatar"] = {
                "type": "avatar",
                "image_url": f"https://static.intercomassets.com/avatars/{admin['id']}/square_128.png",
            }
        if kind == "no_job_title":
            del admin["job_title"]
        elif kind == "null_avatar" and display_avatar:
            admin["avatar"] = None
        elif kind == "null_teams":
            admin.update(team_ids=None, team_priority_level=None)
        elif kind == "null_priority":
            admin["team_priority_level"] = {"primary_team_ids": None, "secondary_team_ids": None}
        elif kind == "away":
            admin.update(away_mode_enabled=True, away_mode_reassign=True)
        elif kind == "no_inbox_seat":
            admin.update(has_inbox_seat=False, team_ids=[], team_priority_level={})
        override = self._overrides.get(index)
        if override:
            admin.update(override)
        return admin

    def _team_at(self, number: int) -> dict[str, Any]:
        members = [
            self.admin_id(i)
            for i in range(min(self.user_count, 12))
            if i not in self._removed and number in self._team_numbers(self.people[i])
        ]
        return {
            "type": "team",
            "id": str(_TEAM_ID_BASE + number),
            "name": _TEAM_NAMES[number],
            "admin_ids": members,
        }

    def _listing(self, *, display_avatar: bool, with_teams: bool) -> Iterator[dict[str, Any]]:
        for index in range(self.user_count):
            if index not in self._removed:
                yield self._admin_at(index, display_avatar=display_avatar)
        if with_teams:
            for number in range(len(_TEAM_NAMES)):
                yield self._team_at(number)

    # -- Intercom conventions -------------------------------------------------------

    def dispatch(self, request: EmulatorRequest) -> EmulatorResponse | None:
        request_id = self.next_request_id()
        self._answering.request_id = request_id
        api_call = not request.path.startswith(("/auth/", "/oauth"))
        window: tuple[bool, int, int] | None = None
        if api_call and self.enforce_rate_limits:
            window = self.rate_window.admit()
            if not window[0]:
                self.rate_limited_count += 1
                self.requests.append(request)
                response: EmulatorResponse | None = self._rate_limit_exceeded(request_id, window)
            else:
                response = super().dispatch(request)
        else:
            response = super().dispatch(request)
        if response is None:
            return None
        response.headers.setdefault("X-Request-Id", request_id)
        if isinstance(response.body, dict) and response.body.get("type") == "error.list":
            response.body.setdefault("request_id", request_id)
        if window is not None:
            limit = str(self.rate_window.per_window)
            response.headers.setdefault("X-RateLimit-Limit", limit)
            response.headers.setdefault("X-RateLimit-Remaining", str(window[1]))
            response.headers.setdefault("X-RateLimit-Reset", str(window[2]))
        return response

    def _rate_limit_exceeded(
        self, request_id: str, window: tuple[bool, int, int]
    ) -> EmulatorResponse:
        body = _error_body(
            "rate_limit_exceeded",
            f"Exceeded rate limit of {self.rate_window.per_window} in 10_seconds",
            request_id,
        )
        return json_response(body, status=429)

    def rate_limited_response(
        self, retry_after: float, request: EmulatorRequest
    ) -> EmulatorResponse:
        # Intercom sends no Retry-After: the reset time is in X-RateLimit-Reset.
        body = _error_body("rate_limit_exceeded", "Exceeded rate limit", self.current_request_id())
        return json_response(
            body,
            status=429,
            **{
                "X-RateLimit-Limit": str(self.rate_window.per_window),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(time.time() + retry_after)),
            },
        )

    # An unknown path (or method) is a 404 ``not_found``, a fault 5xx a ``server_error``.
    fault_codes = {"internal_error": "server_error"}

    def error_response(self, status: int, code: str, request: EmulatorRequest) -> EmulatorResponse:
        message = {"server_error": "Server Error", "not_found": "Resource Not Found"}.get(
            code, code
        )
        return self._refuse(status, code, message)

    def _refuse(self, status: int, code: str, message: str) -> EmulatorResponse:
        return json_response(_error_body(code, message, self.current_request_id()), status=status)

    def access_refused(self, problem: AccessProblem, request: EmulatorRequest) -> EmulatorResponse:
        code, message = _ACCESS_ERRORS.get(problem.reason, _ACCESS_ERRORS["unknown"])
        return self._refuse(401, code, message)

    def _check(
        self, request: EmulatorRequest, endpoint: str
    ) -> tuple[IssuedToken | None, str, EmulatorResponse | None]:
        """Check the token, the version and the plan; return (token, version, error)."""
        version = (request.header("Intercom-Version") or self.app_version).strip()
        try:
            token = self.check_access(request)
        except Refusal as refusal:
            return None, version, refusal.response
        if version not in KNOWN_VERSIONS:
            return (
                None,
                version,
                self._refuse(
                    400,
                    "intercom_version_invalid",
                    f"The requested version '{version}' is not valid; see the Intercom-Version "
                    "header documentation",
                ),
            )
        accept = (request.header("Accept") or "*/*").lower()
        if "json" not in accept and "*/*" not in accept:
            return None, version, self._refuse(406, "client_error", "Not Acceptable")
        if endpoint in self.plan_restricted:
            return (
                None,
                version,
                self._refuse(
                    403, "api_plan_restricted", "Active subscription needed to access this API"
                ),
            )
        return token, version, None

    # -- routes ---------------------------------------------------------------------

    @route("GET", "/admins", endpoint="admins.list")
    def admins_list(self, request: EmulatorRequest) -> EmulatorResponse:
        _, version, error = self._check(request, "admins.list")
        if error is not None:
            return error
        display_avatar = (request.query.get("display_avatar") or "").lower() == "true"
        with_teams = self.teams_in_list or version in LEGACY_VERSIONS
        # The list is encoded entry by entry, so no list of every admin is built.
        chunks = (
            json.dumps(entry).encode("utf-8")
            for entry in self._listing(display_avatar=display_avatar, with_teams=with_teams)
        )
        body = b'{"type": "admin.list", "admins": [' + b", ".join(chunks) + b"]}"
        return EmulatorResponse(status=200, raw_body=body)

    @route("GET", "/admins/{admin_id}", endpoint="admins.retrieve")
    def admins_retrieve(self, request: EmulatorRequest) -> EmulatorResponse:
        _, _, error = self._check(request, "admins.retrieve")
        if error is not None:
            return error
        index = self.index_of(request.path_params["admin_id"])
        if index is None:
            return self._refuse(404, "admin_not_found", "Admin not found")
        return json_response(self._admin_at(index, display_avatar=False))

    @route("GET", "/me", endpoint="me")
    def me(self, request: EmulatorRequest) -> EmulatorResponse:
        token, _, error = self._check(request, "me")
        if error is not None or token is None:
            return error or self._refuse(401, "unauthorized", "Access Token Invalid")
        index = self.index_of(token.subject)
        if index is None:
            index = 0  # an OAuth install belongs to the admin who approved it
        admin = self._admin_at(index, display_avatar=True)
        for key in ("team_priority_level", "away_mode_enabled", "away_mode_reassign"):
            admin.pop(key, None)
        admin["email_verified"] = True
        if not admin.get("avatar"):
            admin["avatar"] = {
                "type": "avatar",
                "image_url": "https://static.intercomassets.com/assets/default-avatars/admins/128.png",
            }
        admin["app"] = {
            "type": "app",
            "id_code": self.app_id,
            "name": self.app_name,
            "created_at": 1_719_492_696,
            "secure": False,
            "identity_verification": False,
            "timezone": _REGION_ZONES[self.region],
            "region": self.region,
        }
        return json_response(admin)

    # -- OAuth ------------------------------------------------------------------------

    @route("GET", "/oauth", endpoint="oauth.authorize")
    def intercom_authorize(self, request: EmulatorRequest) -> EmulatorResponse:
        """Approve at once and redirect back with a code (Intercom needs no response_type)."""
        if "response_type" not in request.query:
            request = _with_query(request, response_type="code")
        return self.handle_authorize_request(request)

    @route("POST", "/auth/eagle/token", endpoint="oauth.token")
    def eagle_token(self, request: EmulatorRequest) -> EmulatorResponse:
        """Exchange a code (``code``, ``client_id``, ``client_secret``; no grant_type needed)."""
        form = request.form()
        if "grant_type" not in form:
            form["grant_type"] = "authorization_code"
            request = _with_form(request, form)
        if form.get("grant_type") != "authorization_code":
            # How Intercom words a refusal here is not documented; RFC 6749's shape is used.
            return self.token_error(
                "unsupported_grant_type", "Intercom issues no refresh tokens", 400
            )
        return self.handle_token_request(request)

    def token_success(
        self,
        access_token: str,
        refresh_token: str | None,
        expires_in: float | None,
        scopes: frozenset[str],
    ) -> EmulatorResponse:
        # Intercom's answer: the token twice, no expiry, no refresh token.
        body = {"token_type": "Bearer", "token": access_token, "access_token": access_token}
        return EmulatorResponse(status=200, body=body, headers={"Cache-Control": "no-store"})


def _with_query(request: EmulatorRequest, **extra: str) -> EmulatorRequest:
    return attrs.evolve(request, query={**request.query, **extra})


def _with_form(request: EmulatorRequest, form: Mapping[str, str]) -> EmulatorRequest:
    return attrs.evolve(
        request,
        body=urlencode(dict(form)).encode("utf-8"),
        headers={**request.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
