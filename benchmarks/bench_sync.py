"""Benchmark: sync N generated users from an emulator into SQLite.

For each N it measures, each phase in a fresh process (so peak memory is the
phase's own):

* ``bare``: authenticate, then fetch and decode every page the sync fetches
  (users and, when the vendor has them, last logins) and do nothing else;
* ``sync``: the full sync into a new SQLite file;
* ``again``: the same sync again with nothing changed at the vendor.

It prints a table and writes the figures to ``benchmarks/results/`` (git-ignored).
The emulator runs in its own process, so its memory is not counted. It uses the
Slack emulator when the Slack plugin is installed, else the test suite's acme
emulator.

    python benchmarks/bench_sync.py                  # 10,000 and 100,000 users
    python benchmarks/bench_sync.py --users 10000    # just one size
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
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


# ---------------------------------------------------------------------------
# The emulator, in its own process
# ---------------------------------------------------------------------------


def _register_test_vendor() -> Any:
    sys.path.insert(0, str(TESTS))
    import sync_support

    from oomnitza_connect.plugins import register_plugin

    return register_plugin(sync_support.AcmePlugin(per_page=200), name="acme-bench")


def _pick_vendor() -> str:
    from oomnitza_connect.plugins import vendor_infos

    return "slack" if "slack" in vendor_infos() else "acme"


def _serve(vendor: str, users: int, pipe: Any) -> None:
    from oomnitza_connect.plugins import get_plugin_manager

    context = _register_test_vendor() if vendor == "acme" else None
    if context is not None:
        context.__enter__()
    emulator = get_plugin_manager().hook.create_emulator(
        vendor=vendor, options={"users": users, "enforce_rate_limits": False}
    )
    emulator.enforce_rate_limits = False
    emulator.start()
    server = emulator._server
    # Answer in one segment: no 40 ms delayed-ACK stall per page.
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.RequestHandlerClass.disable_nagle_algorithm = True
    if vendor == "acme":
        import sync_support

        emulator.logins = {
            f"A{i:06d}": datetime(2026, 1, 1, tzinfo=UTC) for i in range(1, users + 1, 3)
        }
        credential = {"token": sync_support.TOKEN, "base_url": emulator.base_url}
    else:
        test_credential = emulator.test_credential()
        credential = {
            "token": test_credential.token.reveal(),
            "base_url": test_credential.base_url,
        }
    pipe.send(credential)
    pipe.recv()  # wait until told to stop
    emulator.stop()


# ---------------------------------------------------------------------------
# One measured phase, in its own process
# ---------------------------------------------------------------------------


def _settings(vendor: str) -> Any:
    from oomnitza_connect.models import IntegrationSettings

    settings = {"Acme.Tenant": "bench"} if vendor == "acme" else {}
    return IntegrationSettings(
        name=f"bench-{vendor}",
        vendor=vendor,
        credential="bench",
        settings=settings,
        sync_key="email",
        default_role="Employee",
    )


def _credential(vendor: str) -> Any:
    from oomnitza_connect.models import AuthKind, Credential

    data = json.loads(os.environ["BENCH_CREDENTIAL"])
    return Credential(
        name="bench",
        vendor=vendor,
        kind=AuthKind.API_KEY,
        token=data["token"],
        base_url=data["base_url"],
    )


def _options() -> Any:
    from oomnitza_connect.transport.http import ClientOptions

    return ClientOptions(pace_requests=False)


def _phase(phase: str, vendor: str, db: str, batch_size: int) -> dict[str, Any]:
    from oomnitza_connect.connectors import get_connector

    context = _register_test_vendor() if vendor == "acme" else None
    if context is not None:
        context.__enter__()
    connector = get_connector(vendor)
    credential = _credential(vendor)
    settings = _settings(vendor)
    result: dict[str, Any] = {"phase": phase}
    # Import before the clock starts: module loading is not sync work.
    from oomnitza_connect.store.sqlite import SQLiteStore
    from oomnitza_connect.sync.engine import run_sync

    started = time.perf_counter()
    cpu_started = time.process_time()
    if phase == "bare":
        session = connector.authenticate(credential, settings.settings, options=_options())
        with session:
            count = sum(1 for _ in connector.list_users(session))
            logins = connector.list_last_logins(session)
            result["logins"] = 0 if logins is None else sum(1 for _ in logins)
        result["records"] = count
        result["seconds"] = time.perf_counter() - started
    else:
        with SQLiteStore(db) as store:
            run_started = datetime.now(UTC).isoformat()
            session = run_sync(
                settings,
                credential=credential,
                store=store,
                options=_options(),
                batch_size=batch_size,
            )
            elapsed = time.perf_counter() - started
            written = store._db.execute(
                "SELECT count(*) FROM people WHERE updated_at >= ?", (run_started,)
            ).fetchone()[0]
        result["status"] = session.status.value
        result["counts"] = {
            "created": session.counts.created,
            "updated": session.counts.updated,
            "unchanged": session.counts.unchanged,
            "skipped": session.counts.skipped,
            "failed": session.counts.failed,
        }
        result["people_rows_written"] = written
        result["records"] = session.counts.total
        result["seconds"] = elapsed
    result["cpu_seconds"] = time.process_time() - cpu_started
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_mb"] = peak / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return result


def _run_phase(phase: str, vendor: str, db: Path, batch_size: int, credential: dict) -> dict:
    env = {**os.environ, "BENCH_CREDENTIAL": json.dumps(credential)}
    env.pop("OOMNITZA_CONNECT_LOAD_ENTRY_POINTS", None)
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            phase,
            "--vendor",
            vendor,
            "--db",
            str(db),
            "--batch-size",
            str(batch_size),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = dict(min(runs, key=lambda run: run["seconds"]))
    best["all_seconds"] = [round(run["seconds"], 3) for run in runs]
    best["peak_mb"] = max(run["peak_mb"] for run in runs)
    return best


def bench(users: int, vendor: str, batch_size: int, repeat: int = 1) -> dict[str, Any]:
    """Measure the three phases; with *repeat*, each phase's fastest run counts
    (a shared machine adds noise, never speed), and the highest peak memory."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(vendor, users, child), daemon=True
    )
    server.start()
    try:
        credential = parent.recv()
        bares, syncs, agains = [], [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as directory:
                db = Path(directory) / "bench.db"
                bares.append(_run_phase("bare", vendor, db, batch_size, credential))
                syncs.append(_run_phase("sync", vendor, db, batch_size, credential))
                agains.append(_run_phase("again", vendor, db, batch_size, credential))
                db_mb = sum(p.stat().st_size for p in Path(directory).iterdir()) / 2**20
        bare, sync, again = _fastest(bares), _fastest(syncs), _fastest(agains)
    finally:
        parent.send("stop")
        server.join(timeout=30)
    return {
        "users": users,
        "vendor": vendor,
        "batch_size": batch_size,
        "repeat": repeat,
        "bare": bare,
        "sync": sync,
        "again": again,
        "users_per_second": users / sync["seconds"],
        "sync_to_bare_ratio": sync["seconds"] / bare["seconds"],
        "again_to_bare_ratio": again["seconds"] / bare["seconds"],
        "db_mb": db_mb,
    }


def _table(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'users':>8} {'vendor':>6} {'bare s':>8} {'sync s':>8} {'ratio':>6} "
        f"{'users/s':>9} {'peak MB':>8} {'again s':>8} {'again ratio':>11} "
        f"{'again writes':>12} {'created':>8} {'unchanged':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r['users']:>8} {r['vendor']:>6} {r['bare']['seconds']:>8.2f} "
            f"{r['sync']['seconds']:>8.2f} {r['sync_to_bare_ratio']:>6.2f} "
            f"{r['users_per_second']:>9.0f} {r['sync']['peak_mb']:>8.1f} "
            f"{r['again']['seconds']:>8.2f} {r['again_to_bare_ratio']:>11.2f} "
            f"{r['again']['people_rows_written']:>12} {r['sync']['counts']['created']:>8} "
            f"{r['again']['counts']['unchanged']:>9}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--vendor", choices=["slack", "acme"], default=None)
    parser.add_argument("--batch-size", type=int, default=2500)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each phase N times and keep the fastest"
    )
    parser.add_argument("--phase", choices=["bare", "sync", "again"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        print(json.dumps(_phase(args.phase, args.vendor, args.db, args.batch_size)))
        return 0

    vendor = args.vendor or _pick_vendor()
    results = []
    for users in args.users:
        print(f"benchmarking {users} users from the {vendor} emulator ...", file=sys.stderr)
        results.append(bench(users, vendor, args.batch_size, args.repeat))
    print(_table(results))
    RESULTS.mkdir(exist_ok=True)
    output = args.output or RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    output.write_text(json.dumps({"python": sys.version, "results": results}, indent=2))
    print(f"\nfigures written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
