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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from oomnitza_connect.errors import ConversionError
from oomnitza_connect.models import SaasUser, WorkflowRun
from oomnitza_connect.presets.engine import PresetResult, get_preset, run_preset
from oomnitza_connect.store.base import Store
from oomnitza_connect.sync.converters import to_datetime
from oomnitza_connect.vendors.session import VendorSession

from .client import iter_people
from .mapping import VENDOR
from .people import RoleNames, role_names_of, saas_user_fields, user_role
from .presets import DELETE_USER, USER_ROLE

__all__ = [
    "InactiveUser",
    "UserRoleReport",
    "delete_inactive_users",
    "find_inactive_users",
    "run_user_role",
]


@attrs.frozen
class UserRoleReport:
    """What :func:`run_user_role` did: SaaS users updated, and those Webex no longer lists."""

    updated: int
    not_listed: int
    roles_known: int


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
    """
    roles = roles or role_names_of(session)
    # vendor user id -> person id of the app's SaaS users: bounded by the SaaS
    # users of one app, and it spares one store scan per person listed.
    linked = {
        account.vendor_user_id: account.person_id
        for account in store.iter_saas_users(vendor=VENDOR)
    }
    updated = 0
    for items in iter_people(session):
        for raw in items:
            person_id = str(raw.get("id") or "")
            if person_id not in linked:
                continue  # a person the sync did not link (a bot, or filtered out)
            # The same reading and fields as the User Role preset's.
            fields = saas_user_fields(user_role(session, person_id, roles, person=raw))
            store.update_saas_user_fields(VENDOR, person_id, fields)
            _record_user_role(store, linked[person_id], person_id, fields)
            updated += 1
    return UserRoleReport(
        updated=updated, not_listed=len(linked) - updated, roles_known=len(roles.names())
    )


def _record_user_role(
    store: Store, person: int | None, vendor_user_id: str, fields: dict[str, Any]
) -> None:
    store.record_workflow_run(
        WorkflowRun(
            id=uuid.uuid4().hex,
            vendor=VENDOR,
            preset=USER_ROLE,
            started_at=datetime.now(UTC),
            ok=True,
            person_id=person,
            status=200,
            request={"method": "GET", "path": "/people", "webex_user_id": vendor_user_id},
            mapped=fields,
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
