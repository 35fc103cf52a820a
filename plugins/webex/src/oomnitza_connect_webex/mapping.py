"""The fields and mapping the Webex connector offers, and the few Webex reading rules.

A person is read once, through the vendor description's field paths
(:meth:`oomnitza_connect_webex.vendor.WebexVendor.to_record`); Python is used
only where Webex needs it: role ids that the spec's own examples join with
commas (:func:`role_ids`), and flags that arrive as the strings
``"true"``/``"false"`` or as JSON booleans (:func:`parse_flag`, for sending
them back as booleans; the description's boolean fields read both). Webex
leaves out any field that is not set (``status`` and ``lastActivity`` when a
person hides their status, admin-only fields for other callers): those read
as ``None``.
"""

from __future__ import annotations

from typing import Any

from oomnitza_connect.models import FieldMapping, FieldSpec, FieldType

__all__ = [
    "DEFAULT_FILTERS",
    "FIELDS",
    "PERSON_TYPES",
    "STANDARD_MAPPING",
    "VENDOR",
    "parse_flag",
    "role_ids",
]

VENDOR = "webex"
PERSON_TYPES = ("person", "bot", "appuser")
"""``appuser`` is a guest (a guest-issuer app's user)."""


def parse_flag(value: Any) -> bool | None:
    """Read Webex's ``"true"``/``"false"`` strings and JSON booleans alike (``None``: absent).

    :raises ValueError: any other value.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{value!r} is neither true nor false")


def role_ids(value: Any) -> tuple[str, ...]:
    """Role ids of a person; the spec's own examples join several into one string with commas."""
    if not isinstance(value, list | tuple):
        return ()
    if len(value) == 1 and type(value[0]) is str and value[0].isalnum():
        return (value[0],)  # most people: one id (base64 letters and digits), nothing to split
    return tuple(part.strip() for item in value for part in str(item).split(",") if part.strip())


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "created",
        "Created",
        path="created",
        type=FieldType.DATETIME,
        description="When the person was added.",
    ),
    FieldSpec(
        "display_name", "DisplayName", path="displayName", description="displayName, the full name."
    ),
    FieldSpec("email", "Email", path="emails.0", description="The primary address (emails[0])."),
    FieldSpec("first_name", "First Name", path="firstName", description="firstName."),
    FieldSpec("user_id", "ID", path="id", unique=True, description="The Webex person id (base64)."),
    FieldSpec(
        "invite_pending",
        "Invite Pending",
        path="invitePending",
        type=FieldType.BOOLEAN,
        description="Invited and not activated yet (admin-only; None when not shown).",
    ),
    FieldSpec(
        "last_modified",
        "Last Modified",
        FieldType.DATETIME,
        path="lastModified",
        description="lastModified.",
    ),
    FieldSpec("last_name", "Last Name", path="lastName", description="lastName."),
    FieldSpec("org_id", "Org Id", path="orgId", description="The organization id."),
    FieldSpec(
        "status",
        "Status",
        path="status",
        description="Presence (active, inactive, pending …); None when the person hides it.",
    ),
    FieldSpec("type", "Type", path="type", description="person, bot or appuser (a guest)."),
    FieldSpec(
        "connector_sync_time",
        "User Load Connector Sync Time",
        FieldType.DATETIME,
        description="When the connector fetched the person's page during the sync.",
    ),
    FieldSpec(
        "login_enabled",
        "Login Enabled",
        path="loginEnabled",
        type=FieldType.BOOLEAN,
        description="The person may sign in (admin-only; None when not shown).",
    ),
    FieldSpec(
        "last_activity",
        "Last Activity",
        path="lastActivity",
        type=FieldType.DATETIME,
        description="The last activity Webex saw; None for a person who never signed in "
        "or hides their status.",
    ),
    FieldSpec(
        "role_ids",
        "Role Ids",
        path="roles",
        type=FieldType.LIST,
        description="The ids of the person's admin roles (admin-only); the User Role "
        "workflow turns them into names.",
    ),
    FieldSpec("department", "Department", path="department", description="department."),
    FieldSpec("title", "Title", path="title", description="title."),
)

STANDARD_MAPPING: tuple[FieldMapping, ...] = (
    FieldMapping(target="username", source="email", converter="lower"),
    FieldMapping(target="email", source="email", converter="email"),
    FieldMapping(target="Webex User Id", source="user_id", unique=True),
    FieldMapping(target="first_name", source="first_name"),
    FieldMapping(target="last_name", source="last_name"),
    FieldMapping(target="position", source="title"),
    FieldMapping(target="last_login", source="last_activity"),
    FieldMapping(target="connector_sync_time", source="connector_sync_time"),
)

DEFAULT_FILTERS: tuple[str, ...] = ("type != 'bot'",)
"""Bots are not people; guests (appuser) are kept, as the product's Webex page does."""
