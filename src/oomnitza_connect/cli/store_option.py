"""The ``--db`` option every command that reads or writes the store shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..store.base import Ledger
    from ..store.sqlite import SQLiteStore

__all__ = ["db_option", "ledger_option", "open_ledger", "open_store"]

F = TypeVar("F", bound=Callable[..., Any])

DB_HELP = (
    "The store file (default: $OOMNITZA_CONNECT_DB, else oomnitza-connect.db in "
    "$OOMNITZA_CONNECT_HOME or the user data directory)."
)


def db_option(func: F) -> F:
    """Add ``--db PATH`` (passed as ``db_path``) to a command."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=DB_HELP,
    )(func)


LEDGER_HELP = (
    "A shared ledger to read and record sessions and integrations in: a "
    "postgresql://user@host/db URL (workers on several machines; "
    "default: $OOMNITZA_CONNECT_LEDGER, else the --db file). Keep the password off "
    "the command line, where other users see it: libpq reads it from $PGPASSWORD or "
    "~/.pgpass, or put the whole URL in $OOMNITZA_CONNECT_LEDGER."
)


def ledger_option(func: F) -> F:
    """Add ``--ledger URL`` (passed as ``ledger_url``) to a command."""
    return click.option(
        "--ledger",
        "ledger_url",
        metavar="URL",
        default=None,
        help=LEDGER_HELP,
    )(func)


def chosen_ledger(db_path: Path | None, ledger_url: str | None) -> str | None:
    """The PostgreSQL URL that ``--ledger`` or ``$OOMNITZA_CONNECT_LEDGER`` names, if any.

    ``--db`` wins over the variable (it names a SQLite file on purpose).
    """
    import os

    from ..store.postgres import is_postgres_url, redact_url

    if ledger_url is not None:
        if db_path is not None:
            raise click.UsageError("give --ledger or --db, not both.")
        if not is_postgres_url(ledger_url):
            raise click.BadParameter(
                f"{redact_url(ledger_url)!r} is not a postgresql:// URL "
                "(a SQLite ledger is --db PATH)",
                param_hint="'--ledger'",
            )
        return ledger_url
    if db_path is None:
        from ..distributed.config import LEDGER_ENV

        value = os.environ.get(LEDGER_ENV, "")
        if is_postgres_url(value):
            return value
    return None


@contextmanager
def open_ledger(
    db_path: Path | None, ledger_url: str | None, *, must_exist: bool = False
) -> Iterator[Ledger]:
    """Open the PostgreSQL ledger ``--ledger`` names, else the SQLite store (``--db``)."""
    url = chosen_ledger(db_path, ledger_url)
    if url is None:
        with open_store(db_path, must_exist=must_exist) as store:
            yield store
        return
    from ..errors import ConfigurationError, StoreError
    from ..store.postgres import PostgresLedger

    try:
        ledger = PostgresLedger(url)
    except StoreError as exc:
        where = "--ledger" if ledger_url is not None else "$OOMNITZA_CONNECT_LEDGER"
        raise ConfigurationError(f"{exc}; check {where}") from None
    with ledger:
        yield ledger


def open_store(db_path: Path | None, *, must_exist: bool = False) -> SQLiteStore:
    """Open the store at *db_path*, or the default one that ``sync`` uses.

    With *must_exist* (commands that only read), a ``--db`` file that does not
    exist is bad usage rather than a new, empty store: it is almost always a typo.
    """
    from ..store.paths import default_db_path
    from ..store.sqlite import SQLiteStore

    if must_exist and db_path is not None and not db_path.exists():
        raise click.BadParameter(
            f"there is no store at '{db_path}' (a sync creates one; check the path)",
            param_hint="'--db'",
        )
    from ..errors import ConfigurationError, StoreError

    path = db_path or default_db_path()
    try:
        return SQLiteStore(path)
    except StoreError as exc:
        # A path that cannot be a store is bad configuration: name the knobs that set it.
        where = "--db" if db_path is not None else "$OOMNITZA_CONNECT_DB / $OOMNITZA_CONNECT_HOME"
        raise ConfigurationError(f"{exc}; check {where}") from None
