"""``oomnitza-connect-talkdesk``: Talkdesk's own commands (a credential from app.installed).

``oomnitza-connect-talkdesk import-installation EVENT.json --name talkdesk``
reads the ``app.installed`` event Talkdesk sent and saves a credential in the
default credential store; the secrets never reach the terminal.
"""

from __future__ import annotations

from pathlib import Path

import click

from oomnitza_connect.auth.credentials import default_credential_store
from oomnitza_connect.errors import ConfigurationError, OomnitzaConnectError
from oomnitza_connect.redaction import redact

from .installation import credential_from_app_installed, read_app_installed
from .vendor import REGION_SETTING, SUBDOMAIN_SETTING

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Talkdesk commands of oomnitza-connect."""


@main.command("import-installation")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default="talkdesk", show_default=True, help="The credential's name.")
@click.option(
    "--basic", is_flag=True, help="Use HTTP Basic (the client secret) instead of a signed JWT."
)
@click.option(
    "--token-url",
    default=None,
    help="Only for a token host that is not the account's (an emulator).",
)
@click.option(
    "--no-api-root", is_flag=True, help="Ignore _links.root.href; the region picks the API host."
)
@click.option("--force", is_flag=True, help="Replace a credential of the same name.")
def import_installation(
    event_file: Path, name: str, basic: bool, token_url: str | None, no_api_root: bool, force: bool
) -> None:
    """Save a credential made from Talkdesk's app.installed EVENT_FILE."""
    store = default_credential_store()
    try:
        if not force:
            try:
                store.get(name)
            except ConfigurationError:
                pass
            else:
                raise click.UsageError(f"credential '{name}' exists; use --force to replace it")
        app = read_app_installed(event_file)
        credential = credential_from_app_installed(
            event_file,
            name=name,
            method="basic" if basic else "jwt",
            token_url=token_url,
            use_api_root=not no_api_root,
        )
        store.save(credential)
    except OomnitzaConnectError as exc:
        click.secho(f"Error: {redact(str(exc))}", err=True, fg="red")
        raise SystemExit(2) from None
    how = "HTTP Basic" if basic else f"a signed JWT ({credential.signing_algorithm or 'auto'})"
    click.echo(f"Saved credential '{name}' (talkdesk, {how}) in {store.source_of(name)}.")
    if app.account_name:
        click.echo(
            f'In the integration, set {SUBDOMAIN_SETTING} = "{app.account_name}" '
            f"and {REGION_SETTING} to the account's region."
        )
