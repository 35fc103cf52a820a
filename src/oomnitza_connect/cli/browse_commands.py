"""``oomnitza-connect browse``: the store in a browser, through Datasette.

Datasette (the ``browse`` extra) serves the SQLite file read-only: people (the
readable ``people_view``, one column per field), SaaS users, sessions and
record errors, with facets, sorting, filters and SQL.

Datasette runs as a child process. Ctrl-C and SIGTERM stop it before the
command ends (exit 130 and 143, as for every command): it is sent SIGTERM,
which Datasette's server takes as a clean shutdown, and killed if it is still
running after :data:`STOP_GRACE` seconds or at a second signal.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import click

from .store_option import db_option, open_store

__all__ = ["STOP_GRACE", "browse_command", "datasette_command", "register"]

STOP_GRACE = 10.0
"""Seconds Datasette has to shut down after Ctrl-C or SIGTERM before it is killed."""

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
        status, stopped_by = _serve(command)
    if stopped_by == signal.SIGTERM:
        from . import Terminated

        raise Terminated("stopped by SIGTERM")  # exit 143, as for every command
    if stopped_by is not None:
        raise KeyboardInterrupt  # exit 130
    if status not in (0, -2, 130):
        raise click.ClickException(f"Datasette stopped with exit status {status}")


def _serve(command: list[str]) -> tuple[int, int | None]:
    """Run *command* until it ends or Ctrl-C / SIGTERM stops it; return its status and the signal.

    The signals are handled here rather than raised as exceptions: one that
    comes while the child starts still stops it (an exception there would
    leave it running, unknown to anyone), and the child is waited for until it
    has gone. A terminal's Ctrl-C reaches the child too; SIGTERM on top of it
    is no second interrupt to Datasette's server, which would skip its clean
    shutdown.
    """
    stopped_by: list[int] = []
    child: subprocess.Popen[bytes] | None = None
    killer: threading.Timer | None = None

    def stop_child() -> None:
        nonlocal killer
        if child is None or child.poll() is not None:
            return
        if killer is None:
            child.terminate()
            killer = threading.Timer(STOP_GRACE, _kill_if_running, (child,))
            killer.daemon = True
            killer.start()
        elif len(stopped_by) > 1:
            child.kill()  # a second signal: no more waiting

    def stop(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        stop_child()

    previous = _handle_stop_signals(stop)
    try:
        child = subprocess.Popen(command, env=os.environ.copy())
        if stopped_by:
            stop_child()  # a signal came while it started
        status = child.wait()
    finally:
        _restore_handlers(previous)
        if killer is not None:
            killer.cancel()
        if child is not None and child.poll() is None:
            child.kill()  # the wait ended by an error of its own
            child.wait()
    return status, (stopped_by[0] if stopped_by else None)


def _kill_if_running(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()


def _handle_stop_signals(handler: Any) -> dict[int, Any]:
    """Send SIGINT and SIGTERM to *handler*; return the handlers to restore ({}: none set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers (a notebook's worker thread)
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
