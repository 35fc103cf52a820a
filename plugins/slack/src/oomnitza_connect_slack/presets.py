"""The Slack workflow presets: named, reusable calls run by ``oomnitza_connect.presets.engine``."""

from __future__ import annotations

from oomnitza_connect.models import Preset

__all__ = ["PRESETS", "VENDOR"]

VENDOR = "slack"
"""The connector name (declared here because the vendor object imports the presets)."""

_USER_RESPONSE_MAPPINGS = {
    "Slack User Id": "{{response.user.id}}",
    "Slack Title": "{{response.user.profile.get('title')}}",
    "Slack Deleted": "{{response.user.deleted}}",
}

PRESETS: tuple[Preset, ...] = (
    Preset(
        vendor=VENDOR,
        name="Get User Details",
        description=(
            "Read one Slack user by id with users.info (scope users:read; "
            "the email only with users:read.email)."
        ),
        method="GET",
        path="/users.info",
        query={"user": "{{slack_user_id}}"},
        variables=("slack_user_id",),
        response_mappings=_USER_RESPONSE_MAPPINGS,
        endpoint="users.info",
    ),
    Preset(
        vendor=VENDOR,
        name="Find User By Email",
        description=(
            "Find the Slack user with an email address with users.lookupByEmail "
            "(scope users:read.email); Slack answers users_not_found when there is none."
        ),
        method="GET",
        path="/users.lookupByEmail",
        query={"email": "{{email}}"},
        variables=("email",),
        response_mappings=_USER_RESPONSE_MAPPINGS,
        endpoint="users.lookupByEmail",
    ),
)
