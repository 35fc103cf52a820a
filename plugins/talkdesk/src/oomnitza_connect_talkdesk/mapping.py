"""Talkdesk's user JSON as an attrs class, and the fields and mapping the connector offers.

One cattrs converter turns a ``/users`` item into :class:`TalkdeskUser`. The
documented user object carries ``id``, ``email``, ``name``, ``active``,
``gender``, ``extension``, ``external_phone_number`` and ``created_at``; the
product's Talkdesk field list also names Cost Center, Employee Number, External
ID, Last Name, Manager ID and Time Zone, which some accounts return. A field the
API does not return for an account is simply empty. Inactive users
(``active: false``) are records like any other.
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
    "FIELDS",
    "STANDARD_MAPPING",
    "SYNC_KEY_FIELD",
    "VENDOR",
    "TalkdeskUser",
    "parse_user",
    "to_record",
]

VENDOR = "talkdesk"
SYNC_KEY_FIELD = "TalkDesk User Id"
"""The custom unique field the standard mapping fills with the user id."""


@attrs.frozen
class TalkdeskUser:
    """A Talkdesk user as ``GET /users`` and ``GET /users/{id}`` return it."""

    id: str
    email: str | None = None
    full_name: str | None = None
    active: bool = True
    cost_center: str | None = None
    employee_number: str | None = None
    external_id: str | None = None
    last_name: str | None = None
    manager_id: str | None = None
    time_zone: str | None = None


def _text_or_none(value: Any, _: type) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _active(value: Any, _: type) -> bool:
    # A missing or null state is an active user: Talkdesk documents only false as inactive.
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "inactive")
    return bool(value)


def make_converter() -> cattrs.Converter:
    """Return the converter from Talkdesk user JSON to :class:`TalkdeskUser` (unknown keys go)."""
    conv = cattrs.Converter()
    conv.register_structure_hook(str | None, _text_or_none)
    conv.register_structure_hook(bool, _active)
    conv.register_structure_hook(
        TalkdeskUser,
        make_dict_structure_fn(
            TalkdeskUser,
            conv,
            # Talkdesk's key names that differ from ours, declared once.
            full_name=override(rename="name"),
        ),
    )
    return conv


converter = make_converter()


def parse_user(raw: Mapping[str, Any]) -> TalkdeskUser:
    """Structure one raw Talkdesk user object.

    :raises MappingError: the object is not a user (no ``id``, wrong types).
    """
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise MappingError("Talkdesk returned a user object without an 'id'.", field="id")
    try:
        return converter.structure({**raw, "id": str(raw["id"])}, TalkdeskUser)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise MappingError(f"Talkdesk user {raw.get('id')!r} could not be read: {exc}") from None


def to_record(raw: Mapping[str, Any], *, fetched_at: datetime | None = None) -> VendorRecord:
    """Turn a raw Talkdesk user into a record carrying every field of :data:`FIELDS`."""
    user = parse_user(raw)
    fields: dict[str, Any] = {
        "connector_sync_time": fetched_at or datetime.now(UTC),
        "cost_center": user.cost_center,
        "employee_number": user.employee_number,
        "external_id": user.external_id,
        "full_name": user.full_name,
        "id": user.id,
        "last_name": user.last_name,
        "manager_id": user.manager_id,
        "time_zone": user.time_zone,
        # Talkdesk users sign in with their email; it is their user name.
        "user_name": user.email,
        "email": user.email,
        "active": user.active,
    }
    return VendorRecord(vendor=VENDOR, id=user.id, fields=fields, raw=raw)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "connector_sync_time",
        "Connector Sync Time",
        FieldType.DATETIME,
        description="When the connector fetched the user's page during the sync.",
    ),
    FieldSpec("cost_center", "Cost Center", description="cost_center, where the account has it."),
    FieldSpec(
        "employee_number",
        "Employee Number",
        description="employee_number, where the account has it.",
    ),
    FieldSpec("external_id", "External ID", description="external_id, where the account has it."),
    FieldSpec("full_name", "Full Name", description="name."),
    FieldSpec("id", "Id", unique=True, description="The Talkdesk user id."),
    FieldSpec("last_name", "Last Name", description="last_name, where the account has it."),
    FieldSpec("manager_id", "Manager ID", description="manager_id, where the account has it."),
    FieldSpec("time_zone", "Time Zone", description="time_zone, where the account has it."),
    FieldSpec(
        "user_name",
        "User Name",
        unique=True,
        description="The user's sign-in name: their email address.",
    ),
    FieldSpec("email", "Email", description="email."),
    FieldSpec(
        "active",
        "Active",
        FieldType.BOOLEAN,
        description="active; deactivated users are listed with false.",
    ),
)

STANDARD_MAPPING: tuple[FieldMapping, ...] = (
    FieldMapping(target="username", source="user_name"),
    FieldMapping(target="email", source="email", converter="lower"),
    FieldMapping(target=SYNC_KEY_FIELD, source="id", unique=True),
    FieldMapping(target="connector_sync_time", source="connector_sync_time"),
)
