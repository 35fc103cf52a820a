"""Talking to the Slack Web API: errors, settings, paging of users and access logs.

Slack answers almost every error with HTTP 200 and ``{"ok": false, "error":
"<code>"}``; :func:`parse_slack_error` turns those into the HTTP client's
:class:`~oomnitza_connect.transport.http.VendorErrorInfo`, so the client raises typed
errors, retries ``ratelimited`` and refreshes on ``token_expired``.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from oomnitza_connect.errors import AuthenticationError, ConfigurationError, VendorAPIError
from oomnitza_connect.models import GlobalSetting, UnreadRecord
from oomnitza_connect.transport.http import HttpClient, VendorErrorInfo
from oomnitza_connect.transport.pagination import iter_cursor_pages
from oomnitza_connect.vendors.session import VendorSession

from .mapping import VENDOR, to_record

__all__ = [
    "ACCESS_LOGS_PAGE_SIZE_SETTING",
    "AUTH_ERROR_CODES",
    "GLOBAL_SETTINGS",
    "LAST_LOGINS_SETTING",
    "PAGE_SIZE_SETTING",
    "TEAM_ID_SETTING",
    "access_logs_page_size",
    "iter_access_logs",
    "iter_users",
    "last_logins",
    "page_size",
    "parse_slack_error",
    "verify_token",
]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Slack-Req-Id"
SCOPES_HEADER = "X-OAuth-Scopes"

PAGE_SIZE_SETTING = "Slack.PageSize"
ACCESS_LOGS_PAGE_SIZE_SETTING = "Slack.AccessLogsPageSize"
LAST_LOGINS_SETTING = "Slack.LastLogins"
TEAM_ID_SETTING = "Slack.TeamId"

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 999
DEFAULT_ACCESS_LOGS_PAGE_SIZE = 1000
MAX_ACCESS_LOGS_PAGE_SIZE = 1000
MAX_ACCESS_LOGS_PAGE = 100
"""Slack serves at most 100 pages of access logs; older entries need ``before``."""

GLOBAL_SETTINGS = (
    GlobalSetting(
        PAGE_SIZE_SETTING,
        f"Users per users.list page, 1 to {MAX_PAGE_SIZE} (Slack recommends at most 200)",
        default=str(DEFAULT_PAGE_SIZE),
        minimum=1,
        maximum=MAX_PAGE_SIZE,
    ),
    GlobalSetting(
        ACCESS_LOGS_PAGE_SIZE_SETTING,
        f"Entries per team.accessLogs page, 1 to {MAX_ACCESS_LOGS_PAGE_SIZE}",
        default=str(DEFAULT_ACCESS_LOGS_PAGE_SIZE),
        minimum=1,
        maximum=MAX_ACCESS_LOGS_PAGE_SIZE,
    ),
    GlobalSetting(
        LAST_LOGINS_SETTING,
        "Read last logins from team.accessLogs: 'auto' skips them when the token lacks the "
        "admin scope or the workspace is on a free plan, 'on' reports those as errors",
        default="auto",
        choices=("auto", "on", "off"),
    ),
    GlobalSetting(
        TEAM_ID_SETTING,
        "The workspace to list with an Enterprise Grid org-level token (team_id)",
    ),
)

AUTH_ERROR_CODES = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_allowed_token_type",
        "no_permission",
        "org_login_required",
        "two_factor_setup_required",
        "ekm_access_denied",
    }
)
"""Codes that mean the credential, not the request, is the problem."""

_EXPLANATIONS = {
    "not_authed": "Slack received no token",
    "invalid_auth": "Slack does not accept the token",
    "account_inactive": "the token belongs to a deactivated user or workspace",
    "token_revoked": "the token was revoked",
    "token_expired": "the access token expired",
    "not_allowed_token_type": "this kind of token (bot or user) cannot call this method",
    "no_permission": "the token's user lacks permission for this method",
    "ratelimited": "Slack is rate limiting this method",
    "paid_only": "this method is available only on paid Slack plans",
    "invalid_cursor": "Slack refused the pagination cursor",
    "limit_required": "Slack requires a page size (limit) for this workspace",
    "user_not_found": "no Slack user has that id",
    "users_not_found": "no Slack user has that email address",
    "user_not_visible": "the token cannot see that user",
    "fatal_error": "Slack had an internal error",
    "service_unavailable": "Slack is temporarily unavailable",
}


def _explain(body: Mapping[str, Any]) -> str:
    code = str(body.get("error") or "unknown_error")
    if code == "missing_scope":
        needed = body.get("needed") or "an unnamed scope"
        provided = body.get("provided")
        granted = f" (the token has: {provided})" if provided else ""
        return (
            f"The Slack token lacks the scope '{needed}'{granted}; add '{needed}' to the "
            "Slack app's scopes, reinstall the app and store the new token"
        )
    explanation = _EXPLANATIONS.get(code, f"Slack answered with error '{code}'")
    return explanation[0].upper() + explanation[1:]


def parse_slack_error(response: requests.Response) -> VendorErrorInfo | None:
    """Return the error a Slack response carries, or ``None`` for a success.

    :raises ValueError: an HTTP 200 body is not JSON (the client reports it as
        a malformed response).
    """
    request_id = response.headers.get(REQUEST_ID_HEADER)
    if response.status_code < 400:
        body = response.json()
        if not isinstance(body, Mapping) or body.get("ok", True) is not False:
            return None
    else:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, Mapping):
            body = {}
        if response.status_code == 429 and not body.get("error"):
            body = {"error": "ratelimited"}
        if not body.get("error"):
            body = {"error": f"http_{response.status_code}"}
    code = str(body.get("error"))
    retry_after = None
    if code == "ratelimited" and response.status_code != 429:
        # A rate limit reported in the body still deserves the pause.
        retry_after = _float_or_none(response.headers.get("Retry-After")) or 1.0
    return VendorErrorInfo(
        message=_explain(body),
        code=code,
        request_id=request_id,
        retry_after=retry_after,
        token_expired=code == "token_expired",
    )


def _float_or_none(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


@contextmanager
def auth_errors_as_authentication_errors() -> Iterator[None]:
    """Re-raise Slack's credential errors (HTTP 200, ``ok: false``) as AuthenticationError.

    ``invalid_auth``, ``token_revoked``, ``missing_scope`` … mean the
    credential, not the request, is the problem; other codes stay
    :class:`~oomnitza_connect.errors.VendorAPIError`.
    """
    try:
        yield
    except AuthenticationError:
        raise
    except VendorAPIError as exc:
        if exc.code not in AUTH_ERROR_CODES:
            raise
        raise AuthenticationError(
            exc.vendor_message,
            vendor=exc.vendor,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
        ) from None


def call(
    http: HttpClient,
    method_name: str,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """Call a read-only Slack method and return its JSON body."""
    with auth_errors_as_authentication_errors():
        return http.get_json(method_name, params=dict(params or {}), endpoint=method_name)


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def _bounded_int(settings: Mapping[str, str], key: str, default: int, maximum: int) -> int:
    raw = settings.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise ConfigurationError(
            f"the Slack setting must be a whole number from 1 to {maximum}, not {raw!r}.",
            key_path=key,
            value=raw,
            allowed=f"1..{maximum}",
        )
    return value


def page_size(settings: Mapping[str, str]) -> int:
    """Return the validated ``Slack.PageSize`` (the users.list ``limit``)."""
    return _bounded_int(settings, PAGE_SIZE_SETTING, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def access_logs_page_size(settings: Mapping[str, str]) -> int:
    """Return the validated ``Slack.AccessLogsPageSize`` (the team.accessLogs ``count``)."""
    return _bounded_int(
        settings,
        ACCESS_LOGS_PAGE_SIZE_SETTING,
        DEFAULT_ACCESS_LOGS_PAGE_SIZE,
        MAX_ACCESS_LOGS_PAGE_SIZE,
    )


def last_logins_mode(settings: Mapping[str, str]) -> str:
    mode = (settings.get(LAST_LOGINS_SETTING) or "auto").strip().lower()
    if mode not in ("auto", "on", "off"):
        raise ConfigurationError(
            f"the Slack setting must be 'auto', 'on' or 'off', not {mode!r}.",
            key_path=LAST_LOGINS_SETTING,
            value=mode,
            allowed="auto, on, off",
        )
    return mode


def validate_settings(settings: Mapping[str, str]) -> None:
    """Check every Slack setting, so that a bad value fails before any request."""
    page_size(settings)
    access_logs_page_size(settings)
    last_logins_mode(settings)


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------


def verify_token(http: HttpClient) -> dict[str, Any]:
    """Prove the token with ``auth.test`` and return who it belongs to.

    :raises AuthenticationError: Slack refused the token.
    """
    with auth_errors_as_authentication_errors():
        response = http.request_json("GET", "auth.test", endpoint="auth.test")
    body = response.data
    identity = {
        key: body.get(key)
        for key in ("url", "team", "user", "team_id", "user_id", "bot_id", "enterprise_id")
        if body.get(key) is not None
    }
    scopes = response.response.headers.get(SCOPES_HEADER)
    if scopes is not None:
        identity["scopes"] = tuple(s.strip() for s in scopes.split(",") if s.strip())
    return identity


EMAIL_SCOPE = "users:read.email"


def check_email_scope(session: VendorSession) -> None:
    """Fail once, before listing, when the token cannot read email addresses.

    Without ``users:read.email`` Slack leaves ``profile.email`` out of every
    member: each would fail alone for want of its email, and the run would
    look like 991 bad records instead of one missing scope.

    :raises AuthenticationError: ``X-OAuth-Scopes`` shows the scope is missing.
    """
    scopes = session.identity.get("scopes")
    if scopes is None or EMAIL_SCOPE in scopes:
        return  # Slack did not say (an org token, a proxy): nothing to conclude
    if "users:read" not in scopes:
        return  # users.list itself answers missing_scope, naming users:read
    granted = ", ".join(scopes) or "none"
    raise AuthenticationError(
        f"The Slack token lacks the scope '{EMAIL_SCOPE}' (the token has: {granted}), so "
        f"Slack sends no email addresses; add '{EMAIL_SCOPE}' to the Slack app's scopes, "
        "reinstall the app and store the new token",
        vendor=VENDOR,
        code="missing_scope",
    )


def iter_users(session: VendorSession) -> Iterator[UnreadRecord]:
    """Yield every workspace member, one ``users.list`` page at a time."""
    check_email_scope(session)
    params: dict[str, Any] = {"limit": page_size(session.settings)}
    team_id = session.settings.get(TEAM_ID_SETTING)
    if team_id:
        params["team_id"] = team_id
    pages = iter_cursor_pages(session.http, "users.list", params=params, endpoint="users.list")
    while True:
        with auth_errors_as_authentication_errors():
            page = next(pages, None)
        if page is None:
            return
        read = functools.partial(to_record, fetched_at=datetime.now(UTC))
        for member in page.get("members") or ():
            # Read by the sync engine, so that one member Slack sent malformed
            # fails alone instead of ending the listing.
            yield UnreadRecord(VENDOR, member, read)


def iter_access_logs(session: VendorSession) -> Iterator[Mapping[str, Any]]:
    """Yield ``team.accessLogs`` entries, newest first, across every page Slack serves.

    Slack pages with ``count``/``page`` and stops at page 100; after that the
    walk continues with ``before`` set to the oldest ``date_last`` seen.
    """
    count = access_logs_page_size(session.settings)
    before: int | None = None
    while True:
        oldest: int | None = None
        page = 1
        while True:
            params: dict[str, Any] = {"count": count, "page": page}
            if before is not None:
                params["before"] = before
            body = call(session.http, "team.accessLogs", params)
            logins = body.get("logins") or []
            for entry in logins:
                date_last = entry.get("date_last")
                if isinstance(date_last, int | float):
                    oldest = int(date_last) if oldest is None else min(oldest, int(date_last))
                yield entry
            paging = body.get("paging") or {}
            pages = int(paging.get("pages") or 1)
            if not logins or page >= pages:
                return
            if page >= MAX_ACCESS_LOGS_PAGE:
                break
            page += 1
        if oldest is None:
            return
        # `before` is inclusive: step past the boundary when it did not move.
        before = oldest if before is None or oldest < before else before - 1


class NewestLogins:
    """The newest login per user, kept in a temporary SQLite file rather than a dict.

    team.accessLogs lists one entry per user and IP and device, newest first but
    not one per user, so the newest per user is found by aggregating. A dict
    grows with the team (about 34 MB at 300,000 users); the file keeps memory
    flat, as the rest of the sync does.
    """

    _FLUSH_EVERY = 5000

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="oomnitza-connect-slack-")
        self._db = sqlite3.connect(Path(self._directory.name) / "logins.db")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE newest (user_id TEXT PRIMARY KEY, at REAL NOT NULL)")
        self._pending: list[tuple[str, float]] = []

    def add(self, user_id: str, at: float) -> None:
        self._pending.append((user_id, at))
        if len(self._pending) >= self._FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany(
            "INSERT INTO newest VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET at = max(at, excluded.at)",
            self._pending,
        )
        self._pending.clear()

    def __iter__(self) -> Iterator[tuple[str, float]]:
        self._flush()
        yield from self._db.execute("SELECT user_id, at FROM newest ORDER BY user_id")

    def close(self) -> None:
        self._db.close()
        self._directory.cleanup()


def last_logins(session: VendorSession) -> Iterator[dict[str, Any]]:
    """Yield ``{"vendor_user_id", "last_login"}`` once per user, from the access logs."""
    mode = last_logins_mode(session.settings)
    newest = NewestLogins()
    try:
        try:
            for entry in iter_access_logs(session):
                user_id = entry.get("user_id")
                date_last = entry.get("date_last")
                if not user_id or not isinstance(date_last, int | float):
                    continue
                newest.add(str(user_id), float(date_last))
        except (AuthenticationError, VendorAPIError) as exc:
            if mode == "auto" and exc.code in (
                "paid_only",
                "missing_scope",
                "not_allowed_token_type",
            ):
                log.warning(
                    "slack: last logins are skipped: %s Set %s to 'off' to stop trying, or "
                    "'on' to report this as an error.",
                    exc,
                    LAST_LOGINS_SETTING,
                )
                return
            raise
        for user_id, stamp in newest:
            yield {"vendor_user_id": user_id, "last_login": datetime.fromtimestamp(stamp, UTC)}
    finally:
        newest.close()
