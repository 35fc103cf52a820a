"""Benchmark: N integrations of four vendors into Oomnitza, run by a fleet of Celery workers.

Everything is real and in its own process: a Redis server (broker, run locks,
rate budgets), a PostgreSQL cluster (the shared ledger), one process per
vendor hosting that vendor's emulated accounts (Slack, Intercom, Webex,
Talkdesk: each account its own emulator, with its own people, token and rate
limits), one process with the Oomnitza emulator (the destination every
integration writes into), and 1, 2 and 4 ``oomnitza-connect worker``
processes (one Celery node each, like one machine each).

The integrations are spread evenly over the vendors, and each vendor account
is shared by ``--integrations-per-account`` integrations, so several workers
draw on one account's budget in Redis at once. The emulators enforce the
limits the workers are told (``--rate-budget``), so every 429 they send is a
budget not kept. Each integration is queued ``--runs`` times back to back (a
run overtaken by its next one), so the run lock is exercised: a run that finds
another one going is recorded as skipped and run again afterwards.

Measured per fleet: wall time from the first task queued to the last run
recorded, runs per minute, the 429s every emulator sent, and the peak RSS
(``VmHWM``) of each worker's processes. Checked per fleet (a failed check is
reported, and ``--tiny`` exits non-zero): every queued run recorded as a
succeeded session in the ledger, no two runs of one integration overlapping,
no record failed, every account's people counted alike by each of its runs,
and Oomnitza holding exactly the people the runs created.

    python benchmarks/bench_celery.py                    # 1,000 integrations, 1/2/4 workers
    python benchmarks/bench_celery.py --integrations 200 --growth
    python benchmarks/bench_celery.py --tiny             # 8 integrations, 1 worker

Results go to stdout and ``benchmarks/results/celery-<time>.json`` (git-ignored);
``--write-readme`` puts the table into ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START_MARK = "<!-- celery-results:start -->"
END_MARK = "<!-- celery-results:end -->"
CLI = str(Path(sys.executable).parent / "oomnitza-connect")


@attrs.frozen
class VendorSetup:
    """How the benchmark runs one vendor's accounts."""

    module: str
    emulator: str
    options: dict[str, Any] = attrs.field(factory=dict)
    """Emulator options besides users and seed: the limits it enforces."""
    budgets: tuple[str, ...] = ()
    """``--rate-budget`` values: the workers keep exactly what the emulator enforces."""
    settings: dict[str, str] = attrs.field(factory=dict)
    mapping: str = ""
    """``[[mapping]]`` entries added to each integration file."""


# Every tenant's people go into one Oomnitza, where a username is unique; two
# Slack workspaces each have a `chiara.moreau.11`, so Slack's usernames are
# the (per-workspace) email addresses here, as Intercom's and Webex's are.
SLACK_USERNAME = '[[mapping]]\ntarget = "username"\nsource = "email"\nconverter = "lower"\n'

# Slack's real Tier 2 (20 requests a minute for users.list) would make every
# fleet wait on the budget alone; a plan with a higher limit is declared to
# both sides instead. The other vendors keep their emulators' limits and
# their plugins' declared budgets, which stay under them.
VENDORS: dict[str, VendorSetup] = {
    "slack": VendorSetup(
        "oomnitza_connect_slack.emulator",
        "SlackEmulator",
        {"rate_limits": {"users.list": (600, 10), "auth.test": (600, 10)}},
        ("slack:users.list=600/10", "slack:auth.test=600/10"),
        {"Slack.LastLogins": "off"},
        SLACK_USERNAME,
    ),
    "intercom": VendorSetup("oomnitza_connect_intercom.emulator", "IntercomEmulator"),
    "webex": VendorSetup("oomnitza_connect_webex.emulator", "WebexEmulator"),
    "talkdesk": VendorSetup("oomnitza_connect_talkdesk.emulator", "TalkdeskEmulator"),
}


@attrs.frozen
class Account:
    """One emulated vendor account, as its host process reports it."""

    vendor: str
    number: int
    base_url: str
    settings: dict[str, str]
    mapping: str = ""

    @property
    def name(self) -> str:
        return f"{self.vendor}-{self.number:03d}"


# -- emulator host processes -------------------------------------------------------


def _host_vendor(vendor: str, accounts: int, users: int, home: str, pipe: Any) -> None:
    """Run *accounts* emulators of *vendor* in this process until told to stop.

    Their credentials go into the credential store at *home* from here: a
    secret is never pickled.
    """
    from oomnitza_connect.auth.credentials import CredentialStore

    store = CredentialStore(Path(home), keyring_backend=False, environ={})
    setup = VENDORS[vendor]
    emulator_class = getattr(importlib.import_module(setup.module), setup.emulator)
    emulators = []
    answer = []
    for number in range(accounts):
        # A seed of its own per account: its own people and email domain.
        emulator = emulator_class(users=users, seed=1000 + number, **setup.options)
        emulator.start()
        emulators.append(emulator)
        settings = dict(setup.settings)
        make_settings = getattr(emulator, "test_settings", None)
        if callable(make_settings):
            settings.update(make_settings())
        store.save(attrs.evolve(emulator.test_credential(), name=f"{vendor}-{number:03d}"))
        answer.append(Account(vendor, number, emulator.base_url, settings, setup.mapping))
    pipe.send(answer)
    _serve_commands(pipe, emulators, lambda: {"users": 0})


def _host_oomnitza(home: str, pipe: Any) -> None:
    from oomnitza_connect.auth.credentials import CredentialStore
    from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

    emulator = OomnitzaEmulator(log_requests=10)
    emulator.start()
    store = CredentialStore(Path(home), keyring_backend=False, environ={})
    store.save(attrs.evolve(emulator.test_credential(), name="oomnitza"))
    pipe.send(emulator.base_url)

    def stats() -> dict[str, Any]:
        with emulator.lock:
            return {
                "users": len(emulator.users),
                "batches": len(emulator.applied_batches),
                "duplicate_batches": emulator.duplicate_batches,
                "portions": len(emulator.portions),
                "unfinalized_portions": sum(
                    1 for p in emulator.portions.values() if not p.finalized
                ),
            }

    _serve_commands(pipe, [emulator], stats)


def _serve_commands(pipe: Any, emulators: list[Any], stats: Any) -> None:
    while True:
        command = pipe.recv()
        if command == "stats":
            pipe.send(
                {
                    "http_429": sum(e.rate_limited_count for e in emulators),
                    **stats(),
                }
            )
        else:
            for emulator in emulators:
                emulator.stop()
            pipe.send("stopped")
            return


class Host:
    """An emulator host process and its pipe."""

    def __init__(self, target: Any, *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=target, args=(*args, child), daemon=True)
        self.process.start()
        while not self.pipe.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the emulator host {args[:1]} died starting")
        self.started = self.pipe.recv()

    def stats(self) -> dict[str, Any]:
        self.pipe.send("stats")
        answer: dict[str, Any] = self.pipe.recv()
        return answer

    def peak_rss_mb(self) -> float:
        return _peak_rss_mb(self.process.pid or 0)

    def stop(self) -> None:
        try:
            self.pipe.send("stop")
            self.pipe.recv()
        except (OSError, EOFError):
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


# -- measuring processes -----------------------------------------------------------


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


def _load_average() -> float:
    return round(os.getloadavg()[0], 1)


# -- one fleet ---------------------------------------------------------------------


@attrs.frozen
class Plan:
    workers: int
    integrations: int
    runs: int


def integration_toml(name: str, account: Account, oomnitza_url: str) -> str:
    settings = "".join(f'"{key}" = "{value}"\n' for key, value in account.settings.items())
    return (
        f'name = "{name}"\nvendor = "{account.vendor}"\ncredential = "{account.name}"\n'
        f'base_url = "{account.base_url}"\nsync_key = "email"\ndefault_role = "Employee"\n'
        'schedule = "manual"\n'
        f"[settings]\n{settings}{account.mapping}"
        f'[destination]\ntype = "oomnitza"\nurl = "{oomnitza_url}"\ncredential = "oomnitza"\n'
        f'connector_name = "{name}"\n[destination.roles]\nEmployee = 25\n'
    )


def spread(integrations: int, per_account: int) -> list[tuple[str, int]]:
    """(vendor, account number) of each integration: round-robin over the vendors,
    *per_account* integrations to an account."""
    vendors = list(VENDORS)
    placed = []
    for number in range(integrations):
        vendor = vendors[number % len(vendors)]
        placed.append((vendor, (number // len(vendors)) // per_account))
    return placed


def accounts_needed(integrations: int, per_account: int) -> dict[str, int]:
    needed: dict[str, int] = {}
    for vendor, account in spread(integrations, per_account):
        needed[vendor] = max(needed.get(vendor, 0), account + 1)
    return needed


class Fleet:
    """Worker processes for one plan, against a fresh ledger and a flushed Redis."""

    def __init__(self, plan: Plan, root: Path, redis_url: str, ledger_url: str) -> None:
        self.plan = plan
        self.root = root
        self.redis_url = redis_url
        self.ledger_url = ledger_url
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "OOMNITZA_CONNECT_HOME": str(root / "home"),
            "OOMNITZA_CONNECT_KEYRING": "0",
            # A test's own process turns entry-point loading off; the workers need it.
            "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "1",
        }
        from celery import Celery

        self.client = Celery("bench", broker=redis_url, backend=redis_url)

    def start(self, budgets: Sequence[str]) -> None:
        for index in range(self.plan.workers):
            log = open(self.root / f"worker-{index}.log", "wb")  # noqa: SIM115
            command = [
                CLI, "worker",
                "--redis", self.redis_url,
                "--ledger", self.ledger_url,
                "--concurrency", "1",
                "--hostname", f"bench{index}@%h",
                "--loglevel", "WARNING",
                "--without-heartbeat", "--without-gossip", "--without-mingle",
            ]  # fmt: skip
            for budget in budgets:
                command += ["--rate-budget", budget]
            self.workers.append(
                subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(self.client.control.ping(timeout=1.0) or []) >= self.plan.workers:
                return
            if any(worker.poll() is not None for worker in self.workers):
                break
        raise RuntimeError("the workers did not come up:\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.root.glob("*.log"))
        )

    def peak_rss_mb(self) -> list[dict[str, float]]:
        """Each worker's main process and its pool process (the one that runs syncs)."""
        peaks = []
        for worker in self.workers:
            pool = [_peak_rss_mb(pid) for pid in _children(worker.pid)]
            peaks.append(
                {
                    "main": round(_peak_rss_mb(worker.pid), 1),
                    "pool": round(max(pool, default=0.0), 1),
                }
            )
        return peaks

    def stop(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.client.close()


def _sessions(ledger_url: str) -> dict[str, list[Any]]:
    from oomnitza_connect.store.postgres import PostgresLedger

    found: dict[str, list[Any]] = {}
    with PostgresLedger(ledger_url) as ledger:
        for session in ledger.list_sessions(limit=None):
            found.setdefault(session.integration, []).append(session)
    for sessions in found.values():
        sessions.sort(key=lambda s: s.started_at)
    return found


def _covered(skipped: Any, sessions: list[Any]) -> bool:
    """Whether a run that began after *skipped* was recorded has ended (its follow-up)."""
    from oomnitza_connect.models import SyncStatus

    return any(
        s.status is not SyncStatus.SKIPPED
        and s.ended_at is not None
        and s.started_at > skipped.started_at
        for s in sessions
    )


def _all_recorded(sessions: dict[str, list[Any]], names: list[str], runs: int) -> bool:
    """Every queued run left a session, none is running, every skipped one was run again."""
    from oomnitza_connect.models import SyncStatus

    for name in names:
        mine = sessions.get(name, [])
        if len(mine) < runs or any(s.status is SyncStatus.RUNNING for s in mine):
            return False
        if not all(_covered(s, mine) for s in mine if s.status is SyncStatus.SKIPPED):
            return False
    return True


def check(
    plan: Plan,
    placed: dict[str, Account],
    sessions: dict[str, list[Any]],
    oomnitza: dict[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """The invariants; returns what was counted and the list of what does not hold."""
    from oomnitza_connect.models import SyncStatus

    problems: list[str] = []
    overlaps = beyond = 0
    ran = skipped = failed_records = created = 0
    people_of_account: dict[str, set[int]] = {}
    for name, account in placed.items():
        mine = sessions.get(name, [])
        done = [s for s in mine if s.status is not SyncStatus.SKIPPED]
        skipped += len(mine) - len(done)
        ran += len(done)
        # A skipped run is run again by the run it found going, or by a run
        # that began after it (the request is taken then): never both.
        if len(mine) < plan.runs:
            problems.append(f"{name}: {len(mine)} sessions recorded, {plan.runs} runs queued")
        if len(done) > plan.runs:
            beyond += len(done) - plan.runs
            problems.append(f"{name}: synced {len(done)} times, {plan.runs} runs queued")
        lost = [s for s in mine if s.status is SyncStatus.SKIPPED and not _covered(s, mine)]
        problems.extend(f"{name}: skipped run {s.id} never run again" for s in lost)
        for session in done:
            if session.status is not SyncStatus.SUCCEEDED:
                problems.append(f"{name}: session {session.id} {session.status.value}")
            problems.extend(f"{name}: {error.reason}" for error in session.errors[:2])
            counts = session.counts
            failed_records += counts.failed
            created += counts.created
            people_of_account.setdefault(account.name, set()).add(
                counts.created + counts.updated + counts.unchanged
            )
        for before, after in itertools.pairwise(done):
            if before.ended_at is None or after.started_at < before.ended_at:
                overlaps += 1
                problems.append(f"{name}: {after.id} started before {before.id} ended")
    for account, totals in sorted(people_of_account.items()):
        if len(totals) != 1:
            problems.append(f"{account}: its runs counted {sorted(totals)} people")
    # One person can be in two accounts (a Webex guest of two organizations):
    # Oomnitza matches them by email, and the second account's run updates them.
    listed = sum(min(totals) for totals in people_of_account.values())
    if failed_records:
        problems.append(f"{failed_records} records failed")
    if oomnitza["users"] != created:
        problems.append(f"Oomnitza holds {oomnitza['users']} users, the runs created {created}")
    if not 0 < oomnitza["users"] <= listed:
        problems.append(f"Oomnitza holds {oomnitza['users']} users, the accounts list {listed}")
    if oomnitza["unfinalized_portions"]:
        problems.append(f"{oomnitza['unfinalized_portions']} Oomnitza portions not finalized")
    counted = {
        "runs_recorded": ran,
        "runs_skipped_while_another_ran": skipped,
        "runs_beyond_queued": beyond,
        "overlapping_runs": overlaps,
        "failed_records": failed_records,
        "people_listed": listed,
        "people_created": created,
        "oomnitza_users": oomnitza["users"],
        "oomnitza_batches": oomnitza["batches"],
    }
    return counted, problems


def run_fleet(
    plan: Plan,
    *,
    users: int,
    per_account: int,
    redis_url: str,
    postgres: Any,
    work: Path,
    timeout: float = 3600,
) -> dict[str, Any]:
    """Start the emulators and a fleet for *plan*, run it, check it, stop everything."""
    import redis

    from oomnitza_connect.store.base import IntegrationEntry
    from oomnitza_connect.store.postgres import PostgresLedger

    stamp = f"w{plan.workers}_n{plan.integrations}_{int(time.time() * 1000)}"
    root = Path(tempfile.mkdtemp(dir=work, prefix=f"fleet-{stamp}-"))
    redis.Redis.from_url(redis_url).flushdb()
    ledger_url = str(postgres.create_database(f"bench_{stamp}"))
    placement = spread(plan.integrations, per_account)
    home = str(root / "home")
    with ExitStack() as stack:
        hosts: dict[str, Host] = {}
        for vendor, count in accounts_needed(plan.integrations, per_account).items():
            hosts[vendor] = Host(_host_vendor, vendor, count, users, home)
            stack.callback(hosts[vendor].stop)
        oomnitza = Host(_host_oomnitza, home)
        stack.callback(oomnitza.stop)
        oomnitza_url = oomnitza.started
        accounts = {(a.vendor, a.number): a for h in hosts.values() for a in h.started}
        placed: dict[str, Account] = {}
        with PostgresLedger(ledger_url) as ledger:
            for number, where in enumerate(placement):
                name = f"tenant-{number:04d}-{where[0]}"
                placed[name] = accounts[where]
                path = root / f"{name}.toml"
                path.write_text(integration_toml(name, accounts[where], oomnitza_url))
                # What `integrations launch FILE --no-run` records.
                ledger.save_integration(
                    IntegrationEntry(
                        name=name,
                        vendor=where[0],
                        active=True,
                        schedule="manual",
                        source=str(path),
                        launched_at=datetime.now(UTC),
                    )
                )
        budgets = [budget for vendor in hosts for budget in VENDORS[vendor].budgets]
        fleet = Fleet(plan, root, redis_url, ledger_url)
        stack.callback(fleet.stop)
        fleet.start(budgets)
        load_before = _load_average()
        names = list(placed)
        started = time.perf_counter()
        results = [
            fleet.client.send_task("oomnitza_connect.run_integration", args=[name])
            for name in names
            for _ in range(plan.runs)
        ]
        statuses: dict[str, int] = {}
        for result in results:
            status = result.get(timeout=timeout)["status"]
            statuses[status] = statuses.get(status, 0) + 1
        # A skipped run's follow-up is queued by the run it found going; the
        # fleet is done when the ledger holds every queued run.
        deadline = time.monotonic() + timeout
        seen = -1
        while True:
            sessions = _sessions(ledger_url)
            count = sum(len(found) for found in sessions.values())
            # Twice alike: a run beyond those queued would still show up.
            if _all_recorded(sessions, names, plan.runs) and count == seen:
                break
            if time.monotonic() > deadline:
                break
            seen = count
            time.sleep(1.0)
        wall = time.perf_counter() - started
        load_after = _load_average()
        peaks = fleet.peak_rss_mb()
        vendor_stats = {vendor: host.stats() for vendor, host in hosts.items()}
        oomnitza_stats = oomnitza.stats()
        emulator_peaks = {vendor: round(host.peak_rss_mb(), 1) for vendor, host in hosts.items()}
    counted, problems = check(plan, placed, sessions, oomnitza_stats)
    limited = {vendor: stats["http_429"] for vendor, stats in vendor_stats.items()}
    limited["oomnitza"] = oomnitza_stats["http_429"]
    return {
        "workers": plan.workers,
        "integrations": plan.integrations,
        "runs_per_integration": plan.runs,
        "accounts": {vendor: len(host.started) for vendor, host in hosts.items()},
        "users_per_account": users,
        "wall_seconds": round(wall, 2),
        "runs_per_minute": round(counted["runs_recorded"] / wall * 60, 1),
        "task_statuses": statuses,
        "http_429": sum(limited.values()),
        "http_429_by_emulator": limited,
        "peak_rss_mb_per_worker": peaks,
        "emulator_host_peak_rss_mb": emulator_peaks,
        "load_average": [load_before, load_after],
        **counted,
        "problems": problems,
    }


# -- the whole benchmark -----------------------------------------------------------


@contextmanager
def services() -> Iterator[tuple[str, Any]]:
    from oomnitza_connect.testing.services import PostgresServer, RedisServer

    with RedisServer() as redis_server, PostgresServer() as postgres_server:
        yield redis_server.url, postgres_server


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | integrations | runs | wall s | runs/min | 429s | overlapping runs "
        "| skipped, run again | records failed | checks | peak RSS per worker, MB "
        "(main / pool) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        peaks = ", ".join(
            f"{p['main']:.0f} / {p['pool']:.0f}" for p in row["peak_rss_mb_per_worker"]
        )
        checks = "all hold" if not row["problems"] else f"{len(row['problems'])} failed"
        load = "-".join(str(x) for x in row["load_average"])
        lines.append(
            f"| {row['workers']} | {row['integrations']:,} | {row['runs_recorded']:,} | "
            f"{row['wall_seconds']} | {row['runs_per_minute']} | {row['http_429']} | "
            f"{row['overlapping_runs']} | {row['runs_skipped_while_another_ran']} | "
            f"{row['failed_records']} | {checks} | {peaks} | {load} |"
        )
    return "\n".join(lines)


def header(args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    accounts = ", ".join(f"{vendor} {count}" for vendor, count in first["accounts"].items())
    command = " ".join(["python", "benchmarks/bench_celery.py", *args.argv])
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} with "
        f"{os.cpu_count()} CPUs (shared with other developers' work), Python "
        f"{platform.python_version()}: `{command}`. Vendor accounts of the largest run: "
        f"{accounts}, {first['users_per_account']} users each, "
        f"{args.integrations_per_account} integrations per account; each integration "
        f"queued {first['runs_per_integration']} times back to back. Load is the 1-minute "
        "load average before and after each fleet."
    )


def write_readme(text: str) -> None:
    readme = README.read_text()
    start = readme.index(START_MARK) + len(START_MARK)
    end = readme.index(END_MARK)
    README.write_text(readme[:start] + "\n" + text + "\n" + readme[end:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--integrations", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--users", type=int, default=200, help="users per vendor account")
    parser.add_argument("--integrations-per-account", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2, help="times each integration is queued")
    parser.add_argument("--growth", action="store_true", help="also N/4 and N/2, most workers")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="8 integrations of 30-user accounts, 1 worker (what the test suite runs)",
    )
    parser.add_argument("--output", type=Path, default=None, help="where the JSON goes")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.tiny:
        args.integrations, args.workers, args.users = 8, [1], 30
        args.integrations_per_account = 2
    plans = [Plan(w, args.integrations, args.runs) for w in args.workers]
    if args.growth:
        most = max(args.workers)
        plans += [Plan(most, args.integrations // 4, args.runs)]
        plans += [Plan(most, args.integrations // 2, args.runs)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as work, services() as (url, pg):
        for plan in plans:
            row = run_fleet(
                plan,
                users=args.users,
                per_account=args.integrations_per_account,
                redis_url=url,
                postgres=pg,
                work=Path(work),
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    text = header(args, rows) + "\n\n" + table(rows)
    print()
    print(text)
    output = args.output
    if output is None:
        RESULTS.mkdir(exist_ok=True)
        output = RESULTS / f"celery-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    output.write_text(json.dumps(rows, indent=2))
    if args.write_readme:
        write_readme(text)
    return 1 if any(row["problems"] for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
