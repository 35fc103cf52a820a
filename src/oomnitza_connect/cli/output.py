"""One output convention for every command (docs/cli.md, "Output").

* ``--json`` on every command that prints data: one JSON document on standard
  output (a command that runs until stopped prints one JSON object per line),
  nothing else there; messages and progress go to standard error.
* Tables are drawn with borders on a terminal. When standard output is not a
  terminal (a pipe, a file) they are plain: no borders, no colours, columns
  separated by spaces and never cut short, so ``grep``, ``awk`` and ``cut`` work.

Every table and console of the command line comes from here; a test holds the
command modules to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, TypeVar

import click

__all__ = [
    "console",
    "dump",
    "echo_json",
    "heading",
    "json_option",
    "show",
    "sync_failures_said_by_the_summary",
    "table",
    "to_terminal",
]

F = TypeVar("F", bound=Callable[..., Any])

PLAIN_WIDTH = 100_000
"""The width plain output is laid out in: wide enough that no cell is ever cut."""


def to_terminal(*, stderr: bool = False) -> bool:
    """Whether the output goes to a terminal (a person) rather than a pipe or a file."""
    stream = sys.stderr if stderr else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def sync_failures_said_by_the_summary() -> Iterator[None]:
    """Keep the sync engine's ERROR lines off standard error while the block runs.

    The engine logs a failed run at ERROR for scripts' logs; a command that prints
    the run's summary with its reason would otherwise say it twice (docs/cli.md,
    "Said once"). With ``--verbose`` or ``--debug`` the log lines stay: whoever
    asked for the log reads it whole.
    """
    from ..sync import engine

    engine_log = logging.getLogger(engine.__name__)
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        yield
        return
    engine_log.addFilter(_below_error)
    try:
        yield
    finally:
        engine_log.removeFilter(_below_error)


def _below_error(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


def json_option(help_text: str = "Print JSON instead of text.") -> Callable[[F], F]:
    """The ``--json`` flag, spelt the same on every command (the parameter is ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dump(value: Any, *, indent: int | None = 2) -> str:
    """*value* as JSON text (dates as ISO 8601, sets and tuples as lists)."""
    return json.dumps(value, indent=indent, default=_json_default)


def echo_json(value: Any, *, lines: bool = False) -> None:
    """Print *value* as JSON on standard output (one line when *lines*: JSON Lines)."""
    click.echo(dump(value, indent=None if lines else 2))


def console(*, stderr: bool = False, quiet: bool = False) -> Any:
    """A rich console: the terminal's width on a terminal, never cutting lines otherwise.

    :param quiet: print nothing (the human output of a command run with ``--json``).
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's own answer is SystemExit(1), a failure; the CLI ends a closed pipe
            # quietly with 141 like every other command (see oomnitza_connect.cli).
            raise BrokenPipeError

    if to_terminal(stderr=stderr):
        return _Console(stderr=stderr, soft_wrap=True, quiet=quiet)
    return _Console(
        stderr=stderr,
        width=PLAIN_WIDTH,
        soft_wrap=True,
        no_color=True,
        highlight=False,
        quiet=quiet,
    )


def table(*columns: str, **options: Any) -> Any:
    """A rich table: bordered on a terminal, plain (no borders, no cut cells) otherwise."""
    from rich.table import Table

    plain = not to_terminal()
    title = options.pop("title", None) if plain else None
    if plain:
        options.update(box=None, show_edge=False, pad_edge=False)
    made = Table(*columns, **options)
    if plain:
        made.caption = None
        # Printed as a line of its own by show(), not centred over the columns.
        made.plain_title = title  # type: ignore[attr-defined]
        for column in made.columns:
            column.overflow = "ignore"
            column.no_wrap = True
    return made


def heading(out: Any, text: str) -> None:
    """A section heading: a rule across a terminal, a plain ``== text ==`` line otherwise."""
    if out.is_terminal:
        out.rule(text)
    else:
        out.print(f"== {text} ==")


def show(renderable: Any, *, on: Any = None) -> None:
    """Print a table (or any rich renderable) the way the output goes: see :func:`table`."""
    out = on if on is not None else console()
    if out.is_terminal or out.quiet:
        out.print(renderable)
        return
    with out.capture() as captured:
        title = getattr(renderable, "plain_title", None)
        if title:
            out.print(title)
        out.print(renderable)
    for line in captured.get().splitlines():
        click.echo(line.rstrip(), err=out.stderr)
