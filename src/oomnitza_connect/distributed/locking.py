"""One run per integration at a time, across every worker: a Redis lock with a lease.

The lock is redis-py's :class:`redis.lock.Lock` (a token compared in Lua on
release, so a worker never frees another's lock) with a short lease that a
thread renews while the run is alive. A worker that dies stops renewing, and
the lease runs out: the integration's next run can start, and finds the dead
run's session still ``running`` to mark ``interrupted``.

A run that finds the lock taken is not lost: it is recorded (a ``skipped``
session in the ledger, see :mod:`oomnitza_connect.distributed.tasks`) and a
follow-up is asked for: the holder queues the integration once more after it
releases the lock, and should the holder die, the skipped run's own check
(every lease) runs it once the lock is free. However many runs were skipped,
one catches up.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from types import TracebackType
from typing import Any

__all__ = ["LOCK_PREFIX", "RunLock", "lock_holder"]

log = logging.getLogger(__name__)

LOCK_PREFIX = "oomnitza-connect:run"
DEFAULT_LEASE = 60.0
"""Seconds a dead worker keeps an integration locked, at most."""


def _lock_key(integration: str) -> str:
    return f"{LOCK_PREFIX}:{integration}:lock"


def _holder_key(integration: str) -> str:
    return f"{LOCK_PREFIX}:{integration}:holder"


def _follow_up_key(integration: str) -> str:
    return f"{LOCK_PREFIX}:{integration}:follow-up"


def lock_holder(client: Any, integration: str) -> dict[str, Any] | None:
    """Return who holds *integration*'s run lock (host, pid, task, since), or ``None``."""
    if not client.exists(_lock_key(integration)):
        return None
    raw = client.get(_holder_key(integration))
    return dict(json.loads(raw)) if raw else {}


class RunLock:
    """The run lock of one integration; use it as a context manager, or call :meth:`acquire`.

    :param client: a ``redis.Redis`` client.
    :param integration: the integration's name.
    :param lease: seconds the lock outlives a worker that stopped renewing it.
    :param task_id: the Celery task holding it (shown to a skipped run).
    """

    def __init__(
        self,
        client: Any,
        integration: str,
        *,
        lease: float = DEFAULT_LEASE,
        task_id: str | None = None,
    ) -> None:
        self.client = client
        self.integration = integration
        self.lease = lease
        self.task_id = task_id
        # Not thread-local: the renewing thread uses the token the run took.
        self._lock = client.lock(
            _lock_key(integration), timeout=lease, blocking=False, thread_local=False
        )
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False
        """True when a renewal found the lock gone (Redis lost it, or the lease ran out)."""

    def acquire(self) -> bool:
        """Take the lock if it is free; return whether it was taken."""
        if not self._lock.acquire():
            return False
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "task_id": self.task_id,
        }
        self.client.set(
            _holder_key(self.integration), json.dumps(holder), px=int(self.lease * 1000)
        )
        self._stop.clear()
        self._renewer = threading.Thread(
            target=self._renew_until_released,
            name=f"run-lock-{self.integration}",
            daemon=True,
        )
        self._renewer.start()
        return True

    def _renew_until_released(self) -> None:
        # Renew at a third of the lease, so two missed renewals still hold it.
        while not self._stop.wait(self.lease / 3):
            try:
                self._lock.reacquire()
                self.client.pexpire(_holder_key(self.integration), int(self.lease * 1000))
            except Exception as exc:  # LockNotOwnedError, or Redis unreachable for a moment
                from redis.exceptions import LockNotOwnedError

                if isinstance(exc, LockNotOwnedError):
                    self.lost = True
                    log.error(
                        "integration %s: the run lock was lost (Redis dropped it); "
                        "another run may start",
                        self.integration,
                    )
                    return
                log.warning(
                    "integration %s: renewing the run lock failed: %s", self.integration, exc
                )

    def release(self) -> None:
        """Stop renewing and release the lock (when this holder still owns it)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        from redis.exceptions import LockError

        try:
            self._lock.release()
        except LockError:
            log.warning("integration %s: the run lock had already expired", self.integration)
        else:
            self.client.delete(_holder_key(self.integration))

    def request_follow_up(self) -> bool:
        """Ask the current holder to run the integration once more; True when newly asked."""
        return bool(self.client.set(_follow_up_key(self.integration), "1", nx=True))

    def follow_up_requested(self) -> bool:
        """Return whether a skipped run is waiting for a follow-up."""
        return bool(self.client.exists(_follow_up_key(self.integration)))

    def take_follow_up(self) -> bool:
        """Return (and clear) whether a skipped run asked for a follow-up."""
        return bool(self.client.getdel(_follow_up_key(self.integration)))

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self.release()
