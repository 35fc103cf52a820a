"""A local Webex REST API (v1) for tests, demos and benchmarks.

It serves what the connector uses, the way Webex does (../shared/vendor-apis.md
section 3):

* ``GET /v1/people`` with ``max`` and RFC 5988 ``Link`` paging (``rel="next"``,
  plus ``first`` and ``prev``, which mean nothing for "is there more"), the
  filters ``email``, ``displayName`` (prefix), ``id`` (up to 85), ``roles`` and
  ``excludeStatus``; non-admin callers must filter.
* ``GET/PUT/DELETE /v1/people/{personId}``, ``GET /v1/people/me`` and
  ``POST /v1/people``. A PUT replaces the whole record: a field left out is
  cleared, and a missing ``displayName`` is a 400. Deleting needs a full or
  user administrator.
* ``GET /v1/roles`` and ``GET /v1/roles/{roleId}`` (admins only).
* ``GET /v1/authorize`` and ``POST /v1/access_token`` (form-encoded, the
  client's id and secret in the form; refresh tokens rotate, and a used one is
  refused).

Admin-only person fields (``roles``, ``licenses``, ``invitePending``,
``loginEnabled``) are shown only to an admin token with
``spark-admin:people_read``. Errors use Webex's ``{message, errors[],
trackingId}`` body, and every answer carries a ``trackingId`` header.

Beyond the test kit's faults, :class:`WebexFault` adds Webex's own: the broken
next link (query parameters dropped, or ``max=null``), a create that answers
400 although the person was created, and a 429 or 423 without ``Retry-After``.

People are not stored: person *i* is computed from the seed when a page needs
it, so an org of 100,000 people costs nothing until it is listed. The first
people are one of each special kind (:data:`SPECIAL_KINDS`).

>>> with WebexEmulator(users=500, seed=1) as webex:
...     credential = webex.test_credential()
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.testing.emulator import (
    EmulatorRequest,
    EmulatorResponse,
    Fault,
    IssuedToken,
    json_response,
    route,
)
from oomnitza_connect.testing.fakes import FakePeople
from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin

__all__ = [
    "ADMIN_ROLES",
    "ALL_SCOPES",
    "DELETING_ROLES",
    "PEOPLE_READ",
    "PEOPLE_WRITE",
    "ROLES",
    "ROLES_READ",
    "SPECIAL_KINDS",
    "WebexEmulator",
    "WebexFault",
]

PEOPLE_READ = "spark-admin:people_read"
PEOPLE_WRITE = "spark-admin:people_write"
ROLES_READ = "spark-admin:roles_read"
"""The scope the emulator asks for on /roles (Webex's own is UNCONFIRMED)."""
USER_READ = "spark:people_read"
ALL_SCOPES = ("spark:all", USER_READ, PEOPLE_READ, PEOPLE_WRITE, ROLES_READ)
BOT_SCOPES = ("spark:all", USER_READ)

ROLES: tuple[tuple[str, str], ...] = (
    ("full_admin", "Full Administrator"),
    ("user_admin", "User and Device Administrator"),
    ("readonly_admin", "Readonly Administrator"),
    ("device_admin", "Device Administrator"),
    ("compliance_officer", "Compliance Officer"),
    ("support_admin", "Support Administrator"),
    ("external_full_admin", "External Full Administrator"),
)
"""(key, name) of the org's roles, as ``GET /v1/roles`` lists them."""
ADMIN_ROLES = frozenset(key for key, _ in ROLES if key != "compliance_officer")
DELETING_ROLES = frozenset({"full_admin", "user_admin", "external_full_admin"})
"""Who may ``DELETE /v1/people/{id}`` (read-only and device admins may not)."""

SPECIAL_KINDS = (
    "admin",
    "bot",
    "appuser",
    "invite_pending",
    "login_disabled",
    "never_signed_in",
    "status_hidden",
    "long_inactive",
    "user_admin",
    "readonly_admin",
)
"""The kinds of people 0 to 9, so that even a tiny org has one of each."""

NAME_FIELDS = ("displayName", "firstName", "lastName")
WRITABLE_FIELDS = (
    "emails", "phoneNumbers", "extension", "locationId", "displayName", "firstName",
    "lastName", "nickName", "avatar", "orgId", "roles", "licenses", "department",
    "manager", "managerId", "title", "addresses", "siteUrls", "loginEnabled",
)  # fmt: skip
"""The PUT body's properties: each one left out is cleared (PUT replaces the record)."""
KEPT_ON_PUT = ("id", "emails", "orgId", "created", "type", "status", "lastActivity",
               "invitePending", "sipAddresses", "xmppFederationJid", "timezone")  # fmt: skip

ACCESS_TOKEN_TTL = 1_209_600.0
"""14 days, from the Webex docs' example token response."""
REFRESH_TOKEN_TTL = 7_776_000.0
"""90 days."""
DEFAULT_MAX = 100
MAX_IDS = 85

_DEPARTMENTS = ("Sales", "Engineering", "Support", "Finance", "People", "IT", "Marketing")
_STATUSES = ("active", "inactive", "meeting", "call", "DoNotDisturb", "OutOfOffice", "presenting")
_ZONES = ("America/Denver", "America/New_York", "Europe/Berlin", "Asia/Tokyo")


class WebexFault:
    """Webex's own faults, for :meth:`FaultPlan.add` next to the test kit's :class:`Fault`."""

    BROKEN_NEXT_LINK = "webex_broken_next_link"
    CREATED_BUT_400 = "webex_created_but_400"
    NO_RETRY_AFTER = "webex_no_retry_after"

    @staticmethod
    def broken_next_link(style: str = "drop_params") -> Fault:
        """The page's ``rel="next"`` link is broken the way Webex breaks it.

        :param style: ``drop_params`` (only the cursor is left: ``max`` and the
            filters are gone) or ``max_null`` (``max=null``, filters gone too).
        """
        if style not in ("drop_params", "max_null"):
            raise ValueError("style is 'drop_params' or 'max_null'")
        return Fault(WebexFault.BROKEN_NEXT_LINK, headers={"style": style})

    @staticmethod
    def created_but_400() -> Fault:
        """``POST /v1/people`` creates the person and still answers 400."""
        return Fault(WebexFault.CREATED_BUT_400, status=400)

    @staticmethod
    def throttled_without_retry_after(status: int = 429) -> Fault:
        """429 (or 423 Locked) with no ``Retry-After`` header at all."""
        return Fault(WebexFault.NO_RETRY_AFTER, status=status)

    @staticmethod
    def throttled(retry_after_header: str, status: int = 429) -> Fault:
        """429 (or 423) with this exact ``Retry-After`` value (``"0"``, ``"soon"`` …)."""
        return Fault(
            WebexFault.NO_RETRY_AFTER, status=status, headers={"Retry-After": retry_after_header}
        )


def encode_id(kind: str, uuid: str) -> str:
    """Webex ids are unpadded base64 of ``ciscospark://us/<KIND>/<uuid>``."""
    return base64.b64encode(f"ciscospark://us/{kind}/{uuid}".encode()).decode().rstrip("=")


def decode_id(value: str) -> tuple[str, str] | None:
    """Return ``(kind, uuid)`` of a Webex id, or ``None`` when it is not one."""
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix = "ciscospark://us/"
    if not text.startswith(prefix):
        return None
    kind, _, uuid = text[len(prefix) :].partition("/")
    return (kind, uuid) if uuid else None


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class WebexEmulator(OAuthTokenEndpointMixin):
    """An emulated Webex org with *users* generated people.

    :param users: how many people ``GET /v1/people`` serves.
    :param seed: makes names, ids, kinds and activity reproducible.
    :param token: the value of the ready-made personal access token of the org's
        full administrator (default: a fresh one).
    :param scopes: the ready-made token's scopes.
    :param max_page_size: the most people one page holds, whatever ``max`` asks
        (tests lower it to exercise paging).
    :param bool_style: how ``invitePending``/``loginEnabled`` go on the wire:
        ``string`` ("true"/"false", as the spec's examples), ``boolean``, or
        ``mixed`` (each person one or the other; the default, because the live
        wire type is not confirmed).
    :param broken_next_link: ``drop_params`` or ``max_null`` breaks every next
        link (the fault :meth:`WebexFault.broken_next_link` breaks one).
    :param now: the moment last activity is counted back from (default: start-up).
    :param options: passed to :class:`~oomnitza_connect.testing.emulator.Emulator`.
    """

    vendor = "webex"
    access_token_ttl: ClassVar[float | None] = ACCESS_TOKEN_TTL
    refresh_token_ttl: ClassVar[float | None] = REFRESH_TOKEN_TTL
    rate_limits: ClassVar[Mapping[str, tuple[float, int]]] = {
        "people.list": (1200, 40),
        "people.get": (1200, 40),
        "people.create": (300, 10),
        "people.update": (300, 10),
        "people.delete": (300, 10),
        "roles.list": (60, 5),
    }
    """Webex publishes no numbers; these are generous and the plugin keeps under them."""

    def __init__(
        self,
        *,
        users: int = 100,
        seed: int = 0,
        token: str | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        max_page_size: int = 1000,
        bool_style: str = "mixed",
        broken_next_link: str | None = None,
        now: datetime | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if bool_style not in ("string", "boolean", "mixed"):
            raise ValueError("bool_style is 'string', 'boolean' or 'mixed'")
        if broken_next_link not in (None, "drop_params", "max_null"):
            raise ValueError("broken_next_link is None, 'drop_params' or 'max_null'")
        self.seed = seed
        self.generated = max(0, users)
        self.max_page_size = max(1, max_page_size)
        self.bool_style = bool_style
        self.broken_next_link = broken_next_link
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.org_uuid = f"{seed % 0xFFFFFFFF:08x}-0000-4000-8000-0000000000aa"
        self.org_id = encode_id("ORGANIZATION", self.org_uuid)
        self.email_domain = f"webex-{seed}.example.com"
        self.people = FakePeople(seed=seed, email_domain=self.email_domain)
        """Names, addresses and titles of the generated people (the test kit's)."""
        self._lock = threading.Lock()
        self._records: dict[int, dict[str, Any]] = {}
        self._removed: set[int] = set()
        self._created_emails: dict[str, int] = {}
        self._next_index = self.generated
        self._tracking = itertools.count(1)
        self._local = threading.local()
        self.client_id = client_id or "C" + hashlib.sha256(b"client:%d" % seed).hexdigest()
        self.client_secret = client_secret or secrets.token_hex(32)
        self.register_client(self.client_id, client_secret=self.client_secret, scopes=ALL_SCOPES)
        self.token = self.issue_token(
            scopes=scopes, prefix="emu-pat-", subject=self.person_id(0), value=token
        ).value
        self.roles: list[tuple[str, str]] = [(self.role_id(key), name) for key, name in ROLES]
        """``(id, name)`` of each role ``GET /v1/roles`` lists, in order (tests change it)."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WebexEmulator:
        """Build an emulator from ``create_emulator`` options, ignoring unknown ones."""
        known = (
            "users", "seed", "token", "scopes", "max_page_size", "bool_style",
            "broken_next_link", "now", "client_id", "client_secret", "host", "port",
            "rate_limits", "enforce_rate_limits",
        )  # fmt: skip
        return cls(**{key: options[key] for key in known if options.get(key) is not None})

    # -- addresses and credentials -------------------------------------------

    @property
    def server_url(self) -> str:
        return super().base_url

    @property
    def base_url(self) -> str:
        """The API root, like ``https://webexapis.com/v1``."""
        return self.server_url + "/v1"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/access_token"

    def oauth_credential(self, name: str = "webex-emulator-oauth") -> Credential:
        """A credential of the emulator's OAuth app, for ``auth login`` (no tokens yet).

        The authorize endpoint approves at once and redirects to any loopback
        redirect URI (``http://127.0.0.1:PORT/callback``), so ``auth login``
        completes without a sign-in page; the tokens it gets are the org's full
        administrator's.
        """
        return Credential(
            name=name,
            vendor="webex",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id=self.client_id,
            client_secret=self.client_secret,
            client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST,
            authorize_url=self.authorize_url,
            token_url=self.token_url,
            base_url=self.base_url,
            scopes=(PEOPLE_READ, PEOPLE_WRITE, ROLES_READ),
        )

    def issue_person_token(self, index: int, scopes: Iterable[str] = ALL_SCOPES) -> str:
        """A personal access token of person *index* (admin or not by that person's roles)."""
        return self.issue_token(
            scopes=scopes, prefix="emu-pat-", subject=self.person_id(index)
        ).value

    def issue_bot_token(self) -> str:
        """A bot's token: it may look people up but not list the org."""
        return self.issue_token(
            scopes=BOT_SCOPES, prefix="emu-bot-", subject=self.person_id(1)
        ).value

    # -- ids ------------------------------------------------------------------

    def _person_uuid(self, index: int) -> str:
        return f"{self.seed % 0xFFFFFFFF:08x}-0000-4000-8000-{index:012x}"

    def person_id(self, index: int) -> str:
        return encode_id("PEOPLE", self._person_uuid(index))

    def role_id(self, key: str) -> str:
        position = [k for k, _ in ROLES].index(key)
        return encode_id("ROLE", f"{self.seed % 0xFFFFFFFF:08x}-0000-4000-9000-{position:012x}")

    def _role_key(self, role_id: str) -> str | None:
        for key, _ in ROLES:
            if self.role_id(key) == role_id:
                return key
        return None

    def license_id(self, number: int) -> str:
        return encode_id("LICENSE", f"{self.seed % 0xFFFFFFFF:08x}-0000-4000-a000-{number:012x}")

    def index_of(self, person_id: str) -> int | None:
        decoded = decode_id(person_id)
        if decoded is None or decoded[0] != "PEOPLE":
            return None
        prefix = f"{self.seed % 0xFFFFFFFF:08x}-0000-4000-8000-"
        if not decoded[1].startswith(prefix):
            return None
        try:
            index = int(decoded[1][len(prefix) :], 16)
        except ValueError:
            return None
        return index if self._exists(index) else None

    def _exists(self, index: int) -> bool:
        return 0 <= index < self._next_index and index not in self._removed

    def _index_of_email(self, email: str) -> int | None:
        email = email.strip().lower()
        with self._lock:
            created = self._created_emails.get(email)
        if created is not None:
            return created if self._exists(created) else None
        index = self.people.index_of_email(email)
        if index is None or not self._exists(index) or index >= self.generated:
            return None
        person = self.person(index)  # changed (or a bot's or guest's address): look
        return index if person is not None and email in person["emails"] else None

    # -- generated people ----------------------------------------------------

    def _bits(self, index: int) -> int:
        digest = hashlib.blake2b(b"webex:%d:%d" % (self.seed, index), digest_size=24).digest()
        return int.from_bytes(digest, "big")

    def kind_of(self, index: int) -> str:
        """One of :data:`SPECIAL_KINDS`, ``person`` or (created) ``created``."""
        if index >= self.generated:
            return "created"
        return self._kind_from(index, self._bits(index))

    @staticmethod
    def _kind_from(index: int, bits: int) -> str:
        if index < len(SPECIAL_KINDS):
            return SPECIAL_KINDS[index]
        roll = (bits & 0xFFFF) / 0x10000
        for kind, upper in (
            ("bot", 0.03),
            ("appuser", 0.06),
            ("invite_pending", 0.08),
            ("login_disabled", 0.09),
            ("never_signed_in", 0.11),
            ("status_hidden", 0.13),
            ("long_inactive", 0.17),
            ("user_admin", 0.18),
        ):
            if roll < upper:
                return kind
        return "person"

    def _flag(self, value: bool, bits: int) -> str | bool:
        style = self.bool_style
        if style == "mixed":
            style = "boolean" if (bits >> 180) & 1 else "string"
        return value if style == "boolean" else ("true" if value else "false")

    def person(self, index: int) -> dict[str, Any] | None:
        """The full record of person *index* (every admin field), or ``None``."""
        if not self._exists(index):
            return None
        with self._lock:
            stored = self._records.get(index)
        if stored is not None:
            return _deep_copy(stored)
        return self._generate(index)

    def _generate(self, index: int) -> dict[str, Any]:
        bits = self._bits(index)
        kind = self._kind_from(index, bits)
        fake = self.people[index]
        first, last = fake.first_name, fake.last_name
        created = self.now - timedelta(days=200 + (bits >> 32) % 2000, seconds=(bits >> 48) % 86400)
        modified = created + timedelta(days=(bits >> 64) % 150)
        person: dict[str, Any] = {
            "id": self.person_id(index),
            "emails": [fake.email],
            "phoneNumbers": [
                {"type": "work", "value": f"+1 408 555 {(bits >> 72) % 10**4:04d}", "primary": True}
            ],
            "displayName": fake.full_name,
            "nickName": first,
            "firstName": first,
            "lastName": last,
            "avatar": f"https://avatars.example.com/{index}~1600",
            "orgId": self.org_id,
            "roles": [],
            "licenses": [self.license_id(1)],
            "department": _DEPARTMENTS[(bits >> 80) % len(_DEPARTMENTS)],
            "title": fake.title,
            "created": _iso(created),
            "lastModified": _iso(modified),
            "timezone": _ZONES[(bits >> 96) % len(_ZONES)],
            "siteUrls": [f"emulated-{self.seed}.webex.com#attendee"],
            "status": _STATUSES[(bits >> 104) % len(_STATUSES)],
            "invitePending": self._flag(False, bits),
            "loginEnabled": self._flag(True, bits),
            "type": "person",
        }
        roll = ((bits >> 112) & 0xFFFF) / 0x10000
        if roll < 0.75:
            days = (bits >> 128) % 21
        elif roll < 0.92:
            days = 30 + (bits >> 128) % 90
        else:
            days = 200 + (bits >> 128) % 500
        person["lastActivity"] = _iso(self.now - timedelta(days=days, minutes=(bits >> 140) % 1440))
        if kind == "admin":
            person["roles"] = [self.role_id("full_admin")]
            person["lastActivity"] = _iso(self.now - timedelta(hours=1))
            person["status"] = "active"
        elif kind == "user_admin":
            person["roles"] = [self.role_id("user_admin")]
        elif kind == "readonly_admin":
            person["roles"] = [self.role_id("readonly_admin")]
        elif kind == "bot":
            person.update(
                type="bot",
                emails=[f"emulated.bot.{index}@webex.bot"],
                displayName=f"Emulated Bot {index}",
                firstName="",
                lastName="",
                licenses=[],
            )
            for key in ("phoneNumbers", "nickName", "department", "title", "siteUrls"):
                person.pop(key, None)
        elif kind == "appuser":
            person.update(type="appuser", emails=[f"guest.{index}@guests.example.net"], licenses=[])
            for key in ("phoneNumbers", "department", "title", "siteUrls"):
                person.pop(key, None)
        elif kind == "invite_pending":
            person.update(status="pending", invitePending=self._flag(True, bits))
            person.pop("lastActivity")
        elif kind == "login_disabled":
            person.update(loginEnabled=self._flag(False, bits), status="inactive")
            person["lastActivity"] = _iso(self.now - timedelta(days=120))
        elif kind == "never_signed_in":
            person["status"] = "inactive"
            person.pop("lastActivity")
        elif kind == "status_hidden":
            # The person turned off status sharing: neither status nor lastActivity.
            person.pop("status")
            person.pop("lastActivity")
        elif kind == "long_inactive":
            person["status"] = "inactive"
            person["lastActivity"] = _iso(self.now - timedelta(days=400 + (bits >> 150) % 300))
        return person

    def person_ids(self) -> list[str]:
        """Every person id the org lists now, in listing order."""
        return [self.person_id(i) for i in range(self._next_index) if i not in self._removed]

    def expected_user_ids(self) -> set[str]:
        return set(self.person_ids())

    def roles_of(self, index: int) -> list[str]:
        person = self.person(index)
        return _role_list(person.get("roles")) if person else []

    def role_names(self) -> dict[str, str]:
        """role id -> name (the first listed, for an id :attr:`roles` lists twice)."""
        names: dict[str, str] = {}
        for role_id, name in self.roles:
            names.setdefault(role_id, name)
        return names

    def add_person(self, **fields: Any) -> str:
        """Add a person directly (as if created elsewhere); return the id."""
        record = self._new_record(fields)
        return str(record["id"])

    def update_person(self, person_id: str, **changes: Any) -> None:
        """Change stored fields of a person (a ``None`` value removes the field)."""
        index = self.index_of(person_id)
        if index is None:
            raise KeyError(person_id)
        person = self.person(index)
        assert person is not None
        for key, value in changes.items():
            if value is None:
                person.pop(key, None)
            else:
                person[key] = value
        with self._lock:
            self._records[index] = person

    def remove_person(self, person_id: str) -> None:
        index = self.index_of(person_id)
        if index is None:
            raise KeyError(person_id)
        with self._lock:
            self._removed.add(index)

    def _new_record(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            index = self._next_index
            self._next_index += 1
        stamp = _iso(datetime.now(UTC))
        record: dict[str, Any] = {
            key: body[key] for key in WRITABLE_FIELDS if key in body and key != "loginEnabled"
        }
        emails = [
            str(e).lower() for e in body.get("emails") or [f"new.{index}@{self.email_domain}"]
        ]
        record.update(
            id=self.person_id(index),
            emails=emails[:1],
            orgId=self.org_id,
            created=stamp,
            lastModified=stamp,
            status="pending",
            invitePending=self._flag(True, self._bits(index)),
            loginEnabled=self._flag(bool(body.get("loginEnabled", True)), self._bits(index)),
            type="person",
        )
        record.setdefault("displayName", " ".join(
            str(body[k]) for k in ("firstName", "lastName") if body.get(k)
        ))  # fmt: skip
        if record.get("firstName"):
            record["nickName"] = record["firstName"]
        record.setdefault("roles", [])
        record.setdefault("licenses", [self.license_id(1)])
        with self._lock:
            self._records[index] = record
            self._created_emails[emails[0]] = index
        return _deep_copy(record)

    # -- answers ----------------------------------------------------------------

    def _tracking_id(self) -> str:
        return f"EMU_{self.seed}_{next(self._tracking):08d}_{secrets.token_hex(4)}"

    def _error(self, status: int, message: str, **headers: str) -> EmulatorResponse:
        tracking = self._tracking_id()
        body = {
            "message": message,
            "errors": [{"description": message}],
            "trackingId": tracking,
        }
        return json_response(body, status=status, trackingId=tracking, **headers)

    def _ok(self, body: Any, status: int = 200, **headers: str) -> EmulatorResponse:
        response = json_response(body, status=status, **headers)
        response.headers["trackingId"] = self._tracking_id()
        return response

    def rate_limited_response(
        self, retry_after: float, request: EmulatorRequest
    ) -> EmulatorResponse:
        return self._error(
            429,
            "Too many requests have been sent in a given amount of time. Please try again later.",
            **{"Retry-After": str(max(1, round(retry_after)))},
        )

    def server_error_response(self, status: int, request: EmulatorRequest) -> EmulatorResponse:
        if status == 504:
            return self._error(
                504,
                "The server did not receive a timely response from an upstream server. "
                "If your query uses max parameter, please try to reduce it.",
            )
        return self._error(
            status, "The server received an invalid response from an upstream server."
        )

    def not_found_response(self, request: EmulatorRequest) -> EmulatorResponse:
        return self._error(404, "The requested resource could not be found.")

    def token_success(
        self,
        access_token: str,
        refresh_token: str | None,
        expires_in: float | None,
        scopes: frozenset[str],
    ) -> EmulatorResponse:
        # The Webex docs' example: no token_type, no scope.
        body: dict[str, Any] = {"access_token": access_token}
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
            body["refresh_token_expires_in"] = int(REFRESH_TOKEN_TTL)
        return self._ok(body, **{"Cache-Control": "no-store"})

    def token_error(self, error: str, description: str, status: int) -> EmulatorResponse:
        response = self._error(status, description)
        response.body.update(error=error, error_description=description)
        return response

    # -- faults -------------------------------------------------------------------

    def dispatch(self, request: EmulatorRequest) -> EmulatorResponse | None:
        self._local.broken_link = self.broken_next_link
        self._local.created_but_400 = False
        return super().dispatch(request)

    def _apply_fault(self, fault: Fault, request: EmulatorRequest) -> Any:
        if fault.kind == WebexFault.BROKEN_NEXT_LINK:
            self._local.broken_link = fault.headers.get("style", "drop_params")
            return super()._apply_fault(Fault.slow(0.0), request)  # answer normally
        if fault.kind == WebexFault.CREATED_BUT_400:
            self._local.created_but_400 = True
            return super()._apply_fault(Fault.slow(0.0), request)
        if fault.kind == WebexFault.NO_RETRY_AFTER:
            response = self.rate_limited_response(1, request)
            response.status = fault.status
            response.headers.pop("Retry-After", None)
            response.headers.update(fault.headers)
            return response
        return super()._apply_fault(fault, request)

    # -- tokens and callers ---------------------------------------------------------

    def _caller(
        self, request: EmulatorRequest, needed: str | None = None
    ) -> tuple[IssuedToken | None, int, EmulatorResponse | None]:
        token = self.lookup_token(request.bearer_token())
        if token is None or token.expired():
            return (
                None,
                -1,
                self._error(
                    401,
                    "The request requires a valid access token set in the Authorization request "
                    "header.",
                ),
            )
        if needed and needed not in token.scopes:
            return (
                token,
                -1,
                self._error(
                    403,
                    f"The access token lacks the scope required for this request: {needed}",
                ),
            )
        # OAuth tokens belong to the admin who consented (person 0).
        index = self.index_of(token.subject)
        return token, 0 if index is None else index, None

    def _is_admin(self, token: IssuedToken, index: int) -> bool:
        if PEOPLE_READ not in token.scopes:
            return False
        keys = {self._role_key(r) for r in self.roles_of(index)}
        return bool(keys & ADMIN_ROLES)

    def _visible(
        self,
        person: dict[str, Any],
        *,
        admin: bool,
        presence: bool = True,
    ) -> dict[str, Any]:
        if not admin:
            for key in ("roles", "licenses", "invitePending", "loginEnabled"):
                person.pop(key, None)
        if not presence:
            person.pop("status", None)
            person.pop("lastActivity", None)
        return person

    # -- people -------------------------------------------------------------------

    @route("GET", "/v1/people", endpoint="people.list")
    def list_people(self, request: EmulatorRequest) -> EmulatorResponse:
        token, caller, error = self._caller(request)
        if error is not None or token is None:
            return error or self._error(401, "no token")
        params = request.query
        admin = self._is_admin(token, caller)
        email = params.get("email") or None
        display_name = params.get("displayName") or None
        ids = [part for part in (params.get("id") or "").split(",") if part]
        roles = {part for part in (params.get("roles") or "").split(",") if part}
        if not admin and not (email or display_name or ids):
            return self._error(400, "Email, displayName, or id list should be specified.")
        if len(ids) > MAX_IDS:
            return self._error(400, f"At most {MAX_IDS} ids may be given.")
        if roles and not admin:
            return self._error(403, "Only an admin of the org may filter by roles.")
        raw_max = params.get("max")
        if raw_max is None or raw_max == "":
            size = DEFAULT_MAX
        else:
            try:
                size = int(raw_max)
            except ValueError:
                return self._error(400, f"Invalid value for max: '{raw_max}'; it must be a number.")
            if size < 1:
                return self._error(400, "max must be at least 1.")
        size = min(size, self.max_page_size)
        start = 0
        after = params.get("after")
        if after:
            decoded = _decode_cursor(after)
            if decoded is None:
                return self._error(400, "The 'after' cursor is not valid.")
            start = decoded
        presence = params.get("excludeStatus", "false").lower() != "true" and not ids

        def matches(index: int) -> dict[str, Any] | None:
            person = self.person(index)
            if person is None:
                return None
            if email and email.lower() not in person["emails"]:
                return None
            if display_name and not str(person.get("displayName", "")).lower().startswith(
                display_name.lower()
            ):
                return None
            if ids and person["id"] not in ids:
                return None
            if roles and not roles & set(_role_list(person.get("roles"))):
                return None
            return person

        items: list[dict[str, Any]] = []
        next_start: int | None = None
        for index in self._candidates(start, email, ids):
            person = matches(index)
            if person is None:
                continue
            if len(items) == size:
                next_start = index
                break
            items.append(self._visible(person, admin=admin, presence=presence))
        links = self._links(params, size, start, next_start)
        body: dict[str, Any] = {"items": items}
        if ids:
            found = {item["id"] for item in items}
            body["notFoundIds"] = [i for i in ids if i not in found]
        return self._ok(body, Link=links)

    def _candidates(self, start: int, email: str | None, ids: list[str]) -> Iterator[int]:
        """Indices worth looking at, from *start* (a direct hit for email and id filters)."""
        if email:
            index = self._index_of_email(email)
            if index is not None and index >= start:
                yield index
            return
        if ids:
            for index in sorted({i for i in map(self.index_of, ids) if i is not None}):
                if index >= start:
                    yield index
            return
        index = start
        while index < self._next_index:
            if index not in self._removed:
                yield index
            index += 1

    def _links(
        self, params: Mapping[str, str], size: int, start: int, next_start: int | None
    ) -> str:
        kept = {k: v for k, v in params.items() if k not in ("after", "before", "max")}

        def url(cursor: int | None, *, broken: str | None = None) -> str:
            if broken == "drop_params":
                query = f"after={_encode_cursor(cursor or 0)}"
            elif broken == "max_null":
                query = f"max=null&before&after={_encode_cursor(cursor or 0)}"
            else:
                query = urlencode({**kept, "max": size})
                query += "&before&after=" + (_encode_cursor(cursor) if cursor else "")
            return f"{self.base_url}/people?{query}"

        parts = [f'<{url(None)}>; rel="first"']
        if start > 0:
            parts.append(f'<{url(max(start - size, 0))}>; rel="prev"')
        if next_start is not None:
            parts.append(f'<{url(next_start, broken=self._local.broken_link)}>; rel="next"')
        return ", ".join(parts)

    @route("GET", "/v1/people/{person_id}", endpoint="people.get")
    def get_person(self, request: EmulatorRequest) -> EmulatorResponse:
        token, caller, error = self._caller(request)
        if error is not None or token is None:
            return error or self._error(401, "no token")
        person_id = request.path_params["person_id"]
        index = caller if person_id == "me" else self.index_of(person_id)
        person = None if index is None else self.person(index)
        if person is None:
            return self._error(404, "The requested resource could not be found.")
        return self._ok(self._visible(person, admin=self._is_admin(token, caller)))

    @route("POST", "/v1/people", endpoint="people.create")
    def create_person(self, request: EmulatorRequest) -> EmulatorResponse:
        token, caller, error = self._caller(request, PEOPLE_WRITE)
        if error is not None or token is None:
            return error or self._error(401, "no token")
        if not self._is_admin(token, caller):
            return self._error(403, "Only an admin with spark-admin:people_read may add people.")
        body = _json_object(request)
        if body is None:
            return self._error(400, "The request body must be a JSON object.")
        emails = body.get("emails")
        if (
            not isinstance(emails, list)
            or not emails
            or not all(isinstance(e, str) for e in emails)
        ):
            return self._error(400, "emails: an array with one email address is required.")
        if "@" not in emails[0].strip(" @"):
            return self._error(400, f"emails: '{emails[0]}' is not a valid email address.")
        if not any(body.get(key) for key in NAME_FIELDS):
            return self._error(
                400, "At least one of displayName, firstName or lastName is required."
            )
        if self._index_of_email(emails[0]) is not None:
            return self._error(409, f"A person with the email {emails[0]} already exists.")
        record = self._new_record(body)
        if self._local.created_but_400:
            return self._error(
                400, "The person could not be created (a downstream service failed)."
            )
        return self._ok(record)

    @route("PUT", "/v1/people/{person_id}", endpoint="people.update")
    def update_person_route(self, request: EmulatorRequest) -> EmulatorResponse:
        token, caller, error = self._caller(request, PEOPLE_WRITE)
        if error is not None or token is None:
            return error or self._error(401, "no token")
        if not self._is_admin(token, caller):
            return self._error(403, "Only an admin may update people.")
        index = self.index_of(request.path_params["person_id"])
        current = None if index is None else self.person(index)
        if index is None or current is None:
            return self._error(404, "The requested resource could not be found.")
        body = _json_object(request)
        if body is None:
            return self._error(400, "The request body must be a JSON object.")
        if not body.get("displayName"):
            return self._error(
                400, "displayName: a value is required (PUT replaces the whole person)."
            )
        # PUT replaces the record: what the body leaves out is gone.
        record = {key: current[key] for key in KEPT_ON_PUT if key in current}
        record.update({k: body[k] for k in WRITABLE_FIELDS if k in body and k not in ("emails",)})
        if "loginEnabled" in body:
            enabled = _wire_flag(body["loginEnabled"])
            if enabled is None:
                return self._error(400, "loginEnabled: must be true or false.")
            record["loginEnabled"] = self._flag(enabled, self._bits(index))
        elif "loginEnabled" in current:
            record["loginEnabled"] = current["loginEnabled"]
        if record.get("firstName"):
            record["nickName"] = record["firstName"]  # Webex sets it; it cannot be overwritten
        record["lastModified"] = _iso(datetime.now(UTC))
        with self._lock:
            self._records[index] = record
        return self._ok(_deep_copy(record))

    @route("DELETE", "/v1/people/{person_id}", endpoint="people.delete")
    def delete_person(self, request: EmulatorRequest) -> EmulatorResponse:
        token, caller, error = self._caller(request, PEOPLE_WRITE)
        if error is not None or token is None:
            return error or self._error(401, "no token")
        keys = {self._role_key(r) for r in self.roles_of(caller)}
        if not keys & DELETING_ROLES:
            return self._error(
                403, "Only a full, user or external full administrator may delete people."
            )
        index = self.index_of(request.path_params["person_id"])
        if index is None:
            return self._error(404, "The requested resource could not be found.")
        with self._lock:
            self._removed.add(index)
        return EmulatorResponse(status=204, headers={"trackingId": self._tracking_id()})

    # -- roles ----------------------------------------------------------------------

    def _role_caller(self, request: EmulatorRequest) -> EmulatorResponse | None:
        token, caller, error = self._caller(request, ROLES_READ)
        if error is not None or token is None:
            return error or self._error(401, "no token")
        if not {self._role_key(r) for r in self.roles_of(caller)} & ADMIN_ROLES:
            return self._error(403, "List Roles must be called by an admin user.")
        return None

    @route("GET", "/v1/roles", endpoint="roles.list")
    def list_roles(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._role_caller(request)
        if refused is not None:
            return refused
        return self._ok({"items": [{"id": i, "name": n} for i, n in self.roles]})

    @route("GET", "/v1/roles/{role_id}", endpoint="roles.get")
    def get_role(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._role_caller(request)
        if refused is not None:
            return refused
        role_id = request.path_params["role_id"]
        name = self.role_names().get(role_id)
        if name is None:
            return self._error(404, "The requested resource could not be found.")
        return self._ok({"id": role_id, "name": name})

    # -- OAuth ----------------------------------------------------------------------

    @route("GET", "/v1/authorize", endpoint="oauth.authorize")
    def webex_authorize(self, request: EmulatorRequest) -> EmulatorResponse:
        """Approve at once and redirect back with a code (no browser needed)."""
        return self.handle_authorize_request(request)

    @route("POST", "/v1/access_token", endpoint="oauth.token")
    def webex_access_token(self, request: EmulatorRequest) -> EmulatorResponse:
        content_type = (request.header("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" not in content_type:
            return self._error(415, "The token request must be form-encoded.")
        if (request.header("Authorization") or "").lower().startswith("basic "):
            # Webex documents client_id and client_secret as form fields only.
            return self.token_error(
                "invalid_client", "Send client_id and client_secret in the form body.", 401
            )
        return self.handle_token_request(request)


def _wire_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _role_list(value: Any) -> list[str]:
    """Role ids; the spec's own examples join several into one comma-separated string."""
    if not isinstance(value, list):
        return []
    return [part.strip() for item in value for part in str(item).split(",") if part.strip()]


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"person:{index}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text.startswith("person:") or not text[7:].isdigit():
        return None
    return int(text[7:])


def _json_object(request: EmulatorRequest) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
