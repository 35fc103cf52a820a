"""``oomnitza-connect presets``: list, show and run workflow presets.

Exit codes follow the CLI's: 0 when every call succeeded, 1 when a call
failed, 2 for bad usage or configuration (an unknown preset, a missing
variable, a URL that would leave the vendor's host, a person not found).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import click

from ..errors import ConfigurationError, PresetError
from ..models import Credential, Preset
from ..templating import TemplateError
from . import output
from .destination_option import chosen_destination, oomnitza_options, open_people
from .store_option import db_option

__all__ = ["register"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class _UsageProblem(click.ClickException):
    """Bad usage or configuration found while running (exit code 2)."""

    exit_code = EXIT_USAGE


def _exit_failed() -> None:
    """End with exit code 1 after a report that said what failed and why.

    An error message as well would say it a second time (docs/cli.md, "Said once").
    """
    click.get_current_context().exit(EXIT_FAILED)


# ---------------------------------------------------------------------------
# Parsing options
# ---------------------------------------------------------------------------


def _pairs(values: Sequence[str], option: str, *, allow_json: bool = False) -> dict[str, Any]:
    """Parse ``key=value`` (text) and, when allowed, ``key:=JSON`` (typed) pairs."""
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not key=value", param_hint=option)
        if allow_json and key.endswith(":"):
            key = key[:-1]
            try:
                parsed[key] = json.loads(value)
            except ValueError:
                raise click.BadParameter(
                    f"the value of '{key}:=' is not valid JSON: {value!r}", param_hint=option
                ) from None
        else:
            parsed[key] = value
    return parsed


def _preset_data(preset: Preset) -> dict[str, Any]:
    from ..presets.engine import preset_variables

    return {
        "vendor": preset.vendor,
        "name": preset.name,
        "description": preset.description,
        "method": preset.method.upper(),
        "path": preset.path,
        "query": dict(preset.query),
        "headers": dict(preset.headers),
        "body": preset.body,
        "variables": preset_variables(preset),
        "declared_variables": list(preset.variables),
        "response_mappings": dict(preset.response_mappings),
        "read_merge_write": preset.read_merge_write,
        "find_existing": (
            attrs.asdict(preset.find_existing) if preset.find_existing is not None else None
        ),
        "mapper": _qualified_name(preset.mapper) if preset.mapper is not None else None,
        "merge": _qualified_name(preset.merge) if preset.merge is not None else None,
        "idempotent": preset.idempotent,
        "endpoint": preset.endpoint,
    }


def _qualified_name(function: Any) -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{name}" if module else name


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


@click.group("presets")
def presets_group() -> None:
    """List, inspect and run vendor workflow presets."""


@presets_group.command("list", short_help="List the presets of VENDOR, or of all.")
@click.argument("vendor", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(vendor: str | None, as_json: bool) -> None:
    """List the presets of VENDOR (or of every installed vendor)."""
    from ..presets.engine import list_presets

    presets = list_presets(vendor)
    if as_json:
        _echo_json([_preset_data(p) for p in presets])
        return
    if not presets:
        click.echo("No presets are installed." if vendor is None else f"{vendor} has no presets.")
        return
    table = output.table("Vendor", "Preset", "Method", "Path", "Description")
    for preset in presets:
        summary = preset.description.split(" (", 1)[0].split(". ", 1)[0].rstrip(".")
        table.add_row(preset.vendor, preset.name, preset.method.upper(), preset.path, summary)
    output.show(table)


@presets_group.command("show", short_help="Show one preset: requests, variables, maps.")
@click.argument("vendor")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_command(vendor: str, name: str, as_json: bool) -> None:
    """Show one preset: its request templates, variables and response mappings."""
    from ..presets.engine import get_preset

    preset = _usage_guard(lambda: get_preset(vendor, name))
    data = _preset_data(preset)
    if as_json:
        _echo_json(data)
        return
    click.echo(f"{data['vendor']} / {data['name']}")
    if data["description"]:
        click.echo(f"  {data['description']}")
    click.echo(f"  {data['method']} {data['path']}")
    for label, key in (
        ("Query", "query"),
        ("Headers", "headers"),
        ("Response mappings", "response_mappings"),
    ):
        if data[key]:
            click.echo(f"  {label}:")
            for item, value in data[key].items():
                click.echo(f"    {item}: {value}")
    if data["body"] is not None:
        click.echo("  Body:")
        for line in json.dumps(data["body"], indent=2).splitlines():
            click.echo(f"    {line}")
    if data["variables"]:
        click.echo(f"  Variables: {', '.join(data['variables'])}")
    if data["read_merge_write"]:
        click.echo(
            f"  Reads the record with '{data['read_merge_write']}' first and sends it whole."
        )
        if data["merge"]:
            click.echo(f"  The record and the changes are merged in Python: {data['merge']}")
    if data["find_existing"]:
        click.echo(
            f"  Looks the record up with '{data['find_existing']['preset']}' first (found: "
            "nothing is sent) and again after a failure (found: the call counts as done)."
        )
    if data["mapper"]:
        click.echo(f"  Also maps the response in Python: {data['mapper']}")


@presets_group.command("run", short_help="Run preset NAME of VENDOR for people.")
@click.argument("vendor")
@click.argument("name")
@click.option("--credential", "credential_name", help="Credential name.")
@click.option(
    "--integration",
    "integration_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the credential, settings and base URL from this integration file (and, "
    "when it names one, its [destination]: people are then read and written there).",
)
@click.option(
    "--var",
    "var_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A variable (text); KEY:=JSON gives a typed value. Wins over person and settings.",
)
@click.option(
    "--setting",
    "setting_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A vendor global setting (Talkdesk.Subdomain=acme).",
)
@click.option("--person", "person_email", metavar="EMAIL", help="Run for the person with EMAIL.")
@click.option(
    "--where",
    metavar="EXPRESSION",
    help="Run for every person matching EXPRESSION (department == 'Sales'; 'true' for all).",
)
@click.option(
    "--linked-only", is_flag=True, help="With --where: only people with a vendor account."
)
@click.option("--dry-run", is_flag=True, help="Show the requests without sending anything.")
@db_option
@oomnitza_options
@click.option("--override-path", metavar="TEMPLATE", help="Use this path template instead.")
@click.option(
    "--override-query",
    "query_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Add or replace a query parameter (templates allowed); repeatable.",
)
@click.option(
    "--override-header",
    "header_items",
    multiple=True,
    metavar="NAME=VALUE",
    help="Add or replace a request header; repeatable.",
)
@click.option("--override-body", metavar="JSON", help="Use this JSON body instead ('null': none).")
@click.option(
    "--map",
    "map_items",
    multiple=True,
    metavar="TARGET=EXPRESSION",
    help="A response mapping used instead of the preset's defaults ('Title={{response.title}}').",
)
@click.option("--no-mapping", is_flag=True, help="Map nothing from the response.")
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="With --where: how many calls are in flight at once.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar for --where runs (default: when stderr is a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def run_command(
    vendor: str,
    name: str,
    credential_name: str | None,
    integration_path: Path | None,
    var_items: tuple[str, ...],
    setting_items: tuple[str, ...],
    person_email: str | None,
    where: str | None,
    linked_only: bool,
    dry_run: bool,
    db_path: Path | None,
    oomnitza_credential: str | None,
    oomnitza_url: str | None,
    override_path: str | None,
    query_items: tuple[str, ...],
    header_items: tuple[str, ...],
    override_body: str | None,
    map_items: tuple[str, ...],
    no_mapping: bool,
    concurrency: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Run preset NAME of VENDOR once, for one person, or for every matching person.

    People come from the store (--db), or from Oomnitza with --oomnitza or an
    integration whose [destination] is Oomnitza; mapped results are written back there.
    """
    from ..connectors import get_connector
    from ..presets.engine import (
        UNSET,
        PresetOverrides,
        check_storable,
        get_preset,
        run_preset,
        run_preset_bulk,
    )

    if person_email and where:
        raise click.UsageError("Give --person or --where, not both.")
    if linked_only and not where:
        raise click.UsageError("--linked-only only applies with --where.")
    if no_mapping and map_items:
        raise click.UsageError("Give --map or --no-mapping, not both.")
    variables = _pairs(var_items, "--var", allow_json=True)
    settings = _pairs(setting_items, "--setting")
    body: Any = UNSET
    if override_body is not None:
        try:
            body = json.loads(override_body)
        except ValueError as exc:
            raise click.BadParameter(
                f"{override_body!r} is not valid JSON ({exc})", param_hint="--override-body"
            ) from None
    overrides = PresetOverrides(
        path=override_path,
        query=_pairs(query_items, "--override-query"),
        headers=_pairs(header_items, "--override-header"),
        body=body,
        response_mappings=({} if no_mapping else _pairs(map_items, "--map") if map_items else None),
    )
    connector = get_connector(vendor)
    from ..sync.integrations import check_settings

    # As strictly as an integration file: a misspelt key would otherwise be ignored.
    check_settings(settings, connector.info, source="--setting")
    preset = _usage_guard(lambda: get_preset(vendor, name))
    base_url = None
    table = None
    integration = None
    if integration_path is not None:
        from ..sync.integrations import load_integration

        integration = load_integration(integration_path, info=connector.info)
        if integration.vendor != vendor:
            raise _UsageProblem(
                f"The integration {integration_path} is for {integration.vendor}, not {vendor}."
            )
        credential_name = credential_name or integration.credential
        settings = {**integration.settings, **settings}
        base_url = integration.base_url
        table = integration.destination
    if not credential_name:
        raise click.UsageError("Give --credential (or --integration).")
    credential = _load_credential(credential_name, vendor)
    if base_url:
        credential = attrs.evolve(credential, base_url=base_url)
    effective_settings = connector.effective_settings(settings)
    table, oomnitza = chosen_destination(table, oomnitza_credential, oomnitza_url)

    # People read from Oomnitza carry the mapping's field names, as in the store.
    from ..sync.integrations import sync_key_of

    names = connector.person_fields(integration) if table is not None else ()
    sync_key = sync_key_of(integration) if integration is not None else None
    with open_people(db_path, table, oomnitza, person_fields=names, sync_key=sync_key) as (
        store,
        ledger,
    ):
        # Before signing in at the vendor: a result the destination cannot keep is refused.
        _usage_guard(lambda: check_storable(overrides.apply(preset), store))
        person = None
        if person_email:
            person = store.find_person("email", person_email)
            if person is None:
                where_from = "the store" if store is ledger else repr(store)
                raise _UsageProblem(f"No person with email '{person_email}' is in {where_from}.")
        with _open_session(connector, credential, effective_settings, dry_run=dry_run) as session:
            if where is not None:
                show = progress if progress is not None else sys.stderr.isatty() and not as_json
                bar = _BulkProgress(enabled=show)
                with bar:
                    results = _usage_guard(
                        lambda: run_preset_bulk(
                            session,
                            preset,
                            store,
                            ledger=ledger,
                            where=where,
                            variables=variables,
                            concurrency=concurrency,
                            dry_run=dry_run,
                            overrides=overrides,
                            settings=effective_settings,
                            linked_only=linked_only,
                            on_start=bar.start,
                            on_result=bar.advance,
                        )
                    )
                _report_bulk(results, as_json=as_json)
                if not all(r.ok for r in results):
                    _exit_failed()
                return
            result = _usage_guard(
                lambda: run_preset(
                    session,
                    preset,
                    variables=variables,
                    person=person,
                    store=store,
                    ledger=ledger,
                    overrides=overrides,
                    dry_run=dry_run,
                    settings=effective_settings,
                )
            )
    _report_one(result, as_json=as_json)
    if not result.ok:
        _exit_failed()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _usage_guard(call: Any) -> Any:
    """Run *call*, turning rendering and preset-lookup errors into exit code 2."""
    try:
        return call()
    except (PresetError, TemplateError) as exc:
        from ..redaction import redact

        raise _UsageProblem(redact(str(exc))) from None


def _load_credential(name: str, vendor: str) -> Credential:
    from ..auth.credentials import default_credential_store

    credential = default_credential_store().get(name)
    if credential.vendor != vendor:
        raise ConfigurationError(
            f"credential '{name}' is for {credential.vendor}, not {vendor}",
            key_path="vendor",
        )
    return credential


@contextmanager
def _open_session(
    connector: Any, credential: Credential, settings: Mapping[str, str], *, dry_run: bool
) -> Iterator[Any]:
    """Authenticate, or for a dry run build a session that never touches the network."""
    from ..transport.http import ClientOptions, HttpClient
    from ..vendors.session import VendorSession

    if dry_run:
        base_url = credential.base_url or connector.info.base_url
        client = HttpClient(connector.name, base_url, options=ClientOptions(base_url=base_url))
        session = VendorSession(connector.name, client, credential, settings=dict(settings))
    else:
        session = connector.authenticate(credential, settings)
    try:
        yield session
    finally:
        session.close()


class _BulkProgress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _BulkProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                console=output.console(stderr=True),
                # On a terminal the bar clears itself; elsewhere its last state stays.
                transient=sys.stderr.isatty(),
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)

    def start(self, total: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task("Running preset", total=total, failed=0)

    def advance(self, result: Any) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[0]
        failed = task.fields["failed"] + (0 if result.ok else 1)
        self._progress.update(self._task, advance=1, failed=failed)


def _report_one(result: Any, *, as_json: bool) -> None:
    if as_json:
        _echo_json(result.to_dict())
        return
    request = result.request or {}
    if result.dry_run:
        click.echo("Dry run: nothing was sent.")
        _echo_request(request)
        return
    state = "ok" if result.ok else "failed"
    status = f" (HTTP {result.status})" if result.status is not None else ""
    if result.existing:
        found = request.get("find_request") or {}
        click.echo(
            f"ok: the record exists already (found with {found.get('method', '')} "
            f"{found.get('url', '')}); {request.get('method', '')} was not sent"
        )
    else:
        click.echo(f"{state}: {request.get('method', '')} {request.get('url', '')}{status}")
    if result.despite_error:
        click.echo(
            f"  The vendor answered with an error, but the record exists (found by the "
            f"look-up), so it counts as done: {result.despite_error}"
        )
    if result.error:
        click.echo(f"  {result.error}")
    for target, value in result.mapped.items():
        click.echo(f"  {target} = {value}")
    if result.ok and result.mapped and result.person_id is None:
        # "ok" with mapped fields reads as if they were kept: say they were not.
        click.echo(
            "  (not stored: no person in the store goes with this call; --person EMAIL "
            "keeps them on that person)"
        )
    if result.response is not None:
        click.echo(json.dumps(result.response, indent=2, default=str, ensure_ascii=False))


def _echo_request(request: Mapping[str, Any], indent: str = "  ") -> None:
    find = request.get("find_request")
    if find:
        click.echo(f"{indent}First looks the record up:")
        _echo_request({k: v for k, v in find.items() if k != "find_request"}, indent + "  ")
        click.echo(f"{indent}and only when it is not found (again after a failure) sends:")
    read = request.get("read_request")
    if read:
        click.echo(f"{indent}First reads the current record:")
        _echo_request(read, indent + "  ")
        click.echo(f"{indent}then sends it whole with these changes merged in:")
    click.echo(f"{indent}{request.get('method')} {request.get('url')}")
    for header, value in (request.get("headers") or {}).items():
        click.echo(f"{indent}{header}: {value}")
    if request.get("body") is not None:
        for line in json.dumps(request["body"], indent=2, ensure_ascii=False).splitlines():
            click.echo(f"{indent}{line}")


def _report_bulk(results: Sequence[Any], *, as_json: bool) -> None:
    if as_json:
        _echo_json([r.to_dict() for r in results])
        return
    for result in results:
        who = result.person or f"person {result.person_id}"
        if result.dry_run:
            click.echo(f"{who}: would send")
            _echo_request(result.request or {}, "    ")
        elif result.ok:
            mapped = ", ".join(f"{k} = {_short(v)}" for k, v in result.mapped.items())
            how = f"HTTP {result.status}"
            if result.existing:
                how = "existed already, nothing sent"
            elif result.despite_error:
                how += ", but the record exists"
            click.echo(f"{who}: ok ({how}){': ' + mapped if mapped else ''}")
        else:
            click.echo(f"{who}: failed: {result.error}")
    ok = sum(1 for r in results if r.ok)
    click.echo(f"{len(results)} people: {ok} ok, {len(results) - ok} failed.")


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(main: click.Group) -> None:
    """Add the ``presets`` command group to *main*."""
    main.add_command(presets_group)
