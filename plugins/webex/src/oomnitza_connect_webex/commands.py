"""``oomnitza-connect webex ...``: the Webex SaaS-user workflows on the command line.

* ``webex user-role``: role names, status and last activity for every Webex
  SaaS user in the store (the "Webex User Role" workflow).
* ``webex inactive-users --days N``: runs User Role, shows the SaaS users whose
  last activity is older than N days (or who never signed in), and deletes them
  with Delete User only with ``--yes``; without it, a dry run. User Role's
  per-person failures are printed (and make it exit 1), as ``user-role`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from oomnitza_connect.auth.credentials import resolve_credential
from oomnitza_connect.cli.store_option import db_option, open_store
from oomnitza_connect.connectors import get_connector
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.vendors.session import VendorSession

from .mapping import VENDOR
from .workflows import delete_inactive_users, find_inactive_users, run_user_role

__all__ = ["webex_group"]


def _session_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--integration",
        "integration_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Take the credential, settings and base URL from this integration file.",
    )(func)
    return click.option("--credential", "credential_name", help="Credential name.")(func)


@contextmanager
def _session(credential_name: str | None, integration_path: Path | None) -> Iterator[VendorSession]:
    connector = get_connector(VENDOR)
    settings: dict[str, str] = {}
    base_url = None
    if integration_path is not None:
        from oomnitza_connect.sync.integrations import load_integration

        integration = load_integration(integration_path, info=connector.info)
        if integration.vendor != VENDOR:
            raise click.UsageError(f"{integration_path} is for {integration.vendor}, not webex.")
        credential_name = credential_name or integration.credential
        settings = dict(integration.settings)
        base_url = integration.base_url
    if not credential_name:
        raise click.UsageError("Give --credential (or --integration).")
    credential = resolve_credential(credential_name)
    if credential.vendor != VENDOR:
        raise ConfigurationError(
            f"credential '{credential_name}' is for {credential.vendor}, not webex",
            key_path="vendor",
        )
    if base_url:
        import attrs

        credential = attrs.evolve(credential, base_url=base_url)
    with connector.authenticate(credential, connector.effective_settings(settings)) as session:
        yield session


def _store_path(integration_path: Path | None, db_path: Path | None) -> Path | None:
    """The SQLite store these commands work on: --db, else the integration's sqlite
    [destination]; an Oomnitza destination is refused, as it keeps no fields of its own
    on a SaaS user (the roles, status and activity these commands read and write)."""
    if integration_path is None:
        return db_path
    from oomnitza_connect.models import DestinationKind
    from oomnitza_connect.sync.integrations import load_integration

    destination = load_integration(integration_path).destination
    if destination is None:
        return db_path
    if destination.type != DestinationKind.SQLITE:
        raise click.UsageError(
            f"{integration_path} syncs into Oomnitza, which keeps no fields of its own on a "
            "SaaS user; these commands read and write them in a SQLite store. Run "
            f"'oomnitza-connect presets run webex \"User Role\" --integration {integration_path}' "
            "with its fields named in [destination.fields] instead (docs/destinations.md)."
        )
    return db_path or (Path(destination.path) if destination.path else None)


@click.group("webex", short_help="Webex SaaS-user workflows.")
def webex_group() -> None:
    """Webex SaaS-user workflows: User Role and the inactive-user clean-up."""


@webex_group.command("user-role", short_help="Fill in Webex SaaS users' roles and activity.")
@_session_options
@db_option
def user_role_command(
    credential_name: str | None, integration_path: Path | None, db_path: Path | None
) -> None:
    """Give every Webex SaaS user its role names, status and last activity."""
    store = open_store(_store_path(integration_path, db_path), must_exist=True)
    try:
        with _session(credential_name, integration_path) as session:
            report = run_user_role(session, store)
    finally:
        store.close()
    click.echo(
        f"User Role: {report.updated} Webex SaaS users updated ({report.roles_known} roles "
        f"known); {report.not_listed} no longer listed by Webex"
        + (f"; {len(report.failed)} failed" if report.failed else "")
    )
    for failure in report.failed:
        click.echo(f"  failed: {failure.vendor_user_id}: {failure.reason}", err=True)
    if report.failed:
        raise click.exceptions.Exit(1)


@webex_group.command("inactive-users", short_help="Find (and delete) inactive Webex SaaS users.")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=90,
    show_default=True,
    help="Pick SaaS users whose last activity is older than this many days.",
)
@click.option(
    "--include-unknown",
    is_flag=True,
    help="Also pick people whose activity is unknown (they hide their status).",
)
@click.option(
    "--yes", is_flag=True, help="Delete them (without it: a dry run that deletes nothing)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_session_options
@db_option
def inactive_users_command(
    days: int,
    include_unknown: bool,
    yes: bool,
    as_json: bool,
    credential_name: str | None,
    integration_path: Path | None,
    db_path: Path | None,
) -> None:
    """Find Webex SaaS users inactive for --days days (or never active); delete with --yes."""
    store = open_store(_store_path(integration_path, db_path), must_exist=True)
    try:
        with _session(credential_name, integration_path) as session:
            report = run_user_role(session, store)
            users = list(find_inactive_users(store, days=days, include_unknown=include_unknown))
            # Deleting on activity that could not be refreshed could delete the wrong
            # people: with failures, --yes deletes nobody and says why.
            held_back = yes and bool(report.failed)
            results = delete_inactive_users(session, store, users, confirm=yes and not held_back)
    finally:
        store.close()
    if as_json:
        rows = [
            {
                "webex_user_id": user.vendor_user_id,
                "email": user.email,
                "last_activity": user.last_activity.isoformat() if user.last_activity else None,
                "reason": user.reason,
            }
            for user in users
        ]
        data = {
            "dry_run": not yes or held_back,
            "users": rows,
            "results": [r.to_dict() for r in results],
            "user_role_failed": [
                {"webex_user_id": f.vendor_user_id, "person_id": f.person_id, "reason": f.reason}
                for f in report.failed
            ],
        }
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        if report.failed:
            # Their activity could not be refreshed: they may be picked, or missed, wrongly.
            click.echo(
                f"User Role: {len(report.failed)} Webex SaaS users could not be updated "
                "(their activity may be out of date):",
                err=True,
            )
            for failure in report.failed:
                click.echo(f"  failed: {failure.vendor_user_id}: {failure.reason}", err=True)
        click.echo(f"{len(users)} Webex SaaS users inactive for more than {days} days:")
        for user in users:
            click.echo(f"  {user.describe()}")
        for result in results:
            if not result.ok:
                click.echo(f"  not deleted: {result.person or '?'}: {result.error}", err=True)
        if held_back:
            click.echo(
                f"Nobody was deleted: User Role could not refresh {len(report.failed)} of "
                "them, so the list may be wrong; fix that and run again.",
                err=True,
            )
        elif not yes:
            click.echo("Dry run: nobody was deleted; run again with --yes to delete them.")
        else:
            deleted = sum(1 for r in results if r.ok)
            click.echo(f"Deleted {deleted} of {len(users)}.")
    if report.failed or any(not r.ok for r in results):
        raise click.exceptions.Exit(1)
