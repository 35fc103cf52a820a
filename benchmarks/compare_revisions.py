"""Benchmark: the SDK at two git revisions, SQLite destination, whole processes, paired runs.

Proves (or disproves) "not slower": the SDK at *baseline* (by default the commit
before the store was split into a destination and a local ledger) and at
*candidate* (default: the working tree) sync the same Slack pages from one page
server (``page_server.py``) into a new SQLite file, then re-sync with nothing
changed. Pairs alternate which revision goes first; a pair's ratio is candidate
seconds / baseline seconds, and the median with min and max is reported. Both
sides run ``sdk_sync.py`` with the same interpreter and libraries; only
``oomnitza_connect`` and the Slack plugin come from the revision (``git
archive`` into a temporary directory, first on ``PYTHONPATH``; the plugin is
registered explicitly, from that revision's own entry point).

    python benchmarks/compare_revisions.py                          # 100k users, 3 pairs
    python benchmarks/compare_revisions.py --users 10000 --pairs 5 --baseline 5d97a6a

Figures also go to ``benchmarks/results/compare-<time>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_sync  # noqa: E402
from bench_sync import TOKEN, PageServer, run_process  # noqa: E402

BEFORE_THE_SPLIT = "5d97a6a"
"""The last commit before 'Split the store into a destination protocol and a local ledger'."""
WORKING_TREE = "WORKTREE"


def _entry_point(root: Path) -> str:
    """The Slack plugin's entry point as that revision declares it."""
    text = (root / "plugins" / "slack" / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^slack\s*=\s*\"([^\"]+)\"", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{root}: the Slack plugin declares no 'slack' entry point")
    return match.group(1)


def _checkout(revision: str, into: Path) -> Path:
    """The revision's ``src`` and ``plugins`` (the working tree as it is, uncommitted too)."""
    if revision == WORKING_TREE:
        return ROOT
    target = into / revision
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src", "plugins/slack"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _commit(revision: str) -> str:
    if revision == WORKING_TREE:
        revision = "HEAD"
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _side(root: Path, base_url: str, db: Path) -> list[str]:
    return [
        sys.executable, __file__, "--child", "--plugin", _entry_point(root),
        "--base-url", base_url, "--db", str(db),
    ]  # fmt: skip


def _environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOMNITZA_CONNECT_")}
    # Bytecode is written, as in a user's install: a revision compiles once, in the warm-up.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = [str(root / "src"), str(root / "plugins" / "slack" / "src")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # The installed entry points name the working tree's plugin object; each side
    # registers its own revision's plugin instead.
    env["OOMNITZA_CONNECT_LOAD_ENTRY_POINTS"] = "0"
    return env


def _run(root: Path, base_url: str, db: Path) -> dict[str, Any]:
    # bench_sync's run_process takes its environment from bench_sync._environment.
    usual = bench_sync._environment
    bench_sync._environment = lambda: _environment(root)
    try:
        return run_process(_side(root, base_url, db))
    finally:
        bench_sync._environment = usual


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare(baseline: str, candidate: str, users: int, pairs: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        roots = {
            "baseline": _checkout(baseline, Path(directory)),
            "candidate": _checkout(candidate, Path(directory)),
        }
        with PageServer(users) as server:
            for side, root in roots.items():
                # One unmeasured run each: bytecode compiled, the page server's pages warm.
                _run(root, server.base_url, Path(directory) / f"warm-up-{side}.db")
            for pair in range(pairs):
                order = ("baseline", "candidate") if pair % 2 == 0 else ("candidate", "baseline")
                measured: dict[str, Any] = {"order": order}
                for phase in ("full", "again"):
                    for side in order:
                        db = Path(directory) / f"pair{pair}-{side}.db"
                        result = _run(roots[side], server.base_url, db)
                        if result.get("status") != "succeeded":
                            raise RuntimeError(f"the {side} sync did not succeed: {result}")
                        measured[f"{side}_{phase}"] = result
                        print(
                            f"  {users:>7} pair {pair + 1}: {side:9} {phase:5} "
                            f"{result['seconds']:7.2f} s {result['peak_mb']:6.1f} MB",
                            file=sys.stderr,
                        )
                runs.append(measured)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "baseline": baseline,
        "candidate": candidate,
        "baseline_commit": _commit(baseline),
        "candidate_commit": _commit(candidate) + ("+changes" if candidate == WORKING_TREE else ""),
        "users": users,
        "pairs": pairs,
        "load_average": os.getloadavg()[0],
        "full_ratio": _spread(
            [r["candidate_full"]["seconds"] / r["baseline_full"]["seconds"] for r in runs]
        ),
        "again_ratio": _spread(
            [r["candidate_again"]["seconds"] / r["baseline_again"]["seconds"] for r in runs]
        ),
        "full_cpu_ratio": _spread(
            [r["candidate_full"]["cpu_seconds"] / r["baseline_full"]["cpu_seconds"] for r in runs]
        ),
        "again_cpu_ratio": _spread(
            [r["candidate_again"]["cpu_seconds"] / r["baseline_again"]["cpu_seconds"] for r in runs]
        ),
        "peak_mb": {
            side: max(
                max(r[f"{side}_full"]["peak_mb"], r[f"{side}_again"]["peak_mb"]) for r in runs
            )
            for side in ("baseline", "candidate")
        },
        "runs": runs,
    }


def _child(plugin: str, base_url: str, db: str) -> int:
    """One sync by the revision on ``PYTHONPATH``, its own Slack plugin registered."""
    module_name, _, attribute = plugin.partition(":")
    found: Any = importlib.import_module(module_name)
    if attribute:
        found = getattr(found, attribute)
    import sdk_sync

    from oomnitza_connect.plugins import register_plugin

    sys.argv = ["sdk_sync.py", "--base-url", base_url, "--token", TOKEN, "--db", db]
    with register_plugin(found):
        return sdk_sync.main()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BEFORE_THE_SPLIT, help="a git revision")
    parser.add_argument(
        "--candidate", default=WORKING_TREE, help=f"a git revision (default: {WORKING_TREE})"
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--output", type=Path, help="the JSON report (default: results/)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plugin", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.plugin, args.base_url, args.db)
    report = compare(args.baseline, args.candidate, args.users, args.pairs)
    output = args.output
    if output is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        output = HERE / "results" / f"compare-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")

    def ratio(key: str) -> str:
        spread = report[key]
        return f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"

    print(
        f"{args.users} users, {args.pairs} pairs, {report['candidate_commit']} / "
        f"{report['baseline_commit']}, "
        f"load average {report['load_average']:.1f}: full sync {ratio('full_ratio')} wall, "
        f"{ratio('full_cpu_ratio')} CPU; unchanged re-sync {ratio('again_ratio')} wall, "
        f"{ratio('again_cpu_ratio')} CPU; peak MB {report['peak_mb']['baseline']:.0f} / "
        f"{report['peak_mb']['candidate']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
