"""Talkdesk on the declarative REST description: the users API as data, the 401s as code.

The account's subdomain and region pick both hosts, so nobody types a URL: the
token host belongs to the account and the region
(``https://mycompany.talkdeskid.eu/oauth/token``), the API gateway to the region.
Client credentials (a signed JWT or HTTP Basic) issue no refresh token; the
core's :class:`~oomnitza_connect.auth.oauth.ClientCredentialsAuth` asks for a new
access token before ``expires_in`` runs out and once more on a 401. What is code
here: the credential checks, the subdomain a pasted account URL is reduced to,
Talkdesk's error bodies (three shapes) and the explanation of a refused token
request (a scope added minutes ago answers 401 for a while).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests

from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    RateLimitError,
    VendorAPIError,
)
from oomnitza_connect.models import (
    AuthKind,
    ClientAuthMethod,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    RateBudget,
    SettingKind,
)
from oomnitza_connect.transport.http import ClientOptions, VendorErrorInfo, decode_json
from oomnitza_connect.vendors import (
    ErrorRules,
    HalPaging,
    RestVendor,
    UsersEndpoint,
    VendorSession,
    WhoAmI,
)

from ._version import __version__
from .presets import PRESETS, SYNC_KEY_FIELD, VENDOR

__all__ = ["DEFAULT_REGION", "REGIONS", "SCOPES", "Region", "TalkdeskVendor", "vendor"]

log = logging.getLogger(__name__)

SUBDOMAIN_SETTING = "Talkdesk.Subdomain"
REGION_SETTING = "Talkdesk.Region"
PAGE_SIZE_SETTING = "Talkdesk.PageSize"
API_BASE_URL_SETTING = "Talkdesk.ApiBaseUrl"
SCOPES = ("users:read", "contacts:read", "apps:read")
REQUEST_ID_HEADERS = ("X-Request-Id", "X-Correlation-Id", "X-B3-TraceId")
"""Talkdesk does not document its request id header; the first one present is taken."""


@attrs.frozen
class Region:
    """The hosts of one Talkdesk region: the account's token host is ``{subdomain}.{token_domain}``.

    :param api_host_confirmed: ``False`` when Talkdesk's documentation does not
        name the API host (AU); ``Talkdesk.ApiBaseUrl`` overrides it.
    """

    code: str
    token_domain: str
    api_host: str
    api_host_confirmed: bool = True


REGIONS: dict[str, Region] = {
    "US": Region("US", "talkdeskid.com", "api.talkdeskapp.com"),
    "EU": Region("EU", "talkdeskid.eu", "api.talkdeskapp.eu"),
    "CA": Region("CA", "talkdeskidca.com", "api.talkdeskappca.com"),
    # Talkdesk documents only AU's token host; the API host follows the EU pattern.
    "AU": Region("AU", "talkdeskid.au", "api.talkdeskapp.au", api_host_confirmed=False),
}
DEFAULT_REGION = "US"
_ACCOUNT_SUFFIXES = (".talkdeskapp.com", ".talkdeskapp.eu", ".talkdeskappca.com", ".talkdeskapp.au")
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # a DNS label


def token_host(subdomain: str, region: str) -> str:
    return f"{subdomain}.{REGIONS[region].token_domain}"


def _subdomain(raw: Any, *, required: bool) -> str:
    """The account subdomain, a pasted account URL reduced to it; ``""`` when not given."""
    text = str(raw or "").strip()
    if not text:
        if not required:
            return ""
        raise ConfigurationError(
            f"Talkdesk needs the account's subdomain in '{SUBDOMAIN_SETTING}'.",
            key_path=SUBDOMAIN_SETTING,
            allowed="the account name, e.g. 'mycompany' for https://mycompany.talkdeskapp.com",
        )
    value = text.lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    for suffix in _ACCOUNT_SUFFIXES:
        value = value.removesuffix(suffix)
    value = value.rstrip("/")
    if not _SUBDOMAIN.match(value):
        raise ConfigurationError(
            f"'{SUBDOMAIN_SETTING}' must be the account's subdomain, not {text!r}.",
            key_path=SUBDOMAIN_SETTING,
            value=text,
            allowed="letters, digits and hyphens, e.g. 'mycompany'",
        )
    return value


def _api_root(override: Any, region: str) -> str:
    """``Talkdesk.ApiBaseUrl`` if given (https, or http on loopback), else the region's gateway."""
    text = str(override or "").strip()
    if not text:
        return f"https://{REGIONS[region].api_host}"
    parts = urlsplit(text)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not loopback:
        raise ConfigurationError(
            f"'{API_BASE_URL_SETTING}' must be an https URL, not {text!r}.",
            key_path=API_BASE_URL_SETTING,
            value=text,
            allowed="https://api.talkdeskapp.<region>",
        )
    return text.rstrip("/")


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

    A refused token request (401) names the scopes asked for and explains that a
    scope added minutes ago answers 401 for a while; a 403 names the scope the
    call needs.
    """
    try:
        yield
    except (RateLimitError, CredentialRefusedError):
        raise  # a refused fresh token says so itself
    except AuthenticationError as exc:
        if exc.status != 401:
            raise
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


def _optional(key: str, label: str) -> FieldSpec:
    # Named by the product's Talkdesk field list; only some accounts return them.
    return FieldSpec(key, label, description=f"{key}, where the account has it.")


class TalkdeskVendor(RestVendor):
    """Talkdesk account users (HAL pages), seven presets, signed-JWT or Basic client credentials."""

    name = VENDOR
    display_name = "Talkdesk"
    description = (
        "Talkdesk users from GET /users (HAL pages), with OAuth2 client credentials signed "
        "by a JWT (ES256/384/512, PS256/384/512) or HTTP Basic; the account's subdomain and "
        "region pick the token and API hosts."
    )
    base_url = "{{Talkdesk.ApiRoot}}"
    token_url = "https://{{Talkdesk.Subdomain}}.{{Talkdesk.TokenDomain}}/oauth/token"
    auth_kinds = (AuthKind.OAUTH2_CLIENT_CREDENTIALS,)
    scopes = SCOPES
    headers = {"Accept": "application/hal+json, application/json"}
    plugin_version = __version__
    emulator = "oomnitza_connect_talkdesk.emulator:TalkdeskEmulator"
    settings = (
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
            kind=SettingKind.INTEGER,
            minimum=1,
            maximum=1000,
        ),
        GlobalSetting(
            API_BASE_URL_SETTING,
            "Only if the region's API host is wrong for the account (AU's is not documented "
            "by Talkdesk): the API root, such as the _links.root.href of the app.installed event",
        ),
    )
    # One user, not a page: proves the token and the users:read scope.
    who_am_i = WhoAmI(
        "users", endpoint="users.list", params={"per_page": "1"}, identity={"users_total": "total"}
    )
    users = UsersEndpoint(
        "users",
        items="_embedded.users",
        paging=HalPaging(),  # _links.next.href to the end, never page numbers
        endpoint="users.list",
        page_size_param="per_page",
        page_size_setting=PAGE_SIZE_SETTING,
        default_page_size=None,
        total_path="total",  # every page states the account's user count
    )
    errors = ErrorRules(
        code=("code", "error"),
        message=("message", "error_description", "error"),
        request_id_headers=REQUEST_ID_HEADERS,
        request_id=(),
    )
    rate_budgets = (
        # Talkdesk publishes no limits for these APIs (its Express provisioning API
        # allows 2 requests per second); 4 per second with a small burst stays polite.
        RateBudget("*", 240, burst=8),
    )
    sync_time_field = "connector_sync_time"
    active_field = "active"
    fields = (
        FieldSpec(
            "connector_sync_time",
            "Connector Sync Time",
            FieldType.DATETIME,
            description="When the connector fetched the user's page during the sync.",
        ),
        _optional("cost_center", "Cost Center"),
        _optional("employee_number", "Employee Number"),
        _optional("external_id", "External ID"),
        FieldSpec("full_name", "Full Name", path="name", description="name."),
        FieldSpec("id", "Id", unique=True, description="The Talkdesk user id."),
        _optional("last_name", "Last Name"),
        _optional("manager_id", "Manager ID"),
        _optional("time_zone", "Time Zone"),
        # Talkdesk users sign in with their email; it is their user name.
        FieldSpec(
            "user_name",
            "User Name",
            unique=True,
            path="email",
            description="The user's sign-in name: their email address.",
        ),
        FieldSpec("email", "Email", description="email."),
        FieldSpec(
            "active",
            "Active",
            FieldType.BOOLEAN,
            description="active; deactivated users are listed with false.",
            default=True,  # Talkdesk documents only false as inactive
        ),
    )
    standard_mapping = (
        FieldMapping(target="username", source="user_name"),
        FieldMapping(target="email", source="email", converter="email"),
        FieldMapping(target=SYNC_KEY_FIELD, source="id", unique=True),
        FieldMapping(target="connector_sync_time", source="connector_sync_time"),
    )
    presets = PRESETS

    # -- settings: the subdomain and region give both hosts ------------------------

    def parse_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        parsed = super().parse_settings(settings)
        parsed[SUBDOMAIN_SETTING] = _subdomain(settings.get(SUBDOMAIN_SETTING), required=True)
        parsed[API_BASE_URL_SETTING] = _api_root(
            settings.get(API_BASE_URL_SETTING), parsed[REGION_SETTING]
        )
        return parsed

    def template_variables(self, settings: Mapping[str, Any]) -> dict[str, str]:
        variables = super().template_variables(settings)
        region = REGIONS[variables[REGION_SETTING]]
        variables[SUBDOMAIN_SETTING] = _subdomain(settings.get(SUBDOMAIN_SETTING), required=False)
        variables["Talkdesk.TokenDomain"] = region.token_domain
        variables["Talkdesk.ApiRoot"] = _api_root(settings.get(API_BASE_URL_SETTING), region.code)
        return variables

    # -- the credential and its session ----------------------------------------------

    def open_session(
        self, credential: Credential, settings: Mapping[str, str], options: ClientOptions
    ) -> VendorSession:
        credential = check_credential(credential)
        if not credential.scopes:
            credential = attrs.evolve(credential, scopes=self.scopes)
        session = super().open_session(credential, settings, options)
        region = REGIONS[self.parse_settings(settings)[REGION_SETTING]]
        overridden = options.base_url or credential.base_url or settings.get(API_BASE_URL_SETTING)
        if not region.api_host_confirmed and not overridden:
            log.info(
                "talkdesk: the %s API host %s is not documented by Talkdesk; set %s if it "
                "differs for your account",
                region.code,
                region.api_host,
                API_BASE_URL_SETTING,
            )
        return session

    def verify(self, session: VendorSession) -> dict[str, Any]:
        with explained_errors(session):
            identity = super().verify(session)
        parsed = self.parse_settings(session.settings)
        identity.update(subdomain=parsed[SUBDOMAIN_SETTING], region=parsed[REGION_SETTING])
        if session.credential.scopes:
            identity["scopes"] = tuple(session.credential.scopes)
        return identity

    def user_pages(self, session: VendorSession) -> Iterator[Any]:
        pages = super().user_pages(session)
        while True:
            with explained_errors(session):
                page = next(pages, None)
            if page is None:
                return
            yield page

    # -- errors: {code, message, description, fields}, {error} and the token host's --

    def parse_error(self, response: requests.Response) -> VendorErrorInfo | None:
        info = super().parse_error(response)
        if info is not None and info.code is not None and response.status_code >= 400:
            body = _body(response)
            if "code" not in body and "error_description" not in body:
                # The subscription endpoint's {"error": "..."} is a sentence, not a code.
                info = attrs.evolve(info, code=None)
        return info

    def explain(self, code: str | None, body: Any, response: requests.Response) -> str:
        message = super().explain(code, body, response)
        if not isinstance(body, Mapping):
            return message
        if body.get("description"):
            message = f"{message}: {body['description']}"
        fields = "; ".join(
            f"{item['name']}: {item['description']}" if item.get("description") else item["name"]
            for item in body.get("fields") or ()
            if isinstance(item, Mapping) and item.get("name")
        )
        return f"{message} (fields: {fields})" if fields else message


def _body(response: requests.Response) -> Mapping[str, Any]:
    try:
        body = decode_json(response)
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def check_credential(credential: Credential) -> Credential:
    """Return *credential* as Talkdesk takes it (a signed JWT or HTTP Basic), or refuse it.

    :raises AuthenticationError: the kind is not client credentials, or the key or
        secret its method needs is missing.
    """

    def refuse(problem: str) -> AuthenticationError:
        return AuthenticationError(f"Credential '{credential.name}' {problem}", vendor=VENDOR)

    if credential.kind is not AuthKind.OAUTH2_CLIENT_CREDENTIALS:
        raise refuse(
            f"is of kind '{credential.kind}', but Talkdesk takes OAuth2 client credentials "
            "(oauth2_client_credentials) with a signed JWT (private_key_jwt) or HTTP Basic "
            "(client_secret_basic)."
        )
    if not credential.client_id:
        raise refuse("has no client_id; give the Talkdesk client id.")
    method = credential.client_auth_method
    if method is ClientAuthMethod.PRIVATE_KEY_JWT and not credential.private_key:
        raise refuse(
            "signs a JWT (private_key_jwt) but has no private_key; give the key Talkdesk "
            "delivered (Base64 PKCS#8) or a PEM key."
        )
    if method is not ClientAuthMethod.PRIVATE_KEY_JWT and not credential.client_secret:
        raise refuse("uses HTTP Basic but has no client_secret.")
    if method is ClientAuthMethod.CLIENT_SECRET_POST:
        # Talkdesk documents Basic and signed JWTs only.
        credential = attrs.evolve(
            credential, client_auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC
        )
    return credential


vendor = TalkdeskVendor()
"""The object the entry point registers."""
