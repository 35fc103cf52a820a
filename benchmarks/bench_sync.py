"""Benchmark: the SDK against a hand-written script, whole processes, paired runs.

For each number of users N it starts the page server (``page_server.py``, its
own process, every page encoded before the clock starts) and runs *pairs*
pairs of whole processes, alternating which side goes first:

* ``script`` (``yardstick.py``): requests + json + one sqlite3 upsert per page,
  what a user would write instead of adopting the SDK;
* ``sdk`` (``sdk_sync.py``): ``run_sync`` with the vendor's standard mapping.

It does so for Slack and for Webex (``yardstick_webex.py``: the same script
for ``GET /v1/people`` and its ``Link`` header) when their plugins are installed.

Each side syncs into a new file, then syncs again with nothing changed (the
re-sync). A pair's ratio is SDK seconds / script seconds; the table gives the
median of the pair ratios with their min and max, and each side's peak RSS
(the process's own, from ``wait4``). Start-up is measured the same way:
``import oomnitza_connect`` and ``oomnitza-connect --help`` against
``python -c 'import requests'``.

    python benchmarks/bench_sync.py                          # 10k, 100k and 300k users
    python benchmarks/bench_sync.py --users 10000 --pairs 5
    python benchmarks/bench_sync.py --write-readme           # regenerate README.md's table

Figures also go to ``benchmarks/results/bench-<time>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
BIN = Path(sys.executable).parent
TOKEN = "xoxp-fake-benchmark-token"  # a test value the local emulator accepts
DEFAULT_USERS = (10_000, 100_000, 300_000)
START_MARK = "<!-- results:start -->"
END_MARK = "<!-- results:end -->"


_NOT_A_USERS_SHELL = frozenset({"PYTHONDONTWRITEBYTECODE"})
"""Set in development shells; with it every process compiles every module it
imports from source, which a user's installed packages (compiled on install)
never do, and which costs the SDK (more modules) more than the script."""


def _environment() -> dict[str, str]:
    """The caller's environment without the SDK's own switches (a test run turns
    entry points off; a user's shell has none of them) nor development switches."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OOMNITZA_CONNECT_") and k not in _NOT_A_USERS_SHELL
    }


def run_process(command: list[str]) -> dict[str, Any]:
    """Run *command* to its end; return its wall seconds, peak RSS and last JSON line."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, env=_environment()
        )
        assert process.stdout is not None
        output = process.stdout.read()
        # wait4, not wait(): it returns this child's own resource usage.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(
                f"{' '.join(command)} exited with {process.returncode}:\n"
                + errors.read().decode(errors="replace")[-4000:]
            )
    lines = output.decode().strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    result["peak_mb"] = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    result["seconds"] = seconds
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return result


API_ROOTS = {"slack": "/api", "webex": "/v1"}
"""Where each vendor's API lives on the page server."""


class PageServer:
    def __init__(self, users: int, vendor: str = "slack") -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "page_server.py"),
                "--users",
                str(users),
                "--vendor",
                vendor,
                "--cache",
                str(RESULTS / "cache"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        if not port:
            raise RuntimeError("the page server did not start")
        self.base_url = f"http://127.0.0.1:{port}{API_ROOTS[vendor]}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _side(name: str, vendor: str, base_url: str, db: Path) -> list[str]:
    common = ["--base-url", base_url, "--token", TOKEN, "--db", str(db)]
    if name == "sdk":
        return [sys.executable, str(HERE / "sdk_sync.py"), "--vendor", vendor, *common]
    script = "yardstick.py" if vendor == "slack" else f"yardstick_{vendor}.py"
    return [sys.executable, str(HERE / script), *common]


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def bench_sync(
    users: int, pairs: int, vendor: str = "slack", *, warm_up: bool = True
) -> dict[str, Any]:
    """Run *pairs* alternating pairs of full syncs and re-syncs at *users* users.

    With *warm_up*, each side first runs once unmeasured: it writes the
    bytecode of every module it imports, as installing a package does, so no
    measured process compiles one.
    """
    runs: list[dict[str, Any]] = []
    with PageServer(users, vendor) as server:
        if warm_up:
            with tempfile.TemporaryDirectory() as directory:
                for name in ("script", "sdk"):
                    run_process(_side(name, vendor, server.base_url, Path(directory) / name))
        for pair in range(pairs):
            order = ("script", "sdk") if pair % 2 == 0 else ("sdk", "script")
            with tempfile.TemporaryDirectory() as directory:
                dbs = {name: Path(directory) / f"{name}.db" for name in order}
                measured: dict[str, Any] = {"order": order}
                for phase in ("full", "again"):
                    for name in order:
                        result = run_process(_side(name, vendor, server.base_url, dbs[name]))
                        measured[f"{name}_{phase}"] = result
                        print(
                            f"  {vendor} {users:>7} pair {pair + 1}: {name:6} {phase:5} "
                            f"{result['seconds']:7.2f} s {result['peak_mb']:6.1f} MB",
                            file=sys.stderr,
                        )
                runs.append(measured)
    for run in runs:
        sdk = run["sdk_full"]
        if sdk.get("status") != "succeeded" or not sdk.get("created"):
            raise RuntimeError(f"the SDK sync did not succeed: {sdk}")
    return {
        "vendor": vendor,
        "users": users,
        "pairs": pairs,
        "runs": runs,
        "full_ratio": _spread(
            [r["sdk_full"]["seconds"] / r["script_full"]["seconds"] for r in runs]
        ),
        "again_ratio": _spread(
            [r["sdk_again"]["seconds"] / r["script_again"]["seconds"] for r in runs]
        ),
        "full_cpu_ratio": _spread(
            [r["sdk_full"]["cpu_seconds"] / r["script_full"]["cpu_seconds"] for r in runs]
        ),
        "again_cpu_ratio": _spread(
            [r["sdk_again"]["cpu_seconds"] / r["script_again"]["cpu_seconds"] for r in runs]
        ),
        "script_full_s": statistics.median(r["script_full"]["seconds"] for r in runs),
        "sdk_full_s": statistics.median(r["sdk_full"]["seconds"] for r in runs),
        "script_again_s": statistics.median(r["script_again"]["seconds"] for r in runs),
        "sdk_again_s": statistics.median(r["sdk_again"]["seconds"] for r in runs),
        "script_peak_mb": max(
            max(r["script_full"]["peak_mb"], r["script_again"]["peak_mb"]) for r in runs
        ),
        "sdk_peak_mb": max(max(r["sdk_full"]["peak_mb"], r["sdk_again"]["peak_mb"]) for r in runs),
        "sdk_again_rows_written": max(r["sdk_again"]["rows_written"] for r in runs),
        "script_again_rows_written": max(r["script_again"]["rows_written"] for r in runs),
        "sdk_created": runs[0]["sdk_full"]["created"],
        "sdk_again_unchanged": runs[0]["sdk_again"]["unchanged"],
    }


STARTUP_COMMANDS = {
    "import requests": [sys.executable, "-c", "import requests"],
    "import oomnitza_connect": [sys.executable, "-c", "import oomnitza_connect"],
    "oomnitza-connect --help": [str(BIN / "oomnitza-connect"), "--help"],
}


def bench_startup(pairs: int) -> dict[str, Any]:
    """Time the start-up commands in alternating pairs against ``import requests``."""
    baseline = STARTUP_COMMANDS["import requests"]
    for command in STARTUP_COMMANDS.values():
        run_process(command)  # unmeasured: writes the bytecode, as an install does
    figures: dict[str, Any] = {}
    for label, command in STARTUP_COMMANDS.items():
        if command is baseline:
            continue
        ratios, seconds, base_seconds = [], [], []
        for pair in range(pairs):
            order = (baseline, command) if pair % 2 == 0 else (command, baseline)
            timed = {id(c): run_process(c)["seconds"] for c in order}
            ratios.append(timed[id(command)] / timed[id(baseline)])
            seconds.append(timed[id(command)])
            base_seconds.append(timed[id(baseline)])
        figures[label] = {
            "ratio": _spread(ratios),
            "seconds": statistics.median(seconds),
            "baseline_seconds": statistics.median(base_seconds),
        }
    return figures


def _decoder() -> str:
    """The JSON decoder the SDK's one decoding point uses (orjson when installed)."""
    import importlib.util

    return "orjson" if importlib.util.find_spec("orjson") is not None else "json"


def _plugins() -> list[str]:
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group="oomnitza_connect"))


def _range(spread: dict[str, float]) -> str:
    return f"**{spread['median']:.2f}x** ({spread['min']:.2f}-{spread['max']:.2f})"


def _short(spread: dict[str, float]) -> str:
    return f"{spread['median']:.2f}x"


def table(report: dict[str, Any]) -> str:
    """The results as the Markdown that README.md shows."""
    lines = [
        f"Measured {report['measured_at']} on {report['machine']}, Python {report['python']}, "
        f"plugins installed: {', '.join(report['plugins']) or 'none'}; load average "
        f"{report['load_average']:.1f} when it started; JSON decoder "
        f"{report.get('decoder', 'json')}.",
        "",
        "Wall time of whole processes; the CPU ratio (user + system) is less "
        "sensitive to other work on the machine. Ratios: median of the pairs (min-max).",
        "",
        "| vendor | users | pairs | full sync: SDK / script | CPU | script s | SDK s "
        "| re-sync: SDK / script | CPU | script s | SDK s | SDK re-sync rows written "
        "| peak MB script | peak MB SDK |",
        "|---|---:|---:|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["sync"]:
        lines.append(
            f"| {r.get('vendor', 'slack')} | {r['users']:,} | {r['pairs']} "
            f"| {_range(r['full_ratio'])} "
            f"| {_short(r['full_cpu_ratio'])} "
            f"| {r['script_full_s']:.2f} | {r['sdk_full_s']:.2f} | {_range(r['again_ratio'])} "
            f"| {_short(r['again_cpu_ratio'])} "
            f"| {r['script_again_s']:.2f} | {r['sdk_again_s']:.2f} "
            f"| {r['sdk_again_rows_written']:,} | {r['script_peak_mb']:.0f} "
            f"| {r['sdk_peak_mb']:.0f} |"
        )
    if report.get("startup"):
        lines += [
            "",
            "| start-up | / `python -c 'import requests'` | seconds | baseline seconds |",
            "|---|---|---:|---:|",
        ]
        for label, figures in report["startup"].items():
            lines.append(
                f"| `{label}` | {_range(figures['ratio'])} | {figures['seconds']:.3f} "
                f"| {figures['baseline_seconds']:.3f} |"
            )
    return "\n".join(lines)


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several saved ones (sizes in order; the last start-up figures)."""
    merged = dict(reports[0])
    merged["sync"] = sorted(
        (size for report in reports for size in report["sync"]),
        key=lambda size: (size.get("vendor", "slack"), size["users"]),
    )
    for report in reports:
        if report.get("startup"):
            merged["startup"] = report["startup"]
    merged["load_average"] = max(report["load_average"] for report in reports)
    return merged


def write_readme(markdown: str) -> None:
    text = README.read_text()
    pattern = re.compile(re.escape(START_MARK) + ".*?" + re.escape(END_MARK), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{README} has no {START_MARK} ... {END_MARK} section")
    README.write_text(pattern.sub(lambda _: f"{START_MARK}\n{markdown}\n{END_MARK}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=list(DEFAULT_USERS))
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs per size")
    parser.add_argument(
        "--vendors",
        nargs="+",
        choices=sorted(API_ROOTS),
        default=None,
        help="the vendors to sync (default: every installed one with a page server)",
    )
    parser.add_argument("--startup-pairs", type=int, default=10, help="0 skips start-up")
    parser.add_argument("--write-readme", action="store_true", help="put the table in README.md")
    parser.add_argument("--output", type=Path, help="the JSON file (default: results/)")
    parser.add_argument(
        "--render",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="measure nothing: print (and with --write-readme, write) the table of saved runs",
    )
    args = parser.parse_args(argv)
    if args.render:
        markdown = table(merge([json.loads(path.read_text()) for path in args.render]))
        print(markdown)
        if args.write_readme:
            write_readme(markdown)
        return 0

    report: dict[str, Any] = {
        "measured_at": f"{datetime.now(UTC):%Y-%m-%d}",
        "machine": f"{platform.machine()} with {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "plugins": _plugins(),
        "load_average": os.getloadavg()[0],
        "decoder": _decoder(),
        "sync": [],
    }
    RESULTS.mkdir(exist_ok=True)
    output = args.output or RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    if args.startup_pairs:
        print("benchmarking start-up ...", file=sys.stderr)
        report["startup"] = bench_startup(args.startup_pairs)
    vendors = args.vendors or [v for v in sorted(API_ROOTS) if v in report["plugins"]]
    for vendor in vendors:
        for index, users in enumerate(args.users):
            print(f"benchmarking {users:,} {vendor} users ...", file=sys.stderr)
            report["sync"].append(bench_sync(users, args.pairs, vendor, warm_up=index == 0))
        # Written after every size: a long run stopped half-way keeps what it measured.
        output.write_text(json.dumps(report, indent=2))
    output.write_text(json.dumps(report, indent=2))
    markdown = table(report)
    print(markdown)
    print(f"\nfigures written to {output}", file=sys.stderr)
    if args.write_readme:
        write_readme(markdown)
        print(f"table written to {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
