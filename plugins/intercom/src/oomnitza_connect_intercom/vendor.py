"""What the core needs to know about Intercom: auth, permissions, fields, mapping, budgets."""

from __future__ import annotations

from oomnitza_connect.models import AuthKind, VendorInfo

from .client import DEFAULT_VERSION, GLOBAL_SETTINGS, REGION_HOSTS, rate_budgets
from .mapping import DEFAULT_FILTERS, FIELDS, STANDARD_MAPPING, VENDOR

__all__ = ["AUTHORIZE_URL", "INTERCOM", "PERMISSIONS", "TOKEN_URL"]

PERMISSIONS = ("Read admins", "Read one admin")
"""Intercom has no scope parameter: these permissions are ticked in the Developer Hub."""

AUTHORIZE_URL = "https://app.intercom.com/oauth"
TOKEN_URL = "https://api.intercom.io/auth/eagle/token"

INTERCOM = VendorInfo(
    name=VENDOR,
    display_name="Intercom",
    base_url=REGION_HOSTS["US"],
    auth_kinds=(AuthKind.API_KEY, AuthKind.OAUTH2_AUTHORIZATION_CODE),
    scopes=PERMISSIONS,
    global_settings=GLOBAL_SETTINGS,
    fields=FIELDS,
    standard_mapping=STANDARD_MAPPING,
    default_filters=DEFAULT_FILTERS,
    # The default budget; an integration's Intercom.RequestsPerMinute replaces it.
    rate_budgets=rate_budgets({}),
    api_version=DEFAULT_VERSION,
    authorize_url=AUTHORIZE_URL,
    token_url=TOKEN_URL,
    description=(
        "Intercom workspace admins (teammates) from GET /admins on the workspace's regional "
        "host, with an access token (private app) or OAuth (public app; no refresh tokens)."
    ),
)
