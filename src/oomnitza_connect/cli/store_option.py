"""The ``--db`` option every command that reads or writes the store shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..store.sqlite import SQLiteStore

__all__ = ["db_option", "open_store"]

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
