"""``oomnitza-connect schedule show|run``: run integrations when their schedule says.

The integrations come from the files given on the command line, or, when none
are given, from the integrations launched into the store
(``oomnitza-connect integrations launch FILE``). The start of each one's last
sync session in the store decides whether it is due.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import click

from ..errors import ConfigurationError, OomnitzaConnectError
from ..models import IntegrationSettings
from . import output
from .store_option import db_option, open_store

__all__ = ["register"]

log = logging.getLogger(__name__)


def _integration_files(files: tuple[Path, ...], store: Any) -> list[Path]:
    if files:
        return list(files)
    launched = [
        Path(entry.source) for entry in store.list_integrations(active_only=True) if entry.source
    ]
    if not launched:
        raise click.UsageError(
            "no integration files given and none launched into the store "
            "(use `oomnitza-connect integrations launch FILE`)"
        )
    return launched


def _load_all(files: list[Path]) -> dict[str, tuple[Path, IntegrationSettings]]:
    from ..schedule.scheduler import parse_schedule
    from ..sync.integrations import load_integration

    loaded: dict[str, tuple[Path, IntegrationSettings]] = {}
    for file in files:
        settings = load_integration(file)
        parse_schedule(settings.schedule, file=str(file))
        if settings.name in loaded:
            raise ConfigurationError(
                f"integration name '{settings.name}' is used by two files: "
                f"{loaded[settings.name][0]} and {file}",
                file=str(file),
                key_path="name",
            )
        loaded[settings.name] = (file, settings)
    return loaded


def _last_run(store: Any, name: str) -> datetime | None:
    sessions = [s for s in store.list_sessions(integration=name, limit=10) if not s.test_run]
    return sessions[0].started_at if sessions else None


@click.group("schedule", short_help="Run integrations on their schedules.")
def schedule_group() -> None:
    """Run integrations on their schedules (daily by default)."""


@schedule_group.command("show")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@db_option
@output.json_option()
def schedule_show(files: tuple[Path, ...], db_path: Path | None, as_json: bool) -> None:
    """Show when each integration runs next.

    FILES default to the integrations launched into the store (`integrations launch`).
    """
    from ..schedule.scheduler import next_runs, parse_schedule

    with open_store(db_path) as store:
        loaded = _load_all(_integration_files(files, store))
        rows = [
            (name, parse_schedule(settings.schedule), _last_run(store, name))
            for name, (_, settings) in sorted(loaded.items())
        ]
    now = datetime.now(UTC)
    planned = list(zip(rows, next_runs(rows, now), strict=True))
    if as_json:
        output.echo_json(
            [
                {
                    "integration": name,
                    "schedule": schedule.text,
                    "last_run": last,
                    "next_run": upcoming,
                    "due": upcoming is not None and upcoming <= now,
                }
                for (name, schedule, last), (_, upcoming) in planned
            ]
        )
        return
    table = output.table("integration", "schedule", "last run", "next run")
    for (name, schedule, last), (_, upcoming) in planned:
        table.add_row(
            name,
            schedule.text,
            last.isoformat(timespec="seconds") if last else "never",
            "manual"
            if upcoming is None
            else ("now" if upcoming <= now else upcoming.isoformat(timespec="seconds")),
        )
    output.show(table)


@schedule_group.command("run")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@db_option
@click.option("--once", is_flag=True, help="Run what is due once and exit (for cron or timers).")
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="How often to look for due integrations.",
)
@output.json_option("Print one JSON object per run, one per line (JSON Lines).")
def schedule_run(
    files: tuple[Path, ...], db_path: Path | None, once: bool, poll_seconds: float, as_json: bool
) -> None:
    """Run every integration whose schedule is due.

    Failures tell the integration's contacts. FILES default to the integrations
    launched into the store (`integrations launch`).
    """
    from ..api import run_sync
    from ..schedule.notifications import notify_failure
    from ..schedule.scheduler import parse_schedule, run_due

    failures: list[str] = []
    with open_store(db_path) as store:
        loaded = _load_all(_integration_files(files, store))
        schedules = {name: parse_schedule(s.schedule) for name, (_, s) in loaded.items()}

        def run(name: str) -> None:
            _, settings = loaded[name]
            try:
                session = run_sync(settings, store=store)
            except OomnitzaConnectError as exc:
                # A bad credential or a draft integration: say so, keep the others going.
                click.secho(f"{name}: not run: {exc}", err=True, fg="red")
                failures.append(name)
                if as_json:
                    output.echo_json(
                        {"integration": name, "status": "not run", "error": str(exc)}, lines=True
                    )
                return
            if as_json:
                output.echo_json(
                    {
                        "integration": name,
                        "status": session.status.value,
                        "session": session.id,
                        "counts": attrs.asdict(session.counts),
                        "message": session.message,
                    },
                    lines=True,
                )
            else:
                click.echo(
                    f"{name}: {session.status.value} (created {session.counts.created}, "
                    f"updated {session.counts.updated}, unchanged {session.counts.unchanged}, "
                    f"failed {session.counts.failed}) session {session.id}"
                )
            if session.status.value != "succeeded":
                failures.append(name)
            try:
                notify_failure(settings, session, store_path=str(db_path) if db_path else None)
            except OomnitzaConnectError as exc:
                log.error("%s", exc)

        from ..auth.credentials import config_home
        from ..schedule.notifications import notify_late_runs

        # Missed runs and runs past 24 hours are told before the due ones start.
        notices = config_home() / "notices.json"
        ran = run_due(
            schedules,
            lambda name: _last_run(store, name),
            run,
            once=once,
            poll_seconds=poll_seconds,
            on_cycle=lambda: notify_late_runs(store, notices),
        )
    if once and not ran:
        click.echo("nothing is due", err=as_json)
    if failures:
        raise click.ClickException(f"{len(failures)} run(s) did not succeed: {', '.join(failures)}")


def register(main: click.Group) -> None:
    """Add the ``schedule`` group to *main*."""
    main.add_command(schedule_group)
