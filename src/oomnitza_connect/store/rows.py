"""Ledger rows into the SDK's records: one reading for the SQLite and PostgreSQL ledgers.

The two ledgers keep the same columns; they differ only in how a time and a JSON
value come back (ISO text and JSON text from SQLite, ``datetime`` and decoded JSON
from PostgreSQL), so each passes its own reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ..models import RecordError, SyncCounts, SyncSession, SyncStatus, WorkflowRun

__all__ = [
    "SESSION_COLUMNS",
    "WORKFLOW_RUN_COLUMNS",
    "chunked",
    "session_from_row",
    "workflow_run_from_row",
]

T = TypeVar("T")

SESSION_COLUMNS = (
    "id, integration, vendor, started_at, ended_at, status, test_run, "
    "created, updated, unchanged, skipped, failed, vanished, message"
)
WORKFLOW_RUN_COLUMNS = (
    "id, vendor, preset, started_at, ok, person_id, status, request, response, mapped, "
    "error, dry_run"
)


def _as_is(value: Any) -> Any:
    return value


def session_from_row(
    row: Sequence[Any],
    errors: tuple[RecordError, ...],
    payload: tuple[Mapping[str, Any], ...],
    *,
    read_time: Callable[[Any], datetime | None] = _as_is,
) -> SyncSession:
    """A session from a row of :data:`SESSION_COLUMNS`."""
    (
        session_id,
        integration,
        vendor,
        started,
        ended,
        status,
        test_run,
        created,
        updated,
        unchanged,
        skipped,
        failed,
        vanished,
        message,
    ) = row[:14]
    started_at = read_time(started)
    assert started_at is not None  # every session has begun
    return SyncSession(
        id=session_id,
        integration=integration,
        vendor=vendor,
        started_at=started_at,
        ended_at=read_time(ended),
        status=SyncStatus(status),
        test_run=bool(test_run),
        counts=SyncCounts(created, updated, unchanged, skipped, failed, vanished),
        errors=errors,
        payload=payload,
        message=message,
    )


def workflow_run_from_row(
    row: Sequence[Any],
    *,
    read_time: Callable[[Any], datetime | None] = _as_is,
    read_json: Callable[[Any], Any] = _as_is,
) -> WorkflowRun:
    """A workflow run from a row of :data:`WORKFLOW_RUN_COLUMNS` (later columns ignored)."""
    (
        run_id,
        vendor,
        preset,
        started,
        ok,
        person_id,
        status,
        request,
        response,
        mapped,
        error,
        dry_run,
    ) = row[:12]
    started_at = read_time(started)
    assert started_at is not None
    return WorkflowRun(
        id=run_id,
        vendor=vendor,
        preset=preset,
        started_at=started_at,
        ok=bool(ok),
        person_id=person_id,
        status=status,
        request=read_json(request),
        response=None if response is None else read_json(response),
        mapped=read_json(mapped),
        error=error,
        dry_run=bool(dry_run),
    )


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """*items* in lists of *size* (the last one shorter), without holding more than one."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
