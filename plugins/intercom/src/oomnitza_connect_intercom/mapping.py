"""Intercom's admin JSON as attrs classes, and the fields and mapping the connector offers.

One cattrs converter turns a raw ``/admins`` entry into :class:`IntercomAdmin`.
Intercom's schema calls ``job_title`` required, yet its own example leaves it
out; ``avatar`` may be null; ``team_ids`` and ``team_priority_level`` (and the
lists inside it) may be null. Every such field has a default, so a sparse
admin still structures. Entries whose ``type`` is not ``admin`` (old API
versions listed teams) become records of that type, which the default filter
``type == 'admin'`` skips (counted as skipped, not as errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

from oomnitza_connect.errors import MappingError
from oomnitza_connect.models import FieldMapping, FieldSpec, FieldType, VendorRecord

__all__ = [
    "ADMIN_TYPE",
    "DEFAULT_FILTERS",
    "FIELDS",
    "STANDARD_MAPPING",
    "VENDOR",
    "IntercomAdmin",
    "IntercomAvatar",
    "TeamPriorityLevel",
    "converter",
    "parse_admin",
    "to_record",
]

VENDOR = "intercom"
ADMIN_TYPE = "admin"


@attrs.frozen
class IntercomAvatar:
    image_url: str | None = None


@attrs.frozen
class TeamPriorityLevel:
    primary_team_ids: tuple[int, ...] = ()
    secondary_team_ids: tuple[int, ...] = ()


@attrs.frozen
class IntercomAdmin:
    """An entry of ``/admins`` (or ``/admins/{id}``, ``/me``); every field but ``id`` may lack."""

    id: str
    type: str = ADMIN_TYPE
    name: str | None = None
    email: str | None = None
    job_title: str | None = None
    away_mode_enabled: bool = False
    away_mode_reassign: bool = False
    has_inbox_seat: bool = False
    team_ids: tuple[int, ...] = ()
    avatar: IntercomAvatar | None = None
    team_priority_level: TeamPriorityLevel = TeamPriorityLevel()

    @property
    def is_admin(self) -> bool:
        return self.type == ADMIN_TYPE


def _none_to_false(value: Any, _: type) -> bool:
    return bool(value) if value is not None else False


def _blank_to_none(value: Any, _: type) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _id_list(value: Any, _: type) -> tuple[int, ...]:
    # null and a missing list mean the same: no teams.
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of team ids, got {type(value).__name__}")
    return tuple(int(item) for item in value)


def make_converter() -> cattrs.Converter:
    """Return the converter from Intercom admin JSON to :class:`IntercomAdmin`.

    Unknown keys are ignored: Intercom adds fields in new API versions.
    """
    conv = cattrs.Converter()
    conv.register_structure_hook(str | None, _blank_to_none)
    conv.register_structure_hook(bool, _none_to_false)
    conv.register_structure_hook_func(lambda kind: kind == tuple[int, ...], _id_list)
    structure_avatar = make_dict_structure_fn(IntercomAvatar, conv)
    conv.register_structure_hook(
        IntercomAvatar | None,
        lambda value, _: (
            structure_avatar(value, IntercomAvatar) if isinstance(value, Mapping) else None
        ),
    )
    structure_priority = make_dict_structure_fn(TeamPriorityLevel, conv)
    conv.register_structure_hook(
        TeamPriorityLevel,
        lambda value, cls: (
            structure_priority(value, cls) if isinstance(value, Mapping) else TeamPriorityLevel()
        ),
    )
    return conv


converter = make_converter()


def parse_admin(raw: Mapping[str, Any]) -> IntercomAdmin:
    """Structure one raw ``/admins`` entry.

    :raises MappingError: the entry has no ``id`` or a value of the wrong type.
    """
    if not isinstance(raw, Mapping) or raw.get("id") in (None, ""):
        raise MappingError("Intercom returned an admin entry without an 'id'.", field="id")
    data = {**raw, "id": str(raw["id"])}
    if data.get("type") is None:
        data["type"] = ADMIN_TYPE
    try:
        return converter.structure(data, IntercomAdmin)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        detail = cattrs.transform_error(exc) if isinstance(exc, cattrs.BaseValidationError) else exc
        raise MappingError(
            f"Intercom admin {data['id']!r} could not be read: {detail}", field=None
        ) from None


def to_record(
    raw: Mapping[str, Any], *, api_version: str, fetched_at: datetime | None = None
) -> VendorRecord:
    """Turn a raw ``/admins`` entry into a record carrying the fields of :data:`FIELDS`.

    :param api_version: the ``Intercom-Version`` the entry was read with
        (the "Connect: Intercom Version" tracking field).
    """
    admin = parse_admin(raw)
    fields: dict[str, Any] = {
        "avatar": admin.avatar.image_url if admin.avatar else None,
        "away_mode_enabled": admin.away_mode_enabled,
        "away_mode_reassign": admin.away_mode_reassign,
        "intercom_version": api_version,
        "connector_sync_time": fetched_at or datetime.now(UTC),
        "email": admin.email,
        "has_inbox_seat": admin.has_inbox_seat,
        "intercom_id": admin.id,
        "job_title": admin.job_title,
        "name": admin.name,
        "primary_team_ids": list(admin.team_priority_level.primary_team_ids),
        "type": admin.type,
    }
    return VendorRecord(vendor=VENDOR, id=admin.id, fields=fields, raw=raw)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "avatar",
        "Avatar",
        description="avatar.image_url; read only when the field is mapped (display_avatar=true).",
    ),
    FieldSpec("away_mode_enabled", "Away Mode Enabled?", FieldType.BOOLEAN),
    FieldSpec(
        "away_mode_reassign",
        "Away Mode Reassign?",
        FieldType.BOOLEAN,
        description="New conversations are reassigned while the admin is away.",
    ),
    FieldSpec(
        "intercom_version",
        "Connect: Intercom Version",
        description="The Intercom-Version the admin was read with (the Intercom.Version setting).",
    ),
    FieldSpec(
        "connector_sync_time",
        "Connector Sync Time",
        FieldType.DATETIME,
        description="When the connector read the admin list during the sync.",
    ),
    FieldSpec("email", "Email", description="The admin's email address."),
    FieldSpec("has_inbox_seat", "Has Inbox Seat?", FieldType.BOOLEAN),
    FieldSpec("intercom_id", "Intercom ID", unique=True, description="The admin id."),
    FieldSpec(
        "job_title", "Job Title", description="job_title; absent on many admins (then empty)."
    ),
    FieldSpec("name", "Name", description="The admin's full name."),
    FieldSpec(
        "primary_team_ids",
        "Primary Team IDs",
        FieldType.LIST,
        description="team_priority_level.primary_team_ids (empty when null).",
    ),
    FieldSpec(
        "type",
        "Type",
        description="'admin'; old API versions also listed 'team' entries, skipped by default.",
    ),
)

STANDARD_MAPPING: tuple[FieldMapping, ...] = (
    FieldMapping(target="username", source="email", converter="lower"),
    FieldMapping(target="email", source="email", converter="lower"),
    FieldMapping(target="Intercom ID", source="intercom_id", unique=True),
    # Tracking fields: each run records the API version and the sync time.
    FieldMapping(target="Connect: Intercom Version", source="intercom_version"),
    FieldMapping(target="connector_sync_time", source="connector_sync_time"),
)

DEFAULT_FILTERS: tuple[str, ...] = (f"type == '{ADMIN_TYPE}'",)
"""Teams listed among the admins (old API versions) are skipped, not failed."""
