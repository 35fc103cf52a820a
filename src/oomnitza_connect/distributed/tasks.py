"""The Celery tasks: one integration's sync, one preset bulk run, the schedule's upkeep.

``oomnitza_connect.run_integration``
    Runs one launched integration with the same :func:`~oomnitza_connect.run_sync`
    the command line uses, under the integration's run lock
    (:mod:`~oomnitza_connect.distributed.locking`). A run that finds another
    one still going is recorded as a ``skipped`` session and a follow-up run
    is queued for when the other ends. A failed run emails its contacts.
    A sync is idempotent (people are matched by their sync key, a rerun
    converges), so a task whose worker died is delivered again and one that
    raised is retried.
``oomnitza_connect.run_preset_bulk``
    Runs one preset for every matching person. Retried only when the preset
    is safe to repeat (not POST or PATCH, not marked non-idempotent): a
    create or a deactivation sent twice is not.
``oomnitza_connect.refresh_schedule``
    Beat's periodic entries follow the launched integrations; missed runs and
    runs past 24 hours are notified (:mod:`~oomnitza_connect.distributed.schedule`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Task

from ..errors import ConfigurationError, OomnitzaConnectError
from ..models import IntegrationSettings, SyncSession, SyncStatus
from ..presets.people import PeopleDirectory
from .app import app, redis_client, worker_config
from .locking import RunLock, lock_holder

__all__ = ["open_ledger", "refresh_schedule_task", "run_integration", "run_preset_bulk"]

log = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = 600
MAX_RETRIES = 3


@contextmanager
def open_ledger() -> Iterator[Any]:
    """Open this worker's ledger (the store of sessions and integrations) for one task."""
    from ..store.postgres import open_ledger as open_ledger_at

    store = open_ledger_at(worker_config().ledger)
    try:
        yield store
    finally:
        store.close()


def launched_integration(ledger: Any, name: str) -> IntegrationSettings:
    """Load the file of launched integration *name*.

    :raises ConfigurationError: it is not launched, or its file is gone or bad.
    """
    from ..sync.integrations import load_integration

    for entry in ledger.list_integrations(active_only=True):
        if entry.name == name:
            if not entry.source:
                break
            return load_integration(Path(entry.source))
    raise ConfigurationError(
        f"no launched integration named '{name}' in the ledger "
        "(launch it with `oomnitza-connect integrations launch FILE`)"
    )


def _summary(session: SyncSession) -> dict[str, Any]:
    return {
        "session": session.id,
        "integration": session.integration,
        "status": session.status.value,
        "created": session.counts.created,
        "updated": session.counts.updated,
        "unchanged": session.counts.unchanged,
        "skipped": session.counts.skipped,
        "failed": session.counts.failed,
        "message": session.message,
    }


def _record_skipped(
    ledger: Any, settings: IntegrationSettings, holder: dict[str, Any] | None
) -> SyncSession:
    from ..store.base import SyncPlan
    from ..sync.integrations import sync_key_of

    plan = SyncPlan(
        integration=settings.name,
        vendor=settings.vendor,
        sync_key=sync_key_of(settings) or "email",
        preference=settings.preference,
        selection=settings.selection,
    )
    where = ""
    if holder:
        where = f" (on {holder.get('host')}, pid {holder.get('pid')}, task {holder.get('task_id')})"
    session = ledger.start_session(plan)
    finished: SyncSession = ledger.finish_session(
        session.id,
        status=SyncStatus.SKIPPED,
        message=(
            f"another run of '{settings.name}' was still going{where}; "
            "it runs the integration once more when it ends"
        ),
    )
    return finished


@app.task(
    bind=True,
    name="oomnitza_connect.run_integration",
    acks_late=True,
    max_retries=MAX_RETRIES,
)
def run_integration(
    self: Task, name: str, *, test_run: bool = False, follow_up: bool = False
) -> dict[str, Any]:
    """Sync launched integration *name* once; return the session's summary."""
    from ..api import run_sync
    from ..schedule.notifications import notify_failure

    client = redis_client()
    lease = worker_config().run_lease
    lock = RunLock(client, name, lease=lease, task_id=self.request.id)
    with open_ledger() as ledger:
        settings = launched_integration(ledger, name)
        if follow_up:
            # The catch-up check of a skipped run: nothing to do once the
            # holder ran the follow-up itself; wait while the lock is held.
            if not lock.follow_up_requested():
                return {"integration": name, "status": "caught_up"}
            if not lock.acquire():
                _check_follow_up_later(name, lease)
                return {"integration": name, "status": "waiting"}
        elif not lock.acquire():
            holder = lock_holder(client, name)
            skipped = _record_skipped(ledger, settings, holder)
            log.warning("integration %s: %s", name, skipped.message)
            if lock.request_follow_up():
                # Should the holder die, this check runs the follow-up once its lease ends.
                _check_follow_up_later(name, lease)
            # The holder may have ended between the attempt and the request;
            # then the lock is free and this run goes ahead after all.
            if not lock.acquire():
                return _summary(skipped)
            if not lock.take_follow_up():
                # The holder ended first and took the request: it has queued
                # the follow-up, and running here too would sync twice.
                lock.release()
                return _summary(skipped)
        lock.take_follow_up()
        try:
            started = datetime.now(UTC)
            try:
                with _run_lock_held(ledger, name):
                    session = run_sync(settings, store=ledger, test_run=test_run)
            except ConfigurationError:
                raise  # a draft or a bad file: retrying cannot help
            except OomnitzaConnectError as exc:
                # The ledger or the credential store failed before a session
                # existed; a sync is idempotent, so try again later.
                raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
            log.info(
                "integration %s: %s in %.1f s",
                name,
                session.status.value,
                (datetime.now(UTC) - started).total_seconds(),
            )
            try:
                notify_failure(settings, session)
            except OomnitzaConnectError as exc:
                log.error("%s", exc)
        finally:
            lock.release()
    if lock.take_follow_up():
        run_integration.apply_async((name,))
    return _summary(session)


def _run_lock_held(ledger: Any, name: str) -> AbstractContextManager[None]:
    """Tell a shared ledger that this worker holds *name*'s run lock.

    Its sessions still marked running on other machines are then over, and
    the run marks them interrupted (a SQLite ledger checks pids on this host).
    """
    from ..store.postgres import PostgresLedger

    if isinstance(ledger, PostgresLedger):
        return ledger.holds_run_lock(name)
    return nullcontext()


def _check_follow_up_later(name: str, lease: float) -> None:
    run_integration.apply_async((name,), {"follow_up": True}, countdown=lease + 1)


def _backoff(retries: int) -> int:
    return int(min(RETRY_BACKOFF_MAX, 30 * 2**retries))


@app.task(bind=True, name="oomnitza_connect.run_preset_bulk", max_retries=MAX_RETRIES)
def run_preset_bulk(
    self: Task,
    vendor: str,
    preset: str,
    credential: str | None = None,
    *,
    integration: str | None = None,
    where: str | None = None,
    variables: dict[str, Any] | None = None,
    settings: dict[str, str] | None = None,
    concurrency: int = 4,
    linked_only: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run *preset* of *vendor* for every person matching *where*; return the counts.

    :param integration: a launched integration of *vendor*: its people (its
        ``[destination]``, Oomnitza or a SQLite file), its credential (unless
        *credential* is given) and its global settings (under *settings*). Needed
        when the ledger is PostgreSQL, which holds no people; without it the
        people are the SQLite ledger's.
    """
    from ..auth.credentials import resolve_credential
    from ..connectors import get_connector
    from ..presets.engine import _retry_safe
    from ..presets.engine import run_preset_bulk as run_bulk
    from ..sync.engine import client_options, destination_of

    connector = get_connector(vendor)
    chosen = connector.preset(preset)
    with open_ledger() as ledger, ExitStack() as stack:
        people: Any = ledger
        merged = dict(settings or {})
        launched: IntegrationSettings | None = None
        if integration is not None:
            launched = launched_integration(ledger, integration)
            if launched.vendor != connector.name:
                raise ConfigurationError(
                    f"the integration '{integration}' is for {launched.vendor}, not {vendor}",
                    key_path="integration",
                )
            credential = credential or launched.credential
            merged = {**launched.settings, **merged}
            people = destination_of(launched, ledger)
            if people is not ledger:
                stack.callback(people.close)
        elif not isinstance(ledger, PeopleDirectory):
            raise ConfigurationError(
                f"the ledger {ledger!r} holds no people; name the launched integration "
                "whose [destination] holds them",
                key_path="integration",
            )
        if credential is None:
            raise ConfigurationError(
                "name the credential, or a launched integration", key_path="credential"
            )
        try:
            found = resolve_credential(credential)
            # The integration's base URL (an emulator, a region) and rate budgets apply too.
            options = client_options(launched, found) if launched is not None else None
            session = connector.authenticate(found, merged, options=options)
        except ConfigurationError:
            raise
        except OomnitzaConnectError as exc:
            if _retry_safe(chosen):
                raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
            raise
        with session:
            results = run_bulk(
                session,
                chosen,
                people,
                ledger=ledger,
                where=where,
                variables=variables,
                concurrency=concurrency,
                dry_run=dry_run,
                settings=merged,
                linked_only=linked_only,
            )
    failed = [result for result in results if not result.ok]
    return {
        "vendor": vendor,
        "preset": chosen.name,
        "people": len(results),
        "succeeded": len(results) - len(failed),
        "failed": len(failed),
        "errors": [result.error for result in failed[:20]],
    }


@app.task(name="oomnitza_connect.refresh_schedule", ignore_result=True)
def refresh_schedule_task() -> None:
    """Bring beat's entries in line with the launched integrations; notify missed and long runs."""
    from .schedule import notify_overdue, refresh_schedule

    refresh_schedule(app)
    notify_overdue()
