"""What a page recognised whole costs the run's bookkeeping (the vendor side is in
plugins/slack/tests/test_sync_pages.py): its members join the run's sync values and
count as seen, and it is handed on at once, not held until more records come."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

from oomnitza_connect.store.base import RunBook
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import _lookup_chunks, read_ahead
from oomnitza_connect.sync.pages import PageRead


class MemoryBook(RunBook):
    """A run book in memory (as a ledger without temporary tables keeps one)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.seen: dict[str, str | None] = {}

    def repeated(self, sync_values: Sequence[str]) -> set[str]:
        found = self.keys & set(sync_values)
        self.keys.update(sync_values)
        return found

    def mark_seen(self, users: Iterable[tuple[str, str | None]]) -> None:
        for user_id, value in users:
            self.seen.setdefault(user_id, value)

    def unseen(self, vendor_user_ids: Sequence[str]) -> set[str]:
        return set(vendor_user_ids) - set(self.seen)

    def iter_seen(self) -> Iterator[tuple[str, str | None]]:
        yield from self.seen.items()


def check_marking(book: RunBook) -> None:
    book.mark_seen([("U0", "a@x")])
    assert book.repeated(["a@x"]) == set()
    repeated = book.mark_unchanged('{"U1":"b@x","U2":"a@x","U3":"c@x"}', 3)
    assert repeated == [("U2", "a@x")]
    assert book.repeated(["b@x", "c@x", "d@x"]) == {"b@x", "c@x"}
    assert dict(book.iter_seen()) == {"U0": "a@x", "U1": "b@x", "U2": None, "U3": "c@x"}
    assert book.mark_unchanged('{"U4":"e@x"}', 1) == []
    assert book.unseen(["U4", "U5"]) == {"U5"}


def test_an_unchanged_page_is_marked_in_any_ledgers_book():
    check_marking(MemoryBook())


def test_an_unchanged_page_is_marked_in_sqlite_in_two_statements(tmp_path):
    from oomnitza_connect.store.base import SyncPlan

    with SQLiteStore(tmp_path / "book.db") as store:
        plan = SyncPlan(integration="i", vendor="acme", sync_key="email")
        session = store.start_session(plan)
        check_marking(store.run_book(session.id))


def test_a_page_mark_is_handed_on_without_waiting_for_more_records():
    handed = threading.Event()
    mark = PageRead("digest", "{}")

    def records() -> Iterator[object]:
        yield "U1"
        yield mark
        # The next page comes only once the consumer has the mark.
        assert handed.wait(timeout=5), "the mark waited for a whole chunk"
        yield "U2"

    got: list[object] = []
    for item in read_ahead(records(), chunk=100, ends_chunk=lambda item: item is mark):
        got.append(item)
        if item is mark:
            handed.set()
    assert got == ["U1", mark, "U2"]


def test_a_lookup_chunk_ends_after_a_page_mark():
    mark = PageRead("digest", "{}")
    items = ["U1", "U2", mark, "U3", "U4", "U5"]
    assert list(_lookup_chunks(iter(items), 2)) == [["U1", "U2"], [mark], ["U3", "U4"], ["U5"]]
