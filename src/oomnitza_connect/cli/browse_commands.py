"""``oomnitza-connect browse``: the store in a browser, through Datasette.

Datasette (the ``browse`` extra) serves the SQLite file read-only: people (the
readable ``people_view``, one column per field), SaaS users, sessions and
record errors, with facets, sorting, filters and SQL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from .store_option import db_option, open_store

__all__ = ["browse_command", "datasette_command", "register"]

_TITLE = "oomnitza-connect store"
_TABLES = {
    "people_view": "People, one column per field (standard and custom), with their vendors.",
    "people": "People as stored: their fields are one JSON column.",
    "saas_users": "Each vendor account linked to a person, with its role.",
    "sync_sessions": "Every sync run: status, counts, message.",
    "session_errors": "The records that failed, per session, and why.",
}


def register(main: click.Group) -> None:
    """Add this module's commands to *main*."""
    main.add_command(browse_command)


def datasette_command(db: Path, *, host: str, port: int, metadata: Path) -> list[str]:
    """The Datasette command line that serves *db* read-only on *host*:*port*."""
    return [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        str(db),
        "--host",
        host,
        "--port",
        str(port),
        "--metadata",
        str(metadata),
        # The store holds the sync ledger: browsing never writes to it.
        "--setting",
        "allow_download",
        "off",
    ]


@click.command("browse")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
def browse_command(db_path: Path | None, host: str, port: int, open_browser: bool) -> None:
    """Browse the store in a web browser (Datasette).

    People, SaaS users, sessions and record errors. Needs the browse extra:
    pip install 'oomnitza-connect[browse]'. Serves the store read-only with
    Datasette until Ctrl-C.
    """
    if importlib.util.find_spec("datasette") is None:
        raise click.UsageError(
            "browse needs Datasette, which is not installed; "
            "install it with: pip install 'oomnitza-connect[browse]'"
        )
    # Opening the store creates it (and its readable views) when it is new.
    with open_store(db_path, must_exist=db_path is not None) as store:
        db = Path(str(getattr(store, "path", db_path)))
    table_names = {name: {"description": text} for name, text in _TABLES.items()}
    metadata = {"title": _TITLE, "databases": {db.stem: {"tables": table_names}}}
    with tempfile.TemporaryDirectory(prefix="oomnitza-connect-browse-") as directory:
        metadata_file = Path(directory) / "metadata.json"
        metadata_file.write_text(json.dumps(metadata))
        command = datasette_command(db, host=host, port=port, metadata=metadata_file)
        if open_browser:
            command.append("--open")
        click.echo(f"Browsing {db} at http://{host}:{port}/{db.stem}/people_view (Ctrl-C stops)")
        try:
            status = subprocess.call(command, env=os.environ.copy())
        except KeyboardInterrupt:
            status = 0
    if status not in (0, -2, 130):
        raise click.ClickException(f"Datasette stopped with exit status {status}")
