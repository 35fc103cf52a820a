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
from ..schedule.scheduler import Schedule
from . import output
from .store_option import db_option, open_store

__all__ = ["register"]

log = logging.getLogger(__name__)


@attrs.define
class _Watched:
    """One integration the scheduler runs, and what its file said when last read.

    The file is read again at the start of every cycle when its modification time
    or size changed, so an edit (a new schedule, a key made draft, a deleted file)
    counts from the next cycle on. While the file cannot be used, *problem* says why
    and the integration keeps the name, schedule and contacts of its last good
    reading (or of its launch), so that it is reported when due and its contacts
    can still be told.
    """

    file: Path
    name: str
    vendor: str
    schedule: Schedule
    contacts: tuple[str, ...]
    settings: IntegrationSettings | None = None
    problem: str | None = None
    stamp: tuple[int, int] | None = None
    attempted: datetime | None = None
    """When it was last reported "not run": counts as its last run, so it is reported
    once per due time, not on every poll."""

    def refresh(self) -> None:
        try:
            stat = self.file.stat()
        except OSError as exc:
            self.settings, self.stamp = None, None
            missing = isinstance(exc, FileNotFoundError)
            self.problem = f"{self.file}: {'file not found' if missing else exc.strerror or exc}"
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            settings = _read(self.file)
        except OomnitzaConnectError as exc:
            self.settings, self.problem = None, str(exc)
            return
        if settings.name != self.name:
            self.settings = None
            self.problem = (
                f"{self.file}: key 'name': the file now names integration '{settings.name}', "
                f"not '{self.name}' (launch it again, or run the scheduler again)"
            )
            return
        self.settings, self.problem = settings, None
        self.vendor, self.contacts = settings.vendor, tuple(settings.contacts)
        self.schedule = _parse(settings.schedule, self.file)


def _parse(text: str | None, file: Path) -> Schedule:
    from ..schedule.scheduler import parse_schedule

    return parse_schedule(text, file=str(file))


def _read(file: Path) -> IntegrationSettings:
    """Read an integration file the scheduler can run: valid, its schedule too, not a draft."""
    from ..plugins import vendor_info
    from ..sync.integrations import draft_problems, load_integration

    settings = load_integration(file)
    _parse(settings.schedule, file)
    drafts = draft_problems(settings, vendor_info(settings.vendor))
    if drafts:
        # Checked here too, not only when it syncs, so that `schedule show` says it.
        raise ConfigurationError(
            f"the integration '{settings.name}' is a draft and cannot sync",
            file=str(file),
            problems=drafts,
        )
    return settings


def _watch_files(files: tuple[Path, ...]) -> dict[str, _Watched]:
    """Read the FILES given on the command line; any that is bad stops the command (exit 2).

    Files named on the command line were just typed: a mistake in one is better
    shown before anything runs. Once running, a file that goes bad is reported
    for its own integration, as a launched one is.
    """
    watched: dict[str, _Watched] = {}
    for file in files:
        settings = _read(file)
        if settings.name in watched:
            raise ConfigurationError(
                f"integration name '{settings.name}' is used by two files: "
                f"{watched[settings.name].file} and {file}",
                file=str(file),
                key_path="name",
            )
        watched[settings.name] = _Watched(
            file,
            settings.name,
            settings.vendor,
            _parse(settings.schedule, file),
            tuple(settings.contacts),
        )
        watched[settings.name].refresh()
    return watched


def _watch_launched(store: Any, watched: dict[str, _Watched]) -> dict[str, _Watched]:
    """Follow the integrations launched into the store (launches and retirements count).

    A launched integration whose file is missing or bad is still watched: it is
    reported (not run) when due, with the schedule and contacts it was launched with.
    """
    from ..schedule.scheduler import DEFAULT_SCHEDULE, parse_schedule

    current: dict[str, _Watched] = {}
    for entry in store.list_integrations(active_only=True):
        if not entry.source:
            continue
        known = watched.get(entry.name)
        if known is None or known.file != Path(entry.source):
            try:
                schedule = parse_schedule(entry.schedule)
            except ConfigurationError:
                schedule = parse_schedule(DEFAULT_SCHEDULE)  # the file's reading says why
            known = _Watched(
                Path(entry.source), entry.name, entry.vendor, schedule, tuple(entry.contacts)
            )
        current[entry.name] = known
    return current


def _last_run(store: Any, name: str) -> datetime | None:
    sessions = [s for s in store.list_sessions(integration=name, limit=10) if not s.test_run]
    return sessions[0].started_at if sessions else None


def _since(store: Any, watched: _Watched) -> datetime | None:
    last = _last_run(store, watched.name)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if watched.attempted is None:
        return last
    return watched.attempted if last is None else max(last, watched.attempted)


class _Integrations:
    """The integrations ``schedule show|run`` looks after: FILES, or the launched ones."""

    def __init__(self, files: tuple[Path, ...], store: Any) -> None:
        self.store = store
        self.from_store = not files
        self.watched = _watch_files(files) if files else _watch_launched(store, {})
        if not self.watched:
            raise click.UsageError(
                "no integration files given and none launched into the store "
                "(use `oomnitza-connect integrations launch FILE`)"
            )

    def refresh(self) -> dict[str, Schedule]:
        if self.from_store:
            self.watched = _watch_launched(self.store, self.watched)
        for watched in self.watched.values():
            watched.refresh()
        return {name: watched.schedule for name, watched in self.watched.items()}


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
    A launched integration whose file cannot be used is listed with the problem.
    """
    from ..schedule.scheduler import next_runs

    with open_store(db_path) as store:
        integrations = _Integrations(files, store)
        integrations.refresh()
        watched = sorted(integrations.watched.items())
        rows = [(name, w.schedule, _last_run(store, name)) for name, w in watched]
    now = datetime.now(UTC)
    planned = list(zip(rows, next_runs(rows, now), strict=True))
    problems = {name: w.problem for name, w in watched}
    if as_json:
        output.echo_json(
            [
                {
                    "integration": name,
                    "schedule": schedule.text,
                    "last_run": last,
                    "next_run": upcoming,
                    "due": upcoming is not None and upcoming <= now,
                    "problem": problems[name],
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
            if schedule.manual
            else "never"
            if upcoming is None
            else ("now" if upcoming <= now else upcoming.isoformat(timespec="seconds")),
        )
    output.show(table)
    for name, problem in problems.items():
        if problem:
            click.secho(f"{name}: will not run: {problem}", err=True, fg="red")


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

    Each integration's file is read again when it changed; one that is missing,
    invalid or a draft is reported (and its contacts told) instead of run, and the
    others go on. Failures tell the integration's contacts. FILES default to the
    integrations launched into the store (`integrations launch`).
    """
    from ..api import run_sync
    from ..auth.credentials import config_home
    from ..schedule.notifications import (
        forget_not_run,
        notify_failure,
        notify_late_runs,
        notify_not_run,
        smtp_missing_note,
    )
    from ..schedule.scheduler import run_due

    # Missed runs, runs past 24 hours and "not run" notices are each told once.
    notices = config_home() / "notices.json"
    failures: list[str] = []
    with open_store(db_path) as store:
        integrations = _Integrations(files, store)

        def not_run(watched: _Watched, problem: str) -> None:
            click.secho(f"{watched.name}: not run: {problem}", err=True, fg="red")
            failures.append(watched.name)
            watched.attempted = datetime.now(UTC)
            if as_json:
                output.echo_json(
                    {"integration": watched.name, "status": "not run", "error": problem},
                    lines=True,
                )
            try:
                notify_not_run(
                    watched.name, watched.vendor, watched.contacts, problem, state_file=notices
                )
            except OomnitzaConnectError as exc:
                click.secho(f"{watched.name}: contacts not notified: {exc}", err=True, fg="yellow")

        def run(name: str) -> None:
            watched = integrations.watched[name]
            if watched.settings is None:
                not_run(watched, watched.problem or "the integration's file cannot be read")
                return
            settings = watched.settings
            try:
                session = run_sync(settings, store=store)
            except OomnitzaConnectError as exc:
                # A bad credential or a draft integration: say so, keep the others going.
                not_run(watched, str(exc))
                return
            forget_not_run(name, notices)
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
                if session.message:
                    click.echo(f"  {session.message}")
            if session.status.value != "succeeded":
                failures.append(name)
            try:
                notify_failure(settings, session, store_path=str(db_path) if db_path else None)
            except OomnitzaConnectError as exc:
                click.secho(f"{name}: contacts not notified: {exc}", err=True, fg="yellow")
            else:
                note = smtp_missing_note(settings, session)
                if note:
                    click.echo(f"{name}: {note}", err=True)

        # Each run's line above gives its reason, as `sync` does.
        with output.sync_failures_said_by_the_summary():
            ran = run_due(
                integrations.refresh,
                lambda name: _since(store, integrations.watched[name]),
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
