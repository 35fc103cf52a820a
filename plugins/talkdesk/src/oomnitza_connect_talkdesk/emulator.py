"""A local Talkdesk for tests, demos and benchmarks: identity host and API gateway in one server.

One HTTP server on 127.0.0.1 plays both of Talkdesk's hosts for one account.
Paths mirror the real hosts, so a wrong subdomain or region is noticed the way
Talkdesk would notice it::

    http://127.0.0.1:PORT/acme.talkdeskid.com/oauth/token   (the account's token host)
    http://127.0.0.1:PORT/api.talkdeskapp.com/users          (the region's API gateway)

The token endpoint grants ``client_credentials`` to a client that proves itself
with a signed JWT (checked by the test kit's OAuth server: signature with the
registered public key, ``kid``, ``aud`` = this exact token URL, ``iss`` = ``sub``
= client id, ``exp`` at most five minutes after ``iat``, a ``jti`` never seen
before) or with HTTP Basic. It issues no refresh token. A scope added with
:meth:`TalkdeskEmulator.add_scope` answers 401 until it "propagates", as
Talkdesk documents for new scopes.

The API serves ``/users`` (HAL pages followed by ``_links.next.href``, inactive
users included, some self links left as the unexpanded ``{user_id}`` of the
sample), ``/users/{id}``, ``/contacts`` (with a ``name`` filter),
``/contacts/{id}`` (400 for an unknown contact, as documented), ``/apps``,
``/apps/{id}``, the installation, its users and its subscription (whose errors
are ``{"error": "..."}``). Other errors use Talkdesk's ``{code, message,
description, fields}``; the ``code`` values are this emulator's own, since
Talkdesk publishes none.

Users and contacts are computed from the seed when a page needs them, so
100,000 users cost nothing up front.

>>> with TalkdeskEmulator(users=500, seed=1) as talkdesk:
...     credential = talkdesk.test_credential()
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.testing.emulator import (
    EmulatorRequest,
    EmulatorResponse,
    Refusal,
    json_response,
    route,
)
from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin
from oomnitza_connect.testing.users import GeneratedUsers

from .vendor import DEFAULT_REGION, REGIONS, token_host

__all__ = ["ALL_SCOPES", "ERROR_CODES", "TalkdeskEmulator", "generate_key_pair"]

ALL_SCOPES = ("users:read", "contacts:read", "apps:read")
DEFAULT_PAGE_SIZE = 50
"""Talkdesk's default ``per_page``."""

ERROR_CODES = {
    "unauthorized": "0102401",
    "forbidden": "0102403",
    "user_not_found": "0302404",
    "contact_not_found": "0402400",
    "app_not_found": "0502404",
    "installation_not_found": "0502405",
    "bad_request": "0002400",
    "rate_limited": "0002429",
    "internal": "0002500",
    "not_found": "0002404",
}
"""The emulator's error codes (Talkdesk's own values are not published)."""

_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}

_FIRST_NAMES = (
    "Ana", "Bernardo", "Carla", "Diogo", "Eva", "Filipe", "Gabriela", "Henrique", "Isabel",
    "Joao", "Katia", "Luis", "Marta", "Nuno", "Olivia", "Pedro", "Quiteria", "Rui", "Sofia",
    "Tiago", "Ursula", "Vasco", "Wanda", "Xavier", "Yara", "Zeca",
)  # fmt: skip
_LAST_NAMES = (
    "Almeida", "Barros", "Carvalho", "Duarte", "Esteves", "Ferreira", "Gomes", "Henriques",
    "Inacio", "Jardim", "Lopes", "Moreira", "Nogueira", "Oliveira", "Pereira", "Queiroz",
    "Ramos", "Silva", "Teixeira", "Vieira",
)  # fmt: skip
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")
_GENDERS = ("Male", "Female", "Other")
_ZONES = ("America/New_York", "America/Los_Angeles", "Europe/Lisbon", "Australia/Sydney")
_COST_CENTERS = ("CC-100 Support", "CC-200 Sales", "CC-300 Success")
_CREATED_EPOCH = 1_465_900_000  # 2016-06-14, the sample's created_at
_INACTIVE_SHARE = 0.08


def generate_key_pair(algorithm: str = "ES256") -> tuple[str, str]:
    """Return ``(private key as Base64 PKCS#8 DER, public key as PEM)`` for *algorithm*.

    The private key comes in the form Talkdesk delivers it in the
    ``app.installed`` event; ES* keys use the algorithm's curve, PS* keys are RSA.
    """
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm in _CURVES:
        key = ec.generate_private_key(_CURVES[algorithm]())
    elif algorithm in ("PS256", "PS384", "PS512"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unsupported key algorithm {algorithm!r}")
    private_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(private_der).decode("ascii"), public_pem.decode("ascii")


def _hex(bits: bytes, length: int) -> str:
    return bits.hex()[:length]


class TalkdeskEmulator(GeneratedUsers, OAuthTokenEndpointMixin):
    """An emulated Talkdesk account with *users* generated users.

    :param users: how many users ``/users`` lists (change :attr:`user_count` later).
    :param seed: makes ids, names and kinds reproducible.
    :param subdomain: the account (``acme`` for ``acme.talkdeskapp.com``).
    :param region: ``US``, ``EU``, ``CA`` or ``AU``; picks both hosts.
    :param key_algorithm: the algorithm of the generated test key pair.
    :param scopes: the scopes the client may request (all three by default).
    :param access_token_ttl: seconds an access token lives (``expires_in``).
    :param max_page_size: the largest ``per_page`` honoured.
    :param contacts: how many contacts the account holds.
    :param installation_users: how many users the app installation covers (default: two thirds).
    :param extended_fields: also return the optional user fields (time zone,
        employee number, cost center, external id, manager id, last name) that
        some accounts carry; Talkdesk's documented users answer has none.
    :param options: passed to :class:`~oomnitza_connect.testing.emulator.Emulator`
        (``port``, ``rate_limits``, ``enforce_rate_limits`` ...).
    """

    vendor = "talkdesk"
    rate_limits = {
        "users.list": (600, 20),
        "users.get": (600, 20),
        "contacts": (600, 20),
        "apps": (600, 20),
    }
    """Talkdesk publishes no limits for these APIs; generous ones keep clients honest."""
    access_token_ttl = 3600.0
    request_id_format = "emu-{emulator.seed}-{number:08d}"

    def __init__(
        self,
        *,
        users: int = 100,
        seed: int = 0,
        subdomain: str | None = None,
        region: str = DEFAULT_REGION,
        key_algorithm: str = "ES256",
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        access_token_ttl: float | None = None,
        max_page_size: int = DEFAULT_PAGE_SIZE,
        contacts: int = 30,
        installation_users: int | None = None,
        extended_fields: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if region not in REGIONS:
            raise ValueError(f"unknown Talkdesk region {region!r} (known: {', '.join(REGIONS)})")
        self.user_count = users
        self.seed = seed
        self.subdomain = subdomain or f"emulated{seed}"
        self.region = region
        self.max_page_size = max(1, max_page_size)
        self.contact_count = contacts
        self.installation_user_count = installation_users
        self.extended_fields = extended_fields
        if access_token_ttl is not None:
            self.access_token_ttl = access_token_ttl
        self.email_domain = f"{self.subdomain}.example.com"
        digest = hashlib.blake2b(b"account:%d" % seed, digest_size=48).digest()
        self.account_id = _hex(digest[:16], 24)
        self.app_id = _hex(digest[16:32], 32)
        self.installation_id = _hex(digest[32:48], 32)
        self.client_id = client_id or _hex(hashlib.sha256(b"client:%d" % seed).digest(), 32)
        self.client_secret = client_secret or _hex(uuid.uuid4().bytes + uuid.uuid4().bytes, 48)
        self.key_algorithm = key_algorithm
        self.key_id = _hex(hashlib.sha256(b"kid:%d" % seed).digest(), 32)
        self.private_key, self.public_key = generate_key_pair(key_algorithm)
        self._granted_scopes = frozenset(scopes)
        self._pending_scopes: dict[str, float] = {}
        self._lock = threading.Lock()
        self._register()

    def _register(self) -> None:
        self.register_client(
            self.client_id,
            client_secret=self.client_secret,
            public_key=self.public_key,
            key_id=self.key_id,
            scopes=self._granted_scopes | set(self._pending_scopes),
        )

    # -- addresses --------------------------------------------------------------

    @property
    def token_host(self) -> str:
        return token_host(self.subdomain, self.region)

    @property
    def api_host(self) -> str:
        return REGIONS[self.region].api_host

    @property
    def base_url(self) -> str:
        """The API gateway, like ``https://api.talkdeskapp.com``."""
        return f"{self.server_url}/{self.api_host}"

    @property
    def token_url(self) -> str:
        """The account's token endpoint, like ``https://acme.talkdeskid.com/oauth/token``."""
        return f"{self.server_url}/{self.token_host}/oauth/token"

    @property  # type: ignore[override]
    def token_audience(self) -> str | None:
        # Assertions must name this exact token URL, subdomain and region included.
        return self.token_url if self._server is not None else None

    @token_audience.setter
    def token_audience(self, _value: str | None) -> None:
        """The mixin initialises it; the audience always follows the running server."""

    # -- credentials ------------------------------------------------------------

    def test_settings(self) -> dict[str, str]:
        """The integration settings of this account (its subdomain and region)."""
        return {"Talkdesk.Subdomain": self.subdomain, "Talkdesk.Region": self.region}

    def test_credential(
        self, name: str = "talkdesk-emulator", *, method: str = "jwt", pem: bool = False
    ) -> Credential:
        """Return a credential this emulator accepts, pointing at its hosts.

        :param method: ``"jwt"`` (a signed client assertion with the test key
            pair) or ``"basic"`` (HTTP Basic with the client secret).
        :param pem: give the private key as PEM instead of Base64 PKCS#8.
        """
        common: dict[str, Any] = {
            "name": name,
            "vendor": "talkdesk",
            "kind": AuthKind.OAUTH2_CLIENT_CREDENTIALS,
            "client_id": self.client_id,
            "scopes": tuple(sorted(self._granted_scopes)),
            "token_url": self.token_url,
            "base_url": self.base_url,
        }
        if method == "basic":
            return Credential(
                **common,
                client_secret=self.client_secret,
                client_auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
            )
        return Credential(
            **common,
            client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
            private_key=self.private_key_pem() if pem else self.private_key,
            key_id=self.key_id,
            signing_algorithm=self.key_algorithm,
        )

    def private_key_pem(self) -> str:
        key = serialization.load_der_private_key(base64.b64decode(self.private_key), None)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def app_installed_event(self) -> dict[str, Any]:
        """The ``app.installed`` event Talkdesk sends when this account installs the app."""
        return {
            "event": "app.installed",
            "data": {
                "installation_id": self.installation_id,
                "account_id": self.account_id,
                "account_name": self.subdomain,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "private_key": self.private_key,
                "public_key": base64.b64encode(self.public_key.encode("ascii")).decode("ascii"),
                "key_id": self.key_id,
                "key_algorithm": self.key_algorithm,
            },
            "_links": {
                "root": {"href": self.base_url},
                "self": {"href": self._installation_url()},
                "userinfo": {"href": f"{self.base_url}/users/me"},
            },
        }

    def add_scope(self, scope: str, *, propagates_in: float = 300.0) -> None:
        """Add *scope* to the client; token requests naming it answer 401 for a while."""
        with self._lock:
            self._pending_scopes[scope] = time.time() + propagates_in
        self._register()

    def _unpropagated(self, asked: Iterable[str]) -> list[str]:
        now = time.time()
        with self._lock:
            return sorted(s for s in asked if self._pending_scopes.get(s, now) > now)

    # -- the token host -----------------------------------------------------------

    def handle_token_request(self, request: EmulatorRequest) -> EmulatorResponse:
        if request.path != f"/{self.token_host}/oauth/token":
            # The mixin's bare /oauth/token, or another account's or region's host.
            return self.token_error(
                "invalid_request", "no Talkdesk account is served at this token host", 404
            )
        asked = (request.form().get("scope") or "").split()
        fresh = self._unpropagated(asked)
        if fresh:
            return self.token_error(
                "unauthorized_client",
                f"the client is not authorized for the scope(s) {' '.join(fresh)}",
                401,
            )
        return super().handle_token_request(request)

    @route("POST", "/{host}/oauth/token", endpoint="oauth.token")
    def account_token(self, request: EmulatorRequest) -> EmulatorResponse:
        return self.handle_token_request(request)

    # -- errors ---------------------------------------------------------------------

    def error(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        description: str | None = None,
        fields: Iterable[tuple[str, str]] = (),
    ) -> EmulatorResponse:
        """Answer with Talkdesk's ``{code, message, description, fields}``."""
        body: dict[str, Any] = {"code": ERROR_CODES[kind], "message": message}
        if description:
            body["description"] = description
        listed = [{"name": name, "description": text} for name, text in fields]
        if listed:
            body["fields"] = listed
        return json_response(body, status=status, **{"X-Request-Id": self.next_request_id()})

    def rate_limited_response(
        self, retry_after: float, request: EmulatorRequest
    ) -> EmulatorResponse:
        response = self.error(429, "rate_limited", "Too many requests")
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
        return response

    def server_error_response(self, status: int, request: EmulatorRequest) -> EmulatorResponse:
        return self.error(status, "internal", "Service unavailable")

    def not_found_response(self, request: EmulatorRequest) -> EmulatorResponse:
        return self.error(404, "not_found", "Resource not found", description=request.path)

    def _authorize(self, request: EmulatorRequest, scope: str) -> None:
        """Refuse a request for another region, or without a valid token with *scope*."""
        token = self.lookup_token(request.bearer_token())
        if request.path_params.get("host") != self.api_host:
            reason = "the access token is not valid in this region"
        elif token is None:
            reason = "invalid access token"
        elif token.expired():
            reason = "the access token expired"
        elif scope not in token.scopes:
            reason = f"the access token lacks the scope {scope}"
            raise Refusal(self.error(403, "forbidden", "Forbidden", description=reason))
        else:
            return
        raise Refusal(self.error(401, "unauthorized", "Unauthorized", description=reason))

    def _ok(self, body: Any) -> EmulatorResponse:
        return EmulatorResponse(
            status=200,
            body=body,
            headers={
                "Content-Type": "application/hal+json; charset=utf-8",
                "X-Request-Id": self.next_request_id(),
            },
        )

    # -- users ----------------------------------------------------------------------

    def _bits(self, kind: bytes, index: int) -> bytes:
        return hashlib.blake2b(kind + b":%d:%d" % (self.seed, index), digest_size=32).digest()

    def user_id(self, index: int) -> str:
        return str(uuid.UUID(bytes=self._bits(b"user", index)[:16], version=4))

    def is_active(self, index: int) -> bool:
        if index == 1:
            return False  # even a tiny account has one deactivated user
        return self._bits(b"user", index)[16] / 256 >= _INACTIVE_SHARE

    # Ids are hashes, so GeneratedUsers.index_of walks the account (tests and presets only).

    def generate_user(self, index: int) -> dict[str, Any]:
        bits = self._bits(b"user", index)
        first = _FIRST_NAMES[bits[17] % len(_FIRST_NAMES)]
        last = _LAST_NAMES[bits[18] % len(_LAST_NAMES)]
        user_id = self.user_id(index)
        # The sample's self link is the unexpanded template; some users keep it.
        self_href = (
            f"{self.base_url}/users/{{user_id}}"
            if index % 4 == 0
            else f"{self.base_url}/users/{user_id}"
        )
        user: dict[str, Any] = {
            "id": user_id,
            "email": f"{first}.{last}.{index}@{self.email_domain}".lower(),
            "name": f"{first} {last}",
            "active": self.is_active(index),
            "gender": _GENDERS[bits[19] % len(_GENDERS)],
            "extension": 100 + index,
            "external_phone_number": f"+1800{int.from_bytes(bits[20:24], 'big') % 10**7:07d}",
            "created_at": datetime.fromtimestamp(_CREATED_EPOCH + index * 3600, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "_links": {
                "self": {"href": self_href},
                "account": {"href": f"{self.base_url}/account"},
            },
        }
        if self.extended_fields:
            user.update(
                time_zone=_ZONES[bits[24] % len(_ZONES)],
                employee_number=f"E{index:06d}",
                cost_center=_COST_CENTERS[bits[25] % len(_COST_CENTERS)],
                external_id=f"ext-{_hex(bits[26:30], 8)}",
                manager_id=self.user_id(0) if index else None,
                last_name=last,
            )
        return user

    def _page_bounds(
        self, request: EmulatorRequest
    ) -> tuple[int, int, bool, EmulatorResponse | None]:
        """Return (page, per_page, per_page was given, error) from the query."""
        raw_page = request.query.get("page") or "1"
        raw_per_page = request.query.get("per_page")
        try:
            page = int(raw_page)
            per_page = int(raw_per_page) if raw_per_page else DEFAULT_PAGE_SIZE
            if page < 1 or per_page < 1:
                raise ValueError
        except ValueError:
            return (
                0,
                0,
                False,
                self.error(
                    400,
                    "bad_request",
                    "Invalid paging parameters",
                    fields=[
                        ("page", "a whole number from 1"),
                        ("per_page", "a whole number from 1"),
                    ],
                ),
            )
        return page, min(per_page, self.max_page_size), bool(raw_per_page), None

    def _hal_page(
        self,
        request: EmulatorRequest,
        *,
        url: str,
        key: str,
        total: int,
        item_at: Callable[[int], dict[str, Any]],
        extra_links: Mapping[str, Any] | None = None,
        extra_query: Mapping[str, str] | None = None,
    ) -> EmulatorResponse:
        """Serve one HAL page of *total* items, numbered from page 1."""
        page, per_page, per_page_given, error = self._page_bounds(request)
        if error is not None:
            return error
        start = (page - 1) * per_page
        items = [item_at(i) for i in range(start, min(start + per_page, total))]
        total_pages = max(1, -(-total // per_page))

        def link(number: int) -> dict[str, str]:
            query = dict(extra_query or {})
            query["page"] = str(number)
            if per_page_given:
                query["per_page"] = str(per_page)
            return {"href": f"{url}?{urlencode(query)}"}

        links: dict[str, Any] = {
            "self": link(page),
            "first": link(1),
            "last": link(total_pages),
            **(extra_links or {}),
        }
        if page < total_pages:
            links["next"] = link(page + 1)  # absent on the last page: the end of the list
        if page > 1:
            links["prev"] = link(page - 1)
        return self._ok(
            {
                "count": len(items),
                "total": total,
                "page": page,
                "per_page": per_page,
                "total_pages": total_pages,
                "_embedded": {key: items},
                "_links": links,
            }
        )

    @route("GET", "/{host}/users", endpoint="users.list")
    def list_users(self, request: EmulatorRequest) -> EmulatorResponse:
        self._authorize(request, "users:read")
        indexes = list(self.listed_indexes()) if self.removed else None

        def user_at(position: int) -> dict[str, Any]:
            return self.user_at(indexes[position] if indexes is not None else position)

        total = len(indexes) if indexes is not None else self.user_count
        return self._hal_page(
            request,
            url=f"{self.base_url}/users",
            key="users",
            total=total,
            item_at=user_at,
            extra_links={
                "show": {"href": f"{self.base_url}/users/{{id}}", "templated": True},
                "account": {"href": f"{self.base_url}/account"},
            },
        )

    @route("GET", "/{host}/users/{user_id}", endpoint="users.get")
    def get_user(self, request: EmulatorRequest) -> EmulatorResponse:
        self._authorize(request, "users:read")
        user = self.user(request.path_params["user_id"])
        if user is None:
            return self.error(404, "user_not_found", "User not found")
        return self._ok(user)

    # -- contacts ---------------------------------------------------------------------

    def contact_id(self, index: int) -> str:
        return _hex(self._bits(b"contact", index), 24)

    def _contact_at(self, index: int) -> dict[str, Any]:
        bits = self._bits(b"contact", index)
        if index == 0:
            name = "Daniel Craig"  # the documented filter example finds someone
        else:
            name = f"{_FIRST_NAMES[bits[12] % 26]} {_LAST_NAMES[bits[13] % len(_LAST_NAMES)]}"
        contact_id = self.contact_id(index)
        return {
            "id": contact_id,
            "name": name,
            "company": _COMPANIES[bits[14] % len(_COMPANIES)],
            "phones": [
                {
                    "label": "mobile",
                    "number": f"+1555{int.from_bytes(bits[15:19], 'big') % 10**7:07d}",
                }
            ],
            "_links": {
                "self": {"href": f"{self.base_url}/contacts/{contact_id}"},
                "integrations": {"href": f"{self.base_url}/contacts/{contact_id}/integrations"},
            },
        }

    @route("GET", "/{host}/contacts", endpoint="contacts")
    def list_contacts(self, request: EmulatorRequest) -> EmulatorResponse:
        self._authorize(request, "contacts:read")
        wanted = (request.query.get("name") or "").strip().lower()
        indexes = [
            i
            for i in range(self.contact_count)
            if not wanted or wanted in self._contact_at(i)["name"].lower()
        ]
        return self._hal_page(
            request,
            url=f"{self.base_url}/contacts",
            key="contacts",
            total=len(indexes),
            item_at=lambda position: self._contact_at(indexes[position]),
            extra_query={"name": request.query["name"]} if wanted else None,
        )

    @route("GET", "/{host}/contacts/{contact_id}", endpoint="contacts")
    def get_contact(self, request: EmulatorRequest) -> EmulatorResponse:
        self._authorize(request, "contacts:read")
        wanted = request.path_params["contact_id"]
        for index in range(self.contact_count):
            if self.contact_id(index) == wanted:
                return self._ok(self._contact_at(index))
        # Talkdesk documents 400, not 404, for a contact it cannot find.
        return self.error(
            400, "contact_not_found", "Contact not found", fields=[("contact_id", "unknown id")]
        )

    # -- apps and installations ---------------------------------------------------------

    def _app(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "app_type": "standalone",
            "name": "oomnitza-connect",
            "display_name": "Oomnitza Connect",
            "slug": "oomnitza-connect",
            "listing_summary": "Users of Talkdesk in your system of record",
            "description": "Syncs Talkdesk users into Oomnitza.",
            "notes": "",
            "version_number": 3,
            "render": "portal",
            "created_type": "partner",
            "sandbox": False,
            "scopes_reason": "Read users, contacts and apps",
            "emails": [{"type": "support", "email": "support@example.com"}],
            "assets": [{"type": "icon", "description": "Logo", "url": "https://example.com/i.png"}],
            "urls": [{"type": "privacy_policy", "url": "https://example.com/privacy"}],
            "subscription_types": [self._subscription_type()],
            "scopes": sorted(self._granted_scopes),
            "_links": {"self": {"href": f"{self.base_url}/apps/{self.app_id}"}},
        }

    @staticmethod
    def _subscription_type() -> dict[str, Any]:
        return {
            "type": "paid",
            "license_type": "individual",
            "name": "Standard",
            "price": 12,
            "description": "Per agent, per month",
            "listing_summary": "Standard plan",
            "min_licenses": 1,
            "max_licenses": 500,
            "created_by": "partner",
        }

    def _installation_url(self) -> str:
        return f"{self.base_url}/apps/{self.app_id}/installations/{self.installation_id}"

    def _app_error(
        self, request: EmulatorRequest, *, installation: bool
    ) -> EmulatorResponse | None:
        self._authorize(request, "apps:read")
        if request.path_params["app_id"] != self.app_id:
            return self.error(404, "app_not_found", "App not found")
        if installation and request.path_params["installation_id"] != self.installation_id:
            return self.error(404, "installation_not_found", "Installation not found")
        return None

    @route("GET", "/{host}/apps", endpoint="apps")
    def list_apps(self, request: EmulatorRequest) -> EmulatorResponse:
        self._authorize(request, "apps:read")
        return self._hal_page(
            request, url=f"{self.base_url}/apps", key="apps", total=1, item_at=lambda _: self._app()
        )

    @route("GET", "/{host}/apps/{app_id}", endpoint="apps")
    def get_app(self, request: EmulatorRequest) -> EmulatorResponse:
        return self._app_error(request, installation=False) or self._ok(self._app())

    @route("GET", "/{host}/apps/{app_id}/installations/{installation_id}", endpoint="apps")
    def get_installation(self, request: EmulatorRequest) -> EmulatorResponse:
        error = self._app_error(request, installation=True)
        if error is not None:
            return error
        url = self._installation_url()
        return self._ok(
            {
                "id": self.installation_id,
                "app_id": self.app_id,
                "account_id": self.account_id,
                "scopes": sorted(self._granted_scopes),
                "auto_provision_filters": [{"filter": "all", "match": None}],
                "created_at": "2024-01-15T09:30:00Z",
                "_embedded": {
                    "created_by": self.user_at(0) if self.user_count else None,
                    "state": {
                        "state": "completed",
                        "reason": None,
                        "updated_at": "2024-01-15T09:31:00Z",
                        "_links": {"self": {"href": f"{url}/state"}},
                    },
                },
                "_links": {
                    "self": {"href": url},
                    "account": {"href": f"{self.base_url}/account"},
                    "subscription": {"href": f"{url}/subscription"},
                    "auto_provision_filters": {"href": f"{url}/auto_provision_filters"},
                    "users": {"href": f"{url}/users"},
                    "channels": {"href": f"{url}/channels"},
                },
            }
        )

    def installation_user_ids(self) -> list[str]:
        count = self._installation_user_total()
        return [self.user_id(i) for i in range(count)]

    def _installation_user_total(self) -> int:
        if self.installation_user_count is not None:
            return min(self.installation_user_count, self.user_count)
        return -(-self.user_count * 2 // 3)

    @route("GET", "/{host}/apps/{app_id}/installations/{installation_id}/users", endpoint="apps")
    def installation_users(self, request: EmulatorRequest) -> EmulatorResponse:
        error = self._app_error(request, installation=True)
        if error is not None:
            return error
        return self._hal_page(
            request,
            url=f"{self._installation_url()}/users",
            key="users",
            total=self._installation_user_total(),
            item_at=self.user_at,
        )

    @route(
        "GET",
        "/{host}/apps/{app_id}/installations/{installation_id}/subscription",
        endpoint="apps",
    )
    def installation_subscription(self, request: EmulatorRequest) -> EmulatorResponse:
        try:
            self._authorize(request, "apps:read")
        except Refusal as refusal:
            if refusal.response.status != 403:
                raise
            # This endpoint documents its 403 as {"error": "..."}.
            return json_response({"error": "Forbidden: apps:read is required"}, status=403)
        if (
            request.path_params["app_id"] != self.app_id
            or request.path_params["installation_id"] != self.installation_id
        ):
            return json_response({"error": "Installation not found"}, status=404)
        url = f"{self._installation_url()}/subscription"
        return self._ok(
            {
                **self._subscription_type(),
                "id": _hex(self._bits(b"subscription", 0), 32),
                "total_licenses": self._installation_user_total(),
                "_links": {"self": {"href": url}},
            }
        )
