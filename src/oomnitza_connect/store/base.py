"""Where a sync writes (a destination) and what it remembers (the local ledger).

A **destination** is the system of record: it holds people and SaaS users,
answers questions about them and takes the writes the sync engine decided
on. The embedded default is SQLite
(:class:`~oomnitza_connect.store.sqlite.SQLiteStore`); Oomnitza's REST API is
the other (:class:`~oomnitza_connect.destinations.oomnitza.OomnitzaDestination`).

The **ledger** is always local SQLite: sync sessions, their record errors,
test-run plans, the integrations launched and the workflow runs. The sync
rules (create only / update only, change detection, duplicate sync keys,
unique-field claims, the test-run plan) live in the engine
(:mod:`oomnitza_connect.sync.rules`), so every destination behaves the same.

Two kinds of destination exist:

* one the engine matches against (``matches_by_sync_key = False``, SQLite):
  the engine looks the batch's people up (:meth:`Destination.lookup`),
  decides, and hands over only what changes (:meth:`Destination.write_people`);
* one that matches by sync key on its own server (``matches_by_sync_key =
  True``, Oomnitza): the engine hands it the mapped records of a run as a
  portion (:meth:`Destination.open_portion`) and reads back what happened.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ..models import (
    UNIQUE_STANDARD_FIELDS,
    FieldType,
    Person,
    PersonId,
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
    "BatchLookup",
    "BatchOutcome",
    "ChangedPerson",
    "CustomField",
    "Destination",
    "IntegrationEntry",
    "Ledger",
    "MappedRecord",
    "NewPerson",
    "PersonLink",
    "PersonWrites",
    "Portion",
    "PortionResult",
    "ReadPage",
    "RecalledPage",
    "RunBook",
    "Store",
    "SyncPlan",
    "VanishedPerson",
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
    """What a run writes and how: the facts the engine and a destination need.

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
    """Custom fields the mapping marks unique, known before the destination defines
    them (a test run defines nothing)."""


@attrs.frozen
class MappedRecord:
    """One vendor user, mapped and ready to write.

    :param vendor_user_id: the vendor's id of the user.
    :param fields: person fields by target (``username``, ``Slack User Id``);
        values are JSON-compatible or datetimes.
    :param role: the user's role in the vendor's app (the SaaS user's role).
    :param active: False for a deactivated or deleted account, which gives up a
        unique value to an active one.
    """

    vendor_user_id: str
    fields: Mapping[str, Any]
    role: str | None = None
    active: bool = True


@attrs.frozen
class BatchOutcome:
    """What one batch did (or, in a test run, would have done)."""

    counts: SyncCounts
    errors: tuple[RecordError, ...] = ()
    payload: tuple[Mapping[str, Any], ...] = ()
    """A test run's plan entries for the batch: ``{"action", "vendor_user_id",
    "sync_value", ...}`` with ``fields`` for a create and ``changes``
    (``{field: {"old", "new"}}``) for an update."""


@attrs.frozen
class RecalledPage:
    """A users page byte-identical to one an earlier run read whole, its people unchanged.

    Every member the page had is still as its fingerprint's write left it
    (:meth:`Destination.unchanged_members`), so the page writes nothing: it is
    neither decoded nor read, and its members are counted unchanged.

    :param digest: the page's digest (the integration's configuration and the body's bytes).
    :param skeleton: the page as decoded then, its list of users emptied (JSON).
    :param active: ``{vendor_user_id: sync_value}`` (JSON) of its active members.
    :param inactive: ``(vendor_user_id, sync_value)`` of its deactivated or deleted members.
    :param skipped: its users the integration's filters left out.
    :param apart: the destination vouches that none of its members is on
        another page it recognises in this run (its pages share no member), so
        the run's book may defer putting its members in (:meth:`RunBook.mark_unchanged`).
    """

    digest: str
    skeleton: str
    active: str
    active_count: int
    inactive: tuple[tuple[str, str], ...] = ()
    skipped: int = 0
    apart: bool = False

    id = None  # the engine's stream of records holds it among them: it has no user id
    raw = None


@attrs.frozen
class ReadPage:
    """A users page a run read whole: what the next run needs to recognise it.

    :param members: vendor user id -> fingerprint (JSON object) of the page's
        members that were mapped or found unchanged.
    :param skipped: its users the integration's filters left out.
    """

    digest: str
    skeleton: str
    members: str
    members_count: int
    skipped: int


@attrs.frozen
class IntegrationEntry:
    """An integration the ledger knows about (launched or saved)."""

    name: str
    vendor: str
    active: bool
    schedule: str
    contacts: tuple[str, ...] = ()
    source: str | None = None
    """The TOML file the integration was launched from."""
    launched_at: datetime | None = None


@attrs.frozen
class VanishedPerson:
    """A person an earlier complete run brought in whom the vendor no longer returns."""

    vendor_user_id: str
    sync_value: str | None = None


# -- what the engine hands a destination that it matches against ---------------


@attrs.frozen
class BatchLookup:
    """What a destination holds for one batch's records.

    :param people: sync value -> ``(person id, fields as they read back from JSON)``.
    :param links: person id -> ``(vendor user id, vanished)`` for this integration.
    :param saas: vendor user id -> ``(person id, role)`` of the vendor's SaaS users.
    """

    people: Mapping[str, tuple[PersonId, Mapping[str, Any]]]
    links: Mapping[PersonId, tuple[str, bool]] = attrs.field(factory=dict)
    saas: Mapping[str, tuple[PersonId | None, str | None]] = attrs.field(factory=dict)


@attrs.frozen
class NewPerson:
    """A person to create, linked to the vendor user (and the SaaS app when ``saas``)."""

    sync_value: str
    fields: Mapping[str, Any]
    vendor_user_id: str
    saas: bool = False
    role: str | None = None


@attrs.frozen
class ChangedPerson:
    """An existing person whose fields change.

    :param fields: every field after the change.
    :param changes: only the fields that changed, with their new values.
    :param had: the changed fields that held a value before.
    :param before: what the fields in *had* held (a store releases the old
        unique values by them); may be empty.
    """

    person_id: PersonId
    fields: Mapping[str, Any]
    changes: Mapping[str, Any]
    had: frozenset[str] = frozenset()
    before: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class PersonLink:
    """An existing person (re)linked to the vendor user, and to the SaaS app when ``saas``."""

    person_id: PersonId
    vendor_user_id: str
    relink: bool = True
    saas: bool = False
    role: str | None = None


@attrs.frozen
class PersonWrites:
    """Everything one batch changes in the destination (nothing else is touched)."""

    creates: Sequence[NewPerson] = ()
    updates: Sequence[ChangedPerson] = ()
    links: Sequence[PersonLink] = ()

    def __bool__(self) -> bool:
        return bool(self.creates or self.updates or self.links)


# -- what a destination that matches on its own server gives back ---------------


@attrs.frozen
class PortionResult:
    """What the server says a whole portion did."""

    counts: SyncCounts
    errors: tuple[RecordError, ...] = ()
    payload: tuple[Mapping[str, Any], ...] = ()
    """A test run's plan, from the server's own test-run answer."""
    message: str | None = None


class Portion(abc.ABC):
    """One sync session on a destination that matches records by sync key itself."""

    @abc.abstractmethod
    def send(self, records: Sequence[MappedRecord], failed: Sequence[RecordError]) -> None:
        """Send one batch of mapped records and of records that failed before the destination.

        May return before the server acknowledged it; errors surface here or in :meth:`finish`.
        """

    @abc.abstractmethod
    def finish(self, *, fatal: str | None = None) -> PortionResult:
        """Wait for every batch, finalize the portion and read back what happened.

        :param fatal: the run failed with this message; it is reported as a fatal
            error before the portion is finalized.
        """

    @abc.abstractmethod
    def abandon(self) -> None:
        """Stop sending (the run was interrupted) without finalizing."""


# -- the run's bookkeeping --------------------------------------------------------


class RunBook(abc.ABC):
    """The per-run bookkeeping of one session: sync values and vendor users seen.

    Kept out of memory (the ledger's SQLite), so a run of any size stays flat.
    """

    @abc.abstractmethod
    def repeated(self, sync_values: Sequence[str]) -> set[str]:
        """Remember *sync_values* (distinct) and return those an earlier batch already had."""

    @abc.abstractmethod
    def mark_seen(self, users: Iterable[tuple[str, str | None]]) -> None:
        """Remember ``(vendor_user_id, sync_value)`` pairs present at the vendor in this run."""

    @abc.abstractmethod
    def unseen(self, vendor_user_ids: Sequence[str]) -> set[str]:
        """Return those of *vendor_user_ids* not marked seen."""

    @abc.abstractmethod
    def iter_seen(self) -> Iterator[tuple[str, str | None]]:
        """Yield every ``(vendor_user_id, sync_value)`` marked seen."""

    def mark_unchanged(
        self, members: str, count: int, *, apart: bool = False
    ) -> list[tuple[str, str]]:
        """Remember an unchanged page's active members: ``{vendor_user_id: sync_value}`` (JSON).

        Their *count* sync values (distinct) join the run's (:meth:`repeated`),
        and they are seen (:meth:`mark_seen`; a repeated one with no sync value).

        :param apart: no member of the page is on another page marked *apart*
            in this run (:attr:`RecalledPage.apart`): a book may then check the
            page against the sync values of earlier batches only and put its
            members in later, before it next answers a question.
        :returns: the members whose sync value an earlier batch already had.
        """
        pairs = [(str(user_id), str(value)) for user_id, value in json.loads(members).items()]
        repeated = self.repeated([value for _, value in pairs])
        self.mark_seen([(user, None if value in repeated else value) for user, value in pairs])
        return [(user_id, value) for user_id, value in pairs if value in repeated]

    def repeated_recalled(self, sync_values: Sequence[str]) -> set[str]:
        """:meth:`repeated`, for deactivated members of pages recognised *apart*.

        They are written last (:attr:`RecalledPage.inactive`), and no member of
        another page marked apart shares a user id or a sync value with them
        (each page's members were found the holders of their own sync values,
        linked by their own user ids, and no member is on two such pages): a book
        may leave its held-back pages out of the question.
        """
        return self.repeated(sync_values)

    def mark_recalled_seen(self, users: Iterable[tuple[str, str | None]]) -> None:
        """:meth:`mark_seen`, for the members :meth:`repeated_recalled` was asked about."""
        self.mark_seen(users)

    def plan_claims(self, claims: Iterable[tuple[str, str]]) -> None:
        """Remember the unique values (``(field, value text)``) a test run's plan gives people.

        A test run writes nothing, so a later batch cannot find them at the
        destination as a real run's does. Kept in memory here; SQLite keeps
        them in a temporary table.
        """
        if not hasattr(self, "_planned_claims"):
            self._planned_claims: set[tuple[str, str]] = set()
        self._planned_claims.update(claims)

    def planned_claims(self, wanted: Mapping[str, set[str]]) -> set[tuple[str, str]]:
        """Those of *wanted* (field -> value texts) an earlier batch's plan gave a person."""
        planned: set[tuple[str, str]] = getattr(self, "_planned_claims", set())
        return {(name, value) for name, values in wanted.items() for value in values} & planned

    def mark_inactive(self, vendor_user_ids: Sequence[str]) -> None:
        """Remember vendor users the run saw as deactivated or deleted.

        Kept in memory here (only the inactive ones); SQLite keeps them in a
        temporary table.
        """
        if not hasattr(self, "_inactive"):
            self._inactive: set[str] = set()
        self._inactive.update(vendor_user_ids)

    def inactive(self, vendor_user_ids: Sequence[str]) -> set[str]:
        """Return those of *vendor_user_ids* marked inactive in this run."""
        return set(vendor_user_ids) & getattr(self, "_inactive", set())


class Destination(abc.ABC):
    """A system of record for people and their SaaS accounts."""

    matches_by_sync_key: ClassVar[bool] = False
    """True when the destination's own server matches records by sync key (a
    portion is sent); False when the engine looks people up and decides."""

    # -- people ---------------------------------------------------------------

    @abc.abstractmethod
    def get_person(self, person_id: PersonId) -> Person | None:
        """Return the person whose destination id is *person_id*."""

    @abc.abstractmethod
    def find_person(self, field: str, value: Any) -> Person | None:
        """Return the person whose *field* equals *value* (``email``, ``Slack User Id``)."""

    @abc.abstractmethod
    def iter_people(self, *, vendor: str | None = None) -> Iterator[Person]:
        """Yield people, optionally only those linked to *vendor*, without loading all at once."""

    @abc.abstractmethod
    def update_person_fields(self, person_id: PersonId, fields: Mapping[str, Any]) -> None:
        """Set *fields* on a person (custom fields are defined on first use)."""

    def iter_candidates(self, where: str) -> Iterator[Person]:
        """Yield the people who may match *where* (a ``--where`` expression).

        Every person by default; a destination that can narrow the read on its
        server (Oomnitza's ``filter``) yields fewer. The caller evaluates *where*
        on each person: it has the final word.
        """
        return self.iter_people()

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

    def refused_targets(self, vendor: str, targets: Iterable[str]) -> str | None:
        """Say why this destination cannot store some of a preset's mapped *targets*.

        :param vendor: the preset's vendor (whose SaaS users the targets are on).
        :param targets: person fields (``Slack Title``) and SaaS-user fields
            (``saas_user.role``).
        :returns: the reason, or ``None`` when every one can be stored. A preset
            is refused with the reason before it calls anything.
        """
        return None

    # -- sync -------------------------------------------------------------------

    def prepare_run(self, plan: SyncPlan, *, test_run: bool) -> None:  # noqa: B027
        """Check that *plan* can run here and make ready for it (nothing by default).

        :raises StoreError: the sync key is not a unique field of this destination.
        """

    def lookup(self, plan: SyncPlan, records: Sequence[tuple[str, str]]) -> BatchLookup:
        """Return what the destination holds for ``(sync_value, vendor_user_id)`` pairs."""
        raise NotImplementedError(f"{self!r} matches records itself; send it a portion")

    def unique_owners(self, wanted: Mapping[str, set[str]]) -> dict[tuple[str, str], PersonId]:
        """Return who holds each of the *wanted* unique values (field -> values)."""
        raise NotImplementedError(f"{self!r} matches records itself; send it a portion")

    def accounts_of(self, plan: SyncPlan, person_ids: Sequence[PersonId]) -> dict[PersonId, str]:
        """Return the vendor user id *plan*'s integration links each of *person_ids* to."""
        raise NotImplementedError(f"{self!r} matches records itself; send it a portion")

    def write_people(self, plan: SyncPlan, writes: PersonWrites) -> None:
        """Apply one batch's *writes* atomically (all or nothing)."""
        raise NotImplementedError(f"{self!r} matches records itself; send it a portion")

    def vanish(self, plan: SyncPlan, book: RunBook, *, test_run: bool) -> list[VanishedPerson]:
        """Mark (a test run: only find) people of *plan*'s integration the run did not see."""
        raise NotImplementedError(f"{self!r} does not track which integration brought a person")

    def open_portion(self, plan: SyncPlan, session: SyncSession, ledger: Ledger) -> Portion:
        """Start a portion for *session* (destinations that match by sync key)."""
        raise NotImplementedError(f"{self!r} is matched by the engine; it takes no portions")

    def unchanged_members(
        self, plan: SyncPlan, fingerprints: Mapping[str, str]
    ) -> dict[str, tuple[str, bool]]:
        """Return the members whose fingerprint is the one remembered, with nothing changed since.

        :param fingerprints: vendor user id -> the fingerprint of what the run
            would write for it (:meth:`remember_fingerprints`).
        :returns: vendor user id -> ``(sync value, active)`` for each member whose
            person still is as that fingerprint's write left it: such a member
            would write nothing, so the engine neither reads nor maps it. A
            destination that remembers none returns ``{}`` (every member is mapped).
        """
        return {}

    def remember_fingerprints(  # noqa: B027 - remembering is optional
        self, plan: SyncPlan, members: Sequence[tuple[str, str, str, bool]]
    ) -> None:
        """Remember ``(vendor_user_id, fingerprint, sync_value, active)`` of members just written.

        Called after their batch committed, only for members that were created,
        updated or found unchanged (a crash in between only costs a re-map).
        """

    remembers_pages: ClassVar[bool] = False
    """True when the destination keeps users pages (:meth:`remember_pages`) to recognise."""

    def page_digests(self, plan: SyncPlan) -> Mapping[str, str]:
        """Return the pages remembered for *plan*'s integration: each digest and its skeleton.

        The skeleton (:attr:`RecalledPage.skeleton`) lets the next page be
        fetched (its cursor, its next link) before the page's members are checked.

        :returns: a mapping of digest -> skeleton (``{}`` when none are
            remembered); anything else, such as a set of digests, fails the
            run with a :class:`~oomnitza_connect.errors.StoreError` before the
            first page is fetched.
        """
        return {}

    def recall_page(self, plan: SyncPlan, digest: str) -> RecalledPage | None:
        """Return the page remembered under *digest* if each of its members is unchanged.

        Called from a thread of its own while pages are fetched and batches are
        written, for a digest :meth:`page_digests` named.
        """
        return None

    def remember_pages(  # noqa: B027 - remembering is optional
        self, plan: SyncPlan, pages: Sequence[ReadPage]
    ) -> None:
        """Remember pages read whole, after their batch's members were written."""

    def keep_pages(  # noqa: B027 - remembering is optional
        self, plan: SyncPlan, digests: Sequence[str]
    ) -> None:
        """Forget the integration's pages but *digests* (the pages of a run that completed)."""

    def mark_vanished(self, plan: SyncPlan, vanished: Sequence[VanishedPerson]) -> int:
        """Set the integration's vanished field on *vanished* people, if any; return how many."""
        return 0

    @abc.abstractmethod
    def apply_last_logins(self, vendor: str, logins: Iterable[tuple[str, datetime]]) -> int:
        """Write each ``(vendor_user_id, last_login)`` onto the person and the SaaS user.

        :returns: how many people changed.
        """

    # -- life cycle -----------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the destination's resources."""

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Ledger(abc.ABC):
    """The local record of runs: sessions, errors, plans, integrations, workflow runs."""

    # -- sessions ---------------------------------------------------------------

    @abc.abstractmethod
    def start_session(self, plan: SyncPlan, *, test_run: bool = False) -> SyncSession:
        """Record the start of a run.

        Sessions of *plan*'s integration still marked ``running`` whose process
        is gone are marked ``interrupted`` first.
        """

    @abc.abstractmethod
    def run_book(self, session_id: str) -> RunBook:
        """Return the bookkeeping of the running session *session_id*."""

    @abc.abstractmethod
    def record_batch(
        self,
        session_id: str,
        outcome: BatchOutcome,
        *,
        write: Callable[[], None] | None = None,
    ) -> None:
        """Add one batch's counts, errors and plan entries to the session.

        :param write: the batch's destination write; when the destination is
            this same SQLite file, the write and the session's counts commit
            together, so an interrupted run leaves only whole batches behind.
        """

    @abc.abstractmethod
    def finish_session(
        self,
        session_id: str,
        *,
        status: SyncStatus,
        message: str | None = None,
        vanished: Sequence[VanishedPerson] = (),
    ) -> SyncSession:
        """Record the end of a run (and who vanished) and return the session as stored."""

    @abc.abstractmethod
    def remember_members(
        self, integration: str, book: RunBook, *, test_run: bool
    ) -> list[VanishedPerson]:
        """Return who an earlier complete run saw and this one did not; remember this run's.

        For destinations that do not track which integration brought a person.
        A test run only compares.
        """

    # -- portions (destinations that match by sync key) ---------------------------

    @abc.abstractmethod
    def open_portion_log(
        self, integration: str, session_id: str, *, test_run: bool
    ) -> tuple[str, dict[int, str]]:
        """Return the portion *session_id* writes and the batches already acknowledged.

        An interrupted run's portion that was never finalized is continued
        (``batch index -> digest`` of what it acknowledged); otherwise a new
        portion id (a UUID4) is made.
        """

    @abc.abstractmethod
    def acknowledge_batch(self, portion: str, index: int, digest: str) -> None:
        """Remember that batch *index* of *portion* (its records hashed as *digest*) arrived."""

    @abc.abstractmethod
    def portion_finalized(self, portion: str) -> None:
        """Remember that *portion* was finalized (it is never continued)."""

    @abc.abstractmethod
    def get_session(self, session_id: str, *, with_payload: bool = False) -> SyncSession | None:
        """Return one session with its errors (and its test-run plan when asked)."""

    @abc.abstractmethod
    def iter_plan(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Yield a test run's plan entries in order, from *offset*, at most *limit*."""

    @abc.abstractmethod
    def iter_vanished(self, session_id: str) -> Iterator[VanishedPerson]:
        """Yield the people a session found vanished from the vendor."""

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
        """Return the integrations the ledger knows, by name."""

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
        """Release the ledger's resources."""


class Store(Ledger, Destination):
    """A ledger that is also a destination: one SQLite file holding both."""

    def __enter__(self) -> Store:
        return self
