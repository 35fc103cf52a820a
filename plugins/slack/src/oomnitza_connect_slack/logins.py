"""The newest login per user, aggregated on disk so memory stays flat."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NewestLogins"]


class NewestLogins:
    """The newest login per user, kept in a temporary SQLite file rather than a dict.

    team.accessLogs lists one entry per user and IP and device, newest first but
    not one per user, so the newest per user is found by aggregating. A dict
    grows with the team (about 34 MB at 300,000 users); the file keeps memory
    flat, as the rest of the sync does.
    """

    _FLUSH_EVERY = 5000

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="oomnitza-connect-slack-")
        self._db = sqlite3.connect(Path(self._directory.name) / "logins.db")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE newest (user_id TEXT PRIMARY KEY, at REAL NOT NULL)")
        self._pending: list[tuple[str, float]] = []

    def add(self, user_id: str, at: float) -> None:
        self._pending.append((user_id, at))
        if len(self._pending) >= self._FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany(
            "INSERT INTO newest VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET at = max(at, excluded.at)",
            self._pending,
        )
        self._pending.clear()

    def __iter__(self) -> Iterator[tuple[str, float]]:
        self._flush()
        yield from self._db.execute("SELECT user_id, at FROM newest ORDER BY user_id")

    def close(self) -> None:
        self._db.close()
        self._directory.cleanup()
