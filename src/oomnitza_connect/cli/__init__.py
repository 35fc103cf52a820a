"""The ``oomnitza-connect`` command line.

Each command group lives in its own module and registers itself on
:data:`main`. Exit codes: 0 success, 1 a run that failed, 2 bad usage or bad
configuration, 130 (128 + SIGINT, as shells report it) when Ctrl-C stops a
command (a sync in progress is left ``interrupted``, and the next run goes on
from there), 143 (128 + SIGTERM) when SIGTERM does (``systemctl stop``,
``docker stop``, ``kill``): handled like Ctrl-C, so the session is marked
``interrupted`` too (a second SIGTERM ends the process at once), and 141
(128 + SIGPIPE, what a shell reports for ``yes | head``) when whoever reads
the output stops reading (``| head -1``), which ends the command quietly.
Errors print as one readable message; ``--debug`` adds the traceback.

A command's module is imported only when that command runs (or its own
``--help`` is asked for): ``oomnitza-connect --help`` and shell completion of
command names read :data:`COMMANDS` and import none of them.

Plugins declare their commands in the entry-point group
``oomnitza_connect.commands`` (name: the command, value: the click command), so
that ``--help`` lists them from the installed metadata without importing any
plugin; a plugin's command module is imported when its command runs. The
``register_commands`` hook still adds commands for plugins registered by code
(tests, notebooks) and for installed plugins that declare none.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

from .._version import __version__
from ..errors import ConfigurationError, OomnitzaConnectError, UnknownVendorError
from ..redaction import install_log_redaction, redact

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the command is, as Ctrl-C raises KeyboardInterrupt.

    A KeyboardInterrupt, so that everything that cleans up after Ctrl-C (the sync
    engine marks its session ``interrupted``) does the same for a stop from
    systemd or docker, instead of the process dying with the session ``running``.
    """


def _terminate(signum: int, frame: object) -> None:
    # A second SIGTERM while cleaning up ends the process at once, as usual.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated("stopped by SIGTERM")


def _handle_sigterm() -> Any:
    """Turn SIGTERM into :class:`Terminated`; return the handler to restore (None: none set)."""
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers (a notebook's worker thread)
    return signal.signal(signal.SIGTERM, _terminate)


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
    "oomnitza_connect.cli.browse_commands",
)

# What `--help` and completion show without importing the modules above:
# command name -> (its module, its short help). A test checks this against the
# commands the modules register; a module missing here is imported for
# `--help`, which is slower but still right.
COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": (
        "oomnitza_connect.cli.plugins_commands",
        "List the installed plugins and load errors.",
    ),
    "new-plugin": (
        "oomnitza_connect.cli.plugins_commands",
        "Create a vendor plugin package for NAME.",
    ),
    "credentials": (
        "oomnitza_connect.cli.credentials_commands",
        "Add, list, show and remove named credentials.",
    ),
    "auth": (
        "oomnitza_connect.cli.credentials_commands",
        "Log in with OAuth2 and test credentials.",
    ),
    "integrations": (
        "oomnitza_connect.cli.sync_commands",
        "Create, check and launch integration files.",
    ),
    "mapping": (
        "oomnitza_connect.cli.sync_commands",
        "Work out how a vendor's fields map onto people.",
    ),
    "sync": ("oomnitza_connect.cli.sync_commands", "Sync the integration in FILE."),
    "sessions": ("oomnitza_connect.cli.sync_commands", "Look at past sync runs."),
    "people": ("oomnitza_connect.cli.sync_commands", "List the people in the store."),
    "browse": (
        "oomnitza_connect.cli.browse_commands",
        "Browse the store in a web browser (Datasette).",
    ),
    "presets": (
        "oomnitza_connect.cli.presets_commands",
        "List, inspect and run vendor workflow presets.",
    ),
    "emulator": (
        "oomnitza_connect.cli.emulator_commands",
        "Run VENDOR's API emulator on 127.0.0.1.",
    ),
    "schedule": ("oomnitza_connect.cli.schedule_commands", "Run integrations on their schedules."),
    "demo": ("oomnitza_connect.cli.demo_commands", "Sync every vendor emulator into a demo store."),
    "worker": (
        "oomnitza_connect.cli.worker_commands",
        "Run queued integrations: one Celery worker.",
    ),
    "beat": (
        "oomnitza_connect.cli.worker_commands",
        "Queue launched integrations on their schedules.",
    ),
}


PLUGIN_COMMANDS_GROUP = "oomnitza_connect.commands"
"""The entry-point group in which a plugin declares its commands (``webex = "pkg.mod:group"``)."""

# The plugin selection of oomnitza_connect.plugins, read here without importing
# it (it imports pluggy and the models); a test keeps the names equal.
_LOAD_ENTRY_POINTS_ENV = "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS"
_ALLOW_ENV = "OOMNITZA_CONNECT_PLUGINS"
_BLOCK_ENV = "OOMNITZA_CONNECT_BLOCK_PLUGINS"


def _names_in(variable: str) -> set[str] | None:
    raw = os.environ.get(variable)
    return None if raw is None else {part.strip() for part in raw.split(",") if part.strip()}


def declared_plugin_commands() -> dict[str, tuple[str, str, Any]]:
    """The commands installed plugins declare: name -> (distribution, version, entry point).

    Read from the installed metadata only (no plugin is imported), honouring
    the same allow-list, block-list and on/off switch as plugin loading.
    """
    if os.environ.get(_LOAD_ENTRY_POINTS_ENV, "1") == "0":
        return {}
    import importlib.metadata

    allowed, blocked = _names_in(_ALLOW_ENV), _names_in(_BLOCK_ENV) or set()
    found: dict[str, tuple[str, str, Any]] = {}
    for entry_point in importlib.metadata.entry_points(group=PLUGIN_COMMANDS_GROUP):
        dist = entry_point.dist
        dist_name = dist.name if dist is not None else entry_point.name
        names = {entry_point.name, dist_name}
        if (allowed is not None and not names & allowed) or names & blocked:
            continue
        version = dist.version if dist is not None else "unknown"
        found.setdefault(entry_point.name, (dist_name, version, entry_point))
    return found


def _stop_writing_to_stdout() -> None:
    """After the reader of standard output went away (``| head``): nothing more is said.

    Standard output is pointed at the null device, so that the flush at interpreter
    exit finds no closed pipe; a traceback or an error line would only be noise for
    a reader that asked for the first lines.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


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


class _Commands(dict[str, click.Command]):
    """``main.commands`` for callers outside this module: reading it loads every command.

    Code (and tests) that walk ``main.commands`` see every command, as with an
    eagerly built group; the group itself reads the plain dict underneath.
    """

    def __init__(self, load_all: Callable[[], None]) -> None:
        super().__init__()
        self._load_all = load_all

    def _loaded(self) -> _Commands:
        self._load_all()
        return self

    def __getitem__(self, name: str) -> click.Command:
        if not dict.__contains__(self, name):
            self._load_all()
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self._loaded(), name)

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self._loaded())

    def __len__(self) -> int:
        return dict.__len__(self._loaded())

    def keys(self) -> Any:
        return dict.keys(self._loaded())

    def values(self) -> Any:
        return dict.values(self._loaded())

    def items(self) -> Any:
        return dict.items(self._loaded())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self._loaded(), name, default)

    def pop(self, name: str, *default: Any) -> Any:
        return dict.pop(self._loaded(), name, *default)


class _Main(click.Group):
    """The top-level group: commands are loaded from their modules on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()
        self._declared_commands: dict[str, tuple[str, str, Any]] | None = None
        self.commands: dict[str, click.Command] = _Commands(self._load_everything)

    def _load_everything(self) -> None:
        for module in COMMAND_MODULES:
            self._load(module)

    def _command(self, name: str) -> click.Command | None:
        """The command if its module is loaded (without loading any)."""
        return dict.get(self.commands, name)

    def _load(self, module: str) -> None:
        if module not in self._loaded:
            self._loaded.add(module)
            importlib.import_module(module).register(self)

    def _load_unlisted(self) -> None:
        listed = {module for module, _ in COMMANDS.values()}
        for module in COMMAND_MODULES:
            if module not in listed:
                self._load(module)

    def _core_names(self) -> list[str]:
        self._load_unlisted()
        return sorted(set(dict.keys(self.commands)) | set(COMMANDS))

    def _core_command(self, cmd_name: str) -> click.Command | None:
        if self._command(cmd_name) is None:
            if cmd_name in COMMANDS:
                self._load(COMMANDS[cmd_name][0])
            else:
                self._load_unlisted()
        return self._command(cmd_name)

    def _short_help(self, name: str, limit: int) -> str | None:
        """A command's one-line help, without importing it when it is listed."""
        command = self._command(name)
        if command is None and name not in COMMANDS:
            declared = self._declared().get(name)
            if declared is not None:
                dist_name, version, _ = declared
                return f"Commands of {dist_name} {version}."
            command = self._registered_plugin_commands().get(name)
        if command is not None:
            return None if command.hidden else command.get_short_help_str(limit)
        # A stand-in command shortens the text exactly as the real one would.
        return click.Command(name, short_help=COMMANDS[name][1]).get_short_help_str(limit)

    def _declared(self) -> dict[str, tuple[str, str, Any]]:
        """Commands installed plugins declare, minus the core's names (read once)."""
        if self._declared_commands is None:
            core = set(COMMANDS)
            self._declared_commands = {
                name: found
                for name, found in declared_plugin_commands().items()
                if name not in core
            }
        return self._declared_commands

    def _load_declared(self, name: str) -> click.Command | None:
        found = self._declared().get(name)
        if found is None:
            return None
        dist_name, version, entry_point = found
        try:
            command = entry_point.load()
        except Exception as exc:
            raise click.ClickException(
                f"the command '{name}' of the plugin {dist_name} {version} failed to load: "
                f"{exc.__class__.__name__}: {exc}"
            ) from None
        if not isinstance(command, click.Command):
            raise click.ClickException(
                f"the plugin {dist_name} {version} declares the command '{name}' as "
                f"{entry_point.value}, which is not a click command"
            )
        return command

    def _registered_plugin_commands(self) -> dict[str, click.Command]:
        """``register_commands`` commands of plugins already loaded (listing loads none)."""
        plugins = sys.modules.get("oomnitza_connect.plugins")
        if plugins is None or getattr(plugins, "_manager", None) is None:
            return {}
        return self._plugin_commands()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, text) for name in names if (text := self._short_help(name, limit)) is not None
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(
        self, ctx: click.Context, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=text)
            for name in self.list_commands(ctx)
            if name.startswith(incomplete) and (text := self._short_help(name, 60)) is not None
        ]
        # The group's own options (--debug, --version ...) as click offers them.
        items.extend(click.Command.shell_complete(self, ctx, incomplete))
        return items

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
        core = set(self._core_names())
        return {name: cmd for name, cmd in group.commands.items() if name not in core}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Plugins load only when the name is not the core's, so core commands stay fast.
        command = self._core_command(cmd_name)
        if command is None and cmd_name not in COMMANDS:
            command = self._load_declared(cmd_name)
        if command is None and cmd_name not in COMMANDS:
            # A plugin that declares no commands may still add some by the hook.
            command = self._plugin_commands().get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = {*self._core_names(), *self._declared(), *self._registered_plugin_commands()}
        return sorted(names)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or "--debug" in sys.argv
        previous = _handle_sigterm()
        try:
            result = super().invoke(ctx)
            # What is still buffered goes out here, where a closed pipe is caught,
            # not at interpreter exit, where Python would print its own complaint.
            sys.stdout.flush()
            return result
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            _stop_writing_to_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except Terminated:
            click.echo("Terminated.", err=True)
            ctx.exit(EXIT_TERMINATED)
        except KeyboardInterrupt:
            # Not click's bare "Aborted!" with exit 1, which reads like a failed run.
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
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
        finally:
            if previous is not None:
                # In-process callers (tests, notebooks) get their own handler back.
                signal.signal(signal.SIGTERM, previous)


def _say_plugin_failures_plainly() -> None:
    """Print a plugin that failed to load as one ``Warning:`` line, not Python's
    file:line and source excerpt; other warnings keep Python's form."""
    import warnings

    from ..errors import PluginLoadWarning

    shown = warnings.showwarning
    if getattr(shown, "plain_plugin_failures", False):
        return  # main() ran before in this process (tests)

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, PluginLoadWarning):
            click.secho(f"Warning: {redact(str(message))}", err=True, fg="yellow")
        else:
            shown(message, category, filename, lineno, file, line)

    show.plain_plugin_failures = True  # type: ignore[attr-defined]
    warnings.showwarning = show


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="oomnitza-connect")
@click.option("--debug", is_flag=True, help="Show tracebacks and log at DEBUG level.")
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(debug: bool, verbose: bool) -> None:
    """Sync SaaS vendors' users into one system of record."""
    install_log_redaction()
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    # Times and logger names help who reads a verbose log; at the default level a
    # warning is a message to the person at the terminal, said plainly.
    plain = not (debug or verbose)
    log_format = (
        "%(levelname)s: %(message)s" if plain else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=level, format=log_format)
    if not debug:
        _say_plugin_failures_plainly()
