"""The store interface the sync engine and presets write through.

The embedded default is SQLite (:class:`~oomnitza_connect.store.sqlite.SQLiteStore`);
an Oomnitza REST API sink can implement the same interface. The sync engine
talks to a store only through the methods below: it opens a session, hands
over batches of mapped records (:meth:`Store.apply_batch`), and finishes the
session, which is when people who vanished from the vendor are marked.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..models import (
    UNIQUE_STANDARD_FIELDS,
    FieldType,
    Person,
    RecordError,
    SaasUser,
    SyncCounts,
    SyncPreference,
    SyncSession,
    SyncStatus,
    UserSelection,
    WorkflowRun,
)

__all__ = [
    "BatchOutcome",
    "CustomField",
    "IntegrationEntry",
    "MappedRecord",
    "Store",
    "SyncPlan",
]


@attrs.frozen
class CustomField:
    """A person field that is not one of the standard ones.

    :param label: the field's name, as used in mappings (``Slack User Id``).
    :param unique: at most one person may hold each value; such a field can be a sync key.
    """

    label: str
    type: FieldType = FieldType.STRING
    unique: bool = False


@attrs.frozen
class SyncPlan:
    """What a run writes and how: the facts a store needs for every batch.

    :param sync_key: the person field that identifies a person (``email``).
    :param tracking_fields: fields written with every change but that do not
        count as a change on their own (``connector_sync_time``).
    """

    integration: str
    vendor: str
    sync_key: str
    preference: SyncPreference = SyncPreference.CREATE_UPDATE
    selection: UserSelection = UserSelection.USERS
    tracking_fields: frozenset[str] = frozenset({"connector_sync_time"})
    declared_unique: frozenset[str] = frozenset()
    """Custom fields the mapping marks unique, known before the store defines them
    (a test run defines nothing)."""


@attrs.frozen
class MappedRecord:
    """One vendor user, mapped and ready to write.

    :param vendor_user_id: the vendor's id of the user.
    :param fields: person fields by target (``username``, ``Slack User Id``);
        values are JSON-compatible or datetimes.
    :param role: the user's role in the vendor's app (the SaaS user's role).
    """

    vendor_user_id: str
    fields: Mapping[str, Any]
    role: str | None = None


@attrs.frozen
class BatchOutcome:
    """What one batch did (or, in a test run, would have done)."""

    counts: SyncCounts
    errors: tuple[RecordError, ...] = ()
    payload: tuple[Mapping[str, Any], ...] = ()
    """The records that were (or would have been) written, as ``{"action", "fields"}``."""


@attrs.frozen
class IntegrationEntry:
    """An integration the store knows about (launched or saved)."""

    name: str
    vendor: str
    active: bool
    schedule: str
    contacts: tuple[str, ...] = ()
    source: str | None = None
    """The TOML file the integration was launched from."""
    launched_at: datetime | None = None


class Store(abc.ABC):
    """A system of record for people and their SaaS accounts."""

    # -- people ---------------------------------------------------------------

    @abc.abstractmethod
    def get_person(self, person_id: int) -> Person | None:
        """Return the person with store id *person_id*."""

    @abc.abstractmethod
    def find_person(self, field: str, value: Any) -> Person | None:
        """Return the person whose *field* equals *value* (``email``, ``Slack User Id``)."""

    @abc.abstractmethod
    def iter_people(self, *, vendor: str | None = None) -> Iterator[Person]:
        """Yield people, optionally only those linked to *vendor*, without loading all at once."""

    @abc.abstractmethod
    def update_person_fields(self, person_id: int, fields: Mapping[str, Any]) -> None:
        """Set *fields* on a person (custom fields are defined on first use)."""

    def count_people(self, *, vendor: str | None = None) -> int:
        """Return how many people there are (linked to *vendor* when given)."""
        return sum(1 for _ in self.iter_people(vendor=vendor))

    # -- custom fields ----------------------------------------------------------

    @abc.abstractmethod
    def define_custom_field(self, field: CustomField) -> None:
        """Create or update a custom field definition.

        :raises StoreError: *field* is unique but people already share a value.
        """

    @abc.abstractmethod
    def custom_fields(self) -> list[CustomField]:
        """Return every custom field definition."""

    def unique_fields(self) -> frozenset[str]:
        """Return the fields whose values are unique per person (possible sync keys)."""
        return UNIQUE_STANDARD_FIELDS | {f.label for f in self.custom_fields() if f.unique}

    # -- SaaS users -----------------------------------------------------------

    @abc.abstractmethod
    def iter_saas_users(self, *, vendor: str | None = None) -> Iterator[SaasUser]:
        """Yield SaaS users, optionally of one vendor."""

    @abc.abstractmethod
    def update_saas_user_fields(
        self, vendor: str, vendor_user_id: str, fields: Mapping[str, Any]
    ) -> None:
        """Set *fields* on one vendor account."""

    # -- sync -------------------------------------------------------------------

    @abc.abstractmethod
    def start_session(self, plan: SyncPlan, *, test_run: bool = False) -> SyncSession:
        """Record the start of a run and prepare its per-run bookkeeping.

        Sessions of *plan*'s integration still marked ``running`` whose process
        is gone are marked ``interrupted`` first.
        """

    @abc.abstractmethod
    def apply_batch(
        self,
        session_id: str,
        plan: SyncPlan,
        records: Sequence[MappedRecord],
        *,
        failed: Sequence[RecordError] = (),
        skipped: int = 0,
        test_run: bool = False,
    ) -> BatchOutcome:
        """Upsert *records* by the sync key, following the plan's preference, atomically.

        The batch and the session's counts are committed together, so an
        interrupted run leaves only whole batches behind. A record whose sync
        value was already seen in this run, or whose unique field belongs to
        another person, fails with its reason; the others go through. In a
        test run nothing but the session's counts is written.

        :param failed: records that failed before reaching the store (mapping
            errors); counted and recorded with the batch.
        :param skipped: records left out by the filters.
        """

    @abc.abstractmethod
    def finish_session(
        self,
        session_id: str,
        plan: SyncPlan,
        *,
        status: SyncStatus,
        message: str | None = None,
        complete: bool = False,
    ) -> SyncSession:
        """Record the end of a run and return the session as stored.

        :param complete: the vendor returned every user, so people of this
            integration not seen in the run are marked as vanished from the vendor.
        """

    @abc.abstractmethod
    def apply_last_logins(
        self, vendor: str, logins: Iterable[tuple[str, datetime]], *, test_run: bool = False
    ) -> int:
        """Write each ``(vendor_user_id, last_login)`` onto the person and the SaaS user.

        :returns: how many people changed.
        """

    @abc.abstractmethod
    def get_session(self, session_id: str, *, with_payload: bool = False) -> SyncSession | None:
        """Return one session with its errors (and its test-run payload when asked)."""

    @abc.abstractmethod
    def list_sessions(
        self, *, integration: str | None = None, limit: int | None = 50
    ) -> list[SyncSession]:
        """Return sessions, newest first, without their errors and payload."""

    # -- integrations -----------------------------------------------------------

    @abc.abstractmethod
    def save_integration(self, entry: IntegrationEntry) -> None:
        """Remember an integration (a launched one is ``active``)."""

    @abc.abstractmethod
    def list_integrations(self, *, active_only: bool = False) -> list[IntegrationEntry]:
        """Return the integrations the store knows, by name."""

    # -- workflow runs --------------------------------------------------------

    @abc.abstractmethod
    def record_workflow_run(self, run: WorkflowRun) -> None:
        """Keep the record of one preset call."""

    @abc.abstractmethod
    def iter_workflow_runs(
        self, *, vendor: str | None = None, preset: str | None = None
    ) -> Iterator[WorkflowRun]:
        """Yield recorded preset calls, newest first."""

    # -- life cycle -----------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
