"""What a page recognised whole costs the run's bookkeeping (the vendor side is in
plugins/slack/tests/test_sync_pages.py): its members join the run's sync values and
count as seen, and it is handed on at once, not held until more records come."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

from oomnitza_connect.models import SyncStatus
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


def test_pages_marked_apart_are_held_back_until_the_book_is_asked(tmp_path):
    from oomnitza_connect.store.base import SyncPlan

    with SQLiteStore(tmp_path / "book.db") as store:
        plan = SyncPlan(integration="i", vendor="acme", sync_key="email")
        session = store.start_session(plan)
        book = store.run_book(session.id)
        assert store.run_book(session.id) is book
        book.mark_seen([("U0", "a@x")])
        assert book.repeated(["a@x"]) == set()
        # A page repeating a sync value of an earlier batch is marked member by member.
        repeated = book.mark_unchanged('{"U1":"b@x","U2":"a@x","U3":"c@x"}', 3, apart=True)
        assert repeated == [("U2", "a@x")]
        assert book.mark_unchanged('{"U4":"e@x","U5":"f@x"}', 2, apart=True) == []
        assert book.mark_unchanged('{"U6":"g@x"}', 1, apart=True) == []
        held = store._db.execute("SELECT count(*) FROM temp.run_pages").fetchone()[0]
        assert held == 2
        assert book.repeated(["f@x", "h@x"]) == {"f@x"}
        assert store._db.execute("SELECT count(*) FROM temp.run_pages").fetchone()[0] == 0
        assert book.mark_unchanged('{"U7":"i@x"}', 1, apart=True) == []
        assert book.unseen(["U6", "U7", "U8"]) == {"U8"}
        book.mark_unchanged('{"U9":"j@x"}', 1, apart=True)
        assert dict(book.iter_seen()) == {
            "U0": "a@x", "U1": "b@x", "U2": None, "U3": "c@x", "U4": "e@x", "U5": "f@x",
            "U6": "g@x", "U7": "i@x", "U9": "j@x",
        }  # fmt: skip


def test_pages_sharing_a_member_are_not_apart(tmp_path):
    from oomnitza_connect.store.base import ReadPage, SyncPlan

    with SQLiteStore(tmp_path / "pages.db") as store:
        plan = SyncPlan(integration="i", vendor="acme", sync_key="email")
        first = ReadPage("d1", "{}", '{"U1":"p1","U2":"p2"}', 2, 0)
        second = ReadPage("d2", "{}", '{"U3":"p3"}', 1, 0)
        store.remember_pages(plan, [first, second])
        assert not store._pages_apart("i")
        store.keep_pages(plan, ["d1", "d2"])
        assert store._pages_apart("i")
        # A listing that shifted while it was read: one user on two pages.
        store.remember_pages(plan, [ReadPage("d3", "{}", '{"U2":"p2","U4":"p4"}', 2, 0)])
        assert not store._pages_apart("i")
        store.keep_pages(plan, ["d1", "d2", "d3"])
        assert not store._pages_apart("i")
        assert set(store.page_digests(plan)) == {"d1", "d2", "d3"}
        assert "i" not in store._apart_pages
        store.keep_pages(plan, ["d2", "d3"])
        assert store._pages_apart("i")


def _run_over_four_linked(store: SQLiteStore):
    """A plan and the book of a run started over four people linked by an earlier one."""
    from oomnitza_connect.store.base import NewPerson, PersonWrites, SyncPlan

    plan = SyncPlan(integration="i", vendor="acme", sync_key="email")
    earlier = store.start_session(plan)
    store.write_people(
        plan,
        PersonWrites(
            creates=[NewPerson(f"p{n}@x", {"email": f"p{n}@x"}, f"U{n}") for n in range(4)]
        ),
    )
    store.finish_session(earlier.id, status=SyncStatus.SUCCEEDED)
    return plan, store.run_book(store.start_session(plan).id)


def _statements(store: SQLiteStore) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    return seen


def test_pages_held_that_vouch_for_every_link_vanish_nobody_without_reading_the_links(tmp_path):
    with SQLiteStore(tmp_path / "vanish.db") as store:
        plan, book = _run_over_four_linked(store)
        book.mark_unchanged('{"U0":"p0@x","U1":"p1@x"}', 2, apart=True)
        book.mark_unchanged('{"U2":"p2@x","U3":"p3@x"}', 2, apart=True)
        statements = _statements(store)
        assert store.vanish(plan, book, test_run=False) == []
        # Counted, not compared member by member.
        assert not [s for s in statements if "NOT IN" in s]


def test_deactivated_members_of_pages_recalled_apart_vouch_for_their_links(tmp_path):
    with SQLiteStore(tmp_path / "vanish.db") as store:
        plan, book = _run_over_four_linked(store)
        book.mark_unchanged('{"U0":"p0@x"}', 1, apart=True)
        book.mark_unchanged("{}", 0, apart=True)  # a page of deactivated members only
        book.mark_recalled_seen([("U1", "p1@x"), ("U2", "p2@x"), ("U3", None)])
        statements = _statements(store)
        assert store.vanish(plan, book, test_run=False) == []
        assert not [s for s in statements if "NOT IN" in s]


def test_links_no_held_page_vouches_for_still_vanish(tmp_path):
    from oomnitza_connect.store.base import VanishedPerson

    with SQLiteStore(tmp_path / "vanish.db") as store:
        plan, book = _run_over_four_linked(store)
        book.mark_unchanged('{"U0":"p0@x","U1":"p1@x"}', 2, apart=True)
        # Members marked seen as they come vouch for no link.
        book.mark_seen([("U0", "p0@x"), ("U1", "p1@x")])
        assert store.vanish(plan, book, test_run=False) == [
            VanishedPerson("U2", "p2@x"),
            VanishedPerson("U3", "p3@x"),
        ]
        book.mark_seen([("U9", "p9@x")])  # (seen members vouch for no link)
        assert store.vanish(plan, book, test_run=True) == []  # (vanished already)
