"""The Webex SaaS-user workflows: "Webex User Role" and the inactive-user clean-up.

:func:`run_user_role` gives each of the app's SaaS users (the people a sync
linked to Webex) its role names, status and last activity. It pages through
``GET /v1/people`` once (an admin's listing carries roles, status and
lastActivity) instead of one call per person, fetches ``GET /v1/roles`` once,
and records each SaaS user's update as a "User Role" workflow run.

:func:`find_inactive_users` then picks the SaaS users whose last activity is
older than N days, or who never signed in, and :func:`delete_inactive_users`
deletes them with the Delete User preset, only when told to (``confirm=True``);
otherwise it is a dry run. Every deletion (and every dry run) is recorded as a
workflow run.

A person whose status and last activity are both missing hid their presence
(Webex then omits both): their activity is unknown, and they are only picked
with ``include_unknown=True``. Never signed in means Webex states a status
(``pending``, ``inactive`` …) but no last activity.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from oomnitza_connect.errors import ConversionError, OomnitzaConnectError, VendorAPIError
from oomnitza_connect.models import PersonId, SaasUser, WorkflowRun
from oomnitza_connect.presets.engine import PresetResult, get_preset, run_preset
from oomnitza_connect.redaction import redact
from oomnitza_connect.store.base import Store
from oomnitza_connect.sync.converters import to_datetime
from oomnitza_connect.vendors.session import VendorSession

from .client import iter_people
from .mapping import VENDOR
from .people import RoleNames, get_user, role_names_of, saas_user_fields, user_role
from .presets import DELETE_USER, USER_ROLE

__all__ = [
    "InactiveUser",
    "UserRoleFailure",
    "UserRoleReport",
    "delete_inactive_users",
    "find_inactive_users",
    "run_user_role",
]


@attrs.frozen
class UserRoleFailure:
    """A SaaS user :func:`run_user_role` could not update, and why (the others were)."""

    vendor_user_id: str
    person_id: PersonId | None
    reason: str


@attrs.frozen
class UserRoleReport:
    """What :func:`run_user_role` did: SaaS users updated, those Webex no longer has,
    and those that failed (each with its reason)."""

    updated: int
    not_listed: int
    roles_known: int
    failed: tuple[UserRoleFailure, ...] = ()


@attrs.frozen
class InactiveUser:
    """A SaaS user picked by :func:`find_inactive_users`.

    :param reason: ``inactive`` (last activity before the cut-off), ``never``
        (a status but no activity) or ``unknown`` (presence hidden).
    """

    vendor_user_id: str
    person_id: int | None
    email: str | None
    last_activity: datetime | None
    status: str | None
    reason: str

    def describe(self, now: datetime | None = None) -> str:
        if self.last_activity is None:
            when = "never signed in" if self.reason == "never" else "activity unknown"
        else:
            days = ((now or datetime.now(UTC)) - self.last_activity).days
            when = f"last active {self.last_activity:%Y-%m-%d} ({days} days ago)"
        return f"{self.email or self.vendor_user_id}: {when}"


def run_user_role(
    session: VendorSession, store: Store, *, roles: RoleNames | None = None
) -> UserRoleReport:
    """Give every Webex SaaS user in *store* its role names, status and last activity.

    The SaaS user's ``role`` becomes the role names (comma-separated); its
    fields ``role_ids``, ``role_names``, ``status`` and ``last_activity`` are set.
    A SaaS user the listing lacks is looked up on its own (``GET /v1/people/{id}``;
    a 404 counts as no longer listed). One person that cannot be read or stored
    (a failed look-up, a malformed record) is reported in
    :attr:`UserRoleReport.failed` with its reason and recorded as a failed
    workflow run; the others are updated.
    """
    roles = roles or role_names_of(session)
    # vendor user id -> person id of the app's SaaS users: bounded by the SaaS
    # users of one app, and it spares one store scan per person listed.
    linked = {
        account.vendor_user_id: account.person_id
        for account in store.iter_saas_users(vendor=VENDOR)
    }
    secrets = session.credential.secret_values()
    failures: list[UserRoleFailure] = []
    seen: set[str] = set()
    updated = 0

    def update(person_id: str, raw: Mapping[str, Any]) -> None:
        nonlocal updated
        try:
            # The same reading and fields as the User Role preset's.
            fields = saas_user_fields(user_role(session, person_id, roles, person=raw))
            store.update_saas_user_fields(VENDOR, person_id, fields)
        except (OomnitzaConnectError, ValueError, TypeError, KeyError) as exc:
            fail(person_id, f"its record could not be read or stored: {exc}")
            return
        _record_user_role(store, linked[person_id], person_id, fields)
        updated += 1

    def fail(person_id: str, reason: str) -> None:
        reason = redact(reason, secrets)
        failures.append(UserRoleFailure(person_id, linked[person_id], reason))
        _record_user_role(store, linked[person_id], person_id, {}, error=reason)

    for items in iter_people(session):
        for raw in items:
            person_id = str(raw.get("id") or "") if isinstance(raw, Mapping) else ""
            if person_id not in linked:
                continue  # a person the sync did not link (a bot, or filtered out)
            seen.add(person_id)
            update(person_id, raw)
    not_listed = 0
    for person_id in sorted(linked.keys() - seen):
        try:
            raw = get_user(session, person_id)
        except VendorAPIError as exc:
            if exc.status == 404:
                not_listed += 1  # deleted at Webex since the sync
            else:
                fail(person_id, f"looking the person up failed: {exc}")
            continue
        except (OomnitzaConnectError, ValueError) as exc:
            fail(person_id, f"looking the person up failed: {exc}")
            continue
        update(person_id, raw)
    return UserRoleReport(
        updated=updated,
        not_listed=not_listed,
        roles_known=len(roles.names()),
        failed=tuple(failures),
    )


def _record_user_role(
    store: Store,
    person: PersonId | None,
    vendor_user_id: str,
    fields: dict[str, Any],
    *,
    error: str | None = None,
) -> None:
    store.record_workflow_run(
        WorkflowRun(
            id=uuid.uuid4().hex,
            vendor=VENDOR,
            preset=USER_ROLE,
            started_at=datetime.now(UTC),
            ok=error is None,
            person_id=person,
            status=200 if error is None else None,
            request={"method": "GET", "path": "/people", "webex_user_id": vendor_user_id},
            mapped=fields,
            error=error,
        )
    )


def find_inactive_users(
    store: Store,
    *,
    days: int,
    now: datetime | None = None,
    include_unknown: bool = False,
) -> Iterator[InactiveUser]:
    """Yield the Webex SaaS users inactive for more than *days* days, or never active.

    Run :func:`run_user_role` first: it stores the last activity this reads.
    """
    if days < 0:
        raise ValueError("days must be 0 or more")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    for account in store.iter_saas_users(vendor=VENDOR):
        last = _as_time(account.fields.get("last_activity"))
        status = account.fields.get("status") or None
        if last is not None:
            if last >= cutoff:
                continue
            reason = "inactive"
        elif status is not None:
            reason = "never"
        elif include_unknown:
            reason = "unknown"
        else:
            continue
        person = store.get_person(account.person_id) if account.person_id is not None else None
        email = person.fields.get("email") if person is not None else None
        yield InactiveUser(
            vendor_user_id=account.vendor_user_id,
            person_id=account.person_id,
            email=str(email) if email else None,
            last_activity=last,
            status=status,
            reason=reason,
        )


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if value is None or value == "":
        return None
    try:
        return to_datetime(value)
    except ConversionError:
        return None


def delete_inactive_users(
    session: VendorSession,
    store: Store,
    users: list[InactiveUser],
    *,
    confirm: bool = False,
) -> list[PresetResult]:
    """Delete *users* with the Delete User preset; without *confirm*, only a dry run.

    The token's own person is never deleted. Each call (or dry run) is recorded
    as a workflow run.
    """
    preset = get_preset(VENDOR, DELETE_USER)
    own_id = session.identity.get("person_id")
    results = []
    for user in users:
        if user.vendor_user_id == own_id:
            continue
        person = store.get_person(user.person_id) if user.person_id is not None else None
        results.append(
            run_preset(
                session,
                preset,
                variables={"webex_user_id": user.vendor_user_id},
                person=person,
                saas_user=SaasUser(VENDOR, user.vendor_user_id, user.person_id),
                store=store,
                dry_run=not confirm,
            )
        )
    return results
