"""Webex on the declarative REST description: the People API as data, a little as code.

Declared: the base URL, auth kinds and OAuth endpoints, the who-am-I call
(``GET /v1/people/me``), the users endpoint (``GET /v1/people`` with ``max``
and ``Link`` paging, whose broken next link is repaired), the fields with
their JSON paths, where errors keep their message, code and tracking id, the
rate budgets, the typed settings and the presets. Code: Webex's error rules
(423 waits like 429, at least 1 s and 15 s when ``Retry-After`` is missing; a
403 names the scope; a 504 suggests a smaller ``max``), the client id and
secret as form fields of the token request, role ids split where the spec's
examples join them, and the ``webex`` commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import requests

from oomnitza_connect.auth.oauth import TokenResponseParser
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import (
    AuthKind,
    ClientAuthMethod,
    Credential,
    RateBudget,
    VendorRecord,
)
from oomnitza_connect.transport.http import ClientOptions, VendorErrorInfo
from oomnitza_connect.vendors import (
    ErrorRules,
    LinkHeaderPaging,
    RestVendor,
    UsersEndpoint,
    VendorSession,
    WhoAmI,
)

from . import __version__
from .auth import parse_token_response
from .client import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_RETRY_AFTER,
    GLOBAL_SETTINGS,
    ORG_ID_SETTING,
    PAGE_SIZE_SETTING,
    PEOPLE_READ,
    PEOPLE_WRITE,
    ROLES_READ,
    TRACKING_ID_HEADER,
    parse_webex_error,
    repair_next_link,
)
from .mapping import DEFAULT_FILTERS, FIELDS, STANDARD_MAPPING, VENDOR, role_ids
from .presets import PRESETS

if TYPE_CHECKING:
    import click  # the commands import it when the CLI asks for them (a sync never does)

__all__ = ["RATE_BUDGETS", "SCOPES", "WebexVendor", "vendor"]

SCOPES = (PEOPLE_READ, PEOPLE_WRITE, ROLES_READ)
"""people_read for the sync, people_write for the write presets, roles_read for User Role."""

RATE_BUDGETS = (
    # Webex publishes no numbers ("limits vary depending on the calls"); these keep
    # well under the emulator's and leave 429 + Retry-After as the real signal.
    RateBudget("people.list", 1000, burst=20),
    RateBudget("people.get", 1000, burst=20),
    RateBudget("people.create", 240, burst=5),
    RateBudget("people.update", 240, burst=5),
    RateBudget("people.delete", 240, burst=5),
    RateBudget("roles.list", 50, burst=3),
)


class WebexVendor(RestVendor):
    name = VENDOR
    display_name = "Webex"
    description = (
        "Webex org people from GET /v1/people (personal access, bot or OAuth token with "
        "spark-admin:people_read); role names, status and last activity for SaaS users."
    )
    base_url = "https://webexapis.com/v1"
    auth_kinds = (AuthKind.API_KEY, AuthKind.OAUTH2_AUTHORIZATION_CODE)
    scopes = SCOPES
    authorize_url = "https://webexapis.com/v1/authorize"
    token_url = "https://webexapis.com/v1/access_token"
    settings = GLOBAL_SETTINGS
    who_am_i = WhoAmI(
        "people/me",
        endpoint="people.get",
        identity={
            "person_id": "id",
            "display_name": "displayName",
            "email": "emails.0",
            "org_id": "orgId",
            "type": "type",
        },
    )
    users = UsersEndpoint(
        "people",
        items="items",
        paging=LinkHeaderPaging(repair_next=repair_next_link),
        endpoint="people.list",
        params={"orgId": "{{" + ORG_ID_SETTING + "}}"},
        page_size_param="max",
        page_size_setting=PAGE_SIZE_SETTING,
        default_page_size=DEFAULT_PAGE_SIZE,
    )
    fields = FIELDS
    sync_time_field = "connector_sync_time"
    standard_mapping = STANDARD_MAPPING
    default_filters = DEFAULT_FILTERS
    rate_budgets = RATE_BUDGETS
    presets = PRESETS
    errors = ErrorRules(
        code=("errors.0.errorCode",),
        message=("message",),
        request_id_headers=(TRACKING_ID_HEADER,),
        request_id=("trackingId",),
        default_retry_after=DEFAULT_RETRY_AFTER,
    )
    api_version = "v1"
    plugin_version = __version__
    emulator = "oomnitza_connect_webex.emulator:WebexEmulator"

    @property
    def token_response_parser(self) -> TokenResponseParser:
        return parse_token_response

    def parse_error(self, response: requests.Response) -> VendorErrorInfo | None:
        # Webex's rules need logic: 423 waits like 429, at least 1 s; a 403 names
        # the scope of the call; a 504 suggests a smaller page.
        return parse_webex_error(response)

    def open_session(
        self, credential: Credential, settings: Mapping[str, str], options: ClientOptions
    ) -> VendorSession:
        if (
            credential.kind is AuthKind.OAUTH2_AUTHORIZATION_CODE
            and credential.client_auth_method is ClientAuthMethod.CLIENT_SECRET_BASIC
        ):
            # Webex documents the client id and secret as form fields of the token
            # request; HTTP Basic (the core's default) is not among its options.
            credential = attrs.evolve(
                credential, client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST
            )
        return super().open_session(credential, settings, options)

    def to_record(self, item: Any, *, fetched_at: datetime | None = None) -> VendorRecord:
        record = super().to_record(item, fetched_at=fetched_at)
        # The spec's own examples join several role ids into one string.
        split = list(role_ids(item.get("roles")))
        fields = record.fields
        if type(fields) is dict:
            # The record was just made around this dict and owns it (VendorRecord
            # keeps a plain dict as given): set the ids in it rather than make
            # every person's record twice.
            fields["role_ids"] = split
            return record
        return attrs.evolve(record, fields={**fields, "role_ids": split})

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        from .commands import webex_group

        cli.add_command(webex_group)


vendor = WebexVendor()
