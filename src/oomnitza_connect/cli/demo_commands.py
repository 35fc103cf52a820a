"""``oomnitza-connect demo``: every vendor emulator synced into a SQLite store, one into Oomnitza.

The main job in miniature, with nothing to set up: for each installed vendor
whose plugin ships an emulator, start it on 127.0.0.1, sync it into the store
(people and SaaS users), sync again to show that an unchanged vendor writes
nothing, run one of the vendor's presets for one person, and print a summary.
An emulator whose account needs settings (Talkdesk's subdomain and region)
offers them with ``test_settings()``.
Then the first vendor is synced into the Oomnitza emulator (the REST
destination) and what Oomnitza received is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import click

from ..errors import OomnitzaConnectError
from ..models import (
    UNIQUE_STANDARD_FIELDS,
    Credential,
    IntegrationSettings,
    SyncSession,
    SyncStatus,
    UserSelection,
    VendorInfo,
)
from . import output

__all__ = ["register"]

DEFAULT_ROLE = "Employee"
# Columns of the people table, most telling first; custom sync keys are added.
PEOPLE_COLUMNS = ("username", "email", "position", "role", "last_login")


def _sync_key(info: VendorInfo) -> str:
    """The vendor's own unique id field when its standard mapping has one, else email."""
    for mapping in info.standard_mapping:
        if mapping.unique and mapping.target not in UNIQUE_STANDARD_FIELDS:
            return mapping.target
    return "email"


def _credential(emulator: Any, vendor: str) -> Credential:
    make_credential = getattr(emulator, "test_credential", None)
    if callable(make_credential):
        credential = make_credential()
        if isinstance(credential, Credential):
            return attrs.evolve(credential, name=f"{vendor}-demo")
    raise OomnitzaConnectError(
        f"the {vendor} emulator offers no test_credential(); the demo cannot sign in to it"
    )


def _settings(emulator: Any) -> dict[str, str]:
    """The integration settings the emulator's account needs (a Talkdesk subdomain), if any."""
    make_settings = getattr(emulator, "test_settings", None)
    settings = make_settings() if callable(make_settings) else None
    return {str(k): str(v) for k, v in settings.items()} if isinstance(settings, dict) else {}


def _vendors_with_emulators(chosen: tuple[str, ...], users: int) -> list[tuple[VendorInfo, Any]]:
    from ..connectors import get_connector, list_connectors
    from ..errors import PluginError

    connectors = [get_connector(name) for name in chosen] if chosen else list_connectors()
    found = []
    for connector in connectors:
        try:
            emulator = connector.create_emulator(users=users, seed=2026)
        except PluginError:
            continue  # a vendor without an emulator is not part of the demo
        found.append((connector.info, emulator))
    return found


def _generic_fallback(users: int, stack: contextlib.ExitStack) -> list[tuple[VendorInfo, Any]]:
    """Register the test kit's generic vendor for the demo's duration."""
    from ..connectors import get_connector
    from ..plugins import register_plugin
    from ..testing import generic

    stack.enter_context(register_plugin(generic.vendor, name="oomnitza_connect.testing.generic"))
    connector = get_connector("generic")
    return [(connector.info, connector.create_emulator(users=users))]


@click.command("demo", short_help="Sync every vendor emulator into a demo store.")
@click.option(
    "--users",
    type=click.IntRange(min=1, max=100_000),
    default=300,
    show_default=True,
    help="How many users each emulator generates.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("demo-output/demo.db"),
    show_default=True,
    help="The SQLite store to sync into (recreated each time).",
)
@click.option("--vendor", "vendors", multiple=True, help="Only these vendors (repeatable).")
@click.option(
    "--people",
    "people_shown",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    help="How many people to list per vendor.",
)
@click.option(
    "--oomnitza/--no-oomnitza",
    default=True,
    show_default=True,
    help="Also sync the first vendor into the Oomnitza emulator and show what it received.",
)
@output.json_option("Print the runs (vendor, destination, session) as JSON instead of tables.")
def demo_command(
    users: int,
    db_path: Path,
    vendors: tuple[str, ...],
    people_shown: int,
    oomnitza: bool,
    as_json: bool,
) -> None:
    """Sync every vendor emulator into a fresh SQLite store.

    With --oomnitza (the default) the first vendor is also synced into the
    Oomnitza emulator, and what Oomnitza received is shown.
    """
    console = output.console(quiet=as_json)
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        pairs = _vendors_with_emulators(vendors, users)
        if not pairs:
            console.print(
                "[yellow]No vendor plugin with an emulator is installed; "
                "using the test kit's generic vendor.[/yellow]"
            )
            pairs = _generic_fallback(users, stack)
        failed = _demo_all(console, pairs, db_path, people_shown, runs)
        if oomnitza:
            info, emulator = pairs[0]
            with emulator:
                failed |= _demo_oomnitza(console, info, emulator, db_path, people_shown, runs)
    if as_json:
        output.echo_json({"store": str(db_path), "succeeded": not failed, "runs": runs})
    command = _command_name()
    console.print(
        f"\nStore: [bold]{db_path}[/bold]  (explore it: "
        f"{command} people --db {db_path}; "
        f"{command} sessions list --db {db_path})"
    )
    if failed:
        raise click.ClickException("a demo sync did not succeed; see the sessions above")


def _demo_all(
    console: Any,
    pairs: list[tuple[VendorInfo, Any]],
    db_path: Path,
    people_shown: int,
    runs: list[dict[str, Any]],
) -> bool:
    """Sync each emulator into a fresh store; return whether any sync did not succeed."""
    from ..store.sqlite import SQLiteStore

    db_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    failed = False
    with SQLiteStore(db_path) as store:
        for info, emulator in pairs:
            with emulator:
                failed |= _demo_vendor(console, store, info, emulator, people_shown, runs)
    return failed


def _demo_vendor(
    console: Any,
    store: Any,
    info: VendorInfo,
    emulator: Any,
    shown: int,
    runs: list[dict[str, Any]],
) -> bool:
    from ..api import run_sync

    credential = _credential(emulator, info.name)
    settings = IntegrationSettings(
        name=f"{info.name}-demo",
        vendor=info.name,
        credential=credential.name,
        settings=_settings(emulator),
        selection=UserSelection.USERS_AND_SAAS,
        sync_key=_sync_key(info),
        default_role=DEFAULT_ROLE,
        base_url=emulator.base_url,
    )
    output.heading(console, f"[bold]{info.display_name}[/bold] emulator at {emulator.base_url}")
    sessions = []
    for label in ("1st sync", "2nd, unchanged"):
        started = time.perf_counter()
        session = run_sync(settings, credential=credential, store=store)
        sessions.append((label, session, time.perf_counter() - started))
    _print_sessions(console, sessions)
    runs.extend(_run_data(info, "sqlite", sessions))
    _print_people(console, store, info, settings.sync_key or "email", shown)
    _run_a_preset(console, store, info, credential, settings)
    return any(s.status is not SyncStatus.SUCCEEDED for _, s, _ in sessions)


def _run_data(
    info: VendorInfo, destination: str, sessions: list[tuple[str, SyncSession, float]]
) -> list[dict[str, Any]]:
    return [
        {
            "vendor": info.name,
            "destination": destination,
            "run": label,
            "session": session.id,
            "status": session.status.value,
            "counts": attrs.asdict(session.counts),
            "seconds": round(seconds, 3),
            "message": session.message,
        }
        for label, session, seconds in sessions
    ]


def _print_sessions(console: Any, sessions: list[tuple[str, SyncSession, float]]) -> None:
    table = output.table(
        "run",
        "status",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "failed",
        "secs",
        title="Sync sessions",
    )
    for label, session, seconds in sessions:
        counts = session.counts
        colour = "green" if session.status is SyncStatus.SUCCEEDED else "red"
        table.add_row(
            label,
            f"[{colour}]{session.status.value}[/{colour}]",
            str(counts.created),
            str(counts.updated),
            str(counts.unchanged),
            str(counts.skipped),
            str(counts.failed),
            f"{seconds:.2f}",
        )
    output.show(table, on=console)
    console.print("Sessions: " + ", ".join(session.id for _, session, _ in sessions))
    console.print(
        "(skipped: records the integration's filters leave out, such as bots; "
        "requests are paced to the vendor's published rate limits)"
    )
    for _, session, _ in sessions:
        if session.message:
            console.print(session.message, style="red", markup=False)
        for error in session.errors[:5]:
            console.print(f"  record {error.vendor_user_id}: {error.reason}", markup=False)


def _print_people(console: Any, store: Any, info: VendorInfo, sync_key: str, shown: int) -> None:
    total = store.count_people(vendor=info.name)
    columns = [*PEOPLE_COLUMNS]
    if sync_key not in columns:
        columns.insert(0, sync_key)
    table = output.table(
        *columns, title=f"People from {info.display_name} (first {min(shown, total)} of {total})"
    )
    for index, person in enumerate(store.iter_people(vendor=info.name)):
        if index >= shown:
            break
        table.add_row(*(_cell(person.fields.get(column)) for column in columns))
    output.show(table, on=console)
    saas_users = sum(1 for _ in store.iter_saas_users(vendor=info.name))
    console.print(f"SaaS users linked to the {info.display_name} app: {saas_users}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="minutes"))
    return str(value)


def _run_a_preset(
    console: Any,
    store: Any,
    info: VendorInfo,
    credential: Credential,
    settings: IntegrationSettings,
) -> None:
    from ..connectors import get_connector
    from ..presets.engine import (
        field_variables,
        person_variables,
        preset_variables,
        run_preset,
        settings_variables,
    )
    from ..transport.http import ClientOptions

    connector = get_connector(info.name)
    person = next(iter(store.iter_people(vendor=info.name)), None)
    if person is None:
        console.print("No person to run a preset for.")
        return
    saas_user = next(
        (u for u in store.iter_saas_users(vendor=info.name) if u.person_id == person.id), None
    )
    # Run the first preset whose variables the person and the settings provide.
    available = set(person_variables(person, saas_user)) | set(
        settings_variables(settings.settings)
    )
    preset = next(
        (
            p
            for p in connector.presets()
            if set(preset_variables(p)) <= available | set(field_variables(p, person))
        ),
        None,
    )
    if preset is None:
        console.print(f"No {info.display_name} preset runs for a person without extra variables.")
        return
    with connector.authenticate(
        credential, settings.settings, options=ClientOptions(base_url=settings.base_url)
    ) as session:
        result = run_preset(
            session,
            preset,
            person=person,
            saas_user=saas_user,
            store=store,
            settings=settings.settings,
        )
    who = person.fields.get("email") or person.sync_value
    if result.ok:
        console.print(f"Preset [bold]{preset.name}[/bold] for {who}: HTTP {result.status}")
        for target, value in result.mapped.items():
            console.print(f"  {target} = {_cell(value)[:100]}")
    else:
        console.print(f"[red]Preset {preset.name} for {who} failed: {result.error}[/red]")


def _demo_oomnitza(
    console: Any,
    info: VendorInfo,
    emulator: Any,
    db_path: Path,
    shown: int,
    runs: list[dict[str, Any]],
) -> bool:
    """Sync one vendor into the Oomnitza emulator; print what Oomnitza received."""
    from ..api import run_sync
    from ..destinations.oomnitza import OomnitzaDestination
    from ..models import DestinationKind, DestinationSettings
    from ..store.sqlite import SQLiteStore
    from ..testing.oomnitza import OomnitzaEmulator

    credential = _credential(emulator, info.name)
    oomnitza = OomnitzaEmulator()
    with oomnitza:
        table = DestinationSettings(
            type=DestinationKind.OOMNITZA,
            url=oomnitza.base_url,
            credential="oomnitza-demo",
            connector_name=f"{info.name}-demo",
            roles={DEFAULT_ROLE: 25},
            default_role_id=25,
        )
        settings = IntegrationSettings(
            name=f"{info.name}-oomnitza-demo",
            vendor=info.name,
            credential=credential.name,
            settings=_settings(emulator),
            selection=UserSelection.USERS_AND_SAAS,
            sync_key="email",
            default_role=DEFAULT_ROLE,
            base_url=emulator.base_url,
            destination=table,
        )
        output.heading(
            console,
            f"[bold]{info.display_name} into Oomnitza[/bold] (emulator at {oomnitza.base_url})",
        )
        sessions = []
        # Its own ledger, beside the store: the store's sessions stay the SQLite ones.
        ledger_path = db_path.with_name(f"{db_path.stem}-oomnitza-ledger{db_path.suffix}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)
        destination = OomnitzaDestination(table, oomnitza.test_credential("oomnitza-demo"))
        with SQLiteStore(ledger_path) as ledger, destination:
            for label in ("1st sync", "2nd, unchanged"):
                started = time.perf_counter()
                session = run_sync(
                    settings, credential=credential, store=ledger, destination=destination
                )
                sessions.append((label, session, time.perf_counter() - started))
        _print_sessions(console, sessions)
        runs.extend(_run_data(info, "oomnitza", sessions))
        posts = [r for r in oomnitza.requests if r.endpoint == "bulk"]
        console.print(
            f"Oomnitza received {len(oomnitza.applied_batches)} POST /api/v3/bulk batches in "
            f"{len(oomnitza.portions)} portions (each finalized: "
            f"{all(p.finalized for p in oomnitza.portions.values())}); "
            f"it holds {len(oomnitza.users)} users and {len(oomnitza.saas_users())} SaaS users."
        )
        console.print(f"Ledger of these runs: {ledger_path}")
        if posts:
            first = posts[0].json()
            console.print(
                f"First batch: sync_field={first['sync_field']}, "
                f"{len(first['records'])} records; the first one, field by field:"
            )
            # One line a field: a record is too wide for one line, and cut short
            # it would end mid-value.
            for field, value in first["records"][0].items():
                console.print(f"  {field} = {json.dumps(value, default=str)[:100]}")
        people = output.table(
            "user_id", "username", "email", "role", title=f"Users in Oomnitza (first {shown})"
        )
        # Oomnitza keeps a role by its id; the [destination.roles] table names it.
        role_names = destination.role_names()
        for user in list(oomnitza.users.values())[:shown]:
            role = user.get("role")
            named = f"{role} ({role_names[role]})" if role in role_names else _cell(role)
            people.add_row(*(_cell(user.get(k)) for k in ("user_id", "username", "email")), named)
        output.show(people, on=console)
    return any(s.status is not SyncStatus.SUCCEEDED for _, s, _ in sessions)


def register(main: click.Group) -> None:
    """Add the ``demo`` command to *main*."""
    main.add_command(demo_command)


def _command_name() -> str:
    """``oomnitza-connect`` when it is on PATH, else its path (``.venv/bin/oomnitza-connect``).

    ``python3 dev.py demo`` runs the demo from the project's virtual environment,
    which a new user has not activated: the commands it suggests must work as printed.
    """
    # dev.py puts .venv/bin first on the demo's PATH, not on its caller's.
    if shutil.which("oomnitza-connect", path=os.environ.get("OOMNITZA_CONNECT_CALLER_PATH")):
        return "oomnitza-connect"
    beside = Path(sys.executable).parent / "oomnitza-connect"
    if not beside.exists():
        return "oomnitza-connect"
    try:
        return str(beside.relative_to(Path.cwd()))
    except ValueError:
        return str(beside)
