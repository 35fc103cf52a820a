"""When integrations run: schedule expressions and a small scheduler loop.

An integration's ``schedule`` is one of:

``daily`` (the default; every day at 02:00 UTC), ``daily at HH:MM``,
``hourly``, ``weekly`` (Mondays at 02:00 UTC), ``every N minutes``,
``every N hours``, ``manual`` (never by itself), or a five-field cron
expression such as ``30 6 * * 1-5`` (evaluated in UTC by croniter).

``N`` is at most a year (525600 minutes, 8760 hours): a longer interval is a
typo, and one past what a date can hold would break every time computed from it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

import attrs

from ..errors import ConfigurationError

__all__ = ["DEFAULT_SCHEDULE", "Schedule", "is_due", "parse_schedule", "run_due"]

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "daily"
# The longest interval allowed, per unit: one year.
MAX_EVERY = {"minute": 525_600, "hour": 8_760}
_ALLOWED = (
    "'daily', 'daily at HH:MM', 'hourly', 'weekly', "
    f"'every N minutes' (N from 1 to {MAX_EVERY['minute']}), "
    f"'every N hours' (N from 1 to {MAX_EVERY['hour']}), "
    "'manual' or a five-field cron expression"
)
_DAILY_AT = re.compile(r"^daily at (?P<hour>\d{1,2}):(?P<minute>\d{2})$")
_EVERY = re.compile(r"^every (?P<count>\d+) (?P<unit>minutes?|hours?)$")


@attrs.frozen
class Schedule:
    """A parsed schedule.

    :param text: what the integration file said.
    :param cron: the cron expression it stands for, or ``None`` for intervals and manual.
    :param interval: the fixed interval for ``every N ...``.
    """

    text: str
    cron: str | None = None
    interval: timedelta | None = None

    @property
    def manual(self) -> bool:
        return self.cron is None and self.interval is None

    def next_run(self, after: datetime) -> datetime | None:
        """Return the first run time strictly after *after* (``None`` when manual)."""
        after = _aware(after)
        try:
            if self.interval is not None:
                return after + self.interval
            if self.cron is None:
                return None
            from croniter import croniter

            following: datetime = croniter(self.cron, after).get_next(datetime)
        except (OverflowError, ValueError, ArithmeticError):
            # Past the last date Python can hold (a stored "last run" near year
            # 9999): there is no next run, and the scheduler must not stop on it.
            return None
        return _aware(following)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_schedule(text: str | None, *, file: str | None = None) -> Schedule:
    """Parse an integration's schedule, or raise a ConfigurationError saying what is allowed."""
    raw = (text or DEFAULT_SCHEDULE).strip()
    normalized = " ".join(raw.lower().split())
    if normalized == "manual":
        return Schedule(raw)
    if normalized == "daily":
        return Schedule(raw, cron="0 2 * * *")
    if normalized == "hourly":
        return Schedule(raw, cron="0 * * * *")
    if normalized == "weekly":
        return Schedule(raw, cron="0 2 * * 1")
    if match := _DAILY_AT.match(normalized):
        hour, minute = int(match["hour"]), int(match["minute"])
        if hour < 24 and minute < 60:
            return Schedule(raw, cron=f"{minute} {hour} * * *")
    elif match := _EVERY.match(normalized):
        unit = "minute" if match["unit"].startswith("minute") else "hour"
        digits = match["count"].lstrip("0") or "0"
        # Length first: int() refuses (ValueError) a few thousand digits.
        count = int(digits) if len(digits) <= 7 else None
        if count is not None and 1 <= count <= MAX_EVERY[unit]:
            return Schedule(raw, interval=count * timedelta(**{unit + "s": 1}))
        raise ConfigurationError(
            f"bad schedule {raw!r}: every N {unit}s takes N from 1 to {MAX_EVERY[unit]}",
            file=file,
            key_path="schedule",
            value=raw,
            allowed=_ALLOWED,
        )
    elif len(normalized.split()) == 5 and _cron_is_valid(normalized):
        return Schedule(raw, cron=normalized)
    raise ConfigurationError(
        f"bad schedule {raw!r}", file=file, key_path="schedule", allowed=_ALLOWED
    )


def is_due(schedule: Schedule, last_run: datetime | None, now: datetime) -> bool:
    """Return whether a run is due at *now* given the start of the last run.

    An integration that never ran is due at once, unless it is manual.
    """
    if schedule.manual:
        return False
    if last_run is None:
        return True
    following = schedule.next_run(last_run)
    return following is not None and following <= _aware(now)


def run_due(
    schedules: Mapping[str, Schedule] | Callable[[], Mapping[str, Schedule]],
    last_runs: Callable[[str], datetime | None],
    run: Callable[[str], object],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    once: bool = False,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    max_cycles: int | None = None,
    on_cycle: Callable[[], object] | None = None,
) -> list[str]:
    """Run every integration whose schedule is due, and keep doing so unless *once*.

    :param schedules: integration name -> schedule, or a function returning it,
        called once per cycle (after *on_cycle*) so that edited files count.
    :param last_runs: integration name -> start of its last run (from the store).
    :param run: runs one integration by name; its exceptions are logged and
        do not stop the others.
    :param on_cycle: called at the start of every cycle (late-run notices);
        its exceptions are logged.
    :returns: the names run, in order (useful with *once*).
    """
    ran: list[str] = []
    cycles = 0
    while True:
        cycles += 1
        if on_cycle is not None:
            try:
                on_cycle()
            except Exception as exc:
                _log_failure("the scheduler's cycle check failed", exc)
        current = schedules() if callable(schedules) else schedules
        for name, schedule in sorted(current.items()):
            try:
                due = is_due(schedule, last_runs(name), now())
            except Exception as exc:
                # One integration's schedule or store row must not stop the others.
                _log_failure(f"integration {name}: its schedule could not be checked", exc)
                continue
            if not due:
                continue
            log.info("running integration %s (schedule %s)", name, schedule.text)
            try:
                run(name)
            except Exception as exc:
                _log_failure(f"integration {name} failed to run", exc)
            ran.append(name)
        if once or (max_cycles is not None and cycles >= max_cycles):
            return ran
        sleep(poll_seconds)


def _log_failure(what: str, exc: Exception) -> None:
    # One readable line; the traceback only with --debug.
    log.error("%s: %s: %s", what, type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))


def next_runs(
    schedules: Iterable[tuple[str, Schedule, datetime | None]], now: datetime
) -> list[tuple[str, datetime | None]]:
    """Return each integration's next run time (now when it never ran; None when manual)."""
    result: list[tuple[str, datetime | None]] = []
    for name, schedule, last_run in schedules:
        if schedule.manual:
            result.append((name, None))
        elif last_run is None:
            result.append((name, _aware(now)))
        else:
            result.append((name, schedule.next_run(last_run)))
    return result


def _cron_is_valid(expression: str) -> bool:
    from croniter import croniter  # imported when a cron schedule is read, not at start-up

    return bool(croniter.is_valid(expression))
