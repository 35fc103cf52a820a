"""A 20k-user sync into Oomnitza killed with SIGKILL at random points, then a rerun, converges.

The runs continue one portion: nothing is lost, nothing is doubled, no batch
is applied twice, and the final users are exactly those of a clean run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.config import unstructure
from oomnitza_connect.models import SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

TESTS = Path(__file__).parent
USERS = 20_000


def destination_table(oomnitza: OomnitzaEmulator) -> str:
    return (
        "\n[destination]\n"
        'type = "oomnitza"\n'
        f'url = "{oomnitza.base_url}"\n'
        'credential = "oomnitza-test"\n'
        'connector_name = "acme-main"\n'
        "[destination.roles]\nEmployee = 25\n"
    )


def users_table(oomnitza: OomnitzaEmulator) -> dict[str, tuple]:
    return {
        u["email"]: tuple(
            sorted(
                (k, repr(v))
                for k, v in u.items()
                if k not in ("user_id", "uid", "creation_date", "change_date")
            )
        )
        for u in oomnitza.users.values()
    }


@pytest.mark.slow
@pytest.mark.serial  # kills real processes at moments a busy machine moves
def test_kill_9_at_random_points_then_a_rerun_converges(tmp_path, monkeypatch):
    seed = random.randrange(1_000_000)
    print(f"kill points seed: {seed}")
    chance = random.Random(seed)
    ledger = tmp_path / "ledger.db"
    with (
        register_plugin(AcmePlugin(per_page=500, with_logins=False), name="acme-test"),
        AcmeEmulator(users=USERS) as acme,
        OomnitzaEmulator() as oomnitza,
    ):
        secret = {
            k: (v.value if hasattr(v, "value") else v)
            for k, v in unstructure(oomnitza.test_credential("oomnitza-test")).items()
            if v not in (None, [], ())
        }
        monkeypatch.setenv(credential_env_name("oomnitza-test"), json.dumps(secret))
        integration = write_integration(
            tmp_path, destination_table(oomnitza), base_url=acme.base_url
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "0",
        }
        # Every bulk answer comes a little late, so a run takes seconds even on an idle
        # machine and the kill a moment after its first batch lands before it is done.
        oomnitza.faults.add(Fault.answer_late(0.05), endpoint="bulk", times=10**6)
        kills = finished_alone = 0
        for _ in range(3):
            received = len(oomnitza.users)
            child = subprocess.Popen(
                [
                    sys.executable,
                    str(TESTS / "sync_support.py"),
                    str(ledger),
                    acme.base_url,
                    str(integration),
                    "1000",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            # Wait until this run has sent something new, then kill it a random moment later.
            deadline = time.monotonic() + 120
            while len(oomnitza.users) <= received and child.poll() is None:
                assert time.monotonic() < deadline, "the child never sent a batch"
                time.sleep(0.02)
            time.sleep(chance.uniform(0.0, 1.5))
            if child.poll() is not None:
                finished_alone += 1  # it synced everything before the kill came
                break
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            kills += 1
        assert kills >= 1, "every run finished before it could be killed"
        assert 0 < len(oomnitza.users) <= USERS

        oomnitza.faults.clear()
        settings = load_integration(integration)
        with SQLiteStore(ledger) as store:
            rerun = run_sync(
                settings, credential=credential(acme.base_url), store=store, batch_size=1000
            )
            sessions = store.list_sessions()
        assert rerun.status == SyncStatus.SUCCEEDED, rerun.message
        # Every killed run that got as far as opening its session is left interrupted; a
        # kill can land before a child opens one (the previous run's late batch already
        # moved the count it waits on), so there may be fewer sessions than kills. A run
        # that finished before its kill came (a loaded machine) succeeded.
        earlier = [s.status for s in sessions[1:]]
        interrupted = earlier.count(SyncStatus.INTERRUPTED)
        assert 1 <= len(earlier) <= kills + finished_alone, (earlier, kills, finished_alone)
        assert interrupted <= kills, (earlier, kills)
        # A kill can also land after a run recorded its end and before its process
        # exited (seen in CI: one succeeded session, no run finished alone): that run
        # finished too. Every earlier session either finished or was interrupted.
        succeeded = earlier.count(SyncStatus.SUCCEEDED)
        assert succeeded == len(earlier) - interrupted, earlier
        assert succeeded <= finished_alone + kills - interrupted, (earlier, kills, finished_alone)
        # One portion across the killed runs and the rerun, finalized once at the end; when
        # a child finished (by itself, or its kill came after it recorded its end: seen on
        # a loaded machine), its portion is that one and the rerun, with nothing left to
        # do, opens (and finalizes) a portion of its own. Only the last child can finish.
        assert succeeded <= 1, earlier
        portions = list(oomnitza.portions.values())
        assert len(portions) == 1 + succeeded, (earlier, kills, finished_alone)
        assert all(portion.finalized for portion in portions)
        converged = sessions[1] if succeeded else rerun
        # Counted once each over the whole portion: nothing lost, nothing doubled.
        assert converged.counts.created == USERS
        if succeeded:
            assert rerun.counts.created == 0
        assert len(oomnitza.users) == USERS
        first = portions[0].correlation_id
        digests = [digest for portion, digest in oomnitza.applied_batches if portion == first]
        assert len(digests) == len(set(digests))
        killed_table = users_table(oomnitza)

        with OomnitzaEmulator() as clean:
            monkeypatch.setenv(
                credential_env_name("oomnitza-test"),
                json.dumps({**secret, "token": clean.api_token, "base_url": clean.base_url}),
            )
            clean_file = write_integration(
                tmp_path / "clean" if (tmp_path / "clean").mkdir() is None else tmp_path,
                destination_table(clean),
                base_url=acme.base_url,
            )
            with SQLiteStore(tmp_path / "clean.db") as store:
                run_sync(
                    load_integration(clean_file),
                    credential=credential(acme.base_url),
                    store=store,
                    batch_size=1000,
                )
            assert users_table(clean) == killed_table
