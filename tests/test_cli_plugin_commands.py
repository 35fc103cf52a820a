"""Plugins add their own commands through the register_commands hook."""

from __future__ import annotations

import click
from click.testing import CliRunner

from oomnitza_connect.cli import main
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.plugins import register_plugin


class _AcmeCommands:
    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.group("acme")
        def acme_group() -> None:
            """Acme's own workflows."""

        @acme_group.command("hello")
        @click.argument("name")
        def hello(name: str) -> None:
            click.echo(f"hello {name} from acme")

        @cli.command("plugins")
        def shadow() -> None:
            click.echo("a plugin must not replace a core command")


def test_a_plugin_command_runs_and_is_listed() -> None:
    with register_plugin(_AcmeCommands()):
        ran = CliRunner().invoke(main, ["acme", "hello", "ada"])
        listed = CliRunner().invoke(main, ["--help"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.strip() == "hello ada from acme"
    assert "acme" in listed.output
    assert "Acme's own workflows." in listed.output


def test_a_plugin_cannot_replace_a_core_command() -> None:
    with register_plugin(_AcmeCommands()):
        result = CliRunner().invoke(main, ["plugins"])
    assert "must not replace" not in result.output


def test_without_the_plugin_the_command_is_unknown() -> None:
    result = CliRunner().invoke(main, ["acme", "hello", "ada"])
    assert result.exit_code == 2
    assert "No such command 'acme'" in result.output
