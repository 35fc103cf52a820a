"""Schedules: parsing, due times, and the scheduler loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.schedule.scheduler import is_due, next_runs, parse_schedule, run_due

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        (None, NOON, datetime(2026, 11, 24, 2, 0, tzinfo=UTC)),  # daily by default
        ("daily", NOON, datetime(2026, 11, 24, 2, 0, tzinfo=UTC)),
        ("Daily at 13:30", NOON, datetime(2026, 11, 23, 13, 30, tzinfo=UTC)),
        ("hourly", NOON, datetime(2026, 11, 23, 13, 0, tzinfo=UTC)),
        ("weekly", NOON, datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),  # next Monday
        ("every 15 minutes", NOON, NOON + timedelta(minutes=15)),
        ("every 6 hours", NOON, NOON + timedelta(hours=6)),
        ("30 6 * * 1-5", NOON, datetime(2026, 11, 24, 6, 30, tzinfo=UTC)),
    ],
)
def test_next_run(text, after, expected):
    assert parse_schedule(text).next_run(after) == expected


@pytest.mark.parametrize(
    "text", ["sometimes", "daily at 25:00", "every 0 hours", "* * *", "61 * * * *"]
)
def test_bad_schedule_says_what_is_allowed(text):
    with pytest.raises(ConfigurationError) as caught:
        parse_schedule(text, file="slack.toml")
    message = str(caught.value)
    assert "slack.toml" in message
    assert "schedule" in message
    assert "daily at HH:MM" in message


def test_manual_is_never_due():
    manual = parse_schedule("manual")
    assert manual.next_run(NOON) is None
    assert not is_due(manual, None, NOON)


def test_due_after_the_next_run_time_passes():
    daily = parse_schedule("daily")
    last = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert is_due(daily, None, NOON)  # never ran
    assert not is_due(daily, last, NOON)
    assert is_due(daily, last, datetime(2026, 11, 24, 2, 0, tzinfo=UTC))


def test_run_due_runs_what_is_due_and_survives_a_failing_run():
    schedules = {
        "a": parse_schedule("hourly"),
        "b": parse_schedule("daily"),
        "c": parse_schedule("manual"),
        "d": parse_schedule("hourly"),
    }
    last = {"a": NOON - timedelta(hours=2), "b": NOON - timedelta(hours=1), "d": None}
    attempted = []

    def run(name):
        attempted.append(name)
        if name == "a":
            raise RuntimeError("vendor down")

    ran = run_due(schedules, last.get, run, now=lambda: NOON, once=True)
    assert ran == ["a", "d"]
    assert attempted == ["a", "d"]


def test_run_due_polls_until_told_to_stop():
    runs = []
    clock = [NOON]
    last: dict[str, datetime | None] = {"a": None}

    def run(name):
        runs.append(clock[0])
        last[name] = clock[0]

    def sleep(seconds):
        clock[0] += timedelta(seconds=seconds)

    run_due(
        {"a": parse_schedule("every 1 hours")},
        last.get,
        run,
        now=lambda: clock[0],
        poll_seconds=1800,
        sleep=sleep,
        max_cycles=5,
    )
    # cycles at 12:00 (never ran), 12:30, 13:00 (due), 13:30, 14:00 (due)
    assert runs == [NOON, NOON + timedelta(hours=1), NOON + timedelta(hours=2)]


def test_next_runs_table():
    rows = next_runs(
        [
            ("new", parse_schedule("daily"), None),
            ("old", parse_schedule("hourly"), NOON),
            ("off", parse_schedule("manual"), NOON),
        ],
        NOON,
    )
    assert rows == [("new", NOON), ("old", NOON + timedelta(hours=1)), ("off", None)]


@pytest.mark.parametrize(
    ("text", "longest"),
    [("every 525600 minutes", timedelta(days=365)), ("every 8760 hours", timedelta(days=365))],
)
def test_every_n_is_allowed_up_to_a_year(text, longest):
    assert parse_schedule(text).interval == longest
    assert parse_schedule(text.replace("every ", "every 000")).interval == longest


@pytest.mark.parametrize(
    ("text", "unit", "top"),
    [
        ("every 525601 minutes", "minutes", "525600"),
        ("every 8761 hours", "hours", "8760"),
        ("every 9999999999 hours", "hours", "8760"),
        ("every 99999999999999999999 hours", "hours", "8760"),  # was OverflowError
        ("every " + "9" * 5000 + " minutes", "minutes", "525600"),  # int() refuses it
        ("every 0 minutes", "minutes", "525600"),
    ],
)
def test_every_n_out_of_range_names_the_key_and_the_range(text, unit, top):
    with pytest.raises(ConfigurationError) as caught:
        parse_schedule(text, file="slack.toml")
    error = caught.value
    assert error.key_path == "schedule"
    assert error.file == "slack.toml"
    assert f"every N {unit} takes N from 1 to {top}" in str(error)
    assert "N from 1 to 8760" in (error.allowed or "")


@pytest.mark.parametrize("text", ["every 8760 hours", "every 525600 minutes", "daily", "hourly"])
def test_next_run_past_the_last_date_is_none_not_an_error(text):
    near_the_end = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)
    assert parse_schedule(text).next_run(near_the_end) is None
    assert is_due(parse_schedule(text), near_the_end, NOON) is False


def test_one_integration_whose_due_check_fails_does_not_stop_the_others(caplog):
    schedules = {"a-broken": parse_schedule("hourly"), "b-fine": parse_schedule("hourly")}

    def last_runs(name):
        if name == "a-broken":
            raise OverflowError("date value out of range")
        return None

    ran: list[str] = []
    assert run_due(schedules, last_runs, ran.append, once=True) == ["b-fine"]
    assert ran == ["b-fine"]
    # One readable line, no traceback at the default verbosity.
    (record,) = [r for r in caplog.records if "a-broken" in r.getMessage()]
    assert "date value out of range" in record.getMessage()
    assert not record.exc_info


def test_run_due_reads_the_schedules_again_every_cycle():
    cycles = iter([{"a": parse_schedule("hourly")}, {"a": parse_schedule("manual")}])
    ran: list[str] = []
    run_due(lambda: next(cycles), lambda name: None, ran.append, max_cycles=2, sleep=lambda s: None)
    assert ran == ["a"]  # the second cycle saw it made manual
