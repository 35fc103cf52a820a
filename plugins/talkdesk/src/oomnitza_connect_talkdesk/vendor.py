"""What the core needs to know about Talkdesk: auth, scopes, settings, fields, rate budgets."""

from __future__ import annotations

from oomnitza_connect.models import AuthKind, RateBudget, VendorInfo

from .client import GLOBAL_SETTINGS
from .mapping import FIELDS, STANDARD_MAPPING, VENDOR
from .regions import api_base_url

__all__ = ["RATE_BUDGETS", "SCOPES", "TALKDESK"]

SCOPES = ("users:read", "contacts:read", "apps:read")

RATE_BUDGETS = (
    # Talkdesk publishes no limits for these APIs (its Express provisioning API
    # allows 2 requests per second); 4 per second with a small burst stays polite.
    RateBudget("*", 240, burst=8),
)

TALKDESK = VendorInfo(
    name=VENDOR,
    display_name="Talkdesk",
    base_url=api_base_url("US"),
    auth_kinds=(AuthKind.OAUTH2_CLIENT_CREDENTIALS,),
    scopes=SCOPES,
    global_settings=GLOBAL_SETTINGS,
    fields=FIELDS,
    standard_mapping=STANDARD_MAPPING,
    rate_budgets=RATE_BUDGETS,
    description=(
        "Talkdesk users from GET /users (HAL pages), with OAuth2 client credentials signed "
        "by a JWT (ES256/384/512, PS256/384/512) or HTTP Basic; the account's subdomain and "
        "region pick the token and API hosts."
    ),
)
