"""``oomnitza-connect plugins`` and ``oomnitza-connect new-plugin``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import click

from ..plugins import describe_plugins, failed_plugins, plugin_selection_hint
from ..scaffold import render_plugin
from . import output


def register(main: click.Group) -> None:
    """Add this module's commands to *main*."""
    main.add_command(plugins_command)
    main.add_command(new_plugin_command)


@click.command("plugins", short_help="List the installed plugins and load errors.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--all",
    "include_builtin",
    is_flag=True,
    help="Also list the core's own hook implementations.",
)
def plugins_command(as_json: bool, include_builtin: bool) -> None:
    """List the installed plugins: distribution, version, hooks, auth kinds, presets.

    Plugins that failed to load are listed with their error.
    """
    import warnings

    from ..errors import PluginLoadWarning

    with warnings.catch_warnings():
        # Listed below with their errors: once is enough.
        warnings.simplefilter("ignore", PluginLoadWarning)
        described = describe_plugins(include_builtin=include_builtin)
    failed = failed_plugins()
    if as_json:
        payload: dict[str, Any] = {
            "plugins": [attrs.asdict(d) for d in described],
            "failed": [attrs.asdict(f) for f in failed],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    console = output.console()
    if not described and not failed:
        hint = plugin_selection_hint()
        if hint:
            console.print(f"No plugins are loaded: {hint.replace(' it ', ' them ')}.")
        else:
            console.print("No plugins are installed (try: pip install oomnitza-connect-slack).")
    # A block per plugin rather than a table: hook lists are long and terminals narrow.
    for plugin in described:
        origin = (
            f"{plugin.distribution} {plugin.version}"
            if plugin.distribution
            else "registered by code"
        )
        console.print(f"[bold]{plugin.name}[/bold]  ({origin})")
        console.print(f"  vendors:    {', '.join(plugin.vendors) or '-'}")
        console.print(f"  auth kinds: {', '.join(plugin.auth_kinds) or '-'}")
        console.print(f"  presets:    {plugin.presets}")
        console.print(f"  hooks:      {', '.join(plugin.hooks)}")
    for failure in failed:
        click.secho(
            f"Plugin '{failure.name}' from distribution '{failure.distribution}' "
            f"failed to load: {failure.error}",
            err=True,
            fg="yellow",
        )


@click.command("new-plugin", short_help="Create a vendor plugin package for NAME.")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package directory oomnitza-connect-NAME.",
)
@click.option("--display-name", help="The vendor as people write it (default: from NAME).")
def new_plugin_command(name: str, directory: Path, display_name: str | None) -> None:
    """Create a new vendor plugin package for vendor NAME (e.g. 'acme' or 'acme-hr').

    The package has the entry point, hook implementations, an emulator, the
    conformance tests and a README; its tests pass as soon as it is installed.
    """
    target = render_plugin(name, directory, display_name=display_name)
    click.echo(f"Created {target}")
    click.echo("Next:")
    click.echo(f"  cd {target}")
    click.echo("  pip install -e . pytest")
    click.echo("  pytest")
    click.echo("  oomnitza-connect plugins")
