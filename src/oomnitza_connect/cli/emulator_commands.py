"""``oomnitza-connect emulator VENDOR``: run a vendor's local emulator in the foreground.

Generic over vendors: the emulator comes from the vendor plugin's
vendor object's ``create_emulator``. An emulator that offers a ``test_credential()``
method (returning a :class:`~oomnitza_connect.models.Credential`) gets it
printed, so a developer can point a credential at it at once; one that offers
``oauth_credential()`` (an ``oauth2_authorization_code`` credential without
tokens) gets its OAuth app printed too: client id and secret, authorize and
token URLs, the loopback redirect and the commands that store it and run
``auth login`` against the emulator.
"""

from __future__ import annotations

import enum
import json
import re
import shlex
import sys
import time
from typing import Any

import attrs
import click

from ..auth.credentials import OOMNITZA_VENDOR, credential_env_name
from ..config import unstructure
from ..models import AuthKind, Credential
from ..plugins import vendor_info
from ..testing.emulator import Emulator
from . import output

__all__ = ["register"]

LOOPBACK_REDIRECT = "http://127.0.0.1:PORT/callback"
"""Where 'auth login' listens for the redirect; an emulator's OAuth app allows any port."""


def register(main: click.Group) -> None:
    """Add this module's commands to *main*."""
    main.add_command(emulator_command)


@click.command("emulator", short_help="Run VENDOR's API emulator on 127.0.0.1.")
@click.argument("vendor")
@click.option("--users", type=click.IntRange(min=0), default=100, show_default=True,
              help="How many generated users the emulator serves.")  # fmt: skip
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="The port on 127.0.0.1 to listen on (0 picks a free one).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True,
              help="Makes the generated users reproducible.")  # fmt: skip
@click.option("--token", default=None,
              help="The test token the emulator accepts (default: a fresh one).")  # fmt: skip
@output.json_option("Print the base URL, credential and settings as one JSON line.")
def emulator_command(
    vendor: str, users: int, port: int, seed: int, token: str | None, as_json: bool
) -> None:
    """Run VENDOR's API emulator on 127.0.0.1 until Ctrl-C.

    VENDOR is any installed vendor (oomnitza-connect plugins lists them; slack,
    intercom, webex and talkdesk ship with their emulators), or oomnitza for
    Oomnitza's API (the destination). With --json the emulator's address and test
    credential are one JSON object on one line, printed once it listens.
    """
    emulator: Any
    if vendor == OOMNITZA_VENDOR:
        # The destination's emulator is part of the test kit, not of a vendor plugin.
        from ..testing.oomnitza import OomnitzaEmulator

        emulator = OomnitzaEmulator(token=token, port=port)
        users = 0
    else:
        from ..errors import UnknownVendorError

        try:
            vendor_info(vendor)  # an unknown vendor fails here, listing the installed ones
        except UnknownVendorError as exc:
            # oomnitza is an emulator too (a misspelled "oomnitz" is a near miss of it).
            raise UnknownVendorError(
                vendor, [*exc.installed, OOMNITZA_VENDOR], hint=exc.hint
            ) from None
        options: dict[str, Any] = {"users": users, "port": port, "seed": seed}
        if token is not None:
            options["token"] = token
        from ..connectors import get_connector
        from ..errors import PluginError

        try:
            emulator = get_connector(vendor).create_emulator(**options)
        except PluginError as exc:
            raise click.UsageError(str(exc)) from None
    if not isinstance(emulator, Emulator):
        raise click.ClickException(
            f"the '{vendor}' plugin's create_emulator returned {type(emulator).__name__}, "
            "not an Emulator"
        )
    try:
        emulator.start()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); choose another "
            "port, or 0 for a free one",
            param_hint="'--port'",
        ) from None
    try:
        if as_json:
            output.echo_json(_description(vendor, emulator, users), lines=True)
            sys.stdout.flush()
            click.echo("Press Ctrl-C to stop.", err=True)
        else:
            _describe(vendor, emulator, users)
            login = getattr(emulator, "password_credential", None)
            if callable(login):
                # Oomnitza also exchanges a login and password for a token
                # (POST /api/request_token).
                account = login()
                assert account.password is not None
                click.echo(f"login: {account.username}  password: {account.password.reveal()}")
            click.echo("Press Ctrl-C to stop.", err=True)  # last: after all there is to copy
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        emulator.stop()


def _describe(vendor: str, emulator: Emulator, users: int) -> None:
    click.echo(f"{vendor} emulator serving {users} users")
    click.echo(f"base URL: {emulator.base_url}")
    make_credential = getattr(emulator, "test_credential", None)
    credential = make_credential() if callable(make_credential) else None
    if isinstance(credential, Credential):
        # A throwaway test credential: printing it is the point of this command.
        token = credential.token.reveal() if credential.token else None
        click.echo(f"test credential: kind={credential.kind.value}")
        if token:
            click.echo(f"token: {token}")
        if credential.username:
            click.echo(f"username: {credential.username}")
        click.echo(f"base_url: {credential.base_url or emulator.base_url}")
        make_settings = getattr(emulator, "test_settings", None)
        settings = make_settings() if callable(make_settings) else None
        if isinstance(settings, dict) and settings:
            # The account's settings (a Talkdesk subdomain), for the integration file.
            pairs = " ".join(f"{key}={value}" for key, value in settings.items())
            click.echo(f"settings: {pairs}")
        click.echo("use it as a stored credential:")
        variable = credential_env_name(credential.name)
        click.echo(f"export {variable}='{json.dumps(_credential_data(credential))}'")
        if token and credential.kind is AuthKind.API_KEY:
            click.echo("or keep it in the credential store:")
            click.echo(f"  {_add_token_command(credential, token)}")
        # `integrations init` names the credential after the vendor; this one has
        # its own name, which the integration file must give.
        click.echo(f'in the integration file: credential = "{credential.name}"')
    oauth = _oauth_app(emulator)
    if oauth is not None:
        _describe_oauth_app(oauth)


def _add_token_command(credential: Credential, token: str) -> str:
    """The shell line that stores *credential*, an API token, with ``credentials add``."""
    words = [
        "oomnitza-connect", "credentials", "add", credential.name,
        "--vendor", credential.vendor, "--kind", credential.kind.value, "--token-stdin",
    ]  # fmt: skip
    defaults = attrs.fields(Credential)
    if credential.header_name != defaults.header_name.default:
        words += ["--header-name", credential.header_name]
    if credential.header_prefix != defaults.header_prefix.default:
        words += ["--header-prefix", credential.header_prefix]
    if credential.base_url:
        words += ["--base-url", credential.base_url]
    return f"printf %s {shlex.quote(token)} | {shlex.join(words)}"


def _oauth_app(emulator: Emulator) -> Credential | None:
    """The emulator's OAuth app as a credential without tokens, when it offers one."""
    make = getattr(emulator, "oauth_credential", None)
    credential = make() if callable(make) else None
    return credential if isinstance(credential, Credential) else None


def _oauth_secret_variable(credential: Credential) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", credential.name).upper() + "_CLIENT_SECRET"


def _login_commands(credential: Credential) -> list[str]:
    """The shell lines that store *credential* and log in with it (``auth login``)."""
    secret = credential.client_secret.reveal() if credential.client_secret else ""
    variable = _oauth_secret_variable(credential)
    add = [
        "oomnitza-connect", "credentials", "add", credential.name,
        "--vendor", credential.vendor, "--kind", credential.kind.value,
        "--client-id", credential.client_id or "", "--client-secret-env", variable,
        "--client-auth-method", credential.client_auth_method.value,
        "--authorize-url", credential.authorize_url or "",
        "--token-url", credential.token_url or "",
        "--base-url", credential.base_url or "",
    ]  # fmt: skip
    for scope in credential.scopes:
        add += ["--scope", scope]
    return [
        f"export {variable}={shlex.quote(secret)}",
        shlex.join(add),
        shlex.join(["oomnitza-connect", "auth", "login", credential.name]),
    ]


def _describe_oauth_app(credential: Credential) -> None:
    # The emulator's throwaway OAuth app: what 'auth login' needs, printed on purpose.
    click.echo("OAuth app (oauth2_authorization_code, for 'auth login'):")
    click.echo(f"client id: {credential.client_id}")
    secret = credential.client_secret.reveal() if credential.client_secret else ""
    click.echo(f"client secret: {secret}")
    click.echo(f"client auth method: {credential.client_auth_method.value}")
    click.echo(f"authorize URL: {credential.authorize_url}")
    click.echo(f"token URL: {credential.token_url}")
    click.echo(f"scopes: {' '.join(credential.scopes)}")
    click.echo(
        f"redirect URI: {LOOPBACK_REDIRECT} (any port; the emulator approves at once and "
        "redirects there, no sign-in page)"
    )
    click.echo("log in with:")
    for line in _login_commands(credential):
        click.echo(f"  {line}")


def _description(vendor: str, emulator: Emulator, users: int) -> dict[str, Any]:
    """What ``--json`` prints: the emulator's address, test credential and settings."""
    data: dict[str, Any] = {"vendor": vendor, "users": users, "base_url": emulator.base_url}
    make_credential = getattr(emulator, "test_credential", None)
    credential = make_credential() if callable(make_credential) else None
    if isinstance(credential, Credential):
        # A throwaway test credential: printing it is the point of this command.
        data["credential"] = {"name": credential.name, **_credential_data(credential)}
        data["credential_env"] = {
            credential_env_name(credential.name): json.dumps(_credential_data(credential))
        }
    oauth = _oauth_app(emulator)
    if oauth is not None:
        data["oauth"] = {
            "credential": {"name": oauth.name, **_credential_data(oauth)},
            "redirect_uri": LOOPBACK_REDIRECT,
            "login_commands": _login_commands(oauth),
        }
    make_settings = getattr(emulator, "test_settings", None)
    settings = make_settings() if callable(make_settings) else None
    data["settings"] = dict(settings) if isinstance(settings, dict) else {}
    login = getattr(emulator, "password_credential", None)
    if callable(login):
        # Oomnitza also exchanges a login and password for a token (POST /api/request_token).
        account = login()
        if account.password is not None:
            data["login"] = {"username": account.username, "password": account.password.reveal()}
    return data


def _credential_data(credential: Credential) -> dict[str, Any]:
    """The credential's fields that differ from the defaults, secrets revealed."""
    defaults = {
        field.name: field.default
        for field in attrs.fields(Credential)
        if field.default is not attrs.NOTHING
    }
    data: dict[str, Any] = {}
    for key, value in unstructure(credential).items():
        if key == "name" or value in (None, [], ()) or value == defaults.get(key):
            continue
        data[key] = value.value if isinstance(value, enum.Enum) else value
    return data
