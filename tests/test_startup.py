"""Start-up stays light: the heavy libraries are imported when used, never at start-up.

Each check runs in a fresh interpreter (with entry points on, as a user's shell
has them) and reads ``sys.modules``; nothing here is timed.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import click
import pytest

from oomnitza_connect.cli import COMMAND_MODULES, COMMANDS

HEAVY = ("jinja2", "cattrs", "croniter", "tenacity", "jwt", "cryptography", "rich")
"""Imported lazily, by the code that needs them."""


def _imported_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages and the SDK's own modules imported after *code*."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps(sorted({name if name.startswith('oomnitza_connect') "
        "else name.split('.')[0] for name in sys.modules})))"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OOMNITZA_CONNECT_")}
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=environment, check=True
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _cli(*args: str) -> str:
    """Run the console entry point's code with *args*, swallowing its exit."""
    return (
        "import sys\n"
        f"sys.argv = ['oomnitza-connect', *{list(args)!r}]\n"
        "from oomnitza_connect.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )


def test_import_oomnitza_connect_imports_nothing_heavy() -> None:
    imported = _imported_after("import oomnitza_connect")
    assert not imported & {*HEAVY, "requests", "attr", "pluggy", "click"}


def test_the_public_names_still_import_on_first_use() -> None:
    imported = _imported_after(
        "import oomnitza_connect\n"
        "assert callable(oomnitza_connect.run_sync)\n"
        "from oomnitza_connect import *\n"
        "assert SQLiteStore and hookimpl and get_connector"
    )
    assert "requests" in imported


def test_a_sync_script_imports_only_what_a_sync_needs() -> None:
    imported = _imported_after(
        "from oomnitza_connect import IntegrationSettings, SQLiteStore, run_sync, get_connector"
    )
    assert not imported & set(HEAVY)


CORE_ONLY = {"OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "0"}
"""No entry-point plugins: what the core itself costs. Plugins may add commands
(``register_commands``), so --help with plugins installed imports the plugins."""


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    imported = _imported_after(_cli("--help"), CORE_ONLY)
    assert "oomnitza_connect.cli" in imported
    assert not imported & {*HEAVY, "requests"}
    assert not [name for name in imported if name.endswith("_commands")]


def test_help_with_plugins_installed_still_imports_no_core_command_module() -> None:
    imported = _imported_after(_cli("--help"))
    core_modules = {f"oomnitza_connect.cli.{m.rsplit('.', 1)[1]}" for m in COMMAND_MODULES}
    assert not imported & core_modules


def test_completing_command_names_loads_no_command_module() -> None:
    env = {
        "_OOMNITZA_CONNECT_COMPLETE": "bash_complete",
        "COMP_WORDS": "oomnitza-connect s",
        "COMP_CWORD": "1",
    }
    imported = _imported_after(_cli(), {**env, **CORE_ONLY})
    assert "oomnitza_connect.cli" in imported
    assert not imported & {*HEAVY, "requests"}
    assert not [name for name in imported if name.endswith("_commands")]


def test_completion_offers_the_commands_and_a_commands_options() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOMNITZA_CONNECT_")}
    names = subprocess.run(
        [sys.executable, "-c", _cli()],
        env={**env, "_OOMNITZA_CONNECT_COMPLETE": "bash_complete",
             "COMP_WORDS": "oomnitza-connect s", "COMP_CWORD": "1"},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert names == ["plain,schedule", "plain,sessions", "plain,sync"]
    options = subprocess.run(
        [sys.executable, "-c", _cli()],
        env={**env, "_OOMNITZA_CONNECT_COMPLETE": "bash_complete",
             "COMP_WORDS": "oomnitza-connect sync --t", "COMP_CWORD": "2"},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "plain,--test-run" in options


def _registered() -> dict[str, tuple[str, click.Command]]:
    found: dict[str, tuple[str, click.Command]] = {}
    for module in COMMAND_MODULES:
        group = click.Group()
        importlib.import_module(module).register(group)
        for name, command in group.commands.items():
            found[name] = (module, command)
    return found


def test_the_command_table_matches_what_the_modules_register() -> None:
    registered = _registered()
    assert set(COMMANDS) == set(registered), (
        "add every command to oomnitza_connect.cli.COMMANDS (name, module, first help paragraph)"
    )
    for name, (module, command) in registered.items():
        listed_module, listed_help = COMMANDS[name]
        assert listed_module == module, name
        for limit in (30, 45, 80, 200):
            shown = click.Command(name, help=listed_help).get_short_help_str(limit)
            assert shown == command.get_short_help_str(limit), name


def test_help_lists_the_same_lines_as_an_eagerly_built_group() -> None:
    from click.testing import CliRunner

    from oomnitza_connect.cli import _Main, main

    eager = click.Group("oomnitza-connect")
    for name, (_, command) in _registered().items():
        eager.add_command(command, name)
    lazy = _Main("oomnitza-connect")  # nothing loaded yet: --help reads the table
    lazy_help = CliRunner().invoke(lazy, ["--help"], terminal_width=80).output
    assert not dict.keys(lazy.commands)
    eager_help = CliRunner().invoke(eager, ["--help"], terminal_width=80).output
    assert lazy_help.split("Commands:")[1] == eager_help.split("Commands:")[1]
    assert {"sync", "plugins"} <= set(main.commands)  # reading .commands loads them all


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_listed_command_runs_its_own_help(name: str) -> None:
    from click.testing import CliRunner

    from oomnitza_connect.cli import main

    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: main {name}")


def test_the_documented_completion_script_is_produced() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOMNITZA_CONNECT_")}
    script = subprocess.run(
        [sys.executable, "-c", _cli()],
        env={**env, "_OOMNITZA_CONNECT_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "_OOMNITZA_CONNECT_COMPLETE=bash_complete" in script
    assert "complete -o nosort -F" in script
