"""Talking to the Webex REST API: errors, settings, paging of people, roles.

Webex answers errors with an HTTP status and ``{"message", "errors": [...],
"trackingId"}``; :func:`parse_webex_error` turns them into the HTTP client's
:class:`~oomnitza_connect.http.VendorErrorInfo`: the tracking id becomes the
request id, 429 and 423 wait for ``Retry-After`` (15 s when it is missing, at
least 1 s), a 403 names the scope the call needs, a 400 to a PUT names the required
fields the body lacked (the PUT replaces the whole person), and a 504 suggests
a smaller page (``max``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from oomnitza_connect.models import GlobalSetting
from oomnitza_connect.transport.http import HttpClient, VendorErrorInfo, parse_retry_after
from oomnitza_connect.transport.pagination import restore_dropped_params
from oomnitza_connect.vendors.session import VendorSession

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_RETRY_AFTER",
    "GLOBAL_SETTINGS",
    "MAX_PAGE_SIZE",
    "ORG_ID_SETTING",
    "PAGE_SIZE_SETTING",
    "PEOPLE_READ",
    "PEOPLE_WRITE",
    "PUT_REQUIRED",
    "ROLES_READ",
    "fetch_roles",
    "iter_people",
    "parse_webex_error",
    "repair_next_link",
    "required_scope",
]

log = logging.getLogger(__name__)

PEOPLE_READ = "spark-admin:people_read"
PEOPLE_WRITE = "spark-admin:people_write"
ROLES_READ = "spark-admin:roles_read"
"""Asked for by the emulator on /roles; Webex documents only "must be called by an admin"."""

TRACKING_ID_HEADER = "trackingId"
PUT_REQUIRED = ("displayName",)
"""What Webex's PUT /v1/people/{id} body schema requires."""
PAGE_SIZE_SETTING = "Webex.PageSize"
ORG_ID_SETTING = "Webex.OrgId"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
"""Webex uses its own maximum when ``max`` is larger; 1000 is UNCONFIRMED, so allowed."""
DEFAULT_RETRY_AFTER = 15.0
"""What Webex's own SDK waits on a 429 or 423 without a usable ``Retry-After``."""
MIN_RETRY_AFTER = 1.0

GLOBAL_SETTINGS = (
    GlobalSetting(
        PAGE_SIZE_SETTING,
        f"People per GET /v1/people page (max), 1 to {MAX_PAGE_SIZE}; lower it when Webex "
        "answers 504",
        default=str(DEFAULT_PAGE_SIZE),
        minimum=1,
        maximum=MAX_PAGE_SIZE,
    ),
    GlobalSetting(
        ORG_ID_SETTING,
        "List the people of this organization (orgId; partner administrators only)",
    ),
)

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def required_scope(method: str, url: str) -> str | None:
    """The scope a Webex call needs, for naming it when Webex refuses (403)."""
    path = urlsplit(url).path.rstrip("/")
    if "/roles" in path:
        return ROLES_READ
    if "/people" in path:
        return PEOPLE_READ if method.upper() == "GET" else PEOPLE_WRITE
    return None


def _is_people_list(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/people")


def _body_of(response: requests.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _required_missing(request: requests.PreparedRequest) -> list[str]:
    """The fields a ``PUT /v1/people/{id}`` requires that the body sent lacks."""
    if "/people/" not in urlsplit(request.url or "").path:
        return []
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return []
    if not isinstance(body, Mapping):
        return []
    return [key for key in PUT_REQUIRED if not body.get(key)]


def parse_webex_error(response: requests.Response) -> VendorErrorInfo | None:
    """Return the error a Webex response carries, or ``None`` for a success."""
    status = response.status_code
    if status < 400:
        return None
    body = _body_of(response)
    tracking_id = body.get("trackingId") or response.headers.get(TRACKING_ID_HEADER)
    message = str(body.get("message") or "").strip()
    details = [
        str(item.get("description")).strip()
        for item in body.get("errors") or ()
        if isinstance(item, Mapping) and item.get("description")
    ]
    details = [d for d in details if d.rstrip(".") != message.rstrip(".")]
    codes = [
        str(item["errorCode"])
        for item in body.get("errors") or ()
        if isinstance(item, Mapping) and item.get("errorCode") not in (None, "")
    ]
    text = message or response.reason or f"HTTP {status}"
    if details:
        text += " (" + "; ".join(details) + ")"
    retry_after = None
    # The token, not the request, is the problem: a missing scope or admin role.
    refused = False
    request = response.request
    method = (request.method or "GET") if request is not None else "GET"
    url = (request.url or "") if request is not None else ""
    if status in (429, 423):
        asked = parse_retry_after(response.headers.get("Retry-After"))
        retry_after = max(MIN_RETRY_AFTER, DEFAULT_RETRY_AFTER if asked is None else asked)
        what = "rate limiting" if status == 429 else "locking (423)"
        text = f"Webex is {what} this call: {text}"
    elif status == 401:
        text = (
            f"Webex refused the access token ({text}); it is expired, revoked or not a Webex token"
        )
    elif status == 403:
        scope = required_scope(method, url)
        needs = f"the scope '{scope}' and an admin role" if scope else "more rights"
        text = f"Webex refused the call ({text}); the token needs {needs}"
        refused = True
    elif status == 400 and method.upper() == "GET" and url and _is_people_list(url):
        if "specified" in text.lower():
            # Only admins may list the whole org; other tokens must filter.
            text += (
                f"; listing every person needs an administrator's token with the scope "
                f"'{PEOPLE_READ}'"
            )
            refused = True
    elif status == 400 and method.upper() == "PUT" and request is not None:
        missing = _required_missing(request)
        if missing:
            text += (
                f"; Webex's PUT replaces the whole person and requires {', '.join(missing)}, "
                "which the person's record lacks: give it in the changes"
            )
    elif status == 504:
        text = (
            f"{text}; Webex timed out building the page, so try a smaller max "
            f"(the {PAGE_SIZE_SETTING} setting)"
        )
    return VendorErrorInfo(
        message=text,
        code=codes[0] if codes else None,
        request_id=str(tracking_id) if tracking_id else None,
        retry_after=retry_after,
        credential_refused=refused,
    )


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------


def repair_next_link(previous_url: str, previous_params: Mapping[str, Any], next_link: str) -> str:
    """Fix Webex's known broken next link: lost query parameters, or ``max=null``.

    Webex's own SDK patches the same defect. A parameter the link sends as
    ``null`` is dropped unless the first request had it (then it is restored).
    """
    parts = urlsplit(next_link)
    pairs = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if value != "null" or key in previous_params
    ]
    cleaned = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), ""))
    return restore_dropped_params(previous_url, previous_params, cleaned)


def iter_people(session: VendorSession) -> Iterator[Sequence[Any]]:
    """Yield the raw people of each ``GET /v1/people`` page (only ``rel="next"`` means more)."""
    from .vendor import vendor  # the description of the users endpoint lives there

    for page in vendor.user_pages(session):
        yield vendor.items_of(page)


def fetch_roles(http: HttpClient) -> dict[str, str]:
    """Return role id -> name from ``GET /v1/roles`` (call it once per run).

    An id listed under several names is named by all of them, sorted and
    joined by " / " (one role, more than one name; several roles are joined
    by ", " elsewhere), so the answer is the same in whatever order Webex
    lists them; the listing is said once in the log. A name listed twice for
    one id counts once.
    """
    body = http.get_json("roles", endpoint="roles.list")
    items = body.get("items") if isinstance(body, Mapping) else None
    listed: dict[str, set[str]] = {}
    for item in items or ():
        if isinstance(item, Mapping) and item.get("id"):
            role_id = str(item["id"])
            listed.setdefault(role_id, set()).add(str(item.get("name") or role_id))
    for role_id, names in listed.items():
        if len(names) > 1:
            log.warning(
                "Webex lists the role id %s under several names (%s); it is shown as all of them",
                role_id,
                ", ".join(sorted(names)),
            )
    return {role_id: " / ".join(sorted(names)) for role_id, names in listed.items()}
