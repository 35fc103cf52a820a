"""The ``oomnitza-connect`` command line.

Each command group lives in its own module and registers itself on
:data:`main`. Exit codes: 0 success, 1 a run that failed, 2 bad usage or bad
configuration. Errors print as one readable message; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import ConfigurationError, OomnitzaConnectError, UnknownVendorError
from ..redaction import install_log_redaction, redact

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Modules that add commands to `main`, each owning one area.
COMMAND_MODULES = (
    "oomnitza_connect.cli.plugins_commands",
    "oomnitza_connect.cli.credentials_commands",
    "oomnitza_connect.cli.sync_commands",
    "oomnitza_connect.cli.presets_commands",
    "oomnitza_connect.cli.emulator_commands",
    "oomnitza_connect.cli.schedule_commands",
    "oomnitza_connect.cli.demo_commands",
    "oomnitza_connect.cli.worker_commands",
)


class RunFailed(click.ClickException):
    """A command ran but what it ran failed (exit code 1)."""

    exit_code = EXIT_FAILED


_PATH_ERRORS = (
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    FileNotFoundError,
)
"""A path given (--db, $OOMNITZA_CONNECT_HOME, a file argument) that cannot be used."""


def _path_problem(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "a path"
    reason = {
        FileExistsError: "a file is in the way of a directory the command needs",
        NotADirectoryError: "a part of the path is a file, not a directory",
        IsADirectoryError: "is a directory, not a file",
        PermissionError: "permission denied",
        FileNotFoundError: "does not exist",
    }.get(type(exc), exc.strerror or type(exc).__name__)
    return (
        f"cannot use {where}: {reason}. Check --db, $OOMNITZA_CONNECT_HOME and "
        "$OOMNITZA_CONNECT_DB, and the paths given to the command"
    )


class _Main(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for position, arg in enumerate(args, start=1):
            # Bytes that are not UTF-8 reach Python as lone surrogates
            # (surrogateescape) and would fail deep inside as UnicodeEncodeError.
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
                raise click.UsageError(
                    f"argument {position} ({shown!r}) is not valid UTF-8 text"
                ) from None
        return super().parse_args(ctx, args)

    def _plugin_commands(self) -> dict[str, click.Command]:
        """Commands plugins add through ``register_commands`` (the core's names win)."""
        from ..plugins import get_plugin_manager

        group = click.Group()
        get_plugin_manager().hook.register_commands(cli=group)
        return {name: cmd for name, cmd in group.commands.items() if name not in self.commands}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Plugins load only when the name is not the core's, so core commands stay fast.
        return super().get_command(ctx, cmd_name) or self._plugin_commands().get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or "--debug" in sys.argv
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OomnitzaConnectError as exc:
            if debug:
                import traceback

                click.echo(redact(traceback.format_exc()), err=True)
            click.secho(f"Error: {redact(str(exc))}", err=True, fg="red")
            usage = isinstance(exc, ConfigurationError | UnknownVendorError)
            ctx.exit(EXIT_USAGE if usage else EXIT_FAILED)
        except _PATH_ERRORS as exc:
            if debug:
                import traceback

                click.echo(redact(traceback.format_exc()), err=True)
            click.secho(f"Error: {redact(_path_problem(exc))}", err=True, fg="red")
            ctx.exit(EXIT_USAGE)
        except Exception as exc:
            # Not one of ours: its text may quote anything (a header value with
            # the token in it), so it is scrubbed like every other message.
            if debug:
                import traceback

                click.echo(redact(traceback.format_exc()), err=True)
            click.secho(
                f"Error: {redact(f'{exc.__class__.__name__}: {exc}')}"
                + ("" if debug else " (run with --debug for the traceback)"),
                err=True,
                fg="red",
            )
            ctx.exit(EXIT_FAILED)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="oomnitza-connect")
@click.option("--debug", is_flag=True, help="Show tracebacks and log at DEBUG level.")
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(debug: bool, verbose: bool) -> None:
    """Sync SaaS vendors' users into one system of record."""
    install_log_redaction()
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(main)
