"""What the core needs to know about Webex: auth, scopes, fields, mapping and rate budgets."""

from __future__ import annotations

from oomnitza_connect.models import AuthKind, RateBudget, VendorInfo

from .client import GLOBAL_SETTINGS, PEOPLE_READ, PEOPLE_WRITE, ROLES_READ
from .mapping import DEFAULT_FILTERS, FIELDS, STANDARD_MAPPING, VENDOR

__all__ = ["RATE_BUDGETS", "SCOPES", "WEBEX"]

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

WEBEX = VendorInfo(
    name=VENDOR,
    display_name="Webex",
    base_url="https://webexapis.com/v1",
    auth_kinds=(AuthKind.API_KEY, AuthKind.OAUTH2_AUTHORIZATION_CODE),
    scopes=SCOPES,
    global_settings=GLOBAL_SETTINGS,
    fields=FIELDS,
    standard_mapping=STANDARD_MAPPING,
    default_filters=DEFAULT_FILTERS,
    rate_budgets=RATE_BUDGETS,
    api_version="v1",
    authorize_url="https://webexapis.com/v1/authorize",
    token_url="https://webexapis.com/v1/access_token",
    description=(
        "Webex org people from GET /v1/people (personal access, bot or OAuth token with "
        "spark-admin:people_read); role names, status and last activity for SaaS users."
    ),
)
