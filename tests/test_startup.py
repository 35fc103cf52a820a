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
from pathlib import Path

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
    # OAuth2 grants and the credential store's file lock: not for a token in hand.
    assert not imported & {"oauthlib", "filelock"}


def test_a_whole_sync_with_the_default_filters_imports_neither_jinja_nor_tenacity(
    tmp_path: Path,
) -> None:
    # Slack's default filters are plain (read by Python's parser), and no request
    # fails, so neither the sandbox nor the retry machinery is needed.
    imported = _imported_after(
        "import oomnitza_connect as oc\n"
        "from oomnitza_connect.transport.http import ClientOptions\n"
        "with oc.get_connector('slack').create_emulator(users=30, seed=1) as slack:\n"
        "    settings = oc.IntegrationSettings(name='s', vendor='slack', credential='slack',\n"
        "        sync_key='email', default_role='Employee')\n"
        "    with oc.SQLiteStore(" + repr(str(tmp_path / "people.db")) + ") as store:\n"
        "        session = oc.run_sync(settings, credential=slack.test_credential(name='slack'),\n"
        "            store=store, options=ClientOptions(pace_requests=False))\n"
        "assert session.counts.created > 20, session\n"
    )
    assert "oomnitza_connect_slack" in imported
    assert not imported & {"jinja2", "tenacity"}


CORE_ONLY = {"OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "0"}
"""No entry-point plugins: what the core itself costs."""


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    imported = _imported_after(_cli("--help"), CORE_ONLY)
    assert "oomnitza_connect.cli" in imported
    assert not imported & {*HEAVY, "requests"}
    assert not [name for name in imported if name.endswith("_commands")]


def _plugin_modules(imported: set[str]) -> set[str]:
    return {name for name in imported if name.startswith("oomnitza_connect_")}


def test_help_with_every_plugin_installed_imports_no_plugin_and_nothing_heavy() -> None:
    # Plugins declare their commands in entry-point metadata: --help reads it
    # and imports none of them (nor the plugin manager).
    imported = _imported_after(_cli("--help"))
    core_modules = {f"oomnitza_connect.cli.{m.rsplit('.', 1)[1]}" for m in COMMAND_MODULES}
    assert not imported & core_modules
    assert not _plugin_modules(imported)
    assert not imported & {*HEAVY, "requests", "pluggy", "oomnitza_connect.plugins"}


def test_help_lists_a_declared_plugin_command_and_running_it_loads_only_that_plugin() -> None:
    listed = _run_cli("--help")
    assert "webex         Commands of oomnitza-connect-webex" in listed
    imported = _imported_after(_cli("webex", "--help"))
    assert "oomnitza_connect_webex.commands" in imported
    assert {name.split(".")[0] for name in _plugin_modules(imported)} == {"oomnitza_connect_webex"}


def test_completion_with_every_plugin_installed_imports_no_plugin() -> None:
    env = {
        "_OOMNITZA_CONNECT_COMPLETE": "bash_complete",
        "COMP_WORDS": "oomnitza-connect w",
        "COMP_CWORD": "1",
    }
    imported = _imported_after(_cli(), env)
    assert not _plugin_modules(imported)
    assert not imported & {*HEAVY, "requests", "pluggy"}
    offered = _run_cli(env=env).split()
    assert offered == ["plain,webex", "plain,worker"]


def _run_cli(*args: str, env: dict[str, str] | None = None, path: str | None = None) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OOMNITZA_CONNECT_")}
    environment.update(env or {})
    if path is not None:
        environment["PYTHONPATH"] = path
    result = subprocess.run(
        [sys.executable, "-c", _cli(*args)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    return result.stdout + result.stderr


ACME_COMMAND = '''\
import click


@click.command()
def acme():
    """Acme's own command."""
    click.echo("hello from acme")
'''


def _fake_distribution(root: Path, entry_point: str) -> str:
    """An installed distribution (metadata only) declaring one command, on a path of its own."""
    info = root / "acme_cli_test-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-cli-test\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[oomnitza_connect.commands]\nacme = {entry_point}\n")
    return str(root)


def test_a_declared_command_runs_follows_the_plugin_switches_and_names_its_failure(
    tmp_path: Path,
) -> None:
    (tmp_path / "acme_cli_test.py").write_text(ACME_COMMAND)
    path = _fake_distribution(tmp_path, "acme_cli_test:acme")
    assert "acme          Commands of acme-cli-test 1.2." in _run_cli("--help", path=path)
    assert _run_cli("acme", path=path).strip() == "hello from acme"
    # The plugin selection applies to commands as it does to plugins.
    blocked = {"OOMNITZA_CONNECT_BLOCK_PLUGINS": "acme-cli-test"}
    assert "acme" not in _run_cli("--help", env=blocked, path=path).split()
    assert "No such command 'acme'" in _run_cli("acme", env=blocked, path=path)
    broken = tmp_path / "broken"
    broken.mkdir()
    output = _run_cli("acme", path=_fake_distribution(broken, "acme_cli_missing:acme"))
    assert "the command 'acme' of the plugin acme-cli-test 1.2 failed to load" in output
    assert "ModuleNotFoundError" in output


def test_the_cli_reads_the_same_plugin_switches_as_the_plugin_manager() -> None:
    from oomnitza_connect import cli, plugins

    assert cli._LOAD_ENTRY_POINTS_ENV == plugins.LOAD_ENTRY_POINTS_ENV
    assert cli._ALLOW_ENV == plugins.ALLOW_ENV
    assert cli._BLOCK_ENV == plugins.BLOCK_ENV


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
        "add every command to oomnitza_connect.cli.COMMANDS (name, module, short help)"
    )
    for name, (module, command) in registered.items():
        listed_module, listed_help = COMMANDS[name]
        assert listed_module == module, name
        for limit in (50, 80, 200):  # short help is never cut (test_cli_conventions)
            shown = click.Command(name, short_help=listed_help).get_short_help_str(limit)
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
