"""The Webex people calls that need more than one request, as Python functions.

* :func:`create_user`: runs the Create User preset, whose look-up (in the
  presets engine, so ``presets run`` does the same) finds the email before the
  POST and after a failed one: Webex may answer 400 although it created the person.
* :func:`update_user`: the PUT replaces the whole person, so the Update User
  preset reads the record, keeps its writable fields (:func:`merge_for_update`),
  merges the changes and sends it whole; a field Webex requires and the result
  lacks comes back as Webex's 400, explained (:func:`~.client.parse_webex_error`).
* :func:`user_role`: role ids become names through one ``GET /v1/roles`` per
  session (:func:`role_names_of`), with the person's status and last activity;
  :func:`user_role_mappings` is the User Role preset's mapper, and
  :func:`saas_user_fields` what it and the SaaS-user workflow store.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from oomnitza_connect.errors import PresetError
from oomnitza_connect.transport.http import HttpClient
from oomnitza_connect.vendors.session import VendorSession

from .client import fetch_roles
from .mapping import VENDOR, parse_flag, role_ids

__all__ = [
    "CreatedUser",
    "RoleNames",
    "UserRole",
    "create_user",
    "delete_user",
    "find_user_by_email",
    "get_user",
    "merge_for_update",
    "role_names_of",
    "saas_user_fields",
    "update_user",
    "user_role",
    "user_role_mappings",
]

PUT_FIELDS = (
    "emails", "phoneNumbers", "extension", "locationId", "displayName", "firstName",
    "lastName", "nickName", "avatar", "orgId", "roles", "licenses", "department",
    "manager", "managerId", "title", "addresses", "siteUrls", "loginEnabled",
)  # fmt: skip
"""The PUT body's properties; read-only ones (id, created, status …) are not sent."""


@attrs.frozen
class CreatedUser:
    """What :func:`create_user` did.

    :param created: this call created the person (``False``: the email existed already).
    :param despite_error: Webex answered with this error although the person exists.
    """

    person: Mapping[str, Any]
    created: bool
    despite_error: str | None = None

    @property
    def id(self) -> str:
        return str(self.person["id"])


@attrs.frozen
class UserRole:
    """A person's admin roles (ids and names), status and last activity."""

    person_id: str
    role_ids: tuple[str, ...]
    role_names: tuple[str, ...]
    status: str | None
    last_activity: datetime | None

    @property
    def role(self) -> str | None:
        """The role names as one value for the SaaS user's role (``None``: no admin role)."""
        return ", ".join(self.role_names) or None


class RoleNames:
    """Role id -> name, fetched with ``GET /v1/roles`` on first use and then reused."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http
        self._names: dict[str, str] | None = None
        self._lock = threading.Lock()

    def names(self) -> dict[str, str]:
        with self._lock:
            if self._names is None:
                self._names = fetch_roles(self._http)
            return self._names

    def __call__(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        """The names of *ids*; an id the org does not list stays as it is."""
        if not ids:
            return ()
        known = self.names()
        return tuple(known.get(role_id, role_id) for role_id in ids)


def role_names_of(session: VendorSession) -> RoleNames:
    """The session's :class:`RoleNames`: one ``GET /v1/roles`` however many people are asked."""
    names = session.cache.setdefault("webex.role_names", RoleNames(session.http))
    assert isinstance(names, RoleNames)
    return names


def get_user(session: VendorSession, person_id: str) -> dict[str, Any]:
    """``GET /v1/people/{id}`` (admin-only fields with an admin token)."""
    body = session.http.get_json(f"people/{person_id}", endpoint="people.get")
    return dict(body or {})


def find_user_by_email(session: VendorSession, email: str) -> dict[str, Any] | None:
    """The person with *email*, or ``None`` (``GET /v1/people?email=``)."""
    body = session.http.get_json("people", params={"email": email}, endpoint="people.list")
    items = body.get("items") if isinstance(body, Mapping) else None
    return dict(items[0]) if items else None


def create_user(
    session: VendorSession, *, email: str, first_name: str, last_name: str
) -> CreatedUser:
    """Add a person with the Create User preset, safely against Webex's false failures.

    The presets engine looks the email up first, so calling this again after
    any failure never adds the person twice; after an error (a 400 included,
    or a lost answer) it looks again, and a person found there counts as created.

    :raises VendorAPIError: Webex refused and the person does not exist.
    """
    from oomnitza_connect.presets.engine import get_preset, run_preset

    from .presets import CREATE_USER

    result = run_preset(
        session,
        get_preset(VENDOR, CREATE_USER),
        variables={"email": email, "first_name": first_name, "last_name": last_name},
    )
    if not result.ok:
        raise result.failure or PresetError(result.error or "Create User failed.")
    return CreatedUser(
        dict(result.response or {}),
        created=not result.existing,
        despite_error=result.despite_error,
    )


def update_user(
    session: VendorSession, person_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Change a person with ``PUT /v1/people/{id}``: read, merge *changes*, send it whole.

    Runs the Update User preset with *changes* as its body, so Python and
    ``presets run webex "Update User"`` take one path: the person is read, its
    writable fields kept (:func:`merge_for_update`) and the changes merged in.

    :raises VendorAPIError: Webex refused; a 400 names the required fields the
        merged record lacks.
    """
    from oomnitza_connect.presets.engine import PresetOverrides, get_preset, run_preset

    from .presets import UPDATE_USER

    result = run_preset(
        session,
        get_preset(VENDOR, UPDATE_USER),
        # One expression keeps its type: the changes go in as given, never as templates.
        variables={"webex_user_id": person_id, "changes": dict(changes)},
        overrides=PresetOverrides(body="{{changes}}"),
    )
    if not result.ok:
        raise result.failure or PresetError(result.error or "Update User failed.")
    return dict(result.response or get_user(session, person_id))


def delete_user(session: VendorSession, person_id: str) -> None:
    """``DELETE /v1/people/{id}`` (a full, user or external full administrator only)."""
    session.http.request("DELETE", f"people/{person_id}", endpoint="people.delete")


def user_role(
    session: VendorSession,
    person_id: str,
    roles: RoleNames | None = None,
    *,
    person: Mapping[str, Any] | None = None,
) -> UserRole:
    """A person's role names, status and last activity (the User Role preset).

    :param roles: the role names to use (default: the session's, :func:`role_names_of`).
    :param person: the person's JSON when already fetched (a listing page).
    """
    from .vendor import vendor

    raw = person if person is not None else get_user(session, person_id)
    # Read through the vendor description's field paths, as the sync reads people.
    fields = vendor.to_record(raw).fields
    ids = tuple(fields["role_ids"])
    return UserRole(
        person_id=str(raw.get("id") or person_id),
        role_ids=ids,
        role_names=(roles or role_names_of(session))(ids),
        status=fields["status"],
        last_activity=fields["last_activity"],
    )


def saas_user_fields(found: UserRole) -> dict[str, Any]:
    """What User Role stores on a SaaS user: role (the names), ids, names, status, activity."""
    return {
        "role": found.role,
        "role_ids": list(found.role_ids),
        "role_names": list(found.role_names),
        "status": found.status,
        "last_activity": found.last_activity,
    }


USER_ROLE_TARGETS = tuple(
    f"saas_user.{name}" for name in ("role", "role_ids", "role_names", "status", "last_activity")
)
"""What :func:`user_role_mappings` returns: the SaaS-user fields User Role writes."""


def user_role_mappings(session: VendorSession, response: Any) -> dict[str, Any]:
    """The User Role preset's mapper: the person in *response* as SaaS-user fields."""
    if not isinstance(response, Mapping):
        raise ValueError(f"Webex answered {type(response).__name__}, not a person")
    found = user_role(session, str(response.get("id") or ""), person=response)
    return {f"saas_user.{key}": value for key, value in saas_user_fields(found).items()}


def merge_for_update(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The whole PUT body: *current*'s writable fields with *changes* applied.

    ``roles`` and ``licenses`` go back as single ids (the spec's examples join
    them with commas), and ``loginEnabled`` as a JSON boolean even when Webex
    sent the string.
    """
    body: dict[str, Any] = {key: current[key] for key in PUT_FIELDS if key in current}
    for key in ("roles", "licenses"):
        if key in body:
            body[key] = list(role_ids(body[key]))
    body.update(changes)
    if "loginEnabled" in body:
        body["loginEnabled"] = parse_flag(body["loginEnabled"])
    return body
