"""benchmarks/compare_revisions.py runs both revisions end to end (tiny N; nothing timed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

pytest.importorskip("oomnitza_connect_slack")
pytestmark = pytest.mark.slow


def test_both_revisions_sync_the_same_pages_in_alternating_pairs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shallow = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", "5d97a6a^{commit}"], capture_output=True
    )
    if shallow.returncode != 0:
        pytest.skip("the baseline commit is not in this checkout's history")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import compare_revisions
    from oomnitza_connect_slack.emulator import SlackEmulator

    users = 120
    kinds = [SlackEmulator(users=users).kind_of(i) for i in range(users)]
    people = sum(1 for kind in kinds if kind not in ("bot", "slackbot"))
    output = tmp_path / "compare.json"
    arguments = ["--users", str(users), "--pairs", "2", "--output", str(output)]
    assert compare_revisions.main(arguments) == 0

    report = json.loads(output.read_text())
    assert (report["baseline"], report["candidate"]) == ("5d97a6a", "WORKTREE")
    assert [run["order"] for run in report["runs"]] == [
        ["baseline", "candidate"],
        ["candidate", "baseline"],
    ]
    for run in report["runs"]:
        for side in ("baseline", "candidate"):
            assert run[f"{side}_full"]["created"] == people
            assert run[f"{side}_again"]["unchanged"] == people
            assert run[f"{side}_again"]["rows_written"] == 0
    for ratio in ("full_ratio", "again_ratio", "full_cpu_ratio", "again_cpu_ratio"):
        spread = report[ratio]
        assert spread["min"] <= spread["median"] <= spread["max"]
