"""The sync rules: what happens to each mapped record, whatever the destination.

The engine (:mod:`oomnitza_connect.sync.engine`) hands every batch to
:func:`apply_batch`. Here a record without a sync value fails, a sync value
already seen in the run fails ("the first one was kept"), the preference
decides between create and update (or skip), a change is only a change when
a field other than a tracking field differs, and a unique value that belongs
to another person fails the record. What survives becomes one
:class:`~oomnitza_connect.store.base.PersonWrites` for the destination; a
test run writes nothing and keeps its plan instead: every person's action
and, for an update, each changed field as old -> new.

A destination that matches by sync key on its own server (Oomnitza) gets the
same first two rules here (they need the whole run) and applies the rest on
its side, with the same meaning, from the portion's ``insert_only`` /
``update_only``.
"""

from __future__ import annotations

import bisect
import functools
import pickle
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from ..models import PersonId, RecordError, SyncCounts, SyncPreference, UserSelection
from ..store.base import (
    BatchLookup,
    BatchOutcome,
    ChangedPerson,
    Destination,
    Ledger,
    MappedRecord,
    NewPerson,
    PersonLink,
    PersonWrites,
    RunBook,
    SyncPlan,
)
from ..store.rows import chunked
from .mapping import SAAS_ROLE_TARGET

__all__ = ["BatchRules", "apply_batch", "json_ready", "key_text"]

_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})

_Keyed = tuple[MappedRecord, str, dict[str, Any]]
"""A record with its sync value and its fields as they read back from JSON."""

_PLANNED = ("planned", -1)
"""The owner of a unique value an earlier batch of a test run planned for a person: like
a record of the same batch, someone the run itself gave it (a later claim fails)."""

UnchangedClaims = Sequence[tuple[int, Callable[[], object]]]
"""``(position, claim)`` of the members a batch counts as they are (found unchanged
without being mapped), in listing order: *claim* puts their sync values into the
run's after those of the batch's ``records[:position]`` and before the others'."""


def _datetime_text(value: datetime) -> str:
    if type(value) is datetime:
        # A run writes the same few datetimes many times (the page's fetch time
        # in every record of the page); equal datetimes give equal text.
        return _cached_datetime_text(value)
    return _utc_text(value)


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


_cached_datetime_text = functools.lru_cache(maxsize=256)(_utc_text)


def json_ready(value: Any) -> Any:
    """Return *value* as it reads back from JSON (datetimes become UTC ISO-8601 text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(v) for v in value]
    return str(value)


def key_text(value: Any) -> str:
    """The text a unique value (and a sync value) is compared and indexed as."""
    if type(value) is str:
        return value
    if isinstance(value, datetime):
        return _datetime_text(value)
    return str(value)


def apply_batch(
    ledger: Ledger,
    destination: Destination,
    session_id: str,
    plan: SyncPlan,
    records: Sequence[MappedRecord],
    *,
    failed: Sequence[RecordError] = (),
    skipped: Sequence[str] = (),
    test_run: bool = False,
    rules: BatchRules | None = None,
    unchanged_claims: UnchangedClaims = (),
) -> BatchOutcome:
    """Decide one batch, write it to *destination* and record it in *ledger*.

    :param failed: records that failed before the destination (mapping errors).
    :param skipped: vendor user ids the integration's filters left out.
    :param test_run: decide only; the outcome's payload is the batch's plan.
    :param unchanged_claims: where the batch's members that write nothing were
        listed among *records* (:data:`UnchangedClaims`).
    """
    rules = rules or BatchRules(destination, ledger.run_book(session_id), plan, test_run=test_run)
    outcome, writes = rules.decide(records, failed, skipped, unchanged_claims)
    write = None
    if writes and not test_run:

        def write() -> None:
            destination.write_people(plan, writes)

    ledger.record_batch(session_id, outcome, write=write)
    return outcome


class BatchRules:
    """The rules of one run, applied a batch at a time (one instance per run)."""

    def __init__(
        self, destination: Destination, book: RunBook, plan: SyncPlan, *, test_run: bool
    ) -> None:
        self.destination = destination
        self.book = book
        self.plan = plan
        self.test_run = test_run
        unique = destination.unique_fields() | plan.declared_unique
        # The unique fields other than the sync key, checked for every write.
        self.claimable = tuple(sorted(unique - {plan.sync_key}))
        self.saas = plan.selection == UserSelection.USERS_AND_SAAS
        # Active records whose unique value a stored person holds wait until
        # every record of the run is known (see contested_batches).
        self.contested = _ContestedRecords()
        self.contested_in_batch: set[str] = set()
        """The vendor user ids the last batch decided left contested (they may fail later)."""
        self.settling = False
        self.planned: list[tuple[str, str]] = []
        """The unique values the test run batch being decided gives people (RunBook.plan_claims)."""

    # -- the rules every destination shares ------------------------------------------

    def keyed(
        self,
        records: Sequence[MappedRecord],
        errors: list[RecordError],
        unchanged_claims: UnchangedClaims = (),
    ) -> list[_Keyed]:
        """The records with a sync value not seen before in this run; the rest fail.

        A sync value goes to the first record listed that has it. The claims of
        members counted as they are (*unchanged_claims*) are made in their place
        among *records*, so that the first one listed keeps the value whether
        the destination recognised it unchanged or it was mapped.
        """
        key = self.plan.sync_key
        keyed: list[_Keyed] = []
        listed: list[int] = []  # each keyed record's position in *records*
        in_batch: set[str] = set()
        for position, record in enumerate(records):
            value = record.fields.get(key)
            if value is None or value == "":
                errors.append(
                    RecordError(
                        record.vendor_user_id,
                        f"the record has no value for the sync key '{key}'",
                        key,
                    )
                )
                continue
            sync_value = key_text(value)
            if sync_value in in_batch:
                errors.append(self._duplicate(record, sync_value))
                continue
            in_batch.add(sync_value)
            fields = {
                k: v if type(v) in _JSON_SCALARS else json_ready(v)
                for k, v in record.fields.items()
                if k != SAAS_ROLE_TARGET
            }
            keyed.append((record, sync_value, fields))
            listed.append(position)
        if self.settling:
            # Settling, the sync values were remembered when the records first came.
            return keyed
        first: list[_Keyed] = []
        start = 0
        for position, claim in unchanged_claims:
            end = bisect.bisect_left(listed, position, lo=start)
            first += self._first_in_run(keyed[start:end], errors)
            start = end
            claim()
        return first + self._first_in_run(keyed[start:] if start else keyed, errors)

    def _first_in_run(self, keyed: list[_Keyed], errors: list[RecordError]) -> list[_Keyed]:
        """*keyed* (distinct sync values) but those whose value the run already had."""
        if not keyed:
            return keyed
        repeated = self.book.repeated([item[1] for item in keyed])
        if repeated:
            for record, sync_value, _ in keyed:
                if sync_value in repeated:
                    errors.append(self._duplicate(record, sync_value))
            keyed = [item for item in keyed if item[1] not in repeated]
        return keyed

    def _duplicate(self, record: MappedRecord, sync_value: str) -> RecordError:
        return RecordError(
            record.vendor_user_id,
            f"another record in this run already has {self.plan.sync_key} {sync_value!r}; "
            "the first one was kept",
            self.plan.sync_key,
        )

    def role_of(self, record: MappedRecord) -> str | None:
        role = record.fields.get(SAAS_ROLE_TARGET, record.role)
        return None if role is None else str(role)

    # -- deciding against what the destination holds ---------------------------------

    def decide(
        self,
        records: Sequence[MappedRecord],
        failed: Sequence[RecordError],
        skipped: Sequence[str],
        unchanged_claims: UnchangedClaims = (),
    ) -> tuple[BatchOutcome, PersonWrites]:
        """Return what the batch does and the destination writes that do it.

        :param unchanged_claims: see :meth:`keyed`.
        """
        plan = self.plan
        self.contested_in_batch = set()
        errors: list[RecordError] = list(failed)
        payload: list[dict[str, Any]] = []
        keep = self.test_run
        if keep:
            payload.extend(
                {"action": "skip", "vendor_user_id": user_id, "reason": "left out by the filters"}
                for user_id in skipped
            )
        inactive = [record.vendor_user_id for record in records if not record.active]
        if inactive:
            self.book.mark_inactive(inactive)
        keyed = self.keyed(records, errors, unchanged_claims)
        lookup = (
            self.destination.lookup(plan, [(item[1], item[0].vendor_user_id) for item in keyed])
            if keyed
            else BatchLookup(people={})
        )
        existing = lookup.people
        tracking = plan.tracking_fields
        # Decide first, so that unique values are looked up only for the
        # records that would write some (none in an unchanged run).
        olds: dict[str, tuple[Mapping[str, Any], dict[str, Any], bool]] = {}
        claiming: list[Mapping[str, Any]] = []
        for _, sync_value, fields in keyed:
            found = existing.get(sync_value)
            if found is None:
                if plan.preference != SyncPreference.UPDATE_ONLY:
                    claiming.append(fields)
                continue
            old = found[1]
            changes = {k: v for k, v in fields.items() if old.get(k) != v}
            substantive = any(k not in tracking for k in changes)
            olds[sync_value] = (old, changes, substantive)
            if substantive and plan.preference != SyncPreference.CREATE_ONLY:
                claiming.append(changes)
        owners = self._owners(claiming)

        creates: list[NewPerson] = []
        updates: list[ChangedPerson] = []
        releases: dict[PersonId, _Release] = {}
        links: list[PersonLink] = []
        seen: list[tuple[str, str | None]] = []
        created = updated = unchanged = 0
        skipped_count = len(skipped)
        for index, (record, sync_value, fields) in enumerate(keyed):
            user_id = record.vendor_user_id
            found = existing.get(sync_value)
            # Shown by a test run only.
            entry: dict[str, Any] = (
                {"vendor_user_id": user_id, "sync_value": sync_value} if keep else {}
            )
            if found is None:
                if plan.preference == SyncPreference.UPDATE_ONLY:
                    skipped_count += 1
                    if keep:
                        payload.append(
                            {**entry, "action": "skip", "reason": "update only: no such person"}
                        )
                    continue
                # A new person claims with a key no stored person has.
                claimed = self._claim(record, fields, ("new", index), owners, errors, releases)
                if claimed is None:
                    continue
                if claimed is not fields:  # (keyed's own copy otherwise: no second one)
                    fields = dict(claimed)
                creates.append(
                    NewPerson(
                        sync_value,
                        fields,
                        user_id,
                        saas=self.saas,
                        role=self.role_of(record) if self.saas else None,
                    )
                )
                created += 1
                seen.append((user_id, sync_value))
                if keep:
                    payload.append({**entry, "action": "create", "fields": fields})
                continue
            person_id = found[0]
            seen.append((user_id, sync_value))
            if plan.preference == SyncPreference.CREATE_ONLY:
                skipped_count += 1
                if keep:
                    payload.append(
                        {**entry, "action": "skip", "reason": "create only: the person exists"}
                    )
                continue
            old, changes, substantive = olds[sync_value]
            if substantive:
                claimed = self._claim(record, changes, person_id, owners, errors, releases)
                if claimed is None:
                    continue
                changes = dict(claimed)
                substantive = any(k not in tracking for k in changes)
            link = self._link(person_id, record, lookup)
            if link is not None:
                links.append(link)
            if substantive:
                updates.append(
                    ChangedPerson(
                        person_id,
                        {**old, **changes},
                        changes,
                        frozenset(name for name in changes if name in old),
                        {name: old[name] for name in changes if name in old},
                    )
                )
            # A person another integration already brought in, now also linked
            # to this one, changes in none of their fields: unchanged. Coming
            # back after vanishing, another vendor account, or a new SaaS link
            # or role is an update.
            saas_change = link is not None and link.saas
            link_change = link is not None and (
                saas_change or lookup.links.get(person_id) is not None
            )
            if substantive or link_change:
                updated += 1
                if keep:
                    shown = changes if substantive else {}
                    planned: dict[str, Any] = {
                        **entry,
                        "action": "update",
                        "fields": shown,
                        "changes": {
                            name: {"old": old.get(name), "new": value}
                            for name, value in shown.items()
                        },
                    }
                    if saas_change:
                        before = lookup.saas.get(user_id)
                        planned["saas_role"] = {
                            "old": None if before is None else before[1],
                            "new": self.role_of(record),
                        }
                    payload.append(planned)
            else:
                unchanged += 1
                if keep:
                    payload.append({**entry, "action": "unchanged"})

        if releases:
            # Given up before the batch's own writes (the store deletes keys first).
            updates[:0] = [release.change() for release in releases.values()]
            if keep:
                payload.extend(
                    {
                        "action": "update",
                        "person_id": release.person_id,
                        "reason": "an active account took its unique value",
                        "fields": dict.fromkeys(release.given_up),
                        "changes": {
                            name: {"old": release.old.get(name), "new": None}
                            for name in release.given_up
                        },
                    }
                    for release in releases.values()
                )
        if self.planned:
            self.book.plan_claims(self.planned)
            self.planned = []
        # A record that failed is still present at the vendor: its person must
        # not be marked as vanished.
        seen.extend((e.vendor_user_id, None) for e in errors if e.vendor_user_id is not None)
        self.book.mark_seen(seen)
        if keep:
            payload.extend(
                {
                    "action": "fail",
                    "vendor_user_id": e.vendor_user_id,
                    "reason": e.reason,
                    "field": e.field,
                }
                for e in errors
            )
        counts = SyncCounts(
            created=created,
            updated=updated,
            unchanged=unchanged,
            skipped=skipped_count,
            failed=len(errors),
        )
        outcome = BatchOutcome(counts=counts, errors=tuple(errors), payload=tuple(payload))
        return outcome, PersonWrites(creates=creates, updates=updates, links=links)

    def _owners(
        self, claiming: list[Mapping[str, Any]]
    ) -> dict[tuple[str, str], PersonId | tuple[str, int]]:
        """Who holds each unique value these records carry (sync key excluded)."""
        wanted: dict[str, set[str]] = {}
        for fields in claiming:
            for name in self.claimable:
                value = fields.get(name)
                if value is not None and value != "":
                    wanted.setdefault(name, set()).add(key_text(value))
        if not wanted:
            return {}
        owners: dict[tuple[str, str], PersonId | tuple[str, int]] = dict(
            self.destination.unique_owners(wanted)
        )
        if self.test_run:
            # Nothing an earlier batch planned was written: its people hold their
            # values here, as a real run finds them at the destination. One the
            # plan gave an active account stays that account's, as there.
            for claim in self.book.planned_claims(wanted):
                owners.setdefault(claim, _PLANNED)
        return owners

    def _claim(
        self,
        record: MappedRecord,
        fields: Mapping[str, Any],
        person_id: PersonId | tuple[str, int],
        owners: dict[tuple[str, str], PersonId | tuple[str, int]],
        errors: list[RecordError],
        releases: dict[PersonId, _Release],
    ) -> Mapping[str, Any] | None:
        """Reserve the record's unique values; return the fields it may write.

        An active account wins a unique value (a re-hired person's email) over a
        deactivated or deleted one, whatever the order and whichever run brought
        the other in: a deactivated account gives the value up, and an active one
        takes it from a stored person whose account here is deactivated or gone.
        Returns None when the record does not write now (failed, or contested).
        """
        claims: list[tuple[str, str]] = []
        lost: list[str] = []
        taken: list[tuple[str, str, PersonId]] = []
        for name in self.claimable:
            value = fields.get(name)
            if value is None or value == "":
                continue
            text = key_text(value)
            owner = owners.get((name, text))
            if owner is None or owner == person_id:
                claims.append((name, text))
            elif not record.active:
                lost.append(name)
            elif isinstance(owner, tuple) or (self.settling and not self._releasable(owner)):
                errors.append(
                    RecordError(
                        record.vendor_user_id,
                        f"'{name}' {text!r} already belongs to another person "
                        f"and '{name}' is unique",
                        name,
                    )
                )
                return None
            elif not self.settling:
                # Whether the holder's account is still active is known only once
                # every record of the run has come.
                self.contested.add(record)
                self.contested_in_batch.add(record.vendor_user_id)
                return None
            else:
                taken.append((name, text, owner))
        for claim in claims:
            owners[claim] = person_id
        for name, text, owner in taken:
            self._release(owner, name, releases)
            owners[(name, text)] = person_id
        if self.test_run and record.active:
            # (A deactivated account's value would be given up to an active one.)
            self.planned.extend(claims)
            self.planned.extend((name, text) for name, text, _ in taken)
        if lost:
            return {k: v for k, v in fields.items() if k not in lost}
        return fields

    def _releasable(self, owner: PersonId) -> bool:
        """Whether *owner*'s account in this integration is deactivated or gone."""
        account = self.destination.accounts_of(self.plan, [owner]).get(owner)
        if account is None:
            return False  # brought in by another integration: not this run's to take
        return bool(self.book.inactive([account]) or self.book.unseen([account]))

    def _release(self, owner: PersonId, name: str, releases: dict[PersonId, _Release]) -> None:
        release = releases.get(owner)
        if release is None:
            person = self.destination.get_person(owner)
            release = releases[owner] = _Release(owner, dict(person.fields) if person else {})
        release.give_up(name)

    def contested_batches(self, size: int) -> Iterator[list[MappedRecord]]:
        """Yield the contested records again, a batch at a time, once the run is known."""
        self.settling = True
        with self.contested:
            yield from chunked(self.contested, size)

    def _link(
        self, person_id: PersonId, record: MappedRecord, lookup: BatchLookup
    ) -> PersonLink | None:
        """The link the person needs to the integration (and the SaaS app), if it changes."""
        user_id = record.vendor_user_id
        relink = lookup.links.get(person_id) != (user_id, False)
        saas = False
        role = None
        if self.saas:
            role = self.role_of(record)
            saas = lookup.saas.get(user_id) != (person_id, role)
        if not relink and not saas:
            return None
        return PersonLink(person_id, user_id, relink=relink, saas=saas, role=role)


class _Release:
    """The unique values one stored person gives up to active accounts."""

    def __init__(self, person_id: PersonId, old: dict[str, Any]) -> None:
        self.person_id = person_id
        self.old = old
        self.given_up: list[str] = []

    def give_up(self, name: str) -> None:
        if name not in self.given_up:
            self.given_up.append(name)

    def change(self) -> ChangedPerson:
        changes = dict.fromkeys(self.given_up)
        had = frozenset(name for name in self.given_up if self.old.get(name) not in (None, ""))
        return ChangedPerson(
            self.person_id,
            {**self.old, **changes},
            changes,
            had,
            {name: self.old[name] for name in had},
        )


class _ContestedRecords:
    """Records waiting for the end of the run, in a temporary file (memory stays flat)."""

    def __init__(self) -> None:
        self._file: Any = None
        self.count = 0

    def add(self, record: MappedRecord) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        pickle.dump((record.vendor_user_id, dict(record.fields), record.role), self._file)
        self.count += 1

    def __iter__(self) -> Iterator[MappedRecord]:
        if self._file is None:
            return
        self._file.seek(0)
        for _ in range(self.count):
            user_id, fields, role = pickle.load(self._file)  # noqa: S301 - our own file
            yield MappedRecord(user_id, fields, role)

    def __enter__(self) -> _ContestedRecords:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
