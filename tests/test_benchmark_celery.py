"""The Celery fleet benchmark (benchmarks/bench_celery.py) in its tiny mode, and its checks.

The tiny fleet is the real thing at a handful of integrations: the four
vendors' emulators and the Oomnitza emulator in their own processes, one
``oomnitza-connect worker`` process, the session's Redis and PostgreSQL.
Nothing here is timed; it asserts what the fleet recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oomnitza_connect.models import SyncCounts, SyncSession, SyncStatus

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

for _vendor in ("slack", "intercom", "webex", "talkdesk"):
    pytest.importorskip(f"oomnitza_connect_{_vendor}")


@pytest.fixture
def bench_celery(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_celery

    return bench_celery


@pytest.mark.slow
@pytest.mark.serial  # a fleet of real workers: never beside another fleet
def test_the_tiny_fleet_records_every_run_within_the_budgets(
    bench_celery: Any, redis_server: Any, postgres_server: Any, tmp_path: Path
) -> None:
    plan = bench_celery.Plan(workers=1, integrations=8, runs=2)
    row = bench_celery.run_fleet(
        plan,
        users=30,
        per_account=2,
        redis_url=redis_server.url_for(12),
        postgres=postgres_server,
        work=tmp_path,
        timeout=120,
    )
    assert row["problems"] == []
    assert row["accounts"] == {"slack": 1, "intercom": 1, "webex": 1, "talkdesk": 1}
    # Every queued run is a succeeded session in the PostgreSQL ledger.
    assert row["runs_recorded"] == 16
    assert sum(row["task_statuses"].values()) == 16
    assert set(row["task_statuses"]) <= {"succeeded", "skipped"}
    assert row["runs_skipped_while_another_ran"] == row["task_statuses"].get("skipped", 0)
    assert row["http_429"] == 0
    assert set(row["http_429_by_emulator"].values()) == {0}
    assert row["overlapping_runs"] == 0
    assert row["failed_records"] == 0
    # Oomnitza holds each account's people once, whatever the number of runs
    # (one account per vendor here: nobody is in two of them).
    assert row["people_listed"] > 4 * 10
    assert row["oomnitza_users"] == row["people_created"] == row["people_listed"]
    assert row["runs_per_minute"] > 0
    (peak,) = row["peak_rss_mb_per_worker"]
    assert peak["main"] > 10
    assert peak["pool"] > 10


def _session(number: int, start: int, end: int, created: int, **kwargs: Any) -> SyncSession:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return SyncSession(
        id=f"s{number}",
        integration="tenant-0000-slack",
        vendor="slack",
        started_at=base + timedelta(seconds=start),
        ended_at=base + timedelta(seconds=end),
        status=kwargs.get("status", SyncStatus.SUCCEEDED),
        counts=SyncCounts(created=created, unchanged=kwargs.get("unchanged", 0)),
    )


def test_the_checks_catch_an_overlap_a_lost_run_and_a_lost_person(bench_celery: Any) -> None:
    account = bench_celery.Account("slack", 0, "http://127.0.0.1:1", {})
    plan = bench_celery.Plan(workers=1, integrations=1, runs=2)
    placed = {"tenant-0000-slack": account}
    oomnitza = {"users": 10, "batches": 2, "unfinalized_portions": 0}

    good = [_session(1, 0, 5, 10), _session(2, 6, 8, 0, unchanged=10)]
    counted, problems = bench_celery.check(plan, placed, {"tenant-0000-slack": good}, oomnitza)
    assert problems == []
    assert counted["runs_recorded"] == 2
    assert counted["people_listed"] == counted["people_created"] == 10

    overlapping = [_session(1, 0, 5, 10), _session(2, 4, 8, 0, unchanged=10)]
    counted, problems = bench_celery.check(
        plan, placed, {"tenant-0000-slack": overlapping}, oomnitza
    )
    assert counted["overlapping_runs"] == 1
    assert any("started before" in p for p in problems)

    lost = [_session(1, 0, 5, 10)]
    _, problems = bench_celery.check(plan, placed, {"tenant-0000-slack": lost}, oomnitza)
    assert problems == ["tenant-0000-slack: 1 sessions recorded, 2 runs queued"]

    skipped = _session(2, 1, 1, 0, status=SyncStatus.SKIPPED)
    never_again = [_session(1, 0, 5, 10), skipped]
    _, problems = bench_celery.check(plan, placed, {"tenant-0000-slack": never_again}, oomnitza)
    assert problems == ["tenant-0000-slack: skipped run s2 never run again"]

    run_again = [*never_again, _session(3, 6, 8, 0, unchanged=10)]
    _, problems = bench_celery.check(plan, placed, {"tenant-0000-slack": run_again}, oomnitza)
    assert problems == []

    twice_again = [*run_again, _session(4, 9, 10, 0, unchanged=10)]
    counted, problems = bench_celery.check(
        plan, placed, {"tenant-0000-slack": twice_again}, oomnitza
    )
    assert counted["runs_beyond_queued"] == 1
    assert problems == ["tenant-0000-slack: synced 3 times, 2 runs queued"]

    _, problems = bench_celery.check(
        plan, placed, {"tenant-0000-slack": good}, {**oomnitza, "users": 9}
    )
    assert problems == ["Oomnitza holds 9 users, the runs created 10"]

    counted_twice = [_session(1, 0, 5, 10), _session(2, 6, 8, 10)]
    _, problems = bench_celery.check(plan, placed, {"tenant-0000-slack": counted_twice}, oomnitza)
    assert problems == ["Oomnitza holds 10 users, the runs created 20"]


def test_write_readme_replaces_only_the_fleet_section(
    bench_celery: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench_celery.START_MARK}\nold\n{bench_celery.END_MARK}\nend\n")
    monkeypatch.setattr(bench_celery, "README", readme)
    bench_celery.write_readme("new")
    assert readme.read_text() == (
        f"intro\n{bench_celery.START_MARK}\nnew\n{bench_celery.END_MARK}\nend\n"
    )
    real = (BENCHMARKS / "README.md").read_text()
    assert real.count(bench_celery.START_MARK) == real.count(bench_celery.END_MARK) == 1
