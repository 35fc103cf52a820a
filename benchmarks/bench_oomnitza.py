"""Benchmark: sync N generated users into the Oomnitza emulator, peak memory flat in N.

The vendor (the test suite's acme emulator) and the Oomnitza emulator run in
their own processes, so only the sync's memory is measured; each sync runs in a
fresh process too, which reports its own peak RSS (``getrusage``). Not a timed test: it
prints a table (users, seconds, users/s, peak MB, batches Oomnitza applied,
users it holds) and writes the figures to ``benchmarks/results/`` (git-ignored).

    python benchmarks/bench_oomnitza.py                   # 10,000 and 100,000 users
    python benchmarks/bench_oomnitza.py --users 20000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
RESULTS = HERE / "results"


def _serve(kind: str, users: int, pipe: Any) -> None:
    sys.path.insert(0, str(TESTS))
    if kind == "acme":
        import sync_support

        emulator: Any = sync_support.AcmeEmulator(users=users)
    else:
        from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

        emulator = OomnitzaEmulator(log_requests=10)
    emulator.start()
    pipe.send((emulator.base_url, getattr(emulator, "api_token", None)))
    while True:
        command = pipe.recv()
        if command == "stats":
            pipe.send(
                {
                    "users": len(emulator.users),
                    "batches": len(getattr(emulator, "applied_batches", ())),
                    "duplicates": getattr(emulator, "duplicate_batches", 0),
                }
            )
        else:
            emulator.stop()
            return


def _start(kind: str, users: int) -> tuple[Any, Any, str, str | None]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(kind, users, child), daemon=True)
    process.start()
    url, token = parent.recv()
    return process, parent, url, token


def _sync(acme_url: str, oomnitza_url: str, token: str, ledger: str) -> None:
    """One sync into Oomnitza in this (child) process."""
    sys.path.insert(0, str(TESTS))
    import sync_support

    from oomnitza_connect.destinations.oomnitza import OomnitzaDestination
    from oomnitza_connect.models import AuthKind, Credential, DestinationKind, DestinationSettings
    from oomnitza_connect.plugins import register_plugin
    from oomnitza_connect.store.sqlite import SQLiteStore
    from oomnitza_connect.sync.engine import run_sync
    from oomnitza_connect.sync.integrations import load_integration

    table = DestinationSettings(
        type=DestinationKind.OOMNITZA,
        url=oomnitza_url,
        credential="bench",
        connector_name="acme-bench",
        roles={"Employee": 25},
    )
    credential = Credential(
        name="bench",
        vendor="oomnitza",
        kind=AuthKind.API_KEY,
        token=token,
        header_name="Authorization2",
        header_prefix="",
    )
    with register_plugin(sync_support.AcmePlugin(per_page=500, with_logins=False), name="acme"):
        directory = Path(tempfile.mkdtemp())
        settings = load_integration(sync_support.write_integration(directory, base_url=acme_url))
        with SQLiteStore(ledger) as store, OomnitzaDestination(table, credential) as destination:
            session = run_sync(
                settings,
                credential=sync_support.credential(acme_url),
                store=store,
                destination=destination,
            )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "status": session.status.value,
                "created": session.counts.created,
                "peak_mb": round(peak_kb / 1024, 1),
            }
        )
    )


def measure(users: int) -> dict[str, Any]:
    acme, acme_pipe, acme_url, _ = _start("acme", users)
    oomnitza, pipe, oomnitza_url, token = _start("oomnitza", users)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            ledger = str(Path(scratch) / "ledger.db")
            started = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    "sync",
                    acme_url,
                    oomnitza_url,
                    token or "",
                    ledger,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds = time.perf_counter() - started
        pipe.send("stats")
        stats = pipe.recv()
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        return {
            "users": users,
            "seconds": round(seconds, 2),
            "users_per_s": round(users / seconds),
            "oomnitza_users": stats["users"],
            "batches": stats["batches"],
            "duplicate_batches": stats["duplicates"],
            **outcome,
        }
    finally:
        for process, channel in ((acme, acme_pipe), (oomnitza, pipe)):
            channel.send("stop")
            process.join(timeout=10)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "sync":
        _sync(*args.rest)
        return 0
    rows = [measure(users) for users in args.users]
    print(
        f"{'users':>8} {'secs':>7} {'users/s':>8} {'peak MB':>8} {'in Oomnitza':>12} {'batches':>8}"
    )
    for row in rows:
        print(
            f"{row['users']:>8} {row['seconds']:>7} {row['users_per_s']:>8} {row['peak_mb']:>8} "
            f"{row['oomnitza_users']:>12} {row['batches']:>8}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-oomnitza-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
