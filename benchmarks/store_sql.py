"""The SQL floor under a sync: the store's own statements, replayed with no Python work around them.

Runs one ``sdk_sync.py`` sync in this process with the SQLite store's connection
recording every statement and its parameters, then runs them again, in order, on a
new store file, timing each kind. The replay is what SQLite alone costs for that
sync: no vendor, no mapping, no rules, no second thread. A sync cannot take less
wall time than its replay (the writer runs the statements one after another), so
a replay slower than the hand-written script's whole run says the store's format,
not its code, stands between the SDK and the script.

    python benchmarks/store_sql.py --base-url http://127.0.0.1:PORT/api \
        --token xoxp-fake-benchmark-token --db people.db
"""

from __future__ import annotations

import argparse
import runpy
import sqlite3
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

Statement = tuple[str, str, Any]


class _Recording:
    """The store's connection, writing down what it is asked to run."""

    def __init__(self, connection: sqlite3.Connection, statements: list[Statement]) -> None:
        self.__dict__["_connection"] = connection
        self.__dict__["_statements"] = statements

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        parameters = parameters if isinstance(parameters, dict) else tuple(parameters)
        self._statements.append(("execute", sql, parameters))
        return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = [tuple(row) for row in rows]
        self._statements.append(("executemany", sql, rows))
        return self._connection.executemany(sql, rows)

    def executescript(self, script: str) -> sqlite3.Cursor:
        self._statements.append(("executescript", script, None))
        return self._connection.executescript(script)


def record(sync_arguments: list[str]) -> tuple[list[Statement], float]:
    """Run ``sdk_sync.py`` with *sync_arguments*, recording its store's statements."""
    from oomnitza_connect.store import sqlite as sqlite_store

    statements: list[Statement] = []
    opened = sqlite_store.SQLiteStore.__init__

    def open_recording(store: Any, *args: Any, **kwargs: Any) -> None:
        opened(store, *args, **kwargs)  # the schema is made before recording starts
        store._db = _Recording(store._db, statements)

    sqlite_store.SQLiteStore.__init__ = open_recording  # type: ignore[method-assign]
    sys.argv = ["sdk_sync.py", *sync_arguments]
    started = time.perf_counter()
    try:
        runpy.run_path(str(Path(__file__).with_name("sdk_sync.py")), run_name="__main__")
    except SystemExit as exit_:
        if exit_.code:
            raise
    finally:
        sqlite_store.SQLiteStore.__init__ = opened  # type: ignore[method-assign]
    return statements, time.perf_counter() - started


def replay(statements: list[Statement], path: Path) -> tuple[float, dict[str, list[float]]]:
    """Run *statements* on a new store at *path*; the total and (count, seconds) per kind."""
    from oomnitza_connect.store.sqlite import SQLiteStore

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    with SQLiteStore(path) as store:
        connection = store._db
        started = time.perf_counter()
        for method, sql, parameters in statements:
            kind = " ".join(sql.split())[:100]
            began = time.perf_counter()
            if method == "execute":
                connection.execute(sql, parameters).fetchall()
            elif method == "executemany":
                connection.executemany(sql, parameters)
            else:
                connection.executescript(sql)
            totals = kinds[kind]
            totals[0] += 1
            totals[1] += time.perf_counter() - began
        return time.perf_counter() - started, kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path, help="the sync's new store file")
    parser.add_argument("--top", type=int, default=12, help="statement kinds to show")
    arguments, sync_arguments = parser.parse_known_args(argv)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{arguments.db}{suffix}").unlink(missing_ok=True)
    statements, sync_seconds = record([*sync_arguments, "--db", str(arguments.db)])
    replay_path = arguments.db.with_name(arguments.db.name + ".replay")
    seconds, kinds = replay(statements, replay_path)
    print(f"sync: {sync_seconds:.2f} s in this process; {len(statements)} statements")
    print(f"the same statements replayed alone: {seconds:.2f} s")
    for kind, (count, spent) in sorted(kinds.items(), key=lambda item: -item[1][1])[
        : arguments.top
    ]:
        print(f"{spent:8.3f} s {int(count):6d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
