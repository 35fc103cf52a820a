"""Webex's person JSON as an attrs class, and the fields and mapping the connector offers.

One cattrs converter turns a raw ``GET /v1/people`` item into
:class:`WebexPerson`; the Webex key names are renamed once, in
:func:`make_converter`. Webex leaves out any field that is not set (``status``
and ``lastActivity`` when a person hides their status, admin-only fields for
other callers), and sends ``invitePending``/``loginEnabled`` as the strings
``"true"``/``"false"`` or as JSON booleans: both are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from oomnitza_connect.errors import MappingError
from oomnitza_connect.models import FieldMapping, FieldSpec, FieldType, VendorRecord

__all__ = [
    "DEFAULT_FILTERS",
    "FIELDS",
    "PERSON_TYPES",
    "STANDARD_MAPPING",
    "VENDOR",
    "WebexPerson",
    "converter",
    "parse_flag",
    "parse_person",
    "parse_timestamp",
    "role_ids",
    "to_record",
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


def parse_timestamp(value: Any) -> datetime | None:
    """Read Webex's ISO-8601 times (``2015-10-18T14:26:16.028Z``); ``None`` when absent.

    :raises ValueError: a value that is not such a time.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO-8601 time")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def role_ids(value: Any) -> tuple[str, ...]:
    """Role ids of a person; the spec's own examples join several into one string with commas."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple(part.strip() for item in value for part in str(item).split(",") if part.strip())


@attrs.frozen
class WebexPerson:
    """A Webex person as ``GET /v1/people`` and ``GET /v1/people/{id}`` return it."""

    id: str
    emails: tuple[str, ...] = ()
    display_name: str | None = None
    nick_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    org_id: str | None = None
    type: str | None = None
    status: str | None = None
    invite_pending: bool | None = None
    login_enabled: bool | None = None
    created: datetime | None = None
    last_modified: datetime | None = None
    last_activity: datetime | None = None
    roles: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    department: str | None = None
    title: str | None = None
    timezone: str | None = None

    @property
    def email(self) -> str | None:
        """The primary address (Webex keeps one; the first is the primary)."""
        return self.emails[0] if self.emails else None


def _blank_to_none(value: Any, _: type) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def make_converter() -> cattrs.Converter:
    """Return the converter from Webex person JSON to :class:`WebexPerson`.

    Unknown keys are ignored: Webex adds fields to the person without notice.
    """
    conv = cattrs.Converter()
    conv.register_structure_hook(str | None, _blank_to_none)
    conv.register_structure_hook(bool | None, lambda value, _: parse_flag(value))
    conv.register_structure_hook(datetime | None, lambda value, _: parse_timestamp(value))
    conv.register_structure_hook_func(
        lambda cls: cls == tuple[str, ...],
        lambda value, _: tuple(str(v) for v in value) if isinstance(value, list) else (),
    )
    conv.register_structure_hook(
        WebexPerson,
        make_dict_structure_fn(
            WebexPerson,
            conv,
            display_name=override(rename="displayName"),
            nick_name=override(rename="nickName"),
            first_name=override(rename="firstName"),
            last_name=override(rename="lastName"),
            org_id=override(rename="orgId"),
            invite_pending=override(rename="invitePending"),
            login_enabled=override(rename="loginEnabled"),
            last_modified=override(rename="lastModified"),
            last_activity=override(rename="lastActivity"),
        ),
    )
    return conv


converter = make_converter()


def parse_person(raw: Mapping[str, Any]) -> WebexPerson:
    """Structure one raw Webex person.

    :raises MappingError: the object is not a person (no ``id``, wrong types).
    """
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise MappingError("Webex returned a person without an 'id'.", field="id")
    try:
        person = converter.structure(raw, WebexPerson)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise MappingError(
            f"Webex person {raw.get('id')!r} could not be read: {_reason(exc)}", field=None
        ) from None
    return attrs.evolve(person, roles=role_ids(raw.get("roles")))


def _reason(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        causes = [f"{type(e).__name__}: {e}" for e in exc.exceptions]
        return "; ".join(causes) or str(exc)
    return str(exc)


def to_record(raw: Mapping[str, Any], *, fetched_at: datetime | None = None) -> VendorRecord:
    """Turn a raw Webex person into a record through the vendor's declared field paths."""
    from .vendor import vendor  # the description reads records; this is a shortcut to it

    return vendor.to_record(raw, fetched_at=fetched_at)


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
    FieldMapping(target="email", source="email", converter="lower"),
    FieldMapping(target="Webex User Id", source="user_id", unique=True),
    FieldMapping(target="first_name", source="first_name"),
    FieldMapping(target="last_name", source="last_name"),
    FieldMapping(target="position", source="title"),
    FieldMapping(target="last_login", source="last_activity"),
    FieldMapping(target="connector_sync_time", source="connector_sync_time"),
)

DEFAULT_FILTERS: tuple[str, ...] = ("type != 'bot'",)
"""Bots are not people; guests (appuser) are kept, as the product's Webex page does."""
