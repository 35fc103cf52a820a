"""The Intercom workflow presets: named, reusable calls run by ``oomnitza_connect.presets``."""

from __future__ import annotations

from oomnitza_connect.models import Preset

VENDOR = "intercom"

__all__ = ["PRESETS", "VENDOR"]

_ADMIN_RESPONSE_MAPPINGS = {
    "Intercom ID": "{{response.id}}",
    "Intercom Job Title": "{{response.get('job_title')}}",
    "Intercom Away Mode": "{{response.away_mode_enabled}}",
    "Intercom Has Inbox Seat": "{{response.has_inbox_seat}}",
}

PRESETS: tuple[Preset, ...] = (
    Preset(
        vendor=VENDOR,
        name="Get Admin Details",
        description=(
            "Read one Intercom admin by id with GET /admins/{id} (permission 'Read one admin'); "
            "Intercom answers 404 admin_not_found for an unknown id."
        ),
        method="GET",
        path="/admins/{{intercom_admin_id}}",
        variables=("intercom_admin_id",),
        # A synced person carries the id in the standard mapping's custom field.
        variable_fields={"intercom_admin_id": "Intercom ID"},
        response_mappings=_ADMIN_RESPONSE_MAPPINGS,
        endpoint="admins.retrieve",
    ),
    Preset(
        vendor=VENDOR,
        name="Identify Current Admin",
        description=(
            "Read the admin the token belongs to, and the workspace's name and region, with "
            "GET /me (permission 'Read admins')."
        ),
        method="GET",
        path="/me",
        response_mappings={
            "Intercom Workspace": "{{response.app.name}}",
            "Intercom Region": "{{response.app.region}}",
            "Intercom Current Admin ID": "{{response.id}}",
        },
        endpoint="me",
    ),
)
