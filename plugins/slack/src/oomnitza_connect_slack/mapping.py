"""Slack's user JSON as attrs classes, and the fields and mapping the connector offers.

One cattrs converter turns a raw ``users.list`` member into :class:`SlackUser`;
the Slack key names that differ from ours are renamed once, in
:func:`make_converter`. Slack leaves out, nulls or blanks any profile field a
user did not fill in, so every field has a default and blanks become ``None``.
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
    "SLACKBOT_USER_ID",
    "STANDARD_MAPPING",
    "VENDOR",
    "SlackProfile",
    "SlackUser",
    "converter",
    "make_converter",
    "parse_user",
    "to_record",
]

VENDOR = "slack"
SLACKBOT_USER_ID = "USLACKBOT"
"""Slackbot is a built-in user that Slack reports with ``is_bot: false``."""


@attrs.frozen
class SlackProfile:
    """The ``profile`` object of a Slack user; every field may be missing."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    real_name: str | None = None
    display_name: str | None = None
    title: str | None = None
    phone: str | None = None
    skype: str | None = None
    team: str | None = None
    bot_id: str | None = None
    api_app_id: str | None = None


@attrs.frozen
class SlackUser:
    """A Slack user as ``users.list``, ``users.info`` and ``users.lookupByEmail`` return it."""

    id: str
    user_name: str | None = None
    team_id: str | None = None
    real_name: str | None = None
    time_zone: str | None = None
    deleted: bool = False
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_bot: bool = False
    is_app_user: bool = False
    is_invited_user: bool = False
    updated: float | None = None
    profile: SlackProfile = SlackProfile()


def _none_to_false(value: Any, _: type) -> bool:
    return bool(value) if value is not None else False


def _blank_to_none(value: Any, _: type) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _optional_number(value: Any, _: type) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def make_converter() -> cattrs.Converter:
    """Return the converter from Slack user JSON to :class:`SlackUser`.

    Unknown keys are ignored: Slack adds fields to the user object without notice.
    """
    conv = cattrs.Converter()
    conv.register_structure_hook(str | None, _blank_to_none)
    conv.register_structure_hook(bool, _none_to_false)
    conv.register_structure_hook(float | None, _optional_number)
    structure_profile = make_dict_structure_fn(SlackProfile, conv)
    # A user without a profile (or with ``"profile": null``) gets an empty one.
    conv.register_structure_hook(
        SlackProfile,
        lambda value, cls: (
            structure_profile(value, cls) if isinstance(value, Mapping) else SlackProfile()
        ),
    )
    # The Slack key names that differ from ours, declared once.
    conv.register_structure_hook(
        SlackUser,
        make_dict_structure_fn(
            SlackUser,
            conv,
            user_name=override(rename="name"),
            time_zone=override(rename="tz"),
        ),
    )
    return conv


converter = make_converter()


def _describe_error(error: BaseException, _: Any) -> str:
    return str(error) or error.__class__.__name__


def parse_user(raw: Mapping[str, Any]) -> SlackUser:
    """Structure one raw Slack user object.

    :raises MappingError: the object is not a user (no ``id``, wrong types).
    """
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise MappingError("Slack returned a user object without an 'id'.", field="id")
    try:
        return converter.structure(raw, SlackUser)
    except cattrs.BaseValidationError as exc:
        # cattrs names each bad key: "could not convert string to float: 'abc' @ member.updated"
        details = "; ".join(
            cattrs.transform_error(exc, path="member", format_exception=_describe_error)
        )
        raise MappingError(
            f"Slack user {raw.get('id')!r} could not be read: {details}", field=None
        ) from None
    except (ValueError, TypeError) as exc:
        raise MappingError(
            f"Slack user {raw.get('id')!r} could not be read: {exc}", field=None
        ) from None


def _timestamp(value: float | None, key: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise MappingError(f"{value!r} is not a time Slack could mean", field=key) from None


def to_record(raw: Mapping[str, Any], *, fetched_at: datetime | None = None) -> VendorRecord:
    """Turn a raw Slack user into a record carrying every field of :data:`FIELDS`."""
    user = parse_user(raw)
    profile = user.profile
    fields: dict[str, Any] = {
        "connector_sync_time": fetched_at or datetime.now(UTC),
        "user_id": user.id,
        "user_name": user.user_name,
        "email": profile.email,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "real_name": profile.real_name or user.real_name,
        "display_name": profile.display_name,
        "title": profile.title,
        "phone": profile.phone,
        "skype": profile.skype,
        "team_id": user.team_id or profile.team,
        "time_zone": user.time_zone,
        "deleted": user.deleted,
        "is_admin": user.is_admin,
        "is_owner": user.is_owner,
        "is_primary_owner": user.is_primary_owner,
        "is_bot": user.is_bot,
        "is_app_user": user.is_app_user,
        "is_restricted": user.is_restricted,
        "is_ultra_restricted": user.is_ultra_restricted,
        "is_invited_user": user.is_invited_user,
        "updated": _timestamp(user.updated, "updated"),
    }
    return VendorRecord(vendor=VENDOR, id=user.id, fields=fields, raw=raw, active=not user.deleted)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "connector_sync_time",
        "Connector Sync Time",
        FieldType.DATETIME,
        description="When the connector fetched the user's page during the sync.",
    ),
    FieldSpec("deleted", "Deleted?", FieldType.BOOLEAN, description="The user is deactivated."),
    FieldSpec(
        "email",
        "Email",
        description="profile.email; present only when the token has users:read.email.",
    ),
    FieldSpec("first_name", "First Name", description="profile.first_name."),
    FieldSpec("is_admin", "Is Admin?", FieldType.BOOLEAN),
    FieldSpec(
        "is_bot",
        "Is bot user?",
        FieldType.BOOLEAN,
        description="A bot user (Slackbot itself is reported with is_bot false).",
    ),
    FieldSpec(
        "is_restricted",
        "Is restricted (guest) user?",
        FieldType.BOOLEAN,
        description="A multi-channel guest.",
    ),
    FieldSpec(
        "is_ultra_restricted",
        "Is ultra restricted (single channel only) user?",
        FieldType.BOOLEAN,
        description="A single-channel guest.",
    ),
    FieldSpec("last_name", "Last Name", description="profile.last_name."),
    FieldSpec("phone", "Phone", description="profile.phone."),
    FieldSpec("skype", "Skype", description="profile.skype."),
    FieldSpec("team_id", "Team ID", description="The workspace id (T…)."),
    FieldSpec("title", "Title", description="profile.title."),
    FieldSpec("user_id", "User ID", unique=True, description="The Slack user id (U… or W…)."),
    FieldSpec("user_name", "User Name", unique=True, description="The Slack handle (name)."),
    FieldSpec(
        "is_invited_user",
        "Is invited user?",
        FieldType.BOOLEAN,
        description="Invited and not signed in yet.",
    ),
    FieldSpec(
        "is_app_user",
        "Is app user?",
        FieldType.BOOLEAN,
        description="A user that represents an app.",
    ),
    FieldSpec("is_owner", "Is owner?", FieldType.BOOLEAN),
    FieldSpec("is_primary_owner", "Is primary owner?", FieldType.BOOLEAN),
    FieldSpec("real_name", "Real Name", description="profile.real_name, else real_name."),
    FieldSpec("display_name", "Display Name", description="profile.display_name."),
    FieldSpec("time_zone", "Time Zone", description="tz, an IANA zone name."),
    FieldSpec(
        "updated",
        "Updated",
        FieldType.DATETIME,
        description="When Slack last changed the user.",
    ),
)

STANDARD_MAPPING: tuple[FieldMapping, ...] = (
    FieldMapping(target="username", source="user_name"),
    FieldMapping(target="email", source="email", converter="lower"),
    FieldMapping(target="Slack User Id", source="user_id", unique=True),
    FieldMapping(target="first_name", source="first_name"),
    FieldMapping(target="last_name", source="last_name"),
    FieldMapping(target="phone_number", source="phone"),
    FieldMapping(target="position", source="title"),
    # The record's fetch time, not the context's `sync_time`: the conformance
    # suite holds standard mappings to declared fields.
    FieldMapping(target="connector_sync_time", source="connector_sync_time"),
)

DEFAULT_FILTERS: tuple[str, ...] = (
    "not is_bot",
    f"user_id != '{SLACKBOT_USER_ID}'",
)
"""Bots out, Slackbot included: it is not a person even though ``is_bot`` is false."""
