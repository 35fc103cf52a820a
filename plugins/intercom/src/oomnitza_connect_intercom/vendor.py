"""Intercom on the declarative REST description: the admins API as data, a few rules as code.

The region setting picks the host and the version setting the ``Intercom-Version``
header, both as templates; ``GET /admins`` is one list (no pages), with
``display_avatar=true`` only when the Avatar field is read. Errors come in an
``error.list`` envelope (``errors.0.code``, ``request_id``). What is code here:
the version's form, the budget the ``Intercom.RequestsPerMinute`` setting gives
(Intercom counts in 10-second windows), an OAuth credential used as the bearer
token it holds (no expiry, no refresh token), a refused token on the wrong
region's host explained with the region setting, the version and strict team ids
on each record, and the token exchange's answer (the token twice).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

import attrs
import requests

from oomnitza_connect.auth.oauth import (
    TokenResponse,
    TokenResponseParser,
    token_response_from_mapping,
)
from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    MappingError,
)
from oomnitza_connect.models import (
    AuthKind,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    RateBudget,
    SettingKind,
    UnreadRecord,
    VendorRecord,
)
from oomnitza_connect.transport.http import ClientOptions, VendorErrorInfo, decode_json
from oomnitza_connect.vendors import (
    ErrorRules,
    RestVendor,
    SinglePage,
    UsersEndpoint,
    VendorSession,
    WhoAmI,
    compile_path,
)

from ._version import __version__
from .presets import PRESETS, VENDOR

__all__ = [
    "DEFAULT_VERSION",
    "NOT_AN_ADMIN",
    "REGION_HOSTS",
    "IntercomVendor",
    "budget_for",
    "vendor",
]

log = logging.getLogger(__name__)

VERSION_SETTING = "Intercom.Version"
REGION_SETTING = "Intercom.Region"
REQUESTS_PER_MINUTE_SETTING = "Intercom.RequestsPerMinute"
DEFAULT_VERSION = "2.11"
DEFAULT_REQUESTS_PER_MINUTE = 1000
"""Intercom's older published limit; current docs say 10,000 per app and 25,000 per
workspace, shared by every app of the workspace. The conservative figure is the default."""
REGION_HOSTS: Mapping[str, str] = {
    "US": "https://api.intercom.io",
    "EU": "https://api.eu.intercom.io",
    "AU": "https://api.au.intercom.io",
}
NOT_AN_ADMIN = "not an admin (old API versions list teams among the admins)"
"""Why an entry of ``/admins`` whose ``type`` is not ``admin`` is skipped (counted, not failed)."""
_VERSION = re.compile(r"^(\d+\.\d+|Preview)$")
_PRIMARY_TEAMS = compile_path("team_priority_level.primary_team_ids")
_STATUS_CODES = {
    401: "unauthorized",
    403: "action_forbidden",
    404: "not_found",
    429: "rate_limit_exceeded",
}
"""The code of an error whose body names none (a proxy's HTML page)."""

CREDENTIAL_CODES = frozenset(
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
    "token_revoked": "The access token was revoked (the app was uninstalled or the token "
    "regenerated)",
    "token_blocked": "The access token is blocked",
    "token_not_found": "Intercom does not know the access token",
    "token_unauthorized": "The access token is not allowed to make this call",
    "token_expired": "The access token expired",
    "missing_authorization": "Intercom received no access token",
    "api_plan_restricted": "The workspace's Intercom plan does not include this API",
    "admin_not_found": "No Intercom admin has that id",
    "not_found": "Intercom has no such resource",
    "intercom_version_invalid": (
        f"Intercom does not know the API version sent in the Intercom-Version header; set "
        f"{VERSION_SETTING} to a version Intercom offers (for example {DEFAULT_VERSION})"
    ),
    "rate_limit_exceeded": "Intercom is rate limiting this app",
    "parameter_invalid": "Intercom refused a parameter",
    "action_forbidden": "The token's admin may not do this",
    "server_error": "Intercom had an internal error",
    "service_unavailable": "Intercom is temporarily unavailable",
}


def budget_for(requests_per_minute: float) -> tuple[RateBudget, ...]:
    """The budget for *requests_per_minute*, fit for Intercom's 10-second windows.

    Intercom allows a sixth of its per-minute limit in each 10-second window. A
    token bucket lets out ``burst`` calls at once plus its rate over the window,
    so the burst is kept to 1/120 of the minute: with the client's 10 % margin
    on the rate, no 10-second window ever sees more than about 95 % of its share.
    """
    return (RateBudget("*", requests_per_minute, burst=max(1, int(requests_per_minute // 120))),)


class IntercomVendor(RestVendor):
    """Intercom workspace admins on the workspace's regional host, and two presets."""

    name = VENDOR
    display_name = "Intercom"
    description = (
        "Intercom workspace admins (teammates) from GET /admins on the workspace's regional "
        "host, with an access token (private app) or OAuth (public app; no refresh tokens)."
    )
    base_url = "https://{{Intercom.Region}}"
    auth_kinds = (AuthKind.API_KEY, AuthKind.OAUTH2_AUTHORIZATION_CODE)
    scopes = ("Read admins", "Read one admin")
    """Intercom has no scope parameter: these permissions are ticked in the Developer Hub."""
    authorize_url = "https://app.intercom.com/oauth"
    token_url = "https://api.intercom.io/auth/eagle/token"
    headers = {"Intercom-Version": "{{Intercom.Version}}"}
    api_version = DEFAULT_VERSION
    plugin_version = __version__
    emulator = "oomnitza_connect_intercom.emulator:IntercomEmulator"
    settings = (
        GlobalSetting(
            VERSION_SETTING,
            "The Intercom API version, sent as the Intercom-Version header on every request "
            "(1.0 to 2.16, or Preview)",
            default=DEFAULT_VERSION,
        ),
        GlobalSetting(
            REGION_SETTING,
            "The workspace's region; it picks the API host (US api.intercom.io, EU "
            "api.eu.intercom.io, AU api.au.intercom.io). A token works only on its own "
            "region's host",
            default="US",
            choices=tuple(REGION_HOSTS),
            values={region: url.removeprefix("https://") for region, url in REGION_HOSTS.items()},
        ),
        GlobalSetting(
            REQUESTS_PER_MINUTE_SETTING,
            "Requests per minute the connector keeps to; Intercom spreads its limit over "
            "10-second windows, so at most a sixth of it goes out in any 10 seconds",
            default=str(DEFAULT_REQUESTS_PER_MINUTE),
            kind=SettingKind.INTEGER,
            minimum=6,
            maximum=100_000,
        ),
    )
    who_am_i = WhoAmI(
        "me",
        endpoint="me",
        identity={
            "workspace": "app.name",
            "workspace_id": "app.id_code",
            "region": "app.region",
            "timezone": "app.timezone",
            "admin_id": "id",
            "admin_name": "name",
            "admin_email": "email",
        },
    )
    users = UsersEndpoint(
        "admins",
        items="admins",
        paging=SinglePage(),  # Intercom does not page /admins
        endpoint="admins.list",
        field_params={"avatar": {"display_avatar": "true"}},
    )
    errors = ErrorRules(
        code=("errors.0.code",),
        message=(),  # every entry's message and field: see explain()
        request_id=("request_id",),
        credential_codes=CREDENTIAL_CODES,
        explanations=_EXPLANATIONS,
    )
    # The default; the integration's Intercom.RequestsPerMinute replaces it.
    rate_budgets = budget_for(DEFAULT_REQUESTS_PER_MINUTE)
    sync_time_field = "connector_sync_time"
    fields = (
        FieldSpec(
            "avatar",
            "Avatar",
            path="avatar.image_url",
            description="avatar.image_url; read only when the field is mapped "
            "(display_avatar=true).",
        ),
        FieldSpec.flag("away_mode_enabled", "Away Mode Enabled?"),
        FieldSpec.flag(
            "away_mode_reassign",
            "Away Mode Reassign?",
            "New conversations are reassigned while the admin is away.",
        ),
        FieldSpec(
            "intercom_version",
            "Connect: Intercom Version",
            description="The Intercom-Version the admin was read with (the Intercom.Version "
            "setting).",
        ),
        FieldSpec(
            "connector_sync_time",
            "Connector Sync Time",
            FieldType.DATETIME,
            description="When the connector read the admin list during the sync.",
        ),
        FieldSpec("email", "Email", description="The admin's email address."),
        FieldSpec.flag("has_inbox_seat", "Has Inbox Seat?"),
        FieldSpec("intercom_id", "Intercom ID", unique=True, path="id", description="The id."),
        FieldSpec(
            "job_title", "Job Title", description="job_title; absent on many admins (then empty)."
        ),
        FieldSpec("name", "Name", description="The admin's full name."),
        FieldSpec(
            "primary_team_ids",
            "Primary Team IDs",
            FieldType.LIST,
            path="team_priority_level.primary_team_ids",
            description="team_priority_level.primary_team_ids (empty when null).",
        ),
        FieldSpec(
            "type",
            "Type",
            default="admin",
            description="'admin'; old API versions also listed 'team' entries, which are "
            "skipped (counted, never failed).",
        ),
    )
    standard_mapping = (
        FieldMapping(target="username", source="email", converter="lower"),
        FieldMapping(target="email", source="email", converter="email"),
        FieldMapping(target="Intercom ID", source="intercom_id", unique=True),
        # Tracking fields: each run records the API version and the sync time.
        FieldMapping(target="Connect: Intercom Version", source="intercom_version"),
        FieldMapping(target="connector_sync_time", source="connector_sync_time"),
    )
    presets = PRESETS

    # -- settings ---------------------------------------------------------------------

    def parse_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        parsed = super().parse_settings(settings)
        version = str(parsed[VERSION_SETTING])
        version = "Preview" if version.lower() == "preview" else version
        if not _VERSION.match(version):
            raise ConfigurationError(
                f"the Intercom API version must look like '{DEFAULT_VERSION}' (or be "
                f"'Preview'), not {version!r}.",
                key_path=VERSION_SETTING,
                value=version,
                allowed="1.0 … 2.16, Preview",
            )
        parsed[VERSION_SETTING] = version
        return parsed

    def template_variables(self, settings: Mapping[str, Any]) -> dict[str, str]:
        variables = super().template_variables(settings)
        variables[VERSION_SETTING] = self.parse_settings(settings)[VERSION_SETTING]
        return variables

    # -- the credential and its session -------------------------------------------------

    def open_session(
        self, credential: Credential, settings: Mapping[str, str], options: ClientOptions
    ) -> VendorSession:
        per_minute = self.parse_settings(settings)[REQUESTS_PER_MINUTE_SETTING]
        # A budget given for the run (integration file, --rate-budget) still wins.
        options = attrs.evolve(
            options, rate_budgets=(*budget_for(per_minute), *options.rate_budgets)
        )
        session = super().open_session(_as_bearer(credential), settings, options)
        session.credential = credential  # presets and callers see it as stored
        return session

    def verify(self, session: VendorSession) -> dict[str, Any]:
        parsed = self.parse_settings(session.settings)
        configured = parsed[REGION_SETTING]
        with _region_explained(session, configured):
            identity = super().verify(session)
        identity["api_version"] = parsed[VERSION_SETTING]
        reported = str(identity.get("region") or "").upper()
        if reported and reported != configured:
            log.warning(
                "intercom: the workspace '%s' is in region %s, but %s is %s; set %s=%s",
                identity.get("workspace"),
                reported,
                REGION_SETTING,
                configured,
                REGION_SETTING,
                reported,
            )
        return identity

    @property
    def token_response_parser(self) -> TokenResponseParser:
        return self.parse_token_response

    def parse_token_response(self, response: requests.Response) -> TokenResponse:
        """Read the answer of ``POST /auth/eagle/token``: ``{token_type, token, access_token}``.

        :raises AuthenticationError: Intercom refused the code (an error or no token).
        """
        info = self.parse_error(response) if response.status_code >= 400 else None
        try:
            body = decode_json(response)
        except ValueError:
            body = None
        if info is not None or not isinstance(body, Mapping):
            raise AuthenticationError(
                info.message
                if info
                else "Intercom's token endpoint answered with a body that is not JSON",
                vendor=self.name,
                status=response.status_code,
                code=info.code if info else None,
                request_id=info.request_id if info else None,
            )
        granted = dict(body)
        granted["access_token"] = granted.get("access_token") or granted.get("token")
        if not granted["access_token"]:
            raise AuthenticationError(
                "Intercom's token endpoint answered without a token",
                vendor=self.name,
                status=response.status_code,
            )
        # No refresh token is expected; one that does come is kept, never required.
        return token_response_from_mapping(granted)

    # -- admins -------------------------------------------------------------------------

    def user_pages(self, session: VendorSession) -> Iterator[Any]:
        with _region_explained(session, self.parse_settings(session.settings)[REGION_SETTING]):
            yield from super().user_pages(session)

    def skip_reason(self, item: Any) -> str | None:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind in (None, "admin"):
            return None
        # A fixed reason: the vendor's value may be anything (huge, not even valid text).
        return NOT_AN_ADMIN

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:
        version = self.parse_settings(session.settings)[VERSION_SETTING]
        page_reader: object = None
        reader: Callable[[Any], VendorRecord] = self.to_record
        for unread in cast(Iterator[UnreadRecord], super().iter_users(session)):
            if type(unread) is not UnreadRecord:  # what the sync engine's page memo recalled
                yield unread
                continue
            if unread.reader is not page_reader:  # one per page: bind the version once
                page_reader = unread.reader
                to_record: Callable[..., VendorRecord] = unread.reader  # fetched_at bound
                reader = functools.partial(to_record, api_version=version)
            yield UnreadRecord(self.name, unread.raw, reader)

    def to_record(
        self, item: Any, *, fetched_at: datetime | None = None, api_version: str = DEFAULT_VERSION
    ) -> VendorRecord:
        """Read one admin; *api_version* is the ``Intercom-Version`` it was read with.

        :raises MappingError: no id, a value of the wrong type, or team ids that are
            not a list of numbers.
        """
        record = super().to_record(item, fetched_at=fetched_at)
        fields = cast(dict[str, Any], record.fields)  # the record's own dict
        fields["intercom_version"] = api_version
        teams = _PRIMARY_TEAMS(item)
        try:
            if teams is not None and not isinstance(teams, list):
                raise TypeError(f"expected a list of team ids, got {type(teams).__name__}")
            fields["primary_team_ids"] = [int(team) for team in teams or ()]
        except (TypeError, ValueError) as exc:
            raise MappingError(
                f"Intercom admin {record.id!r} could not be read: primary_team_ids: {exc}",
                field="primary_team_ids",
                value=teams,
            ) from None
        return record

    # -- errors: the error.list envelope ------------------------------------------------

    def parse_error(self, response: requests.Response) -> VendorErrorInfo | None:
        info = super().parse_error(response)
        if info is not None and info.code is None:
            status = response.status_code
            code = _STATUS_CODES.get(status, "server_error" if status >= 500 else f"http_{status}")
            info = attrs.evolve(info, code=code, message=self.explain(code, None, response))
        return info

    def explain(self, code: str | None, body: Any, response: requests.Response) -> str:
        if code is None:
            return super().explain(code, body, response)
        explanation = self.errors.explanations.get(code, f"Intercom answered with error '{code}'")
        errors = body.get("errors") if isinstance(body, Mapping) else None
        entries = [e for e in errors or () if isinstance(e, Mapping)]
        vendor_message = "; ".join(str(e["message"]) for e in entries if e.get("message"))
        fields = ", ".join(str(e["field"]) for e in entries if e.get("field"))
        if fields:
            vendor_message = f"{vendor_message or 'invalid'} (field {fields})"
        if vendor_message and vendor_message.lower() not in explanation.lower():
            return f"{explanation}: {vendor_message}"
        return explanation


def _as_bearer(credential: Credential) -> Credential:
    """An OAuth credential as the bearer token it holds: Intercom's tokens do not expire
    and no refresh token is issued, so there is nothing to renew.

    :raises AuthenticationError: the OAuth credential holds no token yet.
    """
    if credential.kind is not AuthKind.OAUTH2_AUTHORIZATION_CODE:
        return credential
    if not credential.access_token:
        raise AuthenticationError(
            f"Credential '{credential.name}' holds no Intercom access token yet; run "
            f"'oomnitza-connect auth login {credential.name}' to install the app.",
            vendor=VENDOR,
        )
    return attrs.evolve(credential, kind=AuthKind.API_KEY, token=credential.access_token)


@contextmanager
def _region_explained(session: VendorSession, configured: str) -> Iterator[None]:
    """Name the region setting when a refusal is the one a wrong region's host gives.

    A token works only on its workspace's regional host; the others answer 401
    ``unauthorized``, just as for a bad token. Revoked or expired tokens say so
    themselves and pass unchanged.
    """
    try:
        yield
    except CredentialRefusedError as exc:
        if exc.code not in (None, "unauthorized"):
            raise
        others = ", ".join(region for region in REGION_HOSTS if region != configured)
        raise CredentialRefusedError(
            f"Intercom does not accept the access token on {session.http.base_url.rstrip('/')} "
            f"({exc.code or 'unauthorized'}). A token works only on its workspace's regional "
            f"host and {REGION_SETTING} is '{configured}': if the workspace is in another "
            f"region ({others}), set {REGION_SETTING} to it; otherwise the token is invalid or "
            "was revoked",
            vendor=VENDOR,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
            method=exc.method,
            endpoint=exc.endpoint,
        ) from None


vendor = IntercomVendor()
"""The object the entry point registers."""
