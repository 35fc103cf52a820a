"""What the core needs to know about Slack: auth, scopes, fields, mapping and rate tiers."""

from __future__ import annotations

from oomnitza_connect.models import AuthKind, RateBudget, VendorInfo

from .client import GLOBAL_SETTINGS
from .mapping import DEFAULT_FILTERS, FIELDS, STANDARD_MAPPING, VENDOR

__all__ = ["ADMIN_SCOPE", "RATE_BUDGETS", "REQUIRED_SCOPES", "SLACK"]

REQUIRED_SCOPES = ("users:read", "users:read.email")
ADMIN_SCOPE = "admin"
"""Only for team.accessLogs (last logins), and only with a user token."""

RATE_BUDGETS = (
    RateBudget("users.list", 20, burst=3),  # Tier 2
    RateBudget("team.accessLogs", 20, burst=3),  # Tier 2
    RateBudget("users.lookupByEmail", 50, burst=5),  # Tier 3
    RateBudget("users.info", 100, burst=10),  # Tier 4
    RateBudget("auth.test", 100, burst=10),  # "special", generous; kept near Tier 4
)

SLACK = VendorInfo(
    name=VENDOR,
    display_name="Slack",
    base_url="https://slack.com/api",
    auth_kinds=(AuthKind.API_KEY, AuthKind.OAUTH2_AUTHORIZATION_CODE),
    scopes=(*REQUIRED_SCOPES, ADMIN_SCOPE),
    global_settings=GLOBAL_SETTINGS,
    fields=FIELDS,
    standard_mapping=STANDARD_MAPPING,
    default_filters=DEFAULT_FILTERS,
    rate_budgets=RATE_BUDGETS,
    authorize_url="https://slack.com/oauth/v2/authorize",
    token_url="https://slack.com/api/oauth.v2.access",
    description=(
        "Slack workspace members from users.list (bot xoxb- or user xoxp- token, or OAuth "
        "with token rotation); last logins from team.accessLogs on paid plans."
    ),
)
