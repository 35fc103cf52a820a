"""Talking to Talkdesk: settings, hosts, errors, and the HAL paging of ``/users``.

Talkdesk's API errors are ``{"code", "message", "description", "fields"}``;
the installation-subscription endpoint answers ``{"error": "..."}`` and the
token host ``{"error", "error_description"}``. :func:`parse_talkdesk_error`
reads all three into the HTTP client's
:class:`~oomnitza_connect.transport.http.VendorErrorInfo`, so the client raises typed
errors (401 renews the token once and retries; 429 waits; 5xx retries).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    RateLimitError,
    VendorAPIError,
)
from oomnitza_connect.models import GlobalSetting, UnreadRecord
from oomnitza_connect.transport.http import VendorErrorInfo
from oomnitza_connect.transport.pagination import iter_hal_pages
from oomnitza_connect.vendors.session import VendorSession

from .mapping import VENDOR, to_record
from .regions import DEFAULT_REGION, REGIONS, api_base_url, token_url, valid_subdomain

__all__ = [
    "API_BASE_URL_SETTING",
    "GLOBAL_SETTINGS",
    "PAGE_SIZE_SETTING",
    "REGION_SETTING",
    "SUBDOMAIN_SETTING",
    "explained_errors",
    "iter_users",
    "page_size",
    "parse_talkdesk_error",
    "region",
    "resolved_api_base_url",
    "resolved_token_url",
    "subdomain",
    "verify_access",
]

log = logging.getLogger(__name__)

SUBDOMAIN_SETTING = "Talkdesk.Subdomain"
REGION_SETTING = "Talkdesk.Region"
PAGE_SIZE_SETTING = "Talkdesk.PageSize"
API_BASE_URL_SETTING = "Talkdesk.ApiBaseUrl"

REQUEST_ID_HEADERS = ("X-Request-Id", "X-Correlation-Id", "X-B3-TraceId")
"""Talkdesk does not document its request id header; the first one present is taken."""

GLOBAL_SETTINGS = (
    GlobalSetting(
        SUBDOMAIN_SETTING,
        "The account's subdomain: 'mycompany' for https://mycompany.talkdeskapp.com",
        required=True,
    ),
    GlobalSetting(
        REGION_SETTING,
        "Where the account lives; picks the token host and the API host",
        default=DEFAULT_REGION,
        choices=tuple(REGIONS),
    ),
    GlobalSetting(
        PAGE_SIZE_SETTING,
        "Users per /users page asked for with per_page (empty: Talkdesk's default of 50); "
        "paging follows _links.next whatever the size",
    ),
    GlobalSetting(
        API_BASE_URL_SETTING,
        "Only if the region's API host is wrong for the account (AU's is not documented "
        "by Talkdesk): the API root, such as the _links.root.href of the app.installed event",
    ),
)

_ACCOUNT_SUFFIXES = (".talkdeskapp.com", ".talkdeskapp.eu", ".talkdeskappca.com", ".talkdeskapp.au")


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def subdomain(settings: Mapping[str, str]) -> str:
    """Return the validated account subdomain (a pasted account URL is reduced to it).

    :raises ConfigurationError: the setting is missing or not a subdomain.
    """
    raw = str(settings.get(SUBDOMAIN_SETTING) or "").strip()
    if not raw:
        raise ConfigurationError(
            f"Talkdesk needs the account's subdomain in '{SUBDOMAIN_SETTING}'.",
            key_path=SUBDOMAIN_SETTING,
            allowed="the account name, e.g. 'mycompany' for https://mycompany.talkdeskapp.com",
        )
    value = raw.lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    for suffix in _ACCOUNT_SUFFIXES:
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    value = value.rstrip("/")
    if not valid_subdomain(value):
        raise ConfigurationError(
            f"'{SUBDOMAIN_SETTING}' must be the account's subdomain, not {raw!r}.",
            key_path=SUBDOMAIN_SETTING,
            value=raw,
            allowed="letters, digits and hyphens, e.g. 'mycompany'",
        )
    return value


def region(settings: Mapping[str, str]) -> str:
    """Return the validated region code (``US``, ``EU``, ``CA`` or ``AU``)."""
    raw = str(settings.get(REGION_SETTING) or DEFAULT_REGION).strip()
    if raw.upper() not in REGIONS:
        raise ConfigurationError(
            f"'{REGION_SETTING}' must be one of {', '.join(REGIONS)}, not {raw!r}.",
            key_path=REGION_SETTING,
            value=raw,
            allowed=", ".join(REGIONS),
        )
    return raw.upper()


def page_size(settings: Mapping[str, str]) -> int | None:
    """Return ``Talkdesk.PageSize`` as a number, or ``None`` to let Talkdesk choose."""
    raw = str(settings.get(PAGE_SIZE_SETTING) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise ConfigurationError(
            f"'{PAGE_SIZE_SETTING}' must be a whole number from 1 to 1000, not {raw!r}.",
            key_path=PAGE_SIZE_SETTING,
            value=raw,
            allowed="1..1000",
        )
    return value


def resolved_token_url(settings: Mapping[str, str]) -> str:
    """The account's token endpoint: ``https://mycompany.talkdeskid.eu/oauth/token``."""
    return token_url(subdomain(settings), region(settings))


def resolved_api_base_url(settings: Mapping[str, str]) -> str:
    """The API root: ``Talkdesk.ApiBaseUrl`` when given, else the region's gateway."""
    override = str(settings.get(API_BASE_URL_SETTING) or "").strip()
    if not override:
        chosen = region(settings)
        if not REGIONS[chosen].api_host_confirmed:
            log.info(
                "talkdesk: the %s API host %s is not documented by Talkdesk; set %s if it "
                "differs for your account",
                chosen,
                api_base_url(chosen),
                API_BASE_URL_SETTING,
            )
        return api_base_url(chosen)
    parts = urlsplit(override)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not loopback:
        raise ConfigurationError(
            f"'{API_BASE_URL_SETTING}' must be an https URL, not {override!r}.",
            key_path=API_BASE_URL_SETTING,
            value=override,
            allowed="https://api.talkdeskapp.<region>",
        )
    return override.rstrip("/")


def validate_settings(settings: Mapping[str, str]) -> None:
    """Check every Talkdesk setting, so that a bad value fails before any request."""
    subdomain(settings)
    region(settings)
    page_size(settings)
    resolved_api_base_url(settings)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def _request_id(response: requests.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def _describe_fields(fields: Any) -> str:
    if not isinstance(fields, list):
        return ""
    parts = []
    for item in fields:
        if isinstance(item, Mapping) and item.get("name"):
            text = item.get("description")
            parts.append(f"{item['name']}: {text}" if text else str(item["name"]))
    return "; ".join(parts)


def parse_talkdesk_error(response: requests.Response) -> VendorErrorInfo | None:
    """Return the error a Talkdesk response carries, or ``None`` for a success."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, Mapping):
        body = {}
    request_id = _request_id(response)
    if "message" in body or "code" in body:
        message = str(body.get("message") or f"HTTP {response.status_code}")
        description = body.get("description")
        if description:
            message = f"{message}: {description}"
        fields = _describe_fields(body.get("fields"))
        if fields:
            message = f"{message} (fields: {fields})"
        code = body.get("code")
        return VendorErrorInfo(
            message=message, code=str(code) if code is not None else None, request_id=request_id
        )
    if "error" in body:
        # The subscription endpoint's {"error": "..."} and the token host's
        # {"error", "error_description"}.
        error = str(body["error"])
        description = body.get("error_description")
        if description:
            return VendorErrorInfo(message=str(description), code=error, request_id=request_id)
        return VendorErrorInfo(message=error, request_id=request_id)
    return VendorErrorInfo(
        message=response.reason or f"HTTP {response.status_code}", request_id=request_id
    )


_FRESH_SCOPE_HINT = (
    "If a scope was added to the Talkdesk client in the last few minutes, Talkdesk refuses "
    "it with 401 until it takes effect: wait a few minutes and try again"
)


def _bare_message(exc: AuthenticationError) -> str:
    """The error's own sentence, without the "vendor: " prefix and "(HTTP …)" details."""
    text = str(exc)
    if exc.vendor and text.startswith(f"{exc.vendor}: "):
        text = text[len(exc.vendor) + 2 :]
    details = [
        f"HTTP {exc.status}" if exc.status is not None else "",
        f"code {exc.code}" if exc.code else "",
        f"request id {exc.request_id}" if exc.request_id else "",
    ]
    suffix = ", ".join(d for d in details if d)
    if suffix and text.endswith(f" ({suffix})"):
        text = text[: -len(suffix) - 3]
    return text


@contextmanager
def explained_errors(session: VendorSession, *, needed_scope: str = "users:read") -> Iterator[None]:
    """Re-raise credential problems as :class:`AuthenticationError` saying what to do.

    * a refused token request (401) names the scopes asked for and explains
      that a scope added minutes ago answers 401 for a while;
    * a 403 names the scope the call needs.
    """
    try:
        yield
    except RateLimitError:
        raise
    except CredentialRefusedError:
        raise  # the API refused a fresh token too; its message says so
    except AuthenticationError as exc:
        if exc.status != 401:
            raise
        # The token host refused the client.
        scopes = " ".join(session.credential.scopes) or "the client's default scopes"
        raise AuthenticationError(
            f"{_bare_message(exc)}. Talkdesk refused the token request for the scopes "
            f"{scopes}. {_FRESH_SCOPE_HINT}; otherwise check the client id, the key (or "
            f"secret) and '{SUBDOMAIN_SETTING}'/'{REGION_SETTING}'",
            vendor=exc.vendor,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
        ) from None
    except VendorAPIError as exc:
        if exc.status != 403:
            raise
        raise AuthenticationError(
            f"{exc.vendor_message}. The Talkdesk token lacks the scope '{needed_scope}': "
            f"add it to the client and to the credential's scopes. {_FRESH_SCOPE_HINT}",
            vendor=exc.vendor,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
        ) from None


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------


def verify_access(session: VendorSession) -> dict[str, Any]:
    """Get a token and read one user: proves the credential and the ``users:read`` scope."""
    with explained_errors(session):
        result = session.http.request_json(
            "GET", "users", params={"per_page": 1}, endpoint="users.list"
        )
    body = result.data if isinstance(result.data, Mapping) else {}
    identity: dict[str, Any] = {
        "subdomain": session.settings.get(SUBDOMAIN_SETTING),
        "region": session.settings.get(REGION_SETTING),
        "users_total": body.get("total"),
    }
    credential = session.credential
    if credential.scopes:
        identity["scopes"] = tuple(credential.scopes)
    return {key: value for key, value in identity.items() if value is not None}


def iter_users(session: VendorSession) -> Iterator[UnreadRecord]:
    """Yield every user, one HAL page at a time, following ``_links.next.href`` to the end."""
    size = page_size(session.settings)
    params = {"per_page": size} if size else {}
    pages = iter_hal_pages(session.http, "users", params=params, endpoint="users.list")
    while True:
        with explained_errors(session):
            page = next(pages, None)
        if page is None:
            return
        read = functools.partial(to_record, fetched_at=datetime.now(UTC))
        embedded = page.get("_embedded") if isinstance(page, Mapping) else None
        users = embedded.get("users") if isinstance(embedded, Mapping) else None
        for raw in users or ():
            # Read by the sync engine, so that one malformed user fails alone.
            yield UnreadRecord(VENDOR, raw, read)
