"""Talking to the Intercom REST API: settings, regions, errors, ``/me`` and ``/admins``.

Intercom answers errors with an ``error.list`` envelope::

    {"type": "error.list", "request_id": "…", "errors": [{"code": "unauthorized",
     "message": "Access Token Invalid"}]}

:func:`parse_intercom_error` turns it into the HTTP client's
:class:`~oomnitza_connect.http.VendorErrorInfo`, so the client raises typed
errors carrying the code, the message and the request id: a 401 becomes
:class:`~oomnitza_connect.errors.CredentialRefusedError`, a 429 is retried
after ``X-RateLimit-Reset`` (then :class:`~oomnitza_connect.errors.RateLimitError`),
anything else :class:`~oomnitza_connect.errors.VendorAPIError`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from oomnitza_connect.errors import AuthenticationError, ConfigurationError, VendorAPIError
from oomnitza_connect.models import GlobalSetting, RateBudget, UnreadRecord
from oomnitza_connect.transport.http import VendorErrorInfo
from oomnitza_connect.vendors.session import VendorSession

from .mapping import to_record

__all__ = [
    "DEFAULT_REQUESTS_PER_MINUTE",
    "DEFAULT_VERSION",
    "GLOBAL_SETTINGS",
    "REGION_HOSTS",
    "REGION_SETTING",
    "REQUESTS_PER_MINUTE_SETTING",
    "VERSION_SETTING",
    "api_version",
    "iter_admins",
    "parse_intercom_error",
    "rate_budgets",
    "region",
    "region_host",
    "validate_settings",
    "verify_token",
]

log = logging.getLogger(__name__)

VERSION_SETTING = "Intercom.Version"
REGION_SETTING = "Intercom.Region"
REQUESTS_PER_MINUTE_SETTING = "Intercom.RequestsPerMinute"
VERSION_HEADER = "Intercom-Version"
REQUEST_ID_HEADER = "X-Request-Id"

DEFAULT_VERSION = "2.11"
DEFAULT_REGION = "US"
DEFAULT_REQUESTS_PER_MINUTE = 1000
"""Intercom's older published limit; current docs say 10,000 per app and 25,000 per
workspace, shared by every app of the workspace. The conservative figure is the default."""

REGION_HOSTS: Mapping[str, str] = {
    "US": "https://api.intercom.io",
    "EU": "https://api.eu.intercom.io",
    "AU": "https://api.au.intercom.io",
}
_VERSION_PATTERN = re.compile(r"^(\d+\.\d+|Preview)$")

GLOBAL_SETTINGS = (
    GlobalSetting(
        VERSION_SETTING,
        "The Intercom API version, sent as the Intercom-Version header on every request "
        "(1.0 to 2.16, or Preview)",
        default=DEFAULT_VERSION,
    ),
    GlobalSetting(
        REGION_SETTING,
        "The workspace's region; it picks the API host (US api.intercom.io, EU "
        "api.eu.intercom.io, AU api.au.intercom.io). A token works only on its own region's host",
        default=DEFAULT_REGION,
        choices=tuple(REGION_HOSTS),
    ),
    GlobalSetting(
        REQUESTS_PER_MINUTE_SETTING,
        "Requests per minute the connector keeps to; Intercom spreads its limit over "
        "10-second windows, so at most a sixth of it goes out in any 10 seconds",
        default=str(DEFAULT_REQUESTS_PER_MINUTE),
    ),
)

CREDENTIAL_ERROR_CODES = frozenset(
    {
        "unauthorized",
        "token_revoked",
        "token_blocked",
        "token_not_found",
        "token_unauthorized",
        "token_expired",
        "missing_authorization",
    }
)
"""Codes that mean the credential, not the request, is the problem."""

_EXPLANATIONS = {
    "unauthorized": "Intercom does not accept the access token",
    "token_revoked": "the access token was revoked (the app was uninstalled or the token "
    "regenerated)",
    "token_blocked": "the access token is blocked",
    "token_not_found": "Intercom does not know the access token",
    "token_unauthorized": "the access token is not allowed to make this call",
    "token_expired": "the access token expired",
    "missing_authorization": "Intercom received no access token",
    "api_plan_restricted": "the workspace's Intercom plan does not include this API",
    "admin_not_found": "no Intercom admin has that id",
    "not_found": "Intercom has no such resource",
    "intercom_version_invalid": (
        f"Intercom does not know the API version sent in the {VERSION_HEADER} header; set "
        f"{VERSION_SETTING} to a version Intercom offers (for example {DEFAULT_VERSION})"
    ),
    "rate_limit_exceeded": "Intercom is rate limiting this app",
    "parameter_invalid": "Intercom refused a parameter",
    "action_forbidden": "the token's admin may not do this",
    "server_error": "Intercom had an internal error",
    "service_unavailable": "Intercom is temporarily unavailable",
}


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def _setting(settings: Mapping[str, str], key: str) -> str | None:
    raw = settings.get(key)
    if raw is None or str(raw).strip() == "":
        return None
    return str(raw).strip()


def api_version(settings: Mapping[str, str]) -> str:
    """Return the validated ``Intercom.Version`` (the ``Intercom-Version`` header)."""
    version = _setting(settings, VERSION_SETTING) or DEFAULT_VERSION
    if version.lower() == "preview":
        version = "Preview"
    if not _VERSION_PATTERN.match(version):
        raise ConfigurationError(
            f"the Intercom API version must look like '{DEFAULT_VERSION}' (or be 'Preview'), "
            f"not {version!r}.",
            key_path=VERSION_SETTING,
            value=version,
            allowed="1.0 … 2.16, Preview",
        )
    return version


def region(settings: Mapping[str, str]) -> str:
    """Return the validated ``Intercom.Region`` (``US``, ``EU`` or ``AU``)."""
    value = (_setting(settings, REGION_SETTING) or DEFAULT_REGION).upper()
    if value not in REGION_HOSTS:
        raise ConfigurationError(
            f"the Intercom region must be one of {', '.join(REGION_HOSTS)}, not {value!r}; "
            "it is the region the workspace was created in (Settings > Workspace).",
            key_path=REGION_SETTING,
            value=value,
            allowed=", ".join(REGION_HOSTS),
        )
    return value


def region_host(settings: Mapping[str, str]) -> str:
    """Return the API root of the configured region (``https://api.eu.intercom.io``)."""
    return REGION_HOSTS[region(settings)]


def requests_per_minute(settings: Mapping[str, str]) -> float:
    raw = _setting(settings, REQUESTS_PER_MINUTE_SETTING)
    if raw is None:
        return float(DEFAULT_REQUESTS_PER_MINUTE)
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 6 <= value <= 100_000:
        raise ConfigurationError(
            f"the Intercom request budget must be a number of requests per minute from 6 "
            f"to 100000, not {raw!r}.",
            key_path=REQUESTS_PER_MINUTE_SETTING,
            value=raw,
            allowed="6..100000",
        )
    return value


def rate_budgets(settings: Mapping[str, str]) -> tuple[RateBudget, ...]:
    """Return the budget for ``Intercom.RequestsPerMinute``, fit for 10-second windows.

    Intercom allows a sixth of its per-minute limit in each 10-second window. A
    token bucket lets out ``burst`` calls at once plus its rate over the window,
    so the burst is kept to 1/120 of the minute: with the client's 10 % margin
    on the rate, no 10-second window ever sees more than about 95 % of its share.
    """
    per_minute = requests_per_minute(settings)
    return (RateBudget("*", per_minute, burst=max(1, int(per_minute // 120))),)


def validate_settings(settings: Mapping[str, str]) -> None:
    """Check every Intercom setting, so that a bad value fails before any request."""
    api_version(settings)
    region(settings)
    requests_per_minute(settings)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def _explain(code: str, vendor_message: str | None) -> str:
    explanation = _EXPLANATIONS.get(code, f"Intercom answered with error '{code}'")
    explanation = explanation[0].upper() + explanation[1:]
    if vendor_message and vendor_message.lower() not in explanation.lower():
        return f"{explanation}: {vendor_message}"
    return explanation


def parse_intercom_error(response: requests.Response) -> VendorErrorInfo | None:
    """Return the error an Intercom response carries, or ``None`` for a success.

    :raises ValueError: a successful body is not JSON (the client reports it as
        a malformed response).
    """
    if response.status_code < 400:
        body = response.json()
        if not isinstance(body, Mapping) or body.get("type") != "error.list":
            return None
    else:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, Mapping):
            body = {}
    errors = [e for e in body.get("errors") or () if isinstance(e, Mapping)]
    first = errors[0] if errors else {}
    code = str(first.get("code") or _code_for_status(response.status_code))
    messages = [str(e["message"]) for e in errors if e.get("message")]
    fields = [str(e["field"]) for e in errors if e.get("field")]
    vendor_message = "; ".join(messages) or None
    if fields:
        vendor_message = f"{vendor_message or 'invalid'} (field {', '.join(fields)})"
    request_id = body.get("request_id") or response.headers.get(REQUEST_ID_HEADER)
    return VendorErrorInfo(
        message=_explain(code, vendor_message),
        code=code,
        request_id=str(request_id) if request_id else None,
        token_expired=False,
    )


def _code_for_status(status: int) -> str:
    return {
        401: "unauthorized",
        403: "action_forbidden",
        404: "not_found",
        429: "rate_limit_exceeded",
    }.get(status, "server_error" if status >= 500 else f"http_{status}")


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------


def verify_token(session: VendorSession) -> dict[str, Any]:
    """Prove the token with ``GET /me``; return the admin and the workspace (name, region).

    :raises AuthenticationError: Intercom refused the token; the message names
        the ``Intercom.Region`` setting, since a token of another region's
        workspace is refused the same way.
    """
    configured = region(session.settings)
    try:
        body = session.http.get_json("me", endpoint="me")
    except AuthenticationError as exc:
        raise _refused_on_region(exc, configured, session.http.base_url) from None
    app = body.get("app") if isinstance(body, Mapping) else None
    app = app if isinstance(app, Mapping) else {}
    identity: dict[str, Any] = {
        "workspace": app.get("name"),
        "workspace_id": app.get("id_code"),
        "region": app.get("region"),
        "timezone": app.get("timezone"),
        "admin_id": body.get("id"),
        "admin_name": body.get("name"),
        "admin_email": body.get("email"),
        "api_version": api_version(session.settings),
    }
    reported = str(app.get("region") or "").upper()
    if reported and reported != configured:
        log.warning(
            "intercom: the workspace '%s' is in region %s, but %s is %s; set %s=%s",
            app.get("name"),
            reported,
            REGION_SETTING,
            configured,
            REGION_SETTING,
            reported,
        )
    return {key: value for key, value in identity.items() if value is not None}


def _refused_on_region(exc: AuthenticationError, configured: str, base_url: str) -> Exception:
    """Name the region setting when the refusal is the one a wrong region's host gives."""
    if exc.code not in (None, "unauthorized"):
        return exc  # revoked, expired …: the token itself is the problem
    host = base_url.rstrip("/")
    others = ", ".join(r for r in REGION_HOSTS if r != configured)
    message = (
        f"Intercom refused the access token on {host} ({exc.code or 'unauthorized'}). "
        f"A token works only on its workspace's regional host and {REGION_SETTING} is "
        f"'{configured}': if the workspace is in another region ({others}), set "
        f"{REGION_SETTING} to it; otherwise the token is invalid or was revoked"
    )
    return AuthenticationError(
        message,
        vendor=exc.vendor,
        status=exc.status,
        code=exc.code,
        request_id=exc.request_id,
    )


def wants_avatar(session: VendorSession) -> bool:
    """Ask for avatars only when a mapping or filter reads the Avatar field.

    ``wanted_fields`` is ``None`` when the caller did not say (the Python API's
    ``list_users``): then avatars are asked for, at the cost of a larger answer.
    """
    wanted = session.wanted_fields
    return wanted is None or "avatar" in wanted


def iter_admins(session: VendorSession) -> Iterator[UnreadRecord]:
    """Yield the workspace's admins from ``GET /admins`` (one list; Intercom has no pages).

    Entries that are not admins (teams, in old API versions) are yielded with
    their ``type``, for the default filter to skip and count.
    """
    params = {"display_avatar": "true"} if wants_avatar(session) else {}
    version = api_version(session.settings)
    try:
        body = session.http.get_json("admins", params=params, endpoint="admins.list")
    except AuthenticationError as exc:
        raise _refused_on_region(exc, region(session.settings), session.http.base_url) from None
    fetched_at = datetime.now(UTC)
    admins = body.get("admins") if isinstance(body, Mapping) else None
    if not isinstance(admins, list):
        raise VendorAPIError(
            "GET /admins answered without an 'admins' list",
            vendor=session.vendor,
            code="unexpected_response",
            method="GET",
            endpoint="admins.list",
        )
    read = functools.partial(to_record, api_version=version, fetched_at=fetched_at)
    for entry in admins:
        # Read by the sync engine, so that one malformed entry fails alone.
        yield UnreadRecord(session.vendor, entry, read)


def version_headers(settings: Mapping[str, str]) -> dict[str, str]:
    return {VERSION_HEADER: api_version(settings)}
