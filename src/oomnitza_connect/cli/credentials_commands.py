"""``oomnitza-connect credentials …`` and ``oomnitza-connect auth …``.

Secrets never travel on the command line in clear (they would land in shell
history and in ``ps``): each is read from stdin (``--token-stdin``), from an
environment variable (``--token-env VAR``), from a file (``--private-key-file``)
or from a hidden prompt.
"""

from __future__ import annotations

import json
import sys
import webbrowser
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..auth.credentials import CredentialStore, default_credential_store
from ..auth.oauth import (
    PRIVATE_KEY_FORMS,
    complete_authorization,
    start_authorization,
)
from ..errors import ConfigurationError
from ..models import AuthKind, ClientAuthMethod, Credential
from ..redaction import MASK, Secret, redact
from ..transport.http import ClientOptions
from . import output

__all__ = ["register"]

EXIT_USAGE = 2
DEFAULT_LOGIN_PORT = 8765  # oomnitza_connect.api.DEFAULT_LOGIN_PORT (a test keeps them equal)
_SECRET_FIELDS = (
    "token",
    "password",
    "client_secret",
    "private_key",
    "access_token",
    "refresh_token",
)


def _store() -> CredentialStore:
    return default_credential_store()


def _read_secret(
    label: str, *, from_stdin: bool, env_var: str | None, prompt: bool
) -> Secret | None:
    if from_stdin and env_var:
        raise click.UsageError(
            f"give the {label} either on stdin or through an environment variable, not both"
        )
    if from_stdin:
        value = sys.stdin.read().strip()
        if not value:
            raise click.UsageError(f"stdin held no {label}")
        return Secret(value)
    if env_var:
        import os

        value = os.environ.get(env_var, "").strip()
        if not value:
            raise click.UsageError(f"environment variable {env_var} is empty or not set")
        return Secret(value)
    if prompt:
        return Secret(click.prompt(label.capitalize(), hide_input=True))
    return None


# ---------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------


@click.group("credentials")
def credentials_group() -> None:
    """Add, list, show and remove named credentials."""


@credentials_group.command("add", short_help="Store credential NAME (secrets never on argv).")
@click.argument("name")
@click.option(
    "--vendor",
    required=True,
    help="An installed vendor (oomnitza-connect plugins lists them), or oomnitza for the "
    "Oomnitza destination.",
)
@click.option(
    "--kind",
    required=True,
    type=click.Choice([k.value for k in AuthKind]),
    help="How the credential authenticates.",
)
@click.option("--token-stdin", is_flag=True, help="Read the API token from stdin.")
@click.option(
    "--token-env", metavar="VAR", help="Read the API token from environment variable VAR."
)
@click.option(
    "--header-name",
    default="Authorization",
    show_default=True,
    help="Header that carries the API token.",
)
@click.option(
    "--header-prefix",
    default="Bearer",
    show_default=True,
    help="Put before the token; '' sends the raw value.",
)
@click.option("--username", help="HTTP Basic user name.")
@click.option("--password-stdin", is_flag=True, help="Read the HTTP Basic password from stdin.")
@click.option(
    "--password-env", metavar="VAR", help="Read the password from environment variable VAR."
)
@click.option("--client-id", help="OAuth2 client id.")
@click.option(
    "--client-secret-stdin", is_flag=True, help="Read the OAuth2 client secret from stdin."
)
@click.option("--client-secret-env", metavar="VAR", help="Read the client secret from VAR.")
@click.option(
    "--client-auth-method",
    type=click.Choice([m.value for m in ClientAuthMethod]),
    help="How the client proves itself at the token endpoint.",
)
@click.option(
    "--private-key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Unencrypted EC (P-256/384/521) or RSA private key, PEM or base64 PKCS#8, for "
    "private_key_jwt; checked when added.",
)
@click.option("--key-id", help="The key id (kid) of the private key.")
@click.option("--algorithm", help="Signing algorithm: ES256/384/512 or PS256/384/512.")
@click.option("--token-url", help="OAuth2 token endpoint (may use {{Vendor.Setting}}).")
@click.option("--authorize-url", help="OAuth2 authorization endpoint.")
@click.option("--redirect-uri", help="Registered redirect URI for 'auth login'.")
@click.option("--scope", "scopes", multiple=True, help="OAuth2 scope (repeatable).")
@click.option("--base-url", help="Override the vendor's API root (region, proxy).")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM file of a private CA to trust.",
)
@click.option("--force", is_flag=True, help="Replace a credential of the same name.")
@click.option(
    "--allow-uninstalled-vendor",
    is_flag=True,
    help="Accept a --vendor whose plugin is not installed (yet).",
)
def add_command(name: str, vendor: str, kind: str, **options: Any) -> None:
    """Store credential NAME (secrets come from stdin, the environment or a hidden prompt)."""
    if not options["allow_uninstalled_vendor"]:
        _check_vendor(vendor)
    store = _store()
    if not options["force"]:
        try:
            store.get(name)
        except ConfigurationError:
            pass
        else:
            raise click.UsageError(f"credential '{name}' exists; use --force to replace it")
    auth_kind = AuthKind(kind)
    interactive = sys.stdin.isatty()
    fields: dict[str, Any] = {"name": name, "vendor": vendor, "kind": auth_kind}
    if auth_kind is AuthKind.API_KEY:
        fields["token"] = _read_secret(
            "API token",
            from_stdin=options["token_stdin"],
            env_var=options["token_env"],
            prompt=interactive,
        )
        if fields["token"] is None:
            raise click.UsageError("an api_key credential needs --token-stdin or --token-env")
        fields["header_name"] = options["header_name"]
        fields["header_prefix"] = options["header_prefix"]
    elif auth_kind is AuthKind.BASIC:
        if not options["username"]:
            raise click.UsageError("a basic credential needs --username")
        fields["username"] = options["username"]
        fields["password"] = _read_secret(
            "password",
            from_stdin=options["password_stdin"],
            env_var=options["password_env"],
            prompt=interactive,
        )
        if fields["password"] is None:
            raise click.UsageError("a basic credential needs --password-stdin or --password-env")
    else:
        if not options["client_id"]:
            raise click.UsageError(f"a {kind} credential needs --client-id")
        fields["client_id"] = options["client_id"]
        method = options["client_auth_method"] or (
            ClientAuthMethod.PRIVATE_KEY_JWT.value
            if options["private_key_file"]
            else ClientAuthMethod.CLIENT_SECRET_BASIC.value
        )
        fields["client_auth_method"] = ClientAuthMethod(method)
        if method == ClientAuthMethod.PRIVATE_KEY_JWT.value:
            if options["private_key_file"] is None:
                raise click.UsageError("private_key_jwt needs --private-key-file")
            fields["private_key"] = _read_private_key(
                options["private_key_file"], options["algorithm"]
            )
            fields["key_id"] = options["key_id"]
            fields["signing_algorithm"] = options["algorithm"]
        else:
            needs_secret = auth_kind is AuthKind.OAUTH2_CLIENT_CREDENTIALS
            fields["client_secret"] = _read_secret(
                "client secret",
                from_stdin=options["client_secret_stdin"],
                env_var=options["client_secret_env"],
                prompt=interactive and needs_secret,
            )
            if needs_secret and fields["client_secret"] is None:
                raise click.UsageError(
                    "a client secret is needed: --client-secret-stdin or --client-secret-env"
                )
        fields["token_url"] = options["token_url"]
        fields["authorize_url"] = options["authorize_url"]
        fields["redirect_uri"] = options["redirect_uri"]
        fields["scopes"] = tuple(options["scopes"])
    fields["base_url"] = options["base_url"]
    if options["base_url"]:
        from ..transport.http import base_url_problem

        problem = base_url_problem(options["base_url"])
        if problem is not None:
            raise ConfigurationError(problem, key_path="--base-url", allowed="https://host/path")
    fields["ca_bundle"] = options["ca_bundle"]
    credential = Credential(**{k: v for k, v in fields.items() if v is not None})
    store.save(credential)
    click.echo(f"Saved credential '{name}' ({vendor}, {kind}) in {store.source_of(name)}.")
    if auth_kind is AuthKind.OAUTH2_AUTHORIZATION_CODE:
        click.echo(f"Next: oomnitza-connect auth login {name}")


def _check_vendor(vendor: str) -> None:
    """Refuse a vendor no installed plugin provides: most often a misspelling, which
    would otherwise be stored and fail only at the first sync that uses it.

    Its own flag, not ``--force``: replacing a credential is when a command is
    retyped, and so when a misspelling is most likely.
    """
    from ..auth.credentials import credential_vendors
    from ..errors import did_you_mean
    from ..plugins import missing_vendor_hint

    allowed = credential_vendors()
    if vendor in allowed:
        return
    hint = missing_vendor_hint()
    raise click.BadParameter(
        f"no installed plugin provides the vendor '{vendor}'{did_you_mean(vendor, allowed)} "
        f"(allowed: {', '.join(allowed)}). For a vendor whose plugin is not installed yet, "
        "add --allow-uninstalled-vendor." + (f" Note: {hint}." if hint else ""),
        param_hint="'--vendor'",
    )


def _read_private_key(path: str, algorithm: str | None) -> Secret:
    """Read and check the key now, so that a wrong file fails here, not at 'auth test'."""
    from ..auth.oauth import check_private_key

    try:
        text = Path(path).read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise ConfigurationError(
            "is not a PEM or base64 text file", file=path, allowed=PRIVATE_KEY_FORMS
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot be read ({exc.strerror or exc.__class__.__name__})", file=path
        ) from None
    key = Secret(text)  # remembered for redaction before anything can quote it
    try:
        check_private_key(key.reveal(), algorithm=algorithm)
    except ConfigurationError as exc:
        option = "--algorithm" if exc.key_path == "signing_algorithm" else "--private-key-file"
        raise ConfigurationError(
            exc.message, file=path, key_path=option, allowed=exc.allowed
        ) from None
    return key


def _describe(credential: Credential) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for field in type(credential).__attrs_attrs__:
        value = getattr(credential, field.name)
        if field.name in _SECRET_FIELDS:
            shown[field.name] = MASK if value else None
        elif value is None or value == ():
            shown[field.name] = None
        elif hasattr(value, "isoformat"):
            shown[field.name] = value.isoformat()
        elif isinstance(value, tuple):
            shown[field.name] = list(value)
        else:
            shown[field.name] = str(value)
    return shown


@credentials_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """List every credential (never its secrets).

    A credential that cannot be read is named on stderr with its file and key,
    the others are listed, and the exit status is 2 (a configuration error).
    """
    store = _store()
    credentials, problems = store.list_checked()
    rows = [
        {
            "name": c.name,
            "vendor": c.vendor,
            "kind": c.kind.value,
            "source": store.source_of(c.name),
            "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        }
        for c in credentials
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        table = output.table(title="Credentials")
        for column in ("name", "vendor", "kind", "source", "expires_at"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                *(row[c] or "" for c in ("name", "vendor", "kind", "source", "expires_at"))
            )
        output.show(table)
    for problem in problems:
        # The others are still listed; the bad one is named (never its value).
        click.secho(f"Error: {redact(str(problem))}", err=True, fg="red")
    if problems:
        # Like ls with a file it cannot read: what could be listed was, and it failed.
        raise SystemExit(EXIT_USAGE)


@credentials_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show_command(name: str, as_json: bool) -> None:
    """Show credential NAME with its secrets masked."""
    store = _store()
    shown = _describe(store.get(name))
    shown["source"] = store.source_of(name)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    table = output.table(title=f"Credential {name}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key, value in shown.items():
        if value is not None:
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    output.show(table)


@credentials_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Delete credential NAME from the store."""
    _store().remove(name)
    click.echo(f"Removed credential '{name}'.")


# ---------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------


@click.group("auth", short_help="Log in with OAuth2 and test credentials.")
def auth_group() -> None:
    """Log in with OAuth2 and test credentials against their vendor."""


def _parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    return _parse_pairs(pairs, "--setting")


def _parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"{option} expects KEY=VALUE, not {pair!r}")
        parsed[key] = value
    return parsed


@auth_group.command("test", short_help="Check a credential against its vendor.")
@click.argument("credential_name", metavar="CREDENTIAL")
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A vendor global setting (Talkdesk.Account=acme); repeatable.",
)
@click.option("--base-url", help="Override the API root (an emulator, a proxy).")
@output.json_option("Print the credential, vendor and identity as JSON.")
def test_command(
    credential_name: str, settings: tuple[str, ...], base_url: str | None, as_json: bool
) -> None:
    """Authenticate with CREDENTIAL and print who the vendor says it is."""
    from ..connectors import get_connector
    from ..sync.integrations import check_settings

    credential = _store().get(credential_name)
    connector = get_connector(credential.vendor)
    given = _parse_settings(settings)
    check_settings(given, connector.info, source="--setting")
    options = ClientOptions(base_url=base_url or credential.base_url)
    with connector.authenticate(credential, given, options=options) as session:
        identity: Mapping[str, Any] = session.identity
    if as_json:
        output.echo_json(
            {
                "credential": credential_name,
                "vendor": connector.info.name,
                "works": True,
                "identity": dict(identity),
            }
        )
        return
    click.echo(f"Credential '{credential_name}' works with {connector.info.display_name}.")
    width = max((len(str(key)) for key in identity), default=0)
    for key, value in sorted(identity.items()):
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        click.echo(f"  {str(key).ljust(width)}  {shown}")


@auth_group.command("login", short_help="Log in with OAuth2 and store the tokens.")
@click.argument("credential_name", metavar="CREDENTIAL")
@click.option(
    "--paste",
    is_flag=True,
    help="Paste the redirect URL (or code) instead of receiving it on a local port.",
)
@click.option(
    "--port",
    type=int,
    help="Local port for the redirect (default: the credential's "
    f"redirect_uri port, else {DEFAULT_LOGIN_PORT}; 0 picks a free one).",
)
@click.option("--no-browser", is_flag=True, help="Print the URL without opening a browser.")
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A vendor global setting used in the OAuth2 URLs; repeatable.",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for the browser to come back.",
)
@click.option(
    "--authorize-param",
    "authorize_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An extra query parameter of the authorize URL (Slack: "
    "user_scope=admin,users:read); repeatable.",
)
def login_command(
    credential_name: str,
    paste: bool,
    port: int | None,
    no_browser: bool,
    settings: tuple[str, ...],
    timeout: float,
    authorize_params: tuple[str, ...],
) -> None:
    """Run the OAuth2 authorization code flow (PKCE) and store the tokens in CREDENTIAL.

    In Python: oomnitza_connect.login(CREDENTIAL).
    """
    from ..api import login, oauth_login_plan

    store = _store()
    credential = store.get(credential_name)
    given = _parse_settings(settings)
    plan = oauth_login_plan(credential, given, port=port)
    extra_params = _parse_pairs(authorize_params, "--authorize-param")

    def show(url: str) -> None:
        click.echo("Open this URL to grant access:\n")
        click.echo(f"  {url}\n")
        if not no_browser:
            webbrowser.open(url)

    if paste:
        redirect_uri = credential.redirect_uri or f"http://127.0.0.1:{plan.port}/callback"
        pending = start_authorization(
            credential,
            authorize_url=plan.authorize_url,
            redirect_uri=redirect_uri,
            extra_params=extra_params,
        )
        show(pending.url)
        returned = click.prompt(
            "Paste the URL you were sent to (or just the code)", hide_input=True
        )
        updated = complete_authorization(
            credential,
            pending,
            returned,
            token_url=plan.token_url,
            options=ClientOptions(ca_bundle=credential.ca_bundle),
            token_response_parser=plan.token_response_parser,
            credential_store=store,
        )
    else:
        updated = login(
            credential,
            settings=given,
            open_url=show,
            port=plan.port,
            timeout=timeout,
            authorize_params=extra_params,
            credential_store=store,
        )
    expiry = updated.expires_at.isoformat() if updated.expires_at else "no expiry given"
    click.echo(
        f"Logged in. Tokens saved in credential '{credential_name}' (access token "
        f"expires: {expiry})."
    )


def register(main: click.Group) -> None:
    """Add this module's commands to *main*."""
    main.add_command(credentials_group)
    main.add_command(auth_group)
