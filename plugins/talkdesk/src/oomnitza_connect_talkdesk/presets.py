"""The seven Talkdesk workflow presets, run by ``oomnitza_connect.presets.engine``.

Paths are relative to the API root the session uses (the region's gateway).
``Get Contact List`` takes Talkdesk's query filters in advanced mode
(``--override-query name="Daniel Craig"``, or a path override
``/contacts?name=Daniel%20Craig``); the paginated lists return one page, and
``--override-query page=2`` reads the next.
"""

from __future__ import annotations

from oomnitza_connect.models import Preset

__all__ = ["PRESETS", "SYNC_KEY_FIELD", "VENDOR"]

VENDOR = "talkdesk"
SYNC_KEY_FIELD = "TalkDesk User Id"
"""The custom unique field the standard mapping fills with the user id."""

_INSTALLATION = "/apps/{{app_id}}/installations/{{installation_id}}"

PRESETS: tuple[Preset, ...] = (
    Preset(
        vendor=VENDOR,
        name="Get User Details",
        description="Read one Talkdesk user by id with GET /users/{id} (scope users:read).",
        method="GET",
        path="/users/{{talkdesk_user_id}}",
        variables=("talkdesk_user_id",),
        response_mappings={
            SYNC_KEY_FIELD: "{{response.id}}",
            "Talkdesk Active": "{{response.active}}",
            "Talkdesk Extension": "{{response.extension}}",
        },
        endpoint="users.get",
    ),
    Preset(
        vendor=VENDOR,
        name="Get Contact List",
        description=(
            "List the account's contacts with GET /contacts (scope contacts:read); filter in "
            "advanced mode, e.g. name=Daniel Craig. Talkdesk lists at most 10,000 contacts."
        ),
        method="GET",
        path="/contacts",
        response_mappings={"Talkdesk Contacts Total": "{{response.total}}"},
        endpoint="contacts",
    ),
    Preset(
        vendor=VENDOR,
        name="Get Contact",
        description=(
            "Read one contact with GET /contacts/{contact_id} (scope contacts:read); Talkdesk "
            "answers 400, not 404, for an unknown contact."
        ),
        method="GET",
        path="/contacts/{{contact_id}}",
        variables=("contact_id",),
        response_mappings={"Talkdesk Contact Name": "{{response.name}}"},
        endpoint="contacts",
    ),
    Preset(
        vendor=VENDOR,
        name="Get App Information",
        description="Read a Talkdesk app with GET /apps/{app_id} (scope apps:read).",
        method="GET",
        path="/apps/{{app_id}}",
        variables=("app_id",),
        response_mappings={
            "Talkdesk App Name": "{{response.display_name}}",
            "Talkdesk Subscription Type": "{{response['subscription_types'][0].type}}",
        },
        endpoint="apps",
    ),
    Preset(
        vendor=VENDOR,
        name="Get Installation Info",
        description=(
            "Read the app's installation in this account with "
            "GET /apps/{app_id}/installations/{installation_id} (scope apps:read)."
        ),
        method="GET",
        path=_INSTALLATION,
        variables=("app_id", "installation_id"),
        response_mappings={"Talkdesk Installation State": "{{response._embedded.state.state}}"},
        endpoint="apps",
    ),
    Preset(
        vendor=VENDOR,
        name="Get Users For Installation",
        description=(
            "List the users the app is enabled for with GET "
            "/apps/{app_id}/installations/{installation_id}/users (scope apps:read); one page "
            "per run (advanced mode: page=N)."
        ),
        method="GET",
        path=_INSTALLATION + "/users",
        variables=("app_id", "installation_id"),
        response_mappings={"Talkdesk Installation Users": "{{response.total}}"},
        endpoint="apps",
    ),
    Preset(
        vendor=VENDOR,
        name="Get Installation Subscription",
        description=(
            "Read the installation's subscription with GET "
            "/apps/{app_id}/installations/{installation_id}/subscription (scope apps:read); "
            'its errors are {"error": "..."}.'
        ),
        method="GET",
        path=_INSTALLATION + "/subscription",
        variables=("app_id", "installation_id"),
        response_mappings={
            "Talkdesk Total Licenses": "{{response.total_licenses}}",
            "Talkdesk License Type": "{{response.license_type}}",
        },
        endpoint="apps",
    ),
)
