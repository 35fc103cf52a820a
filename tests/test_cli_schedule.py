"""`oomnitza-connect schedule show|run` against the acme test vendor over real HTTP."""

from __future__ import annotations

import email
import json
import socket

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sync_support import acme_for_the_cli, write_integration

from oomnitza_connect.cli import main
from oomnitza_connect.store.sqlite import SQLiteStore


@pytest.fixture
def acme(tmp_path, monkeypatch):
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=7, per_page=5) as emulator:
        yield emulator


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_run_once_runs_what_is_due_and_then_nothing(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    db = tmp_path / "store.db"

    shown = invoke("schedule", "show", path, "--db", db)
    assert shown.exit_code == 0, shown.output
    assert "acme-main" in shown.output
    assert "never" in shown.output
    assert "now" in shown.output

    first = invoke("schedule", "run", "--once", path, "--db", db)
    assert first.exit_code == 0, first.output
    assert "acme-main: succeeded (created 7" in first.output

    # A daily schedule that just ran is not due again.
    second = invoke("schedule", "run", "--once", path, "--db", db)
    assert second.exit_code == 0
    assert "nothing is due" in second.output
    with SQLiteStore(db) as store:
        assert len(store.list_sessions(integration="acme-main")) == 1
        assert store.count_people() == 7


def test_manual_integrations_never_run_by_schedule(tmp_path, acme):
    path = write_integration(tmp_path, 'schedule = "manual"\n', base_url=acme.base_url)
    # `schedule` must sit before the [settings] table to be a top-level key.
    text = path.read_text().replace('schedule = "manual"\n', "")
    path.write_text(text.replace("contacts = ", 'schedule = "manual"\ncontacts = ', 1))
    result = invoke("schedule", "run", "--once", path, "--db", tmp_path / "s.db")
    assert result.exit_code == 0
    assert "nothing is due" in result.output


def test_launched_integrations_are_used_when_no_file_is_given(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    db = tmp_path / "store.db"
    assert invoke("schedule", "run", "--once", "--db", db).exit_code == 2  # nothing launched
    launched = invoke("integrations", "launch", path, "--no-run", "--db", db)
    assert launched.exit_code == 0, launched.output
    result = invoke("schedule", "run", "--once", "--db", db)
    assert result.exit_code == 0, result.output
    assert "acme-main: succeeded" in result.output


def test_bad_schedule_is_a_configuration_error(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    path.write_text(path.read_text().replace("contacts = ", 'schedule = "often"\ncontacts = ', 1))
    result = CliRunner().invoke(main, ["schedule", "show", str(path), "--db", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "acme.toml" in result.output
    assert "'schedule'" in result.output


def test_a_failed_run_emails_the_contacts_and_exits_1(tmp_path, acme, monkeypatch):
    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_PORT", str(port))
        wrong = "acme-wrong-token-0123456789"
        monkeypatch.setenv(
            "OOMNITZA_CONNECT_CREDENTIAL_ACME",
            json.dumps({"vendor": "acme", "kind": "api_key", "token": wrong}),
        )
        path = write_integration(tmp_path, base_url=acme.base_url)
        result = invoke("schedule", "run", "--once", path, "--db", tmp_path / "store.db")
    finally:
        controller.stop()

    assert result.exit_code == 1
    assert "acme-main: failed" in result.output
    assert len(received) == 1
    recipients, message = received[0]
    assert recipients == ["it@example.com"]
    assert "Sync of 'acme-main' failed" in message["Subject"]
    assert wrong not in message.get_payload()
    # The email's command finds the session in the store the scheduler used.
    text = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert f"--db {tmp_path / 'store.db'}" in text


@pytest.fixture
def inbox(monkeypatch):
    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OOMNITZA_CONNECT_SMTP_PORT", str(port))
    yield received
    controller.stop()


def two_integrations(tmp_path, acme, schedule="daily"):
    """acme-main in good/acme.toml and acme-other in other/acme.toml."""
    files = []
    for folder, name in (("good", "acme-main"), ("other", "acme-other")):
        (tmp_path / folder).mkdir()
        path = write_integration(tmp_path / folder, base_url=acme.base_url)
        text = path.read_text().replace('name = "acme-main"', f'name = "{name}"')
        path.write_text(text.replace("contacts = ", f'schedule = "{schedule}"\ncontacts = ', 1))
        files.append(path)
    return files


BREAKS = {
    "deleted": (lambda path: path.unlink(), "file not found"),
    "a bad key": (
        lambda path: path.write_text(path.read_text().replace("sync_key", "sync_kee")),
        "sync_kee",
    ),
    "a draft": (
        lambda path: path.write_text(path.read_text().replace('default_role = "Employee"\n', "")),
        "draft",
    ),
    "a huge interval": (
        lambda path: path.write_text(
            path.read_text().replace('schedule = "daily"', 'schedule = "every 9999999999 hours"')
        ),
        "N from 1 to 8760",
    ),
}


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_launched_file_gone_bad_is_reported_alone_and_the_others_run(tmp_path, acme, inbox, how):
    good, other = two_integrations(tmp_path, acme)
    db = tmp_path / "store.db"
    for path in (good, other):
        launched = invoke("integrations", "launch", path, "--no-run", "--db", db)
        assert launched.exit_code == 0, launched.output
    original = other.read_text()
    breaks, says = BREAKS[how]
    breaks(other)

    first = CliRunner().invoke(main, ["schedule", "run", "--once", "--db", str(db)])
    # Non-zero, but only after the good one ran.
    assert first.exit_code == 1, first.output
    assert "acme-main: succeeded (created 7" in first.output
    assert "acme-other: not run:" in first.output
    assert says in first.output
    assert "1 run(s) did not succeed: acme-other" in first.output
    # Its contacts (as launched) hear it did not start, once.
    assert [(to, m["Subject"]) for to, m in inbox] == [
        (["it@example.com"], "[oomnitza-connect] The run of 'acme-other' did not start")
    ]
    assert says in inbox[0][1].get_payload(decode=True).decode()

    shown = CliRunner().invoke(main, ["schedule", "show", "--db", str(db), "--json"])
    assert shown.exit_code == 0, shown.output
    problems = {row["integration"]: row["problem"] for row in json.loads(shown.stdout)}
    assert problems["acme-main"] is None
    assert says in problems["acme-other"]

    again = CliRunner().invoke(main, ["schedule", "run", "--once", "--db", str(db)])
    assert again.exit_code == 1
    assert "acme-main" not in again.output  # daily, and it just ran
    assert "acme-other: not run:" in again.output
    assert len(inbox) == 1  # the same problem is not told twice

    other.write_text(original)
    fixed = CliRunner().invoke(main, ["schedule", "run", "--once", "--db", str(db)])
    assert fixed.exit_code == 0, fixed.output
    assert "acme-other: succeeded (created 0" in fixed.output
    with SQLiteStore(db) as store:
        assert [s.status.value for s in store.list_sessions(integration="acme-other")] == [
            "succeeded"
        ]


def test_a_bad_file_named_on_the_command_line_stops_before_anything_runs(tmp_path, acme):
    good, other = two_integrations(tmp_path, acme)
    BREAKS["a bad key"][0](other)
    result = CliRunner().invoke(
        main, ["schedule", "run", "--once", str(good), str(other), "--db", str(tmp_path / "s.db")]
    )
    assert result.exit_code == 2
    assert str(other) in result.output
    assert "sync_kee" in result.output
    assert "acme-main: succeeded" not in result.output  # nothing ran


def test_the_running_scheduler_reads_edited_files_again(tmp_path, acme, monkeypatch):
    """A long-running `schedule run`: the loop's clock and sleep are driven by the test."""
    from datetime import UTC, datetime, timedelta

    from oomnitza_connect.schedule import scheduler

    good, other = two_integrations(tmp_path, acme, schedule="every 1 minutes")
    start = datetime.now(UTC)
    clock = {"now": start}
    edits = iter(
        [
            BREAKS["a draft"][0],  # after cycle 1
            BREAKS["deleted"][0],  # after cycle 2
        ]
    )

    def sleep(seconds):
        next(edits)(other)
        clock["now"] += timedelta(minutes=2)  # every integration is due again

    real_run_due = scheduler.run_due

    def run_due(*args, **kwargs):
        kwargs.update(max_cycles=3, sleep=sleep, now=lambda: clock["now"])
        return real_run_due(*args, **kwargs)

    monkeypatch.setattr(scheduler, "run_due", run_due)
    db = tmp_path / "store.db"
    result = CliRunner().invoke(main, ["schedule", "run", str(good), str(other), "--db", str(db)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("acme-other")]
    assert lines[0].startswith("acme-other: succeeded")
    assert lines[1].startswith("acme-other: not run:")
    assert "draft" in lines[1]
    assert lines[2] == f"acme-other: not run: {other}: file not found"
    assert "2 run(s) did not succeed: acme-other, acme-other" in result.output
    with SQLiteStore(db) as store:
        assert len(store.list_sessions(integration="acme-main")) == 3
        assert len(store.list_sessions(integration="acme-other")) == 1


def test_validate_names_the_file_and_key_of_a_huge_interval(tmp_path, acme):
    path = write_integration(tmp_path, base_url=acme.base_url)
    path.write_text(
        path.read_text().replace(
            "contacts = ", 'schedule = "every 99999999999999999999 hours"\ncontacts = ', 1
        )
    )
    result = CliRunner().invoke(main, ["integrations", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "OverflowError" not in result.output
    assert "acme.toml" in result.output
    assert "schedule" in result.output
    assert "N from 1 to 8760" in result.output
