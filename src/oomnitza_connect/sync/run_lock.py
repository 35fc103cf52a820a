"""One sync at a time where two would trip over each other.

Two runs writing one SQLite file at once (two cron entries, a scheduler and a
hand-started ``sync``) each look people up before the other commits, so one of
them hits a unique value the other has just claimed and loses a whole batch;
two runs of one integration into Oomnitza would share its portion log and its
members. So :func:`sync_lock` holds an advisory file lock for the run:

* into a SQLite destination: one lock per file, whatever the integration (SQLite
  has a single writer anyway, so nothing is lost by waiting);
* into another destination (Oomnitza) with a SQLite ledger: one lock per ledger
  file and integration, so different integrations still run side by side.

A second run waits for the first to end (saying so once, in the log) rather
than failing: it then finds what the first wrote and changes only what is new.
The operating system releases the lock when a process dies, so a killed run
never leaves it held. Celery workers with a PostgreSQL ledger serialize runs
with their Redis lock instead; with no POSIX ``fcntl`` (Windows) there is no
local lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..store.base import Destination, Ledger

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def lock_path(ledger: Ledger, destination: Destination, integration: str) -> Path | None:
    """The lock file a run of *integration* holds, or ``None`` when it needs none."""
    from ..store.sqlite import SQLiteStore

    if isinstance(destination, SQLiteStore):
        return _beside(destination.path, "sync-lock")
    if isinstance(ledger, SQLiteStore):
        # A digest, not the name: any text is a valid integration name.
        tag = hashlib.sha256(integration.encode()).hexdigest()[:16]
        return _beside(ledger.path, f"{tag}.sync-lock")
    return None


def _held_for(ledger: Ledger, destination: Destination) -> str:
    from ..store.sqlite import SQLiteStore

    if isinstance(destination, SQLiteStore):
        return f"another sync is writing {Path(destination.path).name}"
    return "another sync of this integration is running"


def _beside(database: str, suffix: str) -> Path | None:
    if database == ":memory:" or database.startswith("file:"):
        return None
    # The file itself, not the name it was opened by: a symlink or a relative path
    # to the same database must find the same lock.
    return Path(f"{os.path.realpath(database)}.{suffix}")


@contextlib.contextmanager
def sync_lock(ledger: Ledger, destination: Destination, integration: str) -> Iterator[None]:
    """Hold the run's lock (waiting for another run to end) for the ``with`` block."""
    path = lock_path(ledger, destination, integration)
    try:
        import fcntl
    except ImportError:  # not POSIX
        path = None
    if path is None:
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        said = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    log.warning(
                        "integration %s: %s; waiting for it to end",
                        integration,
                        _held_for(ledger, destination),
                    )
                    said = True
                # Polling, not a blocking flock: Ctrl-C still stops a waiting run.
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)  # releases the lock
