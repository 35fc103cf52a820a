"""Commands for integrations, mapping, syncs, sessions and people.

``integrations init|validate|launch|list``, ``mapping suggest``, ``sync``,
``sessions list|show`` and ``people``. Exit codes: 0 success, 1 a run that
failed, 2 bad configuration (including a draft integration where a complete
one is needed).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import click

from ..errors import ConfigurationError, OomnitzaConnectError
from ..models import STANDARD_PERSON_FIELDS, IntegrationSettings, Person, SyncSession, SyncStatus
from . import output
from .destination_option import chosen_destination, oomnitza_options, open_people
from .store_option import chosen_ledger, db_option, ledger_option, open_ledger

__all__ = ["register"]

EXIT_FAILED = 1
EXIT_USAGE = 2

log = logging.getLogger(__name__)


class _Draft(click.ClickException):
    exit_code = EXIT_USAGE


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, default=_json_default)


def _session_dict(session: SyncSession, *, payload: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": session.id,
        "integration": session.integration,
        "vendor": session.vendor,
        "status": session.status.value,
        "test_run": session.test_run,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "counts": attrs.asdict(session.counts),
        "message": session.message,
        "errors": [attrs.asdict(e) for e in session.errors],
    }
    if payload:
        data["payload"] = list(session.payload)
    return data


def _counts_line(session: SyncSession) -> str:
    c = session.counts
    return (
        f"{c.created} created, {c.updated} updated, {c.unchanged} unchanged, "
        f"{c.skipped} skipped, {c.failed} failed, {c.vanished} vanished"
    )


# ---------------------------------------------------------------------------
# integrations
# ---------------------------------------------------------------------------


@click.group("integrations")
def integrations_group() -> None:
    """Create, check and launch integration files."""


@integrations_group.command("init", short_help="Write an integration file for VENDOR.")
@click.argument("vendor")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--name",
    default=None,
    help="The integration's name (default: VENDOR-main, or VENDOR-2 ... when the store "
    "has that name already).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@db_option
@ledger_option
def integrations_init(
    vendor: str,
    output: Path | None,
    name: str | None,
    force: bool,
    db_path: Path | None,
    ledger_url: str | None,
) -> None:
    """Write a commented integration file for VENDOR with its standard mapping."""
    from ..connectors import get_connector
    from ..sync.integrations import render_integration_template

    info = get_connector(vendor).info
    taken: list[str] = []
    if name is None and _store_exists(db_path, ledger_url):
        with open_ledger(db_path, ledger_url) as store:
            taken = [entry.name for entry in store.list_integrations()]
    text = render_integration_template(info, name=name, taken=taken)
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise ConfigurationError(
            "the file exists already; pass --force to overwrite it", file=str(output)
        )
    output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {output}. Next: oomnitza-connect integrations validate {output}", err=True)


def _store_exists(db_path: Path | None, ledger_url: str | None) -> bool:
    """Whether there is a store to read names from (``init`` never creates one)."""
    if chosen_ledger(db_path, ledger_url) is not None:
        return True
    from ..store.paths import default_db_path

    return (db_path or default_db_path()).exists()


@integrations_group.command("validate", short_help="Check FILE; list what keeps it a draft.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def integrations_validate(file: Path, as_json: bool) -> None:
    """Check FILE; list everything that keeps it a draft (exit 2 when any)."""
    from ..plugins import vendor_info
    from ..sync.integrations import draft_problems, load_integration

    settings = load_integration(file)
    problems = draft_problems(settings, vendor_info(settings.vendor))
    if as_json:
        click.echo(_dump({"file": str(file), "complete": not problems, "missing": problems}))
    elif not problems:
        click.echo(f"{file}: the integration '{settings.name}' is complete and can be launched.")
    if problems:
        if as_json:
            sys.exit(EXIT_USAGE)
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise _Draft(f"{file}: the integration '{settings.name}' is a draft:\n{listing}")


@integrations_group.command("launch", short_help="Mark FILE's integration active; run it.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@ledger_option
@click.option("--no-run", is_flag=True, help="Only mark it active; do not run it now.")
@click.option(
    "--replace",
    is_flag=True,
    help="The store has this name launched from another file: launch FILE in its place.",
)
@output.json_option("Print the launched integration (and its run's session) as JSON.")
def integrations_launch(
    file: Path,
    db_path: Path | None,
    ledger_url: str | None,
    no_run: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Mark the integration in FILE active (the scheduler runs it) and run it once.

    In Python: oomnitza_connect.launch_integration(FILE).
    """
    from ..api import launch_integration
    from ..sync.integrations import load_integration

    settings = load_integration(file)
    with open_ledger(db_path, ledger_url) as store:
        try:
            launch_integration(file, store, run=False, replace=replace)
        except ConfigurationError as exc:
            if not exc.problems:
                raise
            listing = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise _Draft(f"{file}: a draft cannot be launched:\n{listing}") from None
        click.echo(f"Launched '{settings.name}' (schedule: {settings.schedule}).", err=True)
        if not no_run:
            _run_and_report(settings, store, test_run=False, as_json=as_json, batch_size=None)
        elif as_json:
            output.echo_json(
                {"integration": settings.name, "active": True, "schedule": settings.schedule}
            )


@integrations_group.command("list", short_help="List the integrations the store knows.")
@db_option
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def integrations_list(db_path: Path | None, ledger_url: str | None, as_json: bool) -> None:
    """List the integrations the store (or the --ledger) knows (launched ones are active)."""
    with open_ledger(db_path, ledger_url, must_exist=True) as store:
        entries = store.list_integrations()
    if as_json:
        click.echo(_dump([attrs.asdict(e) for e in entries]))
        return
    table = output.table("Name", "Vendor", "Active", "Schedule", "Contacts", "File")
    for e in entries:
        table.add_row(
            e.name,
            e.vendor,
            "yes" if e.active else "no",
            e.schedule,
            ", ".join(e.contacts),
            e.source or "",
        )
    output.show(table)


# ---------------------------------------------------------------------------
# mapping
# ---------------------------------------------------------------------------


@click.group("mapping")
def mapping_group() -> None:
    """Work out how a vendor's fields map onto people."""


@mapping_group.command("suggest", short_help="Propose a person field per VENDOR field.")
@click.argument("vendor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def mapping_suggest(vendor: str, as_json: bool) -> None:
    """Propose a person field for every field VENDOR offers, with a confidence."""
    from ..sync.smart_mapping import suggest_mapping

    suggestions = suggest_mapping(vendor)
    if as_json:
        click.echo(_dump([attrs.asdict(s) for s in suggestions]))
        return
    table = output.table("Vendor field", "Target", "Converter", "Confidence", "Why")
    for s in suggestions:
        target = STANDARD_PERSON_FIELDS.get(s.target, s.target)
        if s.unique:
            target += " (unique)"
        table.add_row(
            f"{s.source} ({s.source_label})",
            target,
            s.converter or "",
            f"{s.confidence:.2f}",
            s.reason,
        )
    output.show(table)


# ---------------------------------------------------------------------------
# sync
# ---------------------------------------------------------------------------


@click.command("sync", short_help="Sync the integration in FILE.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--test-run", is_flag=True, help="Run everything but write no people.")
@db_option
@ledger_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Records per commit (default: 2000).",
)
@click.option(
    "--rate-budget",
    "rate_budgets",
    multiple=True,
    metavar="ENDPOINT=PER_MINUTE[/BURST]",
    help="The rate the vendor plan grants one endpoint (users.list=100/5); replaces the "
    "plugin's and the integration file's budget for it; repeatable.",
)
@click.option(
    "--no-pacing",
    is_flag=True,
    help="Send requests as fast as they go (an emulator, or a limit you have checked); "
    "429s are still retried.",
)
@click.option(
    "--plan-output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --test-run: write the whole plan to this file, one JSON object a line "
    "(every person's action; an update's fields as old -> new).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON.")
def sync_command(
    file: Path,
    test_run: bool,
    db_path: Path | None,
    ledger_url: str | None,
    batch_size: int | None,
    rate_budgets: tuple[str, ...],
    no_pacing: bool,
    plan_output: Path | None,
    as_json: bool,
) -> None:
    """Sync the integration in FILE into the store (exit 1 when the run fails).

    Requests are paced to the vendor's rate budgets (the plugin's, replaced by the
    integration's `rate_budgets` and then by --rate-budget) unless --no-pacing.
    """
    from ..plugins import vendor_info
    from ..sync.integrations import (
        check_rate_budgets,
        check_sync_key,
        claim_name,
        ledger_problems,
        load_integration,
    )
    from ..transport.http import ClientOptions
    from ..transport.ratelimit import parse_rate_budget

    if plan_output is not None and not test_run:
        raise click.UsageError("--plan-output needs --test-run (only a test run has a plan).")
    budgets = tuple(parse_rate_budget(text, key_path="--rate-budget") for text in rate_budgets)
    settings = load_integration(file)
    info = vendor_info(settings.vendor)
    check_sync_key(settings, info, file=file)
    check_rate_budgets(rate_budgets, info, key_path="--rate-budget")
    options = None
    if budgets or no_pacing:
        options = ClientOptions(
            base_url=settings.base_url, pace_requests=not no_pacing, rate_budgets=budgets
        )
    with open_ledger(db_path, ledger_url) as store:
        # A test run writes no people and marks nobody vanished, so it claims no
        # name: a copy of a launched file (a change tried before it replaces the
        # launched one) may plan under the same name. Another vendor's name is
        # still refused.
        if not test_run or ledger_problems(settings, store):
            claim_name(settings, store, source=file)
        _run_and_report(
            settings,
            store,
            test_run=test_run,
            as_json=as_json,
            batch_size=batch_size,
            store_path=str(db_path) if db_path else None,
            options=options,
            plan_output=plan_output,
        )


def _run_and_report(
    settings: Any,
    store: Any,
    *,
    test_run: bool,
    as_json: bool,
    batch_size: int | None,
    store_path: str | None = None,
    options: Any = None,
    plan_output: Path | None = None,
) -> None:
    from ..auth.credentials import resolve_credential
    from ..sync import engine as sync_module

    credential = resolve_credential(settings.credential)
    kwargs: dict[str, Any] = {}
    if batch_size:
        kwargs["batch_size"] = batch_size
    if options is not None:
        if options.base_url is None:
            options = attrs.evolve(options, base_url=credential.base_url)
        kwargs["options"] = options
    from .progress import SyncProgressDisplay

    with (
        output.sync_failures_said_by_the_summary(),
        SyncProgressDisplay(terminal=sys.stderr.isatty() and not as_json) as progress,
    ):
        session = sync_module.run_sync(
            settings,
            credential=credential,
            store=store,
            test_run=test_run,
            progress=progress.update,
            **kwargs,
        )
    if as_json:
        click.echo(_dump(_session_dict(session)))
    else:
        kind = "Test run" if session.test_run else "Sync"
        click.echo(
            f"{kind} {session.id} of '{session.integration}': {session.status.value}; "
            f"{_counts_line(session)}"
        )
        for error in session.errors[:20]:
            click.echo(f"  {error.vendor_user_id or '-'}: {error.reason}")
        if len(session.errors) > 20:
            click.echo(
                f"  ... and {len(session.errors) - 20} more "
                f"(oomnitza-connect sessions show {session.id})"
            )
        if session.message:
            click.echo(f"  {session.message}")
    if plan_output is not None:
        written = _write_plan(store, session.id, plan_output)
        click.echo(f"Wrote the plan ({written} entries) to {plan_output}.", err=True)
    _notify(settings, session, store_path)
    if session.status == SyncStatus.FAILED or _nothing_went_through(session):
        # The summary above gave the reason; only the exit code is left to say.
        click.get_current_context().exit(EXIT_FAILED)


def _nothing_went_through(session: SyncSession) -> bool:
    """Every record failed: the run completed, but a script must not read it as done
    (a role with no Oomnitza id, a filter naming an unknown variable)."""
    counts = session.counts
    return counts.failed > 0 and not (counts.created or counts.updated or counts.unchanged)


def _write_plan(ledger: Any, session_id: str, path: Path) -> int:
    """Stream a test run's plan to *path* as JSON lines; return how many entries."""
    written = 0
    try:
        with path.open("w", encoding="utf-8") as out:
            for entry in ledger.iter_plan(session_id):
                out.write(json.dumps(entry, default=_json_default, sort_keys=True) + "\n")
                written += 1
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the plan: {exc.strerror or exc}", file=str(path)
        ) from None
    return written


def _notify(settings: Any, session: Any, store_path: str | None) -> None:
    """Tell the contacts (email, webhook) of a failed run, as `schedule run` does."""
    from ..schedule.notifications import notify_failure, smtp_missing_note

    try:
        notify_failure(settings, session, store_path=store_path)
    except OomnitzaConnectError as exc:
        click.secho(f"  contacts not notified: {exc}", err=True, fg="yellow")
        return
    note = smtp_missing_note(settings, session)
    if note is not None:  # said plainly, as schedule run says it
        click.secho(f"  {note}", err=True, fg="yellow")


# ---------------------------------------------------------------------------
# sessions and people
# ---------------------------------------------------------------------------


@click.group("sessions")
def sessions_group() -> None:
    """Look at past sync runs."""


@sessions_group.command("list")
@db_option
@ledger_option
@click.option("--integration", default=None, help="Only this integration's sessions.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many sessions.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sessions_list(
    db_path: Path | None, ledger_url: str | None, integration: str | None, limit: int, as_json: bool
) -> None:
    """List sync sessions, newest first."""
    with open_ledger(db_path, ledger_url, must_exist=True) as store:
        sessions = store.list_sessions(integration=integration, limit=limit)
    if as_json:
        rows = [_session_dict(s) for s in sessions]
        for row in rows:
            row.pop("errors")
        click.echo(_dump(rows))
        return
    table = output.table(
        "Id",
        "Integration",
        "Started",
        "Status",
        "Created",
        "Updated",
        "Unchanged",
        "Skipped",
        "Failed",
        "Vanished",
    )
    for s in sessions:
        status = s.status.value + (" (test)" if s.test_run else "")
        c = s.counts
        table.add_row(
            s.id,
            s.integration,
            s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            status,
            *(str(n) for n in (c.created, c.updated, c.unchanged, c.skipped, c.failed, c.vanished)),
        )
    output.show(table)


@sessions_group.command("show", short_help="Show one session and its errors.")
@click.argument("session_id")
@db_option
@ledger_option
@click.option("--payload", is_flag=True, help="Include what a test run would have written.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sessions_show(
    session_id: str, db_path: Path | None, ledger_url: str | None, payload: bool, as_json: bool
) -> None:
    """Show one session (an id or a unique prefix of one) with its errors."""
    with open_ledger(db_path, ledger_url, must_exist=True) as store:
        session = _one_session(store, session_id, with_payload=payload)
    if as_json:
        click.echo(_dump(_session_dict(session, payload=payload)))
        return
    lines = [
        f"Session      {session.id}",
        f"Integration  {session.integration} ({session.vendor})",
        f"Status       {session.status.value}" + (" (test run)" if session.test_run else ""),
        f"Started      {session.started_at.isoformat()}",
        f"Ended        {session.ended_at.isoformat() if session.ended_at else '-'}",
        f"Counts       {_counts_line(session)}",
    ]
    if session.message:
        lines.append(f"Message      {session.message}")
    for line in lines:
        click.echo(line)
    if session.errors:
        click.echo(f"Errors ({len(session.errors)}):")
        for error in session.errors:
            field = f" [{error.field}]" if error.field else ""
            click.echo(f"  {error.vendor_user_id or '-'}{field}: {error.reason}")
    if payload:
        click.echo(f"Payload ({len(session.payload)} records):")
        for entry in session.payload:
            click.echo("  " + json.dumps(entry, default=_json_default, sort_keys=True))


@sessions_group.command("plan", short_help="Print a test run's plan as JSON lines.")
@click.argument("session_id")
@db_option
@ledger_option
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, show_default=True,
    help="Skip this many entries.",
)  # fmt: skip
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most this many entries."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def sessions_plan(
    session_id: str,
    db_path: Path | None,
    ledger_url: str | None,
    offset: int,
    limit: int | None,
    output: Path | None,
) -> None:
    """Print a test run's plan (all of it, or a page), one JSON object a line."""
    with open_ledger(db_path, ledger_url, must_exist=True) as store:
        session = _one_session(store, session_id)
        if not session.test_run:
            raise ConfigurationError(
                f"the session {session.id} was not a test run, so it has no plan"
            )
        if output is not None:
            with output.open("w", encoding="utf-8") as out:
                for entry in store.iter_plan(session.id, offset=offset, limit=limit):
                    out.write(json.dumps(entry, default=_json_default, sort_keys=True) + "\n")
            return
        for entry in store.iter_plan(session.id, offset=offset, limit=limit):
            click.echo(json.dumps(entry, default=_json_default, sort_keys=True))


def _one_session(store: Any, session_id: str, *, with_payload: bool = False) -> SyncSession:
    """The session whose id is, or uniquely starts with, *session_id*."""
    matches = [s.id for s in store.list_sessions(limit=None) if s.id.startswith(session_id)]
    if not matches:
        raise ConfigurationError(
            f"no session with id '{session_id}' (see `oomnitza-connect sessions list`)"
        )
    if len(matches) > 1:
        raise ConfigurationError(
            f"{len(matches)} sessions have ids starting with '{session_id}' "
            f"({', '.join(sorted(matches)[:5])}{', …' if len(matches) > 5 else ''}); "
            "give more of the id"
        )
    session: SyncSession | None = store.get_session(matches[0], with_payload=with_payload)
    assert session is not None
    return session


@click.command("people")
@click.option("--vendor", default=None, help="Only people linked to this vendor.")
@output.json_option("Print a JSON array, streamed one person at a time.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV, a column per field.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default=None,
    # Not click's deprecated=: its warning names the parameter ('output_format'),
    # not the option a user typed.
    help="(DEPRECATED) --format json is --json, --format csv is --csv.",
)
@db_option
@ledger_option
@click.option(
    "--integration",
    "integration_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="List the people in this integration's [destination] (Oomnitza or a SQLite file).",
)
@oomnitza_options
def people_command(
    vendor: str | None,
    as_json: bool,
    as_csv: bool,
    output_format: str | None,
    db_path: Path | None,
    ledger_url: str | None,
    integration_path: Path | None,
    oomnitza_credential: str | None,
    oomnitza_url: str | None,
) -> None:
    """List the people in the store.

    With --oomnitza CREDENTIAL, or an --integration whose [destination] is
    Oomnitza, the people are read from Oomnitza (GET /api/v3/users) instead.
    A PostgreSQL --ledger holds no people: give it with one of those.
    """
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    if output_format is not None:
        click.echo("Warning: --format is deprecated: use --json or --csv.", err=True)
    if output_format is None:
        output_format = "json" if as_json else "csv" if as_csv else "table"
    elif (as_json and output_format != "json") or (as_csv and output_format != "csv"):
        raise click.UsageError(f"--format {output_format} contradicts --json/--csv")
    table = None
    integration = None
    if integration_path is not None:
        from ..sync.integrations import load_integration

        integration = load_integration(integration_path)
        table = integration.destination
    table, credential = chosen_destination(table, oomnitza_credential, oomnitza_url)
    if ledger_url is not None and chosen_ledger(db_path, ledger_url) and table is None:
        # People live in the destination; a shared ledger only records runs.
        raise click.UsageError(
            "a PostgreSQL --ledger holds no people: they are in the destination; "
            "give --integration FILE (its [destination]) or --oomnitza CREDENTIAL."
        )
    names = _person_fields(integration, vendor) if table is not None else ()
    with open_people(
        db_path, table, credential, must_exist=True, need_ledger=False, person_fields=names
    ) as (store, _):
        columns = ["id", *STANDARD_PERSON_FIELDS, *(f.label for f in store.custom_fields())]
        columns.append("vanished_from")
        listed = [0]

        def counted(people: Iterable[Person]) -> Iterator[Person]:
            for person in people:
                listed[0] += 1
                yield person

        people = counted(store.iter_people(vendor=vendor))
        if output_format == "json":
            _people_json(people)
        elif output_format == "csv":
            from ..store.sqlite import SQLiteStore

            # A SQLite store's people carry its standard and custom fields only; people
            # read from Oomnitza also carry its fields that no name is known for.
            _people_csv(people, columns, every_field_named=isinstance(store, SQLiteStore))
        else:
            role_ids = _people_table(people)
            if role_ids:
                # Oomnitza's API has no confirmed roles list to name them by.
                click.echo(
                    f"Role {', '.join(map(str, sorted(role_ids)))} is Oomnitza's numeric role "
                    "id; name roles in an integration's [destination.roles] table and list "
                    "with --integration FILE.",
                    err=True,
                )
        if vendor is not None and not listed[0]:
            _say_no_one_is_linked_to(vendor)


def _say_no_one_is_linked_to(vendor: str) -> None:
    """An empty listing for a vendor nobody installed is most likely a typo: say so."""
    from ..plugins import vendor_infos

    installed = sorted(vendor_infos())
    hint = "" if vendor in installed else f" (installed vendors: {', '.join(installed) or 'none'})"
    click.echo(f"No person is linked to vendor '{vendor}'{hint}.", err=True)


def _person_fields(integration: IntegrationSettings | None, vendor: str | None) -> list[str]:
    """The field names people read from Oomnitza are shown under, as the store shows them.

    An integration's mapping and its vendor's presets; without one, those of
    *vendor* first, then of every installed vendor (``slack_user_id`` is
    shown as ``Slack User Id``).
    """
    from ..connectors import get_connector, list_connectors

    if integration is not None:
        return get_connector(integration.vendor).person_fields(integration)
    connectors = list_connectors()
    connectors.sort(key=lambda c: c.name != vendor)
    names: list[str] = []
    for connector in connectors:
        names += connector.person_fields()
    return names


def _person_row(person: Person) -> dict[str, Any]:
    row: dict[str, Any] = {"id": person.id}
    row.update(person.fields)
    row["vanished_from"] = list(person.vanished_from)
    return row


def _people_json(people: Iterator[Person]) -> None:
    # Streamed: one object per person, without holding the list.
    out = sys.stdout
    out.write("[")
    for index, person in enumerate(people):
        out.write(",\n" if index else "\n")
        out.write(json.dumps(_person_row(person), default=_json_default, sort_keys=True))
    out.write("\n]\n")


def _people_csv(people: Iterator[Person], columns: list[str], *, every_field_named: bool) -> None:
    """Write *people* as CSV: *columns*, then (unless *every_field_named*) a column for
    each other field they hold, under its own key (Oomnitza's ``department``).

    Those fields are known only once every person is read, so the rows wait in a
    temporary file meanwhile (memory stays flat however many people there are).
    """
    rows = map(_csv_row, people)
    if every_field_named:
        _write_csv(rows, columns)
        return
    known = set(columns)
    unnamed: set[str] = set()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        for row in rows:
            unnamed.update(key for key in row if key not in known)
            spool.write(json.dumps(row) + "\n")
        spool.seek(0)
        # After the named fields, before vanished_from (the last column).
        _write_csv(map(json.loads, spool), [*columns[:-1], *sorted(unnamed), columns[-1]])


def _csv_row(person: Person) -> dict[str, Any]:
    row = _person_row(person)
    row["vanished_from"] = ", ".join(person.vanished_from)
    return {
        k: _json_default(v) if not isinstance(v, str | int | float) else v
        for k, v in row.items()
        if v is not None
    }


def _write_csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


def _people_table(people: Iterator[Person]) -> set[int]:
    """Show *people* as a table; return the numeric roles shown (Oomnitza's ids, unnamed)."""
    table = output.table("Id", "Username", "Email", "Name", "Role", "Vanished from")
    role_ids: set[int] = set()
    for person in people:
        f = person.fields
        role = f.get("role")
        if isinstance(role, int) and not isinstance(role, bool):
            role_ids.add(role)
        name = f.get("full_name") or " ".join(
            str(p) for p in (f.get("first_name"), f.get("last_name")) if p
        )
        table.add_row(
            str(person.id),
            str(f.get("username") or ""),
            str(f.get("email") or ""),
            str(name or ""),
            str(f.get("role") or ""),
            ", ".join(person.vanished_from),
        )
    output.show(table)
    return role_ids


def register(main: click.Group) -> None:
    """Add this module's commands to *main*."""
    main.add_command(integrations_group)
    main.add_command(mapping_group)
    main.add_command(sync_command)
    main.add_command(sessions_group)
    main.add_command(people_command)
