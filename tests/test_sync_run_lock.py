"""Two syncs into one store at once: the second waits for the first, nothing fails.

Without the run lock (``sync/run_lock.py``) both runs look a person up before
the other commits, and one of them loses a whole batch to a unique value the
other has just claimed. Real threads, a real SQLite file and two vendor
emulators over loopback with the same people.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import attrs
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.models import SyncSession, SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.sync.run_lock import lock_path, sync_lock


def test_two_syncs_into_one_file_at_once_both_succeed(tmp_path: Path, caplog) -> None:
    database = tmp_path / "people.db"
    results: dict[int, SyncSession] = {}
    # Two accounts with the same people, slow pages so that the runs overlap.
    with (
        register_plugin(AcmePlugin(per_page=5), name="acme-test"),
        AcmeEmulator(60, page_delay=0.02) as one,
        AcmeEmulator(60, page_delay=0.02) as other,
    ):
        settings = load_integration(write_integration(tmp_path))
        emulators = (one, other)

        def run(index: int) -> None:
            with SQLiteStore(database) as store:
                results[index] = run_sync(
                    attrs.evolve(settings, name=f"workspace-{index}"),
                    credential=credential(emulators[index].base_url),
                    store=store,
                    batch_size=10,
                )

        with caplog.at_level(logging.WARNING, logger="oomnitza_connect.sync.run_lock"):
            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert {r.status for r in results.values()} == {SyncStatus.SUCCEEDED}, results
    assert all(r.counts.failed == 0 for r in results.values())
    first, second = sorted(results.values(), key=lambda r: r.started_at)
    assert first.counts.created == 60
    assert second.counts.created == 0  # the same people, already there
    assert "another sync is writing people.db; waiting for it to end" in caplog.text
    with SQLiteStore(database) as store:
        assert sum(1 for _ in store.iter_people()) == 60


def test_the_lock_is_per_file_into_sqlite_and_per_integration_otherwise(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as ledger, SQLiteStore(tmp_path / "b.db") as other:
        assert lock_path(ledger, ledger, "one") == lock_path(ledger, ledger, "two")
        into_other = lock_path(ledger, other, "one")
        assert into_other == Path(f"{other.path}.sync-lock")

        class Remote:  # any destination that is not a SQLite file (Oomnitza)
            pass

        remote = Remote()
        one = lock_path(ledger, remote, "one")  # type: ignore[arg-type]
        two = lock_path(ledger, remote, "two")  # type: ignore[arg-type]
        assert one is not None
        assert two is not None
        assert one != two
        assert one.parent == two.parent == tmp_path
        (tmp_path / "alias.db").symlink_to(tmp_path / "a.db")
        with SQLiteStore(tmp_path / "alias.db") as alias:
            assert lock_path(alias, alias, "one") == lock_path(ledger, ledger, "one")
    with SQLiteStore(":memory:") as memory:
        assert lock_path(memory, memory, "one") is None


def test_a_held_lock_is_released_when_the_run_ends_or_raises(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as store:
        try:
            with sync_lock(store, store, "one"):
                raise RuntimeError("the run broke")
        except RuntimeError:
            pass
        entered = threading.Event()

        def again() -> None:
            with sync_lock(store, store, "two"):
                entered.set()

        thread = threading.Thread(target=again)
        thread.start()
        thread.join(timeout=10)
        assert entered.is_set()
