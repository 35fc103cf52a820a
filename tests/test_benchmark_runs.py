"""The benchmark in benchmarks/ still runs end to end (tiny N; nothing here is timed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytest.importorskip("oomnitza_connect_slack")
pytestmark = pytest.mark.slow


@pytest.fixture
def bench_sync(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_sync

    return bench_sync


def test_the_benchmark_runs_both_sides_and_reports_them(
    bench_sync, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from oomnitza_connect_slack.emulator import SlackEmulator

    users = 120
    kinds = [SlackEmulator(users=users).kind_of(i) for i in range(users)]
    people = sum(1 for kind in kinds if kind not in ("bot", "slackbot"))
    output = tmp_path / "report.json"

    vendors = ["slack"]
    if importlib.util.find_spec("oomnitza_connect_webex") is not None:
        vendors.append("webex")
    arguments = ["--users", str(users), "--pairs", "2", "--startup-pairs", "1"]
    assert bench_sync.main([*arguments, "--output", str(output), "--vendors", *vendors]) == 0

    report = json.loads(output.read_text())
    assert [size["vendor"] for size in report["sync"]] == vendors
    size = report["sync"][0]
    assert size["users"] == users
    assert len(size["runs"]) == 2
    # Pairs alternate which side goes first.
    assert [run["order"] for run in size["runs"]] == [["script", "sdk"], ["sdk", "script"]]
    for run in size["runs"]:
        assert run["script_full"]["records"] == users
        assert run["script_again"]["rows_written"] == users  # the script rewrites every row
        assert run["sdk_full"]["created"] == people
        assert run["sdk_full"]["skipped"] == users - people
        assert run["sdk_again"]["unchanged"] == people
        assert run["sdk_again"]["rows_written"] == 0
        for side in ("script_full", "sdk_full", "script_again", "sdk_again"):
            assert run[side]["seconds"] > 0
            assert run[side]["peak_mb"] > 10
    for ratio in ("full_ratio", "again_ratio", "full_cpu_ratio", "again_cpu_ratio"):
        spread = size[ratio]
        assert spread["min"] <= spread["median"] <= spread["max"]
    for other in report["sync"][1:]:  # another vendor: the same shape of run
        for run in other["runs"]:
            assert run["script_full"]["records"] == users
            assert run["sdk_full"]["created"] + run["sdk_full"]["skipped"] == users
            assert run["sdk_full"]["created"] > 0
            assert run["sdk_again"]["unchanged"] == run["sdk_full"]["created"]
            assert run["sdk_again"]["rows_written"] == 0
    assert set(report["startup"]) == {"import oomnitza_connect", "oomnitza-connect --help"}
    assert "slack" in report["plugins"]
    table = capsys.readouterr().out
    assert f"| slack | {users} | 2 | **{size['full_ratio']['median']:.2f}x**" in table
    assert "`oomnitza-connect --help`" in table


def test_write_readme_replaces_only_the_results_section(
    bench_sync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Benchmarks\n\nintro\n\n{bench_sync.START_MARK}\nold table\n"
        f"{bench_sync.END_MARK}\n\nend\n"
    )
    monkeypatch.setattr(bench_sync, "README", readme)
    bench_sync.write_readme("| new | table |")
    assert readme.read_text() == (
        f"# Benchmarks\n\nintro\n\n{bench_sync.START_MARK}\n| new | table |\n"
        f"{bench_sync.END_MARK}\n\nend\n"
    )


def test_the_real_readme_has_a_results_section(bench_sync) -> None:
    text = (BENCHMARKS / "README.md").read_text()
    assert text.count(bench_sync.START_MARK) == 1
    assert text.count(bench_sync.END_MARK) == 1


def test_the_store_sql_replay_writes_what_the_sync_wrote(bench_sync, tmp_path: Path) -> None:
    import re
    import sqlite3
    import subprocess
    import sys

    db = tmp_path / "people.db"
    with bench_sync.PageServer(120) as server:
        report = subprocess.run(
            [
                sys.executable,
                str(BENCHMARKS / "store_sql.py"),
                *("--base-url", server.base_url, "--token", bench_sync.TOKEN, "--db", str(db)),
            ],
            env=bench_sync._environment(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    assert "the same statements replayed alone:" in report
    assert re.search(r"^sync: [\d.]+ s in this process; \d+ statements$", report, re.M)

    def people(path: Path) -> list[tuple[str, str]]:
        with sqlite3.connect(path) as connection:
            return connection.execute(
                "SELECT sync_value, json_extract(fields, '$.username') FROM people ORDER BY id"
            ).fetchall()

    written = people(db)
    assert len(written) > 100
    assert people(tmp_path / "people.db.replay") == written
