"""Slack on the declarative REST description: the Web API as data, two methods as code.

Slack answers almost every error with HTTP 200 and ``{"ok": false, "error":
"<code>"}``: the error rules declare the ``ok`` flag and what the codes mean, so
the HTTP client raises typed errors, retries ``ratelimited`` and refreshes on
``token_expired``. What is code here: the explanation of ``missing_scope``
(it names the granted scopes too) and last logins from ``team.accessLogs``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from oomnitza_connect.auth.oauth import TokenResponseParser
from oomnitza_connect.errors import AuthenticationError, VendorAPIError
from oomnitza_connect.models import (
    AuthKind,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    RateBudget,
    SettingKind,
    UnreadRecord,
    VendorRecord,
)
from oomnitza_connect.vendors import (
    CursorPaging,
    ErrorRules,
    RestVendor,
    UsersEndpoint,
    VendorSession,
    WhoAmI,
)

from ._version import __version__
from .auth import parse_token_response
from .logins import NewestLogins
from .presets import PRESETS, VENDOR

__all__ = ["ADMIN_SCOPE", "REQUIRED_SCOPES", "SLACKBOT_USER_ID", "SlackVendor", "vendor"]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Slack-Req-Id"
EMAIL_SCOPE = "users:read.email"
REQUIRED_SCOPES = ("users:read", EMAIL_SCOPE)
ADMIN_SCOPE = "admin"
"""Only for team.accessLogs (last logins), and only with a user token."""
SLACKBOT_USER_ID = "USLACKBOT"
"""Slackbot is a built-in user that Slack reports with ``is_bot: false``."""

PAGE_SIZE_SETTING = "Slack.PageSize"
ACCESS_LOGS_PAGE_SIZE_SETTING = "Slack.AccessLogsPageSize"
LAST_LOGINS_SETTING = "Slack.LastLogins"
TEAM_ID_SETTING = "Slack.TeamId"
MAX_ACCESS_LOGS_PAGE = 100
"""Slack serves at most 100 pages of access logs; older entries need ``before``."""

AUTH_ERROR_CODES = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
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
    "account_inactive": "The token belongs to a deactivated user or workspace",
    "token_revoked": "The token was revoked",
    "token_expired": "The access token expired",
    "not_allowed_token_type": "This kind of token (bot or user) cannot call this method",
    "no_permission": "The token's user lacks permission for this method",
    "ratelimited": "Slack is rate limiting this method",
    "paid_only": "This method is available only on paid Slack plans",
    "invalid_cursor": "Slack refused the pagination cursor",
    "limit_required": "Slack requires a page size (limit) for this workspace",
    "user_not_found": "No Slack user has that id",
    "users_not_found": "No Slack user has that email address",
    "user_not_visible": "The token cannot see that user",
    "fatal_error": "Slack had an internal error",
    "service_unavailable": "Slack is temporarily unavailable",
}


class SlackVendor(RestVendor):
    """Slack workspace members, last logins and presets."""

    name = VENDOR
    display_name = "Slack"
    description = (
        "Slack workspace members from users.list (bot xoxb- or user xoxp- token, or OAuth "
        "with token rotation); last logins from team.accessLogs on paid plans."
    )
    base_url = "https://slack.com/api"
    auth_kinds = (AuthKind.API_KEY, AuthKind.OAUTH2_AUTHORIZATION_CODE)
    scopes = (*REQUIRED_SCOPES, ADMIN_SCOPE)
    authorize_url = "https://slack.com/oauth/v2/authorize"
    token_url = "https://slack.com/api/oauth.v2.access"
    plugin_version = __version__
    emulator = "oomnitza_connect_slack.emulator:SlackEmulator"
    settings = (
        GlobalSetting(
            PAGE_SIZE_SETTING,
            "Users per users.list page, 1 to 999 (Slack recommends at most 200)",
            default="200",
            kind=SettingKind.INTEGER,
            minimum=1,
            maximum=999,
        ),
        GlobalSetting(
            ACCESS_LOGS_PAGE_SIZE_SETTING,
            "Entries per team.accessLogs page, 1 to 1000",
            default="1000",
            kind=SettingKind.INTEGER,
            minimum=1,
            maximum=1000,
        ),
        GlobalSetting(
            LAST_LOGINS_SETTING,
            "Read last logins from team.accessLogs: 'auto' skips them when the token lacks "
            "the admin scope or the workspace is on a free plan, 'on' reports those as errors",
            default="auto",
            choices=("auto", "on", "off"),
        ),
        GlobalSetting(
            TEAM_ID_SETTING,
            "The workspace to list with an Enterprise Grid org-level token (team_id)",
        ),
    )
    who_am_i = WhoAmI(
        "auth.test",
        identity={
            key: key
            for key in ("url", "team", "user", "team_id", "user_id", "bot_id", "enterprise_id")
        },
        scopes_header="X-OAuth-Scopes",
    )
    users = UsersEndpoint(
        "users.list",
        items="members",
        paging=CursorPaging(),
        params={"team_id": "{{Slack.TeamId}}"},
        page_size_param="limit",
        page_size_setting=PAGE_SIZE_SETTING,
        default_page_size=200,
        volatile_keys=("cache_ts",),  # the time of the answer, after the members
    )
    errors = ErrorRules(
        code=("error",),
        message=(),
        request_id_headers=(REQUEST_ID_HEADER,),
        request_id=(),
        success_flag="ok",
        credential_codes=AUTH_ERROR_CODES,
        rate_limited_codes=frozenset({"ratelimited"}),
        token_expired_codes=frozenset({"token_expired"}),
        missing_scope_codes=frozenset({"missing_scope"}),
        needed_scope=("needed",),
        explanations=_EXPLANATIONS,
    )
    rate_budgets = (
        RateBudget("users.list", 20, burst=3),  # Tier 2
        RateBudget("team.accessLogs", 20, burst=3),  # Tier 2
        RateBudget("users.lookupByEmail", 50, burst=5),  # Tier 3
        RateBudget("users.info", 100, burst=10),  # Tier 4
        RateBudget("auth.test", 100, burst=10),  # "special", generous; kept near Tier 4
    )
    sync_time_field = "connector_sync_time"
    inactive_field = "deleted"
    fields = (
        FieldSpec(
            "connector_sync_time",
            "Connector Sync Time",
            FieldType.DATETIME,
            description="When the connector fetched the user's page during the sync.",
        ),
        FieldSpec.flag("deleted", "Deleted?", "The user is deactivated."),
        FieldSpec(
            "email",
            "Email",
            path="profile.email",
            description="profile.email; present only when the token has users:read.email.",
        ),
        FieldSpec("first_name", "First Name", path="profile.first_name"),
        FieldSpec.flag("is_admin", "Is Admin?"),
        FieldSpec.flag(
            "is_bot", "Is bot user?", "A bot user (Slackbot is reported with is_bot false)."
        ),
        FieldSpec.flag("is_restricted", "Is restricted (guest) user?", "A multi-channel guest."),
        FieldSpec.flag(
            "is_ultra_restricted",
            "Is ultra restricted (single channel only) user?",
            "A single-channel guest.",
        ),
        FieldSpec("last_name", "Last Name", path="profile.last_name"),
        FieldSpec("phone", "Phone", path="profile.phone"),
        FieldSpec("skype", "Skype", path="profile.skype"),
        FieldSpec("team_id", "Team ID", path="team_id|profile.team", description="T…"),
        FieldSpec("title", "Title", path="profile.title"),
        FieldSpec("user_id", "User ID", unique=True, path="id", description="U… or W…"),
        FieldSpec("user_name", "User Name", unique=True, path="name", description="The handle."),
        FieldSpec.flag("is_invited_user", "Is invited user?", "Invited and not signed in yet."),
        FieldSpec.flag("is_app_user", "Is app user?", "A user that represents an app."),
        FieldSpec.flag("is_owner", "Is owner?"),
        FieldSpec.flag("is_primary_owner", "Is primary owner?"),
        FieldSpec("real_name", "Real Name", path="profile.real_name|real_name"),
        FieldSpec("display_name", "Display Name", path="profile.display_name"),
        FieldSpec("time_zone", "Time Zone", path="tz", description="tz, an IANA zone name."),
        FieldSpec(
            "updated",
            "Updated",
            FieldType.DATETIME,
            description="When Slack last changed the user.",
        ),
    )
    standard_mapping = (
        FieldMapping(target="username", source="user_name"),
        FieldMapping(target="email", source="email", converter="email"),
        FieldMapping(target="Slack User Id", source="user_id", unique=True),
        FieldMapping(target="first_name", source="first_name"),
        FieldMapping(target="last_name", source="last_name"),
        FieldMapping(target="phone_number", source="phone"),
        FieldMapping(target="position", source="title"),
        # The record's fetch time, not the context's `sync_time`: the conformance
        # suite holds standard mappings to declared fields.
        FieldMapping(target="connector_sync_time", source="connector_sync_time"),
    )
    default_filters = ("not is_bot", f"user_id != '{SLACKBOT_USER_ID}'")
    """Bots out, Slackbot included: it is not a person even though ``is_bot`` is false."""
    presets = PRESETS

    @property
    def token_response_parser(self) -> TokenResponseParser:
        return parse_token_response

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:
        check_email_scope(session)
        return super().iter_users(session)

    def explain(self, code: str | None, body: Any, response: requests.Response) -> str:
        if code == "missing_scope" and isinstance(body, Mapping):
            needed = body.get("needed") or "an unnamed scope"
            provided = body.get("provided")
            granted = f" (the token has: {provided})" if provided else ""
            return (
                f"The Slack token lacks the scope '{needed}'{granted}; add '{needed}' to the "
                "Slack app's scopes, reinstall the app and store the new token"
            )
        if code is not None and code not in _EXPLANATIONS and response.status_code < 400:
            return f"Slack answered with error '{code}'"
        return super().explain(code, body, response)

    # -- last logins --------------------------------------------------------------

    def last_logins(self, session: VendorSession) -> Iterator[dict[str, Any]] | None:
        mode = self.parse_settings(session.settings)[LAST_LOGINS_SETTING]
        if mode == "off":
            return None
        scopes = session.identity.get("scopes")
        if mode == "auto" and scopes is not None and ADMIN_SCOPE not in scopes:
            # Without the admin scope team.accessLogs can only fail; say so once, quietly.
            log.info("slack: the token has no '%s' scope, so last logins are not read", ADMIN_SCOPE)
            return None
        return self._newest_logins(session, mode)

    def _newest_logins(self, session: VendorSession, mode: str) -> Iterator[dict[str, Any]]:
        newest = NewestLogins()
        try:
            try:
                for entry in self.iter_access_logs(session):
                    user_id = entry.get("user_id")
                    date_last = entry.get("date_last")
                    if user_id and isinstance(date_last, int | float):
                        newest.add(str(user_id), float(date_last))
            except (AuthenticationError, VendorAPIError) as exc:
                if mode == "auto" and exc.code in (
                    "paid_only",
                    "missing_scope",
                    "not_allowed_token_type",
                ):
                    log.warning(
                        "slack: last logins are skipped: %s Set %s to 'off' to stop trying, "
                        "or 'on' to report this as an error.",
                        exc,
                        LAST_LOGINS_SETTING,
                    )
                    return
                raise
            for user_id, stamp in newest:
                yield {"vendor_user_id": user_id, "last_login": datetime.fromtimestamp(stamp, UTC)}
        finally:
            newest.close()

    def iter_access_logs(self, session: VendorSession) -> Iterator[Mapping[str, Any]]:
        """Yield ``team.accessLogs`` entries, newest first, across every page Slack serves.

        Slack pages with ``count``/``page`` and stops at page 100; after that the
        walk continues with ``before`` set to the oldest ``date_last`` seen.
        """
        count = self.parse_settings(session.settings)[ACCESS_LOGS_PAGE_SIZE_SETTING]
        before: int | None = None
        while True:
            oldest: int | None = None
            page = 1
            while True:
                params: dict[str, Any] = {"count": count, "page": page}
                if before is not None:
                    params["before"] = before
                body = session.http.get_json(
                    "team.accessLogs", params=params, endpoint="team.accessLogs"
                )
                logins = body.get("logins") or []
                for entry in logins:
                    date_last = entry.get("date_last")
                    if isinstance(date_last, int | float):
                        oldest = int(date_last) if oldest is None else min(oldest, int(date_last))
                    yield entry
                pages = int((body.get("paging") or {}).get("pages") or 1)
                if not logins or page >= pages:
                    return
                if page >= MAX_ACCESS_LOGS_PAGE:
                    break
                page += 1
            if oldest is None:
                return
            # `before` is inclusive: step past the boundary when it did not move.
            before = oldest if before is None or oldest < before else before - 1


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


vendor = SlackVendor()
"""The object the entry point registers."""
