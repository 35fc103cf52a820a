"""The sync engine: make the store match a vendor's users.

:func:`run_sync` streams the vendor's users page by page through the
integration's filters and mapping into the store, in batched transactions,
and records what it did as a :class:`~oomnitza_connect.models.SyncSession`.
Nothing holds all users at once: records flow through one batch at a time,
and the store keeps the per-run bookkeeping (duplicates, people seen) in SQL.

>>> from oomnitza_connect import load_integration, open_store, run_sync
>>> settings = load_integration("slack.toml")
>>> with open_store() as store:
...     session = run_sync(settings, store=store)
>>> session.status, session.counts
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import hashlib
import logging
import os
import pickle
import queue
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import attrs

from .._version import __version__
from ..auth.credentials import resolve_credential
from ..connectors import Connector, get_connector
from ..errors import ConfigurationError, MappingError, OomnitzaConnectError, PluginError
from ..models import (
    STANDARD_PERSON_FIELDS,
    Credential,
    FieldMapping,
    FieldType,
    IntegrationSettings,
    RecordError,
    SyncCounts,
    SyncPreference,
    SyncSession,
    SyncStatus,
    UnreadRecord,
    VendorInfo,
    VendorRecord,
)
from ..plugins import TRACE_ENV, get_plugin_manager
from ..redaction import redact
from ..store.base import (
    BatchOutcome,
    CustomField,
    Destination,
    Ledger,
    MappedRecord,
    Portion,
    ReadPage,
    RecalledPage,
    RunBook,
    SyncPlan,
    VanishedPerson,
)
from ..store.paths import default_db_path
from ..transport.http import ClientOptions, HttpClient, Wait
from ..vendors.session import VendorSession
from .converters import to_datetime
from .integrations import (
    check_integration,
    check_sync_key,
    draft_problems,
    effective_filters,
    effective_mapping,
    ledger_problems,
    sync_key_of,
)
from .mapping import (
    SAAS_ROLE_TARGET,
    CompiledMapping,
    compile_filters,
    fields_read,
    filter_variables,
    normalize_target,
    read_record,
    variables_for,
)
from .pages import PageBook, PageRead, is_page_mark
from .rules import BatchRules, apply_batch, key_text
from .run_lock import sync_lock

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "SyncPhase",
    "SyncProgress",
    "client_options",
    "custom_fields_of",
    "read_ahead",
    "run_sync",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BATCH_SIZE = 2000
"""Records per store transaction.

Each batch writes entries all over the unique-value index; the more records a
transaction carries, the more of them share a page, and the fewer pages the
WAL receives (2,500 wrote 100,000 people in a third less time than 1,000, and
2,000 as fast as 2,500).
Memory grows with it: a 100,000-user Slack sync peaked about 5 MB higher with
2,500 and two batches waiting than with 2,000 and one, in the same time.
"""
_LOOKUP_SIZE = 500
"""Members whose fingerprints are looked up at once (each holds its vendor JSON until mapped)."""
_WAITING_BATCHES = 1
"""Batches handed to the writer thread and not yet written (memory stays flat).

One is enough to keep the writer busy while the next batch is mapped; a second
cost 1-6 MB of peak memory and saved no time (measured at 100,000 and 300,000).
"""

_CONVERTER_TYPES = {
    "timestamp": FieldType.DATETIME,
    "datetime": FieldType.DATETIME,
    "bool": FieldType.BOOLEAN,
    "boolean": FieldType.BOOLEAN,
    "integer": FieldType.INTEGER,
    "int": FieldType.INTEGER,
    "list": FieldType.LIST,
}


class SyncPhase(StrEnum):
    """What a run is doing: the phases follow one another in this order."""

    CONNECTING = "connecting"
    """Checking the destination and the vendor's credential, before the listing.
    Reported only while the run waits in it (a retry of the credential check)."""
    LISTING = "listing"
    """Reading the vendor's users (and writing them, batch by batch, meanwhile)."""
    WRITING = "writing"
    """The vendor's list is read; the last batches (deactivated accounts) are written."""
    LAST_LOGINS = "last logins"
    """Applying the last logins fetched alongside the users."""
    FINALIZING = "finalizing"
    """Marking who vanished, confirming the run with the destination, closing the session."""


@attrs.frozen
class SyncProgress:
    """Where a run is: reported when a phase starts, after every batch, and before a pause.

    :param processed: vendor records handled so far.
    :param counts: what they came to so far.
    :param phase: what the run is doing now.
    :param done: the current phase's progress: last logins applied in
        :attr:`SyncPhase.LAST_LOGINS`, else the records processed.
    :param total: what *done* counts up to when known (the vendor's stated user
        count, the number of last logins fetched), else ``None``.
    :param waiting: the pause the run is in (paced to a rate budget, a
        Retry-After, a retry), or ``None``.
    """

    session_id: str
    integration: str
    processed: int
    counts: SyncCounts
    phase: SyncPhase = SyncPhase.LISTING
    done: int = 0
    total: int | None = None
    waiting: Wait | None = None


def custom_fields_of(mapping: Iterable[FieldMapping], info: VendorInfo) -> list[CustomField]:
    """Return the custom fields *mapping* writes, typed from the vendor's fields and converters."""
    types = {spec.key: spec.type for spec in info.fields}
    found: dict[str, CustomField] = {}
    for field_mapping in mapping:
        target = normalize_target(field_mapping.target)
        if target in STANDARD_PERSON_FIELDS or target == SAAS_ROLE_TARGET:
            continue
        kind = FieldType.STRING
        if field_mapping.source is not None:
            kind = types.get(field_mapping.source, FieldType.STRING)
        if field_mapping.converter:
            kind = _CONVERTER_TYPES.get(field_mapping.converter, FieldType.STRING)
        found[target] = CustomField(target, kind, field_mapping.unique)
    return list(found.values())


def client_options(
    settings: IntegrationSettings, credential: Credential, options: ClientOptions | None = None
) -> ClientOptions:
    """The HTTP options of a run: *options* (or the integration's base URL) with its pacing.

    The integration's ``rate_budgets`` replace the plugin's budgets for their
    endpoints, and those in *options* (the command line's ``--rate-budget``)
    replace both; ``pace_requests = false`` in either turns pacing off.
    """
    from ..transport.ratelimit import parse_rate_budget

    chosen = options or ClientOptions(base_url=settings.base_url or credential.base_url)
    budgets = tuple(
        parse_rate_budget(text, key_path=f"rate_budgets[{index}]")
        for index, text in enumerate(settings.rate_budgets)
    )
    return attrs.evolve(
        chosen,
        pace_requests=chosen.pace_requests and settings.pace_requests,
        rate_budgets=(*budgets, *chosen.rate_budgets),
    )


def run_sync(
    settings: IntegrationSettings,
    *,
    credential: Credential | None = None,
    store: Ledger | None = None,
    destination: Destination | None = None,
    test_run: bool = False,
    connector: Connector | None = None,
    options: ClientOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[SyncProgress], None] | None = None,
) -> SyncSession:
    """Sync one integration's vendor users into the store and return the session.

    A run-level failure (the credential is refused, the vendor is unreachable
    mid-way) does not raise: the session comes back with status ``failed`` and
    its ``message``, nothing is marked vanished, and the batches already
    written stay. Records that fail (no sync key, a duplicate sync key, a
    converter or expression error, a unique value owned by someone else) are
    listed in ``session.errors`` and the others go through.

    :param settings: the integration (``load_integration(path)``).
    :param credential: the credential to use; looked up by
        ``settings.credential`` in the default credential store when omitted.
    :param store: the local ledger (sessions, errors, plans); the default
        SQLite file (:func:`default_db_path`) when omitted, closed afterwards.
        It is also the destination unless *destination* is given or the
        integration names another one in its ``[destination]`` table.
    :param destination: where people are written (an
        :class:`~oomnitza_connect.destinations.oomnitza.OomnitzaDestination`,
        or another SQLite store); default: the integration's ``[destination]``,
        else *store*.
    :param test_run: run the whole pipeline but write no people; the session
        keeps the counts and the whole plan: every person's action, and for an
        update each changed field old -> new (``ledger.iter_plan(session.id)``).
        A draft integration may be test-run (the sync key defaults to ``email``).
    :param connector: the vendor's connector (looked up by ``settings.vendor``).
    :param options: HTTP options; the base URL defaults to ``settings.base_url``.
    :param batch_size: records per store transaction.
    :param progress: called with a :class:`SyncProgress` when a phase starts,
        after every batch and before every pause (from the thread that pauses,
        so it must be quick and thread-safe); ``None`` costs nothing.
    :raises ConfigurationError: the integration is invalid, its sync key names
        no unique target of the mapping (even for a test run), or it is a draft
        and *test_run* is false (the message lists what is missing).
    :raises UnknownVendorError: no installed plugin provides the vendor.
    """
    connector = connector or get_connector(settings.vendor)
    info = connector.info
    problems = check_integration(settings, info)
    if problems:
        raise ConfigurationError(
            f"the integration '{settings.name}' is not valid", problems=problems
        )
    check_sync_key(settings, info)
    drafts = draft_problems(settings, info)
    if drafts and not test_run:
        raise ConfigurationError(
            f"the integration '{settings.name}' is still a draft and cannot sync "
            "(a --test-run can)",
            problems=drafts,
        )
    if batch_size < 1:
        raise ConfigurationError("the batch size must be at least 1", value=batch_size)
    if credential is None:
        credential = resolve_credential(settings.credential)
    if credential.vendor != info.name:
        raise ConfigurationError(
            f"the credential '{credential.name}' is for '{credential.vendor}', "
            f"but the integration '{settings.name}' syncs '{info.name}'"
        )
    owned_store = store is None
    if store is None:
        from ..store.sqlite import SQLiteStore

        store = SQLiteStore(default_db_path())
    owned_destination = False
    try:
        # Another vendor's integration under this name would share its sessions and
        # members, each run marking the other's people vanished.
        clashes = ledger_problems(settings, store)
        if clashes:
            raise ConfigurationError(
                f"the integration '{settings.name}' cannot sync into this store",
                problems=clashes,
            )
        if destination is None:
            destination = destination_of(settings, store)
            owned_destination = not _is_same(destination, store)
        run = _Run(
            settings=settings,
            info=info,
            connector=connector,
            credential=credential,
            ledger=store,
            destination=destination,
            test_run=test_run,
            options=client_options(settings, credential, options),
            batch_size=batch_size,
            progress=progress,
        )
        with sync_lock(store, destination, settings.name):
            return run.execute()
    finally:
        if owned_destination and destination is not None:
            destination.close()
        if owned_store:
            store.close()


def _is_same(destination: Destination, ledger: Ledger) -> bool:
    return destination is ledger  # type: ignore[comparison-overlap]


def destination_of(settings: IntegrationSettings, ledger: Ledger) -> Destination:
    """The integration's ``[destination]``, or the ledger's own SQLite file.

    :raises ConfigurationError: it names none and the ledger holds no people.
    """
    from ..destinations import open_destination

    if settings.destination is not None:
        from ..connectors import get_connector

        # People read back (presets, plans) carry the mapping's field names.
        names = get_connector(settings.vendor).person_fields(settings)
        return open_destination(
            settings.destination,
            ledger=ledger,
            person_fields=names,
            sync_key=sync_key_of(settings),
        )
    if not isinstance(ledger, Destination):
        raise ConfigurationError(
            f"the integration '{settings.name}' names no [destination] and the ledger "
            f"{ledger!r} holds no people; give a destination"
        )
    return ledger


@attrs.define
class _KeptAsIs:
    """A batch's members that write nothing, listed after the same mapped records of it."""

    after: int
    """The batch's mapped records listed before them: those claim their sync values first."""
    unchanged: list[tuple[str, str]] = attrs.field(factory=list)
    """``(vendor_user_id, sync_value)`` of members whose fingerprint says they write nothing."""
    recalled_inactive: list[tuple[str, str]] = attrs.field(factory=list)
    """The same, for deactivated members of pages recognised *apart* (written last)."""
    recalled: list[RecalledPage] = attrs.field(factory=list)
    """Pages recognised by their bytes: each of their members writes nothing."""


@attrs.define
class _Batch:
    size: int = 0
    skipped: list[str] = attrs.field(factory=list)
    mapped: list[MappedRecord] = attrs.field(factory=list)
    failed: list[RecordError] = attrs.field(factory=list)
    kept: list[_KeptAsIs] = attrs.field(factory=list)
    """The members that write nothing, in listing order between the mapped records.

    Two members found unchanged never share a sync value unless they are one
    user listed twice (each was found the holder of its value, linked by its own
    user id), so the order within one :class:`_KeptAsIs` does not matter.
    """
    fingerprints: dict[str, tuple[str, bool]] = attrs.field(factory=dict)
    """vendor user id -> ``(fingerprint, active)`` of the mapped records."""
    pages: list[ReadPage] = attrs.field(factory=list)
    """Pages read whole, to be recognised by the next run."""
    deactivated: bool = False
    """It holds the run's deactivated members (written after every active one)."""

    def as_is(self) -> _KeptAsIs:
        """The members that write nothing listed since the batch's last mapped record."""
        kept = self.kept
        if not kept or kept[-1].after != len(self.mapped):
            kept.append(_KeptAsIs(len(self.mapped)))
        return kept[-1]


_FINGERPRINT_FORMAT = "2"
"""Bumped when what a fingerprint covers changes: every member is mapped again once."""

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # the `fast` extra is not installed
    _orjson = None


def _refuse(value: Any) -> Any:
    raise TypeError  # not plain decoded JSON: the member's repr is hashed instead


_ORJSON_PLAIN = (
    0
    if _orjson is None
    else _orjson.OPT_PASSTHROUGH_DATETIME
    | _orjson.OPT_PASSTHROUGH_DATACLASS
    | _orjson.OPT_PASSTHROUGH_SUBCLASS
)


def member_fingerprint(salt: bytes, raw: Any) -> str:
    """The fingerprint of what one member writes: the run's *salt* and the vendor's JSON.

    The member as orjson encodes it (when installed), else its ``repr``:
    either is deterministic (keys keep the order the vendor sent them in) and
    costs a fraction of reading and mapping the member; a vendor that
    reorders keys only costs a re-map. orjson writes NaN as ``null``, so a
    member whose encoding holds a ``null`` is hashed by its ``repr`` too, and
    the two forms are told apart by their first byte.
    """
    if _orjson is not None:
        try:
            encoded = _orjson.dumps(raw, default=_refuse, option=_ORJSON_PLAIN)
        except TypeError:  # a lone surrogate, a huge integer, a non-JSON object
            encoded = b"null"
        if b"null" not in encoded:
            digest = _blake2b(b"o", key=salt, digest_size=16)
            digest.update(encoded)
            return digest.hexdigest()
    digest = _blake2b(b"r", key=salt, digest_size=16)
    digest.update(repr(raw).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


_blake2b = hashlib.blake2b


def _dumps_json(members: dict[str, str]) -> str | None:
    """A page's members as JSON, or ``None`` when text in them cannot be (a lone surrogate)."""
    if _orjson is not None:
        try:
            return str(_orjson.dumps(members), "utf-8")
        except TypeError:  # orjson.JSONEncodeError
            return None
    import json

    try:
        return json.dumps(members, separators=(",", ":"), ensure_ascii=False).encode().decode()
    except UnicodeEncodeError:
        return None


class _Run:
    def __init__(
        self,
        *,
        settings: IntegrationSettings,
        info: VendorInfo,
        connector: Connector,
        credential: Credential,
        ledger: Ledger,
        destination: Destination,
        test_run: bool,
        options: ClientOptions,
        batch_size: int,
        progress: Callable[[SyncProgress], None] | None,
    ) -> None:
        self.settings = settings
        self.info = info
        self.connector = connector
        self.credential = credential
        self.ledger = ledger
        self.destination = destination
        self.test_run = test_run
        self.options = options
        self.batch_size = batch_size
        self.progress = progress
        self.mapping = effective_mapping(settings, info)
        self.filters = effective_filters(settings, info)
        self.custom_fields = custom_fields_of(self.mapping, info)
        self.plan = SyncPlan(
            integration=settings.name,
            vendor=info.name,
            sync_key=sync_key_of(settings) or "email",
            preference=settings.preference,
            selection=settings.selection,
            declared_unique=frozenset(f.label for f in self.custom_fields if f.unique),
        )
        self.sync_time = datetime.now(UTC)
        self.fingerprint_salt = self.configuration_digest()
        self.processed = 0
        self.counts = SyncCounts()
        self.portion: Portion | None = None
        self.handed_to_portion = 0
        """Records given to the portion, which only the server's outcome counts."""
        self.session_id = ""
        self.phase = SyncPhase.CONNECTING
        self.phase_done = 0
        self.phase_total: int | None = None
        self.vendor_session: VendorSession | None = None
        self.waiting: Wait | None = None
        self.waiting_until = 0.0
        self.page_book: PageBook | None = None

    def report(self) -> None:
        """Tell the progress callback where the run is (only called when there is one)."""
        assert self.progress is not None
        waiting = self.waiting if time.monotonic() < self.waiting_until else None
        total = self.phase_total
        if self.phase is not SyncPhase.LAST_LOGINS:
            done = self.processed
            total = self.vendor_session.expected_total if self.vendor_session else None
        else:
            done = self.phase_done
        self.progress(
            SyncProgress(self.session_id, self.settings.name, self.processed, self.counts,
                         self.phase, done, total, waiting)
        )  # fmt: skip

    def enter(self, phase: SyncPhase, total: int | None = None) -> None:
        self.phase, self.phase_done, self.phase_total = phase, 0, total
        if self.progress is not None:
            self.report()

    def heard_wait(self, wait: Wait) -> None:
        self.waiting, self.waiting_until = wait, time.monotonic() + wait.seconds
        self.report()

    def configuration_digest(self) -> bytes | None:
        """A digest of everything besides the member's JSON that decides what a member writes.

        A member's fingerprint is keyed on it, so a changed mapping, filter,
        sync key, preference, setting or SDK/plugin version re-maps every
        member. ``None`` when fingerprints cannot stand for the write: a
        create-only run (an existing person is skipped, not unchanged), or a
        mapping or filter that reads the run's time into a field that counts.
        """
        plan = self.plan
        if plan.preference == SyncPreference.CREATE_ONLY:
            return None
        for item in self.mapping:
            if normalize_target(item.target) in plan.tracking_fields:
                continue
            if item.source in plan.tracking_fields:
                return None
            if item.expression is not None and _variables_of(item.expression) & (
                {"sync_time"} | plan.tracking_fields
            ):
                return None
        for expression in self.filters:
            if filter_variables(expression) & ({"sync_time"} | plan.tracking_fields):
                return None
        plugin = sys.modules.get(type(self.connector).__module__.partition(".")[0])
        described = (
            _FINGERPRINT_FORMAT,
            __version__,
            getattr(plugin, "__version__", None),
            type(self.connector).__qualname__,
            self.info.name,
            self.info.api_version,
            self.info.fields,
            self.mapping,
            self.filters,
            plan.sync_key,
            plan.preference,
            plan.selection,
            plan.tracking_fields,
            self.settings.default_role,
            sorted(self.connector.effective_settings(self.settings.settings).items()),
        )
        return hashlib.blake2b(repr(described).encode(), digest_size=32).digest()

    def context(self) -> dict[str, Any]:
        return {
            "sync_time": self.sync_time,
            "api_version": self.info.api_version,
            "vendor": self.info.name,
            "integration": self.settings.name,
            "default_role": self.settings.default_role,
            "settings": self.connector.effective_settings(self.settings.settings),
        }

    def define_custom_fields(self) -> None:
        existing = {field.label: field for field in self.destination.custom_fields()}
        for field in self.custom_fields:
            known = existing.get(field.label)
            # Never downgrade: another integration may rely on a unique field.
            if known is None or (field.unique and not known.unique):
                self.destination.define_custom_field(field)

    def execute(self) -> SyncSession:
        if not self.test_run:
            self.define_custom_fields()
        self.destination.prepare_run(self.plan, test_run=self.test_run)
        session = self.ledger.start_session(self.plan, test_run=self.test_run)
        self.session_id = session.id
        book = self.ledger.run_book(session.id)
        self.rules = BatchRules(self.destination, book, self.plan, test_run=self.test_run)
        log.info(
            "sync %s of integration %s (%s) into %r started%s",
            session.id,
            self.settings.name,
            self.info.name,
            self.destination,
            " as a test run" if self.test_run else "",
        )
        status = SyncStatus.SUCCEEDED
        message: str | None = None
        complete = False
        vendor_session: VendorSession | None = None
        # The destination's own pauses (Oomnitza's rate limit) are shown too.
        destination_http = getattr(self.destination, "client", None)
        if not isinstance(destination_http, HttpClient) or self.progress is None:
            destination_http = None
        try:
            if destination_http is not None:
                destination_http.wait_listener = self.heard_wait
            if self.destination.matches_by_sync_key:
                self.portion = self.destination.open_portion(self.plan, session, self.ledger)
            # The plugin builds the vendor's client and checks the credential
            # before returning it: its retries are heard through the options.
            vendor_options = self.options
            if self.progress is not None:
                vendor_options = attrs.evolve(vendor_options, wait_listener=self.heard_wait)
            vendor_session = self.connector.authenticate(
                self.credential, self.settings.settings, options=vendor_options
            )
            vendor_session.wanted_fields = fields_read(self.mapping, self.filters)
            salt = self.member_salt()
            if salt is not None and not self.test_run and self.destination.remembers_pages:
                self.page_book = PageBook(self.destination, self.plan, salt)
                vendor_session.page_memo = self.page_book
            if self.progress is not None:
                self.vendor_session = vendor_session
                vendor_session.http.wait_listener = self.heard_wait
                self.enter(SyncPhase.LISTING)
            # Last logins are fetched while the users sync (vendors budget each
            # endpoint separately), spooled to disk, and applied afterwards.
            logins = self.start_last_logins(vendor_session)
            try:
                self.sync_users(
                    session.id,
                    read_ahead(
                        self.connector.list_user_records(vendor_session), ends_chunk=is_page_mark
                    ),
                )
                self.count_listed_non_users(session.id, vendor_session)
                if self.page_book is not None:
                    self.destination.keep_pages(self.plan, self.page_book.digests)
                complete = True
                message = self.sync_last_logins(logins)
            finally:
                if logins is not None:
                    logins.close()
        except OomnitzaConnectError as exc:
            status = SyncStatus.FAILED
            message = redact(str(exc))
            log.error("sync %s failed: %s", session.id, message)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            if self.portion is not None:
                self.portion.abandon()
            self.ledger.finish_session(
                session.id,
                status=SyncStatus.INTERRUPTED if interrupted else SyncStatus.FAILED,
                message=redact(f"{exc.__class__.__name__}: {exc}"),
            )
            raise
        finally:
            if self.page_book is not None:
                self.page_book.close()
            if vendor_session is not None:
                vendor_session.close()
            if destination_http is not None:
                destination_http.wait_listener = None
        self.enter(SyncPhase.FINALIZING)
        if self.portion is not None:
            problem, confirmed = self.finish_portion(session.id, message if not complete else None)
            message = problem or message
            if not confirmed:
                # Nothing the run sent is known to have arrived (a refused token, an
                # unreachable server): a failed run, not one that completed.
                status = SyncStatus.FAILED
        vanished: list[VanishedPerson] = []
        # A run the destination did not confirm is failed, and a failed run marks
        # nobody: what it saw is not known to be what the destination holds.
        if complete and status != SyncStatus.FAILED:
            vanished, refusal = self.vanished(session.id, book)
            message = refusal or message
        if status == SyncStatus.SUCCEEDED and (self.counts.failed or message):
            status = SyncStatus.COMPLETED_WITH_ERRORS
        finished = self.ledger.finish_session(
            session.id, status=status, message=message, vanished=vanished
        )
        log.info(
            "sync %s finished %s: %s created, %s updated, %s unchanged, %s skipped, "
            "%s failed, %s vanished",
            finished.id,
            finished.status.value,
            finished.counts.created,
            finished.counts.updated,
            finished.counts.unchanged,
            finished.counts.skipped,
            finished.counts.failed,
            finished.counts.vanished,
        )
        if self.test_run:
            # The plan is what a test run is for: return the session as stored,
            # payload included (a real run keeps none).
            stored = self.ledger.get_session(finished.id, with_payload=True)
            if stored is not None:
                return stored
        return finished

    def finish_portion(self, session_id: str, fatal: str | None) -> tuple[str | None, bool]:
        """Finalize the portion and record the server's outcome.

        :returns: a problem, if any, and whether the server confirmed the run; when it
            did not, the records handed to it are counted as failed.
        """
        assert self.portion is not None
        try:
            result = self.portion.finish(fatal=fatal)
        except OomnitzaConnectError as exc:
            unconfirmed = self.handed_to_portion
            problem = redact(
                f"the destination did not confirm the run ({unconfirmed} records not "
                f"known to have arrived): {exc}"
            )
            log.error("sync %s: %s", session_id, problem)
            if unconfirmed:
                outcome = BatchOutcome(counts=SyncCounts(failed=unconfirmed))
                self.ledger.record_batch(session_id, outcome)
                self.add_counts(outcome)
            return problem, False
        outcome = BatchOutcome(counts=result.counts, errors=result.errors, payload=result.payload)
        self.ledger.record_batch(session_id, outcome)
        self.add_counts(outcome)
        return result.message, True

    def vanished(self, session_id: str, book: RunBook) -> tuple[list[VanishedPerson], str | None]:
        """Who the vendor no longer returns; marked (or, in a test run, planned).

        :returns: the vanished people, and why nobody was marked when the safeguard
            (:func:`mass_vanish_refusal`) held them back.
        """
        limit = self.settings.vanish_limit_percent
        vanished: list[VanishedPerson] = []
        asked = limit < 100 or self.test_run
        if asked:
            # Who would vanish, asked first (nothing written) so that a refusal
            # leaves the destination and the members as they were.
            vanished = self._vanish(book, test_run=True)
            counts = self.counts
            refusal = mass_vanish_refusal(
                len(vanished),
                listed=counts.total,
                still_here=counts.updated + counts.unchanged + counts.failed,
                limit_percent=limit,
            )
            if refusal is not None:
                log.error("sync %s: %s", session_id, refusal)
                return [], refusal
        # Asked and nobody would vanish: a SQLite-like destination has nothing to
        # mark; one that matches by sync key still records this run's members.
        if not self.test_run and (not asked or vanished or self.destination.matches_by_sync_key):
            vanished = self._vanish(book, test_run=False)
        if self.test_run:
            plan_entries = tuple(
                {"action": "vanish", "vendor_user_id": v.vendor_user_id, "sync_value": v.sync_value}
                for v in vanished
            )
            if plan_entries:
                self.ledger.record_batch(
                    session_id, BatchOutcome(counts=SyncCounts(), payload=plan_entries)
                )
        elif vanished:
            self.destination.mark_vanished(self.plan, vanished)
        return vanished, None

    def _vanish(self, book: RunBook, *, test_run: bool) -> list[VanishedPerson]:
        if self.destination.matches_by_sync_key:
            return self.ledger.remember_members(self.plan.integration, book, test_run=test_run)
        return self.destination.vanish(self.plan, book, test_run=test_run)

    def count_listed_non_users(self, session_id: str, vendor_session: VendorSession) -> None:
        """Count the entries the vendor listed that are not users (Intercom's old team
        entries, ``RestVendor.skip_reason``) as skipped: never records, never errors."""
        skipped = vendor_session.skipped
        total = sum(skipped.values())
        if not total:
            return
        outcome = BatchOutcome(
            counts=SyncCounts(skipped=total),
            payload=tuple(
                {"action": "skip", "vendor_user_id": None, "reason": reason, "count": count}
                for reason, count in sorted(skipped.items())
            )
            if self.test_run
            else (),
        )
        self.ledger.record_batch(session_id, outcome)
        self.add_counts(outcome)
        if self.progress is not None:
            self.progress(SyncProgress(session_id, self.settings.name, self.processed, self.counts))

    def write_batch(self, session_id: str, batch: _Batch) -> BatchOutcome:
        """Apply the sync rules to one batch and hand it to the destination."""
        if self.portion is None:
            counted: list[BatchOutcome] = []

            def count(kept: _KeptAsIs) -> None:
                counted.extend(
                    self.record_kept_as_is(session_id, kept, deactivated=batch.deactivated)
                )

            # Each claims its sync values where it was listed among the mapped
            # records, so the first one listed keeps a value, recognised or not.
            outcome = apply_batch(
                self.ledger,
                self.destination,
                session_id,
                self.plan,
                batch.mapped,
                failed=batch.failed,
                skipped=batch.skipped,
                test_run=self.test_run,
                rules=self.rules,
                unchanged_claims=[
                    (kept.after, functools.partial(count, kept)) for kept in batch.kept
                ],
            )
            if batch.fingerprints and not self.test_run:
                self.remember_fingerprints(batch, outcome)
            if batch.pages and not self.test_run:
                self.destination.remember_pages(self.plan, batch.pages)
            for before in counted:
                outcome = BatchOutcome(
                    counts=_sum_counts(before.counts, outcome.counts),
                    errors=before.errors + outcome.errors,
                )
            return outcome
        # The server matches and decides; the run's own rules (sync values
        # missing or repeated) apply here, and failures go along as error records.
        errors = list(batch.failed)
        keyed = self.rules.keyed(batch.mapped, errors)
        self.rules.book.mark_seen(
            [(record.vendor_user_id, value) for record, value, _ in keyed]
            + [(e.vendor_user_id, None) for e in errors if e.vendor_user_id is not None]
        )
        self.portion.send([record for record, _, _ in keyed], errors)
        self.handed_to_portion += len(keyed)
        outcome = BatchOutcome(
            counts=SyncCounts(skipped=len(batch.skipped), failed=len(errors)),
            errors=tuple(errors),
            payload=tuple(
                {"action": "skip", "vendor_user_id": user_id, "reason": "left out by the filters"}
                for user_id in batch.skipped
            )
            if self.test_run
            else (),
        )
        self.ledger.record_batch(session_id, outcome)
        return outcome

    def record_kept_as_is(
        self, session_id: str, kept: _KeptAsIs, *, deactivated: bool
    ) -> list[BatchOutcome]:
        """Count members that write nothing (:meth:`record_unchanged`, :meth:`record_recalled`).

        :param deactivated: they are deactivated members, written last.
        """
        if deactivated and self.rules.contested.count:
            # As a mapped one is (BatchRules.decide): the person of a deactivated
            # account gives a unique value it holds to an active one. Only the
            # contested records ask, at the run's end, and every active record was
            # decided before the first deactivated one is written.
            self.rules.book.mark_inactive(
                [user_id for user_id, _ in (*kept.unchanged, *kept.recalled_inactive)]
            )
        outcomes = (
            self.record_unchanged(session_id, kept.unchanged),
            self.record_unchanged(session_id, kept.recalled_inactive, recalled_apart=True),
            self.record_recalled(session_id, kept.recalled),
        )
        return [outcome for outcome in outcomes if outcome is not None]

    def record_unchanged(
        self,
        session_id: str,
        unchanged: Sequence[tuple[str, str]],
        *,
        recalled_apart: bool = False,
    ) -> BatchOutcome | None:
        """Count the members whose fingerprint says they write nothing.

        Their sync values take part in the run's duplicate rule and they count
        as seen, so vanished detection is the same as for mapped members.

        :param recalled_apart: they are deactivated members of pages recognised
            apart (:meth:`RunBook.repeated_recalled`).
        """
        if not unchanged:
            return None
        book = self.rules.book
        ask = book.repeated_recalled if recalled_apart else book.repeated
        mark_seen = book.mark_recalled_seen if recalled_apart else book.mark_seen
        repeated = ask(list(dict.fromkeys(value for _, value in unchanged)))
        errors: list[RecordError] = []
        kept: list[tuple[str, str]] = []
        in_batch: set[str] = set()
        for user_id, value in unchanged:
            # A value twice in the batch (a user listed twice) is a repeat the
            # second time, as in a sync that maps them (BatchRules.keyed).
            if value in repeated or value in in_batch:
                errors.append(
                    RecordError(
                        user_id,
                        f"another record in this run already has {self.plan.sync_key} "
                        f"{value!r}; the first one was kept",
                        self.plan.sync_key,
                    )
                )
            else:
                in_batch.add(value)
                kept.append((user_id, value))
        mark_seen([*kept, *((e.vendor_user_id or "", None) for e in errors)])
        payload: tuple[Mapping[str, Any], ...] = ()
        if self.test_run:
            payload = tuple(
                {"vendor_user_id": user_id, "sync_value": value, "action": "unchanged"}
                for user_id, value in kept
            ) + tuple(
                {"action": "fail", "vendor_user_id": e.vendor_user_id, "reason": e.reason,
                 "field": e.field}
                for e in errors
            )  # fmt: skip
        outcome = BatchOutcome(
            counts=SyncCounts(unchanged=len(kept), failed=len(errors)),
            errors=tuple(errors),
            payload=payload,
        )
        self.ledger.record_batch(session_id, outcome)
        return outcome

    def record_recalled(
        self, session_id: str, pages: Sequence[RecalledPage]
    ) -> BatchOutcome | None:
        """Count the members of pages recognised by their bytes, as :meth:`record_unchanged` does.

        One statement per page puts their sync values and "seen" into the run's book.
        """
        if not pages:
            return None
        key = self.plan.sync_key
        errors: list[RecordError] = []
        unchanged = skipped = 0
        for page in pages:
            repeated = self.rules.book.mark_unchanged(
                page.active, page.active_count, apart=page.apart
            )
            unchanged += page.active_count - len(repeated)
            skipped += page.skipped
            errors.extend(
                RecordError(
                    user_id,
                    f"another record in this run already has {key} {value!r}; "
                    "the first one was kept",
                    key,
                )
                for user_id, value in repeated
            )
        outcome = BatchOutcome(
            counts=SyncCounts(unchanged=unchanged, skipped=skipped, failed=len(errors)),
            errors=tuple(errors),
        )
        self.ledger.record_batch(session_id, outcome)
        return outcome

    def member_salt(self) -> bytes | None:
        """The key of the run's fingerprints, or ``None`` when nothing vouches for them."""
        if not _only_builtin_mapping(get_plugin_manager().hook.map_record):
            return None  # another plugin's mapping hook: nothing vouches for its output
        if self.destination.matches_by_sync_key:
            return None  # the destination's server decides what is unchanged
        return self.fingerprint_salt

    def remember_fingerprints(self, batch: _Batch, outcome: BatchOutcome) -> None:
        """Remember the fingerprints of the batch's members that were written (or unchanged)."""
        # Nor those waiting for the run's end (contested): they may fail then.
        failed = {e.vendor_user_id for e in outcome.errors} | self.rules.contested_in_batch
        key = self.plan.sync_key
        members: list[tuple[str, str, str, bool]] = []
        for record in batch.mapped:
            found = batch.fingerprints.get(record.vendor_user_id)
            value = record.fields.get(key)
            if found is None or value is None or value == "" or record.vendor_user_id in failed:
                continue
            members.append((record.vendor_user_id, found[0], key_text(value), found[1]))
        self.destination.remember_fingerprints(self.plan, members)

    def sync_users(self, session_id: str, records: Iterator[VendorRecord | UnreadRecord]) -> None:
        # Batches are written by one writer thread, in order, while the next
        # batch is mapped (SQLite releases the GIL while it works). At most
        # _WAITING_BATCHES wait for it, so memory stays flat.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oomnitza-connect-writer")
        in_flight: deque[tuple[Future[BatchOutcome], int]] = deque()
        # Once a batch fails, the batches queued behind it are not written: the
        # run ends at the first failed batch, whatever the threads' timing.
        write_failed = threading.Event()

        def write(batch: _Batch) -> BatchOutcome:
            if write_failed.is_set():
                raise RuntimeError("an earlier batch failed")
            try:
                return self.write_batch(session_id, batch)
            except BaseException:
                write_failed.set()
                raise

        try:
            with _fewer_collections():
                for batch in self.mapped_batches(records):
                    while len(in_flight) >= _WAITING_BATCHES:
                        self.collect(session_id, *in_flight.popleft())
                    in_flight.append((writer.submit(write, batch), batch.size))
                while in_flight:
                    self.collect(session_id, *in_flight.popleft())
                if self.portion is None:
                    # Active accounts whose unique value a stored person held, now
                    # that the run knows which accounts are deactivated or gone.
                    for contested in self.rules.contested_batches(self.batch_size):
                        self.collect(session_id, writer.submit(write, _Batch(mapped=contested)), 0)
        finally:
            for future, _ in in_flight:
                future.cancel()
            writer.shutdown(wait=True)

    def mapped_batches(self, records: Iterator[VendorRecord | UnreadRecord]) -> Iterator[_Batch]:
        """Filter and map *records*, yielding them a batch at a time."""
        hook: Callable[..., Any] = get_plugin_manager().hook.map_record
        mapping = self.mapping
        salt = self.member_salt()
        if _only_builtin_mapping(hook):
            # Nothing but the core's own implementation: skip the hook machinery,
            # and resolve targets, sources and converters once for the run.
            hook = _builtin_mapper(mapping)
        context = self.context()
        # Filters are given only the variables they read; plain ones run as
        # Python closures, the rest as one sandboxed expression.
        filters = self.filters
        passes = compile_filters(
            (" and ".join(f"({f})" for f in filters),) if len(filters) > 1 else filters
        )
        filter_names: set[str] = set()
        for expression in filters:
            filter_names |= filter_variables(expression)
        default_role = self.settings.default_role
        vendor = self.info.name
        # Deactivated and deleted accounts are written after every active one, so
        # that an active account wins a unique value (a re-hired person's email)
        # whatever order the vendor lists them in. Spooled to disk: memory stays flat.
        deferred = _DeferredRecords()
        batch = _Batch()
        # The members of the page being read (their fingerprints), so that the
        # next run can recognise it whole (sync/pages.py).
        page_prints: dict[str, str] = {}
        page_whole = True
        page_skipped = 0
        # Members are looked up (fingerprints) a few hundred at a time: each
        # holds its decoded JSON until it is mapped, so memory stays small.
        for chunk in _lookup_chunks(records, min(self.batch_size, _LOOKUP_SIZE)):
            prints: dict[str, str] = {}
            unchanged: dict[str, tuple[str, bool]] = {}
            ids = [item.id_hint() if type(item) is UnreadRecord else _id_of(item) for item in chunk]
            if salt is not None:
                for item, user_id in zip(chunk, ids, strict=True):
                    raw = _fingerprinted(item)
                    if user_id is not None and raw is not None:
                        prints[user_id] = member_fingerprint(salt, raw)
                unchanged = self.destination.unchanged_members(self.plan, prints)
            for item, record_id in zip(chunk, ids, strict=True):
                kind: type[Any] = type(item)
                if record_id is None and kind is PageRead:
                    assert isinstance(item, PageRead)
                    members = _dumps_json(page_prints) if page_whole else None
                    if members is not None:
                        batch.pages.append(item.remembered(members, len(page_prints), page_skipped))
                    page_prints, page_whole, page_skipped = {}, True, 0
                    continue
                if record_id is None and kind is RecalledPage:
                    assert isinstance(item, RecalledPage)
                    page_prints, page_whole, page_skipped = {}, True, 0
                    batch.as_is().recalled.append(item)
                    batch.size += item.active_count + item.skipped
                    for user_id, value in item.inactive:
                        # Counted when written, at the end.
                        deferred.add_unchanged(user_id, value, recalled_apart=item.apart)
                    if batch.size >= self.batch_size:
                        yield batch
                        batch = _Batch()
                    continue
                batch.size += 1
                same = unchanged.get(record_id) if record_id is not None else None
                if record_id is None or record_id in page_prints:
                    page_whole = False  # a page holding one user twice is read every time
                if same is not None and record_id is not None:
                    page_prints[record_id] = prints[record_id]
                    # Nothing to read, map or compare: it writes what it wrote last time.
                    if same[1]:
                        batch.as_is().unchanged.append((record_id, same[0]))
                    else:
                        deferred.add_unchanged(record_id, same[0])
                        batch.size -= 1
                    if batch.size >= self.batch_size:
                        yield batch
                        batch = _Batch()
                    continue
                try:
                    # Read here, inside the per-record handling, so that a user the
                    # plugin cannot read fails alone, for every vendor.
                    record = read_record(item) if isinstance(item, UnreadRecord) else item
                    record_id = record.id
                    if not record_id.isascii():
                        check_text({"id": record_id})  # stored as the member's key
                    if filters and not passes(variables_for(filter_names, record, context)):
                        batch.skipped.append(record.id)
                        page_skipped += 1
                    else:
                        fields = hook(
                            vendor=vendor, record=record, mapping=mapping, context=context
                        )
                        if fields is None:
                            raise PluginError(f"no plugin implements 'map_record' for '{vendor}'")
                        if default_role and fields.get("role") in (None, ""):
                            fields["role"] = default_role
                        role = fields.get(SAAS_ROLE_TARGET) or fields.get("role")
                        check_text(fields)
                        mapped = MappedRecord(
                            record.id, fields, None if role is None else str(role), record.active
                        )
                        fingerprint = prints.get(record.id)
                        if fingerprint is None:
                            page_whole = False
                        else:
                            page_prints[record.id] = fingerprint
                        if record.active:
                            batch.mapped.append(mapped)
                            if fingerprint is not None:
                                batch.fingerprints[record.id] = (fingerprint, True)
                        else:
                            deferred.add(mapped, fingerprint)
                            batch.size -= 1  # counted when it is written, at the end
                except OomnitzaConnectError as exc:
                    page_whole = False
                    batch.failed.append(
                        _record_error(record_id, str(exc), getattr(exc, "field", None))
                    )
                except (ArithmeticError, ValueError, TypeError, LookupError) as exc:
                    # A mapping hook or converter tripping over one user's odd value.
                    page_whole = False
                    batch.failed.append(
                        _record_error(record_id, f"{exc.__class__.__name__}: {exc}")
                    )
                if batch.size >= self.batch_size:
                    yield batch
                    batch = _Batch()
        if deferred.count:
            # The listing's last active records go first, in a batch of their own:
            # a batch's records claim unique values in their order, and a
            # deactivated member must not take one from an active record of its batch.
            if batch.size or batch.pages or batch.kept:
                yield batch
            batch = _Batch(deactivated=True)
        self.enter(SyncPhase.WRITING)
        with deferred:
            for entry in deferred:
                batch.size += 1
                if isinstance(entry, MappedRecord):
                    batch.mapped.append(entry)
                    fingerprint = deferred.fingerprints_of(entry)
                    if fingerprint is not None:
                        batch.fingerprints[entry.vendor_user_id] = (fingerprint, False)
                else:
                    user_id, sync_value, recalled_apart = entry
                    kept = batch.as_is()
                    (kept.recalled_inactive if recalled_apart else kept.unchanged).append(
                        (user_id, sync_value)
                    )
                if batch.size >= self.batch_size:
                    yield batch
                    batch = _Batch(deactivated=True)
        if batch.size or batch.pages:
            # A page's mark may follow its last user into a batch of its own: a
            # listing that ends on a full batch still remembers its last page.
            yield batch

    def collect(self, session_id: str, future: Future[BatchOutcome], size: int) -> None:
        """Wait for one written batch and account for it (its errors raise here)."""
        outcome = future.result()
        self.processed += size
        self.add_counts(outcome)
        log.debug("sync %s: %s records processed", session_id, self.processed)
        if self.progress is not None:
            self.report()

    def add_counts(self, outcome: BatchOutcome) -> None:
        self.counts = _sum_counts(self.counts, outcome.counts)

    def start_last_logins(self, vendor_session: VendorSession) -> _SpooledLogins | None:
        """Start fetching last logins in the background, when the vendor has them."""
        try:
            logins = self.connector.list_last_logins(vendor_session)
        except OomnitzaConnectError as exc:
            return _SpooledLogins.failed(exc)
        return None if logins is None else _SpooledLogins(logins)

    def sync_last_logins(self, logins: _SpooledLogins | None) -> str | None:
        """Write the fetched last logins; return a problem, if any."""
        if logins is None:
            return None
        self.enter(SyncPhase.LAST_LOGINS)
        pairs = logins.pairs()
        if self.progress is not None:
            pairs = self.counted_logins(logins, pairs)
        if self.test_run:
            # A test run writes nothing; the fetched logins are dropped.
            for _ in pairs:
                pass
            return None
        try:
            changed = self.destination.apply_last_logins(self.info.name, pairs)
        except OomnitzaConnectError as exc:
            return redact(f"the users synced, but last logins could not be read: {exc}")
        log.info("last logins: %s people changed", changed)
        return None

    def counted_logins(
        self, logins: _SpooledLogins, pairs: Iterator[tuple[str, datetime]]
    ) -> Iterator[tuple[str, datetime]]:
        """*pairs*, reporting every few hundred applied (the count is known once fetched)."""
        for applied, pair in enumerate(pairs):
            if applied == 0:
                self.phase_total = logins.count
            if applied % _LOGINS_PER_REPORT == 0:
                self.phase_done = applied
                self.report()
            yield pair
        self.phase_done = self.phase_total = logins.count
        self.report()


_LOGINS_PER_REPORT = 500
"""Last logins applied between two progress reports."""


class _SpooledLogins:
    """Last logins fetched by a background thread into a temporary file.

    A file rather than a list keeps memory flat however many users the
    vendor has; the pairs are read back, in order, once the users are synced.
    """

    def __init__(self, logins: Iterable[Mapping[str, Any]] | None) -> None:
        # Closed in close(), which the run calls in a finally block.
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.count = 0
        """Last logins fetched so far (all of them once :meth:`pairs` yields)."""
        if logins is not None:
            self._thread = threading.Thread(
                target=self._pump, args=(logins,), name="oomnitza-connect-last-logins",
                daemon=True,
            )  # fmt: skip
            self._thread.start()

    @classmethod
    def failed(cls, error: BaseException) -> _SpooledLogins:
        spooled = cls(None)
        spooled._error = error
        return spooled

    def _pump(self, logins: Iterable[Mapping[str, Any]]) -> None:
        writer = csv.writer(self._file)
        try:
            for user_id, when in _login_pairs(logins):
                if self._stop.is_set():
                    return
                writer.writerow((user_id, when.isoformat()))
                self.count += 1
        except BaseException as exc:  # raised in the syncing thread by pairs()
            self._error = exc

    def pairs(self) -> Iterator[tuple[str, datetime]]:
        """Wait for the fetching to finish and yield ``(vendor_user_id, last_login)``."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        self._file.seek(0)
        for user_id, when in csv.reader(self._file):
            yield user_id, datetime.fromisoformat(when)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._file.close()


class _DeferredRecords:
    """Deactivated members kept in a temporary file until the active ones are written.

    Each is a mapped record (with its fingerprint, if any) or an unchanged
    member's ``(vendor_user_id, sync_value)``.
    """

    def __init__(self) -> None:
        self._file: Any = None
        self.count = 0
        self._fingerprint: str | None = None

    def _dump(self, entry: tuple[Any, ...]) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        pickle.dump(entry, self._file)
        self.count += 1

    def add(self, record: MappedRecord, fingerprint: str | None = None) -> None:
        self._dump(("mapped", record.vendor_user_id, dict(record.fields), record.role, fingerprint))

    def add_unchanged(
        self, vendor_user_id: str, sync_value: str, *, recalled_apart: bool = False
    ) -> None:
        self._dump(("unchanged", vendor_user_id, sync_value, recalled_apart))

    def fingerprints_of(self, record: MappedRecord) -> str | None:
        """The fingerprint of the record :meth:`__iter__` yielded last."""
        return self._fingerprint

    def __iter__(self) -> Iterator[MappedRecord | tuple[str, str, bool]]:
        """Yield each in order: a record, or ``(user id, sync value, recalled apart)``
        of an unchanged member (:meth:`add_unchanged`)."""
        if self._file is None:
            return
        self._file.seek(0)
        for _ in range(self.count):
            entry = pickle.load(self._file)  # noqa: S301 - our own file
            if entry[0] == "unchanged":
                yield entry[1:]
                continue
            _, user_id, fields, role, self._fingerprint = entry
            yield MappedRecord(user_id, fields, role, active=False)

    def __enter__(self) -> _DeferredRecords:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()


MASS_VANISH_MINIMUM = 10
"""Fewer vanished people than this never trip the percentage safeguard: in a
small account one leaver is a large share."""


def mass_vanish_refusal(
    vanishing: int, *, listed: int, still_here: int, limit_percent: int
) -> str | None:
    """Why a run's *vanishing* people should not be marked, or ``None`` if they may be.

    A vendor that suddenly lists nobody (a token that lost its scope, an emptied
    directory), another tenant's people (a credential pointed elsewhere) or far
    fewer people (a filter changed by mistake) would otherwise mark everyone as
    gone (and, into Oomnitza with ``vanished_field``, PATCH them all). The run
    still syncs what it listed; only the marking waits for a person to look.

    :param listed: the records the run read from the vendor.
    :param still_here: the people the integration already had that this run saw
        (updated, unchanged, or failed and so still present); new people and
        records left out by the filters do not count, so the share is of the
        people the integration knew.
    :param limit_percent: the integration's ``vanish_limit_percent``; 100 turns the
        safeguard off, an empty listing included.
    """
    if not vanishing or limit_percent >= 100:
        return None
    advice = "If they really left, run once with vanish_limit_percent = 100."
    if listed == 0:
        return (
            f"the vendor listed nobody, so all {vanishing} people linked to this integration "
            "would vanish: none was marked. Check the credential's access (a token that "
            f"lost its scope lists nobody). {advice}"
        )
    if vanishing < MASS_VANISH_MINIMUM:
        return None
    share = 100 * vanishing / (vanishing + still_here)
    if share <= limit_percent:
        return None
    return (
        f"{vanishing} of the {vanishing + still_here} people this integration knew "
        f"({share:.0f}%) would vanish, more than vanish_limit_percent = {limit_percent}: "
        f"none was marked. {advice}"
    )


def _sum_counts(total: SyncCounts, got: SyncCounts) -> SyncCounts:
    return SyncCounts(
        created=total.created + got.created,
        updated=total.updated + got.updated,
        unchanged=total.unchanged + got.unchanged,
        skipped=total.skipped + got.skipped,
        failed=total.failed + got.failed,
    )


def _storable(text: str) -> str:
    # A reason may quote the bad value itself; lone surrogates are escaped so
    # that the error can be stored (the point of failing the record alone).
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _record_error(record_id: str | None, reason: str, field: str | None = None) -> RecordError:
    return RecordError(
        None if record_id is None else _storable(record_id), _storable(redact(reason)), field
    )


def check_text(fields: Mapping[str, Any]) -> None:
    """Refuse text that cannot be stored: a lone surrogate (``"\\ud800"``) is not Unicode.

    JSON allows such escapes and Python decodes them, but no UTF-8 store or API
    accepts them; found here, the one user fails instead of the whole batch.
    """
    for key, value in fields.items():
        if value is None or (type(value) is str and value.isascii()):
            continue  # most values: nothing to check
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise MappingError(
                    "holds text that is not valid Unicode (a lone surrogate, such as "
                    f"{value.encode('ascii', 'backslashreplace').decode('ascii')[:60]!r})",
                    field=key,
                ) from None
        elif isinstance(value, list | tuple):
            for item in value:
                check_text({key: item})


def _only_builtin_mapping(hook: Any) -> bool:
    from . import mapping

    impls = hook.get_hookimpls()
    tracing = bool(os.environ.get(TRACE_ENV))
    return not tracing and len(impls) == 1 and impls[0].plugin is mapping


def _builtin_mapper(mapping: tuple[FieldMapping, ...]) -> Callable[..., dict[str, Any]]:
    apply = CompiledMapping(mapping).apply

    def map_record(*, vendor: str, record: VendorRecord, mapping: Any, context: Any) -> Any:
        return apply(record, context)

    return map_record


def _lookup_chunks(
    records: Iterator[VendorRecord | UnreadRecord], size: int
) -> Iterator[list[VendorRecord | UnreadRecord]]:
    """*records* in lists of *size*, each also ending after a page's mark.

    A page recognised whole is one item standing for its users: waiting for
    *size* of them would hold that many pages before the first is written.
    """
    chunk: list[VendorRecord | UnreadRecord] = []
    for item in records:
        chunk.append(item)
        if len(chunk) >= size or is_page_mark(item):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _id_of(item: VendorRecord | UnreadRecord) -> str | None:
    return item.id_hint() if isinstance(item, UnreadRecord) else item.id


def _fingerprinted(item: VendorRecord | UnreadRecord) -> Any:
    """The JSON a member's fingerprint covers, or ``None`` when it has none."""
    raw = item.raw
    if isinstance(item, UnreadRecord):
        return raw if type(raw) is dict or isinstance(raw, Mapping) else None
    return raw or None  # a plugin's record without its JSON: mapped every time


_END = object()

_YOUNG_COLLECTION_EVERY = 10_000
"""Allocations between two young collections during a run (Python's default: 700)."""


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect cycles less often while a run maps its users.

    A run allocates millions of short-lived containers (decoded members, read
    and mapped fields) and makes next to no reference cycles, so reference
    counting frees them; at the default threshold the cyclic collector walked
    them 140 times a 100,000-user run, a tenth of its time. Put back afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], _YOUNG_COLLECTION_EVERY), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@attrs.frozen
class _Raised:
    error: BaseException


def read_ahead(
    records: Iterable[T],
    *,
    chunk: int = 100,
    chunks: int = 4,
    ends_chunk: Callable[[T], bool] | None = None,
) -> Iterator[T]:
    """Yield *records*, fetching them in a background thread while the caller works.

    Fetching pages is mostly waiting for the vendor; mapping and writing are
    mostly CPU. Overlapping them makes a sync cost little more than the
    fetching alone. At most ``chunk * chunks`` records wait in the queue, so
    memory stays flat; an error in the fetching thread is raised here.

    :param ends_chunk: hands the chunk over after a record it is true for (a
        page recognised whole stands for a page of users: it waits for no more).
    """
    pending: queue.Queue[Any] = queue.Queue(maxsize=chunks)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            batch: list[T] = []
            for record in records:
                batch.append(record)
                if len(batch) >= chunk or (ends_chunk is not None and ends_chunk(record)):
                    if not put(batch):
                        return
                    batch = []
            if batch and not put(batch):
                return
            put(_END)
        except BaseException as exc:  # handed to the consuming thread
            put(_Raised(exc))

    thread = threading.Thread(target=pump, name="oomnitza-connect-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = pending.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield from item
    finally:
        stop.set()
        thread.join(timeout=1.0)


def _login_pairs(logins: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, datetime]]:
    for item in logins:
        when = item.get("last_login")
        user_id = item.get("vendor_user_id")
        if when is None or user_id is None:
            continue
        yield str(user_id), to_datetime(when)


def _variables_of(template: str) -> set[str]:
    from ..templating import variables_of  # Jinja: imported by a run that has filters

    return variables_of(template)
