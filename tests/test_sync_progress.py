"""A run's progress, driven through real syncs against emulators: the phases in order,
the vendor's stated total, and why the run waits (its rate budget, a Retry-After)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from oomnitza_connect_talkdesk import vendor as talkdesk_vendor
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.cli.progress import SyncProgressDisplay, describe
from oomnitza_connect.models import IntegrationSettings, RateBudget, SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import SyncPhase, SyncProgress, run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions

USERS = 23


@pytest.fixture
def talkdesk():
    with (
        register_plugin(talkdesk_vendor),
        TalkdeskEmulator(
            users=USERS, seed=7, subdomain="acme", max_page_size=5, enforce_rate_limits=False
        ) as emulator,
    ):
        yield emulator


def _talkdesk_sync(emulator, tmp_path, options, seen):
    settings = IntegrationSettings(
        name="talkdesk-progress", vendor="talkdesk", credential="talkdesk-emulator",
        sync_key="email", default_role="Agent", settings=emulator.test_settings(),
    )  # fmt: skip
    with SQLiteStore(tmp_path / "progress.db") as store:
        return run_sync(
            settings,
            credential=emulator.test_credential(),
            store=store,
            options=options,
            batch_size=5,
            progress=seen.append,
        )


def _phases(seen: list[SyncProgress]) -> list[SyncPhase]:
    order: list[SyncPhase] = []
    for progress in seen:
        if not order or order[-1] is not progress.phase:
            order.append(progress.phase)
    return order


def test_the_vendor_total_the_phases_and_a_retry_after(talkdesk, tmp_path):
    talkdesk.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", after=2)
    options = ClientOptions(
        base_url=talkdesk.base_url, pace_requests=False, max_single_wait=5, max_total_wait=10
    )
    seen: list[SyncProgress] = []
    session = _talkdesk_sync(talkdesk, tmp_path, options, seen)
    assert session.status is SyncStatus.SUCCEEDED, session.message
    # Talkdesk has no last logins: listing, then the last batches, then finalizing.
    assert _phases(seen) == [SyncPhase.LISTING, SyncPhase.WRITING, SyncPhase.FINALIZING]
    batches = [p for p in seen if p.done]
    assert {p.total for p in batches} == {USERS}  # Talkdesk's `total`, from the first page
    assert seen[-1].done == USERS
    waits = [p.waiting for p in seen if p.waiting is not None]
    assert len(waits) == 1
    assert waits[0].kind == "retry-after"
    assert waits[0].seconds == pytest.approx(1, abs=0.01)
    assert waits[0].reason.startswith("talkdesk asked to wait 1 s (rate limited (HTTP 429))")
    assert seen[0].phase is SyncPhase.LISTING
    assert seen[0].total is None
    line = describe(batches[-1], rate=46.0)
    assert f"of {USERS} records (" in line


def test_paced_to_the_rate_budget_says_so(talkdesk, tmp_path):
    # Ten requests a second, no burst: every page after the first waits its turn.
    options = ClientOptions(
        base_url=talkdesk.base_url, rate_budgets=(RateBudget("users.list", 600, burst=1),)
    )
    seen: list[SyncProgress] = []
    session = _talkdesk_sync(talkdesk, tmp_path, options, seen)
    assert session.status is SyncStatus.SUCCEEDED, session.message
    waits = [p for p in seen if p.waiting is not None]
    assert waits, "pacing paused the run and the progress did not say so"
    assert {p.waiting.kind for p in waits} == {"pacing"}
    assert {p.waiting.reason for p in waits} == {
        "paced to talkdesk's rate budget for users.list (600/min)"
    }
    assert all(0 < p.waiting.seconds <= 0.11 for p in waits)
    assert {p.phase for p in waits} == {SyncPhase.LISTING}


def test_last_logins_are_a_phase_with_their_own_count(tmp_path):
    with register_plugin(AcmePlugin(per_page=3), name="acme-test"), AcmeEmulator(users=9) as emu:
        from datetime import UTC, datetime

        emu.logins = {f"A{index:06d}": datetime(2026, 4, 2, tzinfo=UTC) for index in range(1, 8)}
        settings = load_integration(write_integration(tmp_path, base_url=emu.base_url))
        seen: list[SyncProgress] = []
        with SQLiteStore(tmp_path / "logins.db") as store:
            session = run_sync(
                settings, credential=credential(), store=store, batch_size=4,
                progress=seen.append,
            )  # fmt: skip
    assert session.status is SyncStatus.SUCCEEDED, session.message
    assert _phases(seen) == [
        SyncPhase.LISTING, SyncPhase.WRITING, SyncPhase.LAST_LOGINS, SyncPhase.FINALIZING,
    ]  # fmt: skip
    logins = [p for p in seen if p.phase is SyncPhase.LAST_LOGINS]
    assert (logins[-1].done, logins[-1].total) == (7, 7)
    assert describe(logins[-1]).startswith("last logins: 7 of 7 last logins (100%)")
    assert all(p.processed == 9 for p in logins)


def test_off_a_terminal_a_wait_is_one_plain_line(talkdesk, tmp_path):
    options = ClientOptions(
        base_url=talkdesk.base_url, rate_budgets=(RateBudget("users.list", 600, burst=1),)
    )
    runner = CliRunner()
    with runner.isolation() as streams:
        err = streams[1]
        with SyncProgressDisplay(terminal=False) as display:
            seen: list[SyncProgress] = []
            _talkdesk_sync(talkdesk, tmp_path, options, seen)
            for progress in seen:
                display.update(progress)
        lines = err.getvalue().decode().splitlines()
    waiting = [line for line in lines if "waiting" in line]
    assert len(waiting) == 1  # the same reason is not repeated line after line
    assert "paced to talkdesk's rate budget for users.list (600/min)" in waiting[0]
    assert lines[0].startswith("sync talkdesk-progress: listing: 0 records")
    assert any(f"of {USERS} records" in line for line in lines)
    assert lines[-1].startswith(f"sync talkdesk-progress: finalizing: {USERS} of {USERS} records")


def test_on_a_terminal_the_bar_shows_percent_and_eta(talkdesk, tmp_path, monkeypatch):
    from rich.console import Console

    seen: list[SyncProgress] = []
    _talkdesk_sync(talkdesk, tmp_path, ClientOptions(base_url=talkdesk.base_url), seen)
    halfway = next(p for p in seen if p.total and p.done and p.done < p.total)
    line = describe(halfway, rate=10.0)
    assert f"{halfway.done} of {USERS} records ({100 * halfway.done // USERS}%)" in line
    remaining = (USERS - halfway.done) / 10.0
    assert f"ETA 0:{round(remaining):02d}" in line
    # Without a total there is a rate and no ETA (nothing to count down to).
    unknown = SyncProgress(halfway.session_id, "x", 40, halfway.counts, done=40)
    assert "ETA" not in describe(unknown, rate=10.0)
    assert "40 records, 10/s" in describe(unknown, rate=10.0)
    # The live bar draws on standard error when it is a terminal.
    console = Console(file=sys.stderr, force_terminal=True, width=200)
    monkeypatch.setattr("rich.console.Console", lambda **_: console)
    with SyncProgressDisplay(terminal=True) as display:
        display.update(halfway)
        task = display.bar.tasks[0]
        assert (task.total, task.completed) == (USERS, halfway.done)
        assert task.fields["integration"] == "talkdesk-progress"
