"""Benchmark: many integrations run by a Celery fleet against the vendor emulators.

For each number of worker processes (1, 2, 4 by default) it starts a real
Redis, a fresh SQLite ledger and one ``oomnitza-connect worker`` with that many
prefork processes, launches N integrations (small accounts of a few hundred
users each, spread over the vendor accounts), queues one run of each, and
measures wall time, runs per minute, the 429s the emulators had to send
(must be 0 under the declared budgets), and each worker process's peak RSS.
``--growth`` also times N/4, N/2 and N at the largest worker count, to show how
time grows with the number of integrations.

The emulators enforce their rate limits; the workers are given the same
budgets (``--rate-budget``) and keep them together through Redis.

    python benchmarks/bench_celery.py                         # 1,000 integrations
    python benchmarks/bench_celery.py --integrations 200 --growth

Results go to stdout and ``benchmarks/results/celery-<time>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CLI = str(Path(sys.executable).parent / "oomnitza-connect")

# What the emulator allows per account endpoint, and the budget the workers keep.
USERS_LIST_LIMIT = (3000, 20)
AUTH_TEST_LIMIT = (3000, 20)


def _vendor_emulators(users: int, accounts: int) -> list[Any]:
    """One emulator per vendor account; the Slack plugin's (the others join as they land)."""
    from oomnitza_connect_slack.emulator import SlackEmulator

    return [
        SlackEmulator(
            users=users,
            seed=index,
            rate_limits={"users.list": USERS_LIST_LIMIT, "auth.test": AUTH_TEST_LIMIT},
        ).start()
        for index in range(accounts)
    ]


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def run_fleet(
    processes: int, integrations: int, emulators: list[Any], redis_url: str, work: Path
) -> dict[str, Any]:
    import redis
    from celery import Celery

    from oomnitza_connect.auth.credentials import CredentialStore
    from oomnitza_connect.store.base import IntegrationEntry
    from oomnitza_connect.store.sqlite import SQLiteStore

    redis.Redis.from_url(redis_url).flushdb()
    root = Path(tempfile.mkdtemp(dir=work, prefix=f"fleet-{processes}-{integrations}-"))
    home = root / "home"
    ledger_path = root / "ledger.db"
    store = CredentialStore(home, keyring_backend=False, environ={})
    for index, emulator in enumerate(emulators):
        store.save(emulator.test_credential(f"account-{index}"))
    with SQLiteStore(ledger_path) as ledger:
        for number in range(integrations):
            name = f"tenant-{number:04d}"
            account = number % len(emulators)
            path = root / f"{name}.toml"
            path.write_text(
                f'name = "{name}"\nvendor = "slack"\ncredential = "account-{account}"\n'
                'sync_key = "email"\ndefault_role = "Employee"\nschedule = "manual"\n'
                '[settings]\n"Slack.PageSize" = "200"\n"Slack.LastLogins" = "off"\n'
            )
            ledger.save_integration(
                IntegrationEntry(
                    name=name,
                    vendor="slack",
                    active=True,
                    schedule="manual",
                    source=str(path),
                    launched_at=datetime.now(UTC),
                )
            )
    env = {**os.environ, "OOMNITZA_CONNECT_HOME": str(home), "OOMNITZA_CONNECT_KEYRING": "0"}
    rate, burst = USERS_LIST_LIMIT
    log = open(root / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [CLI, "worker", "--redis", redis_url, "--ledger", str(ledger_path),
         "--concurrency", str(processes), "--loglevel", "WARNING",
         "--rate-budget", f"slack:users.list={rate}/{burst}",
         "--rate-budget", f"slack:auth.test={AUTH_TEST_LIMIT[0]}/{AUTH_TEST_LIMIT[1]}",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = Celery("bench", broker=redis_url, backend=redis_url)
    try:
        while not client.control.ping(timeout=1.0):
            if worker.poll() is not None:
                raise SystemExit((root / "worker.log").read_text()[-3000:])
        limited_before = sum(e.rate_limited_count for e in emulators)
        started = time.perf_counter()
        results = [
            client.send_task("oomnitza_connect.run_integration", args=[f"tenant-{n:04d}"])
            for n in range(integrations)
        ]
        statuses: dict[str, int] = {}
        for result in results:
            status = result.get(timeout=3600)["status"]
            statuses[status] = statuses.get(status, 0) + 1
        wall = time.perf_counter() - started
        peaks = [_peak_rss_mb(pid) for pid in _children(worker.pid)]
        limited = sum(e.rate_limited_count for e in emulators) - limited_before
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        client.close()
    return {
        "processes": processes,
        "integrations": integrations,
        "wall_seconds": round(wall, 2),
        "runs_per_minute": round(integrations / wall * 60, 1),
        "statuses": statuses,
        "http_429": limited,
        "peak_rss_mb_per_process": [round(p, 1) for p in peaks],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--integrations", type=int, default=1000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--users", type=int, default=200, help="users per vendor account")
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="vendor accounts (emulators); their generated people overlap by email, so more "
        "than one makes runs complete with errors in the one shared ledger",
    )
    parser.add_argument("--growth", action="store_true", help="also time N/4 and N/2")
    args = parser.parse_args()

    from oomnitza_connect.testing.services import RedisServer

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as work, RedisServer() as server:
        emulators = _vendor_emulators(args.users, args.accounts)
        try:
            plan = [(p, args.integrations) for p in args.processes]
            if args.growth:
                largest = max(args.processes)
                plan += [(largest, args.integrations // 4), (largest, args.integrations // 2)]
            for processes, count in plan:
                row = run_fleet(processes, count, emulators, server.url, Path(work))
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for emulator in emulators:
                emulator.stop()
    print()
    print("| processes | integrations | wall s | runs/min | 429s | peak RSS per process (MB) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        peaks = ", ".join(f"{p:.0f}" for p in row["peak_rss_mb_per_process"])
        print(
            f"| {row['processes']} | {row['integrations']} | {row['wall_seconds']} | "
            f"{row['runs_per_minute']} | {row['http_429']} | {peaks} |"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"celery-{stamp}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
