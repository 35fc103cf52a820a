"""The Webex people calls that need more than one request, as Python functions.

* :func:`create_user`: Webex may answer 400 although the person was created,
  so the email is looked up before any (re)try and after a failure.
* :func:`update_user`: the PUT replaces the whole person, so the record is
  read, its writable fields merged with the changes and sent whole; a field
  Webex requires and the result lacks comes back as Webex's 400, explained.
* :func:`user_role`: role ids become names through one ``GET /v1/roles`` per
  run (:class:`RoleNames`), with the person's status and last activity.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from oomnitza_connect.errors import TransportError, VendorAPIError
from oomnitza_connect.transport.http import HttpClient
from oomnitza_connect.vendors.session import VendorSession

from .client import fetch_roles
from .mapping import parse_flag, parse_timestamp, role_ids

__all__ = [
    "CreatedUser",
    "RoleNames",
    "UserRole",
    "create_user",
    "delete_user",
    "find_user_by_email",
    "get_user",
    "merge_for_update",
    "update_user",
    "user_role",
]

PUT_REQUIRED = ("displayName",)
"""What Webex's PUT /v1/people/{id} body schema requires."""
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
    session: VendorSession,
    *,
    email: str,
    first_name: str,
    last_name: str,
    display_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> CreatedUser:
    """Add a person with ``POST /v1/people``, safely against Webex's false failures.

    The email is looked up first, so calling this again after any failure never
    adds the person twice; after an error (a 400 included, or a lost answer)
    it is looked up again, and a person found there counts as created.

    :raises VendorAPIError: Webex refused and the person does not exist.
    """
    existing = find_user_by_email(session, email)
    if existing is not None:
        return CreatedUser(existing, created=False)
    body: dict[str, Any] = {
        "emails": [email],
        "firstName": first_name,
        "lastName": last_name,
        "displayName": display_name or f"{first_name} {last_name}".strip(),
        **(extra or {}),
    }
    try:
        person = session.http.post_json("people", json=body, endpoint="people.create")
    except (VendorAPIError, TransportError) as exc:
        found = find_user_by_email(session, email)
        if found is None:
            raise
        return CreatedUser(found, created=True, despite_error=str(exc))
    return CreatedUser(dict(person), created=True)


def update_user(
    session: VendorSession, person_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Change a person with ``PUT /v1/people/{id}``: read, merge *changes*, send it whole.

    :raises VendorAPIError: Webex refused; a 400 names the required fields the
        merged record lacks.
    """
    current = get_user(session, person_id)
    body = merge_for_update(current, changes)
    try:
        updated = session.http.request_json(
            "PUT", f"people/{person_id}", json=body, endpoint="people.update"
        ).data
    except VendorAPIError as exc:
        missing = [key for key in PUT_REQUIRED if not body.get(key)]
        if exc.status != 400 or not missing:
            raise
        raise VendorAPIError(
            f"{exc.vendor_message}; Webex's PUT replaces the whole person and requires "
            f"{', '.join(missing)}, which the person's record lacks: give it in the changes",
            vendor=exc.vendor,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
            method=exc.method,
            endpoint=exc.endpoint,
        ) from None
    return dict(updated or get_user(session, person_id))


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

    :param roles: reuse one :class:`RoleNames` across people (one ``GET /v1/roles``).
    :param person: the person's JSON when already fetched (a listing page).
    """
    raw = person if person is not None else get_user(session, person_id)
    ids = role_ids(raw.get("roles"))
    names = (roles or RoleNames(session.http))(ids)
    return UserRole(
        person_id=str(raw.get("id") or person_id),
        role_ids=ids,
        role_names=names,
        status=raw.get("status") or None,
        last_activity=parse_timestamp(raw.get("lastActivity")),
    )


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
