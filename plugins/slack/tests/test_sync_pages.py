"""Unchanged pages: a users page byte-identical to one the last run read whole (Slack's
``cache_ts`` aside), whose people are all still as that run left them, is neither
decoded nor read; any other page is read as usual (sync/pages.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from oomnitza_connect_slack import emulator as emulator_module
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options

from oomnitza_connect import decoding
from oomnitza_connect.models import IntegrationSettings, SyncStatus
from oomnitza_connect.store.sqlite import SQLiteStore, _SQLiteRunBook
from oomnitza_connect.sync import engine
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.pages import PageBook
from oomnitza_connect.vendors.base import _without_items, _WithoutVolatileKeys

PAGE = 7
USERS = 40


@pytest.fixture
def slack(slack_plugin_registered: None) -> Iterator[SlackEmulator]:
    with SlackEmulator(users=USERS, seed=7, enforce_rate_limits=False) as running:
        yield running


@pytest.fixture
def store(tmp_path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "pages.db") as opened:
        yield opened


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of members of every users page the run decoded."""
    sizes: list[int] = []
    loads = decoding.loads

    def counting(content: bytes | str) -> Any:
        body = loads(content)
        if isinstance(body, dict) and isinstance(body.get("members"), list) and body["members"]:
            sizes.append(len(body["members"]))
        return body

    monkeypatch.setattr(decoding, "loads", counting)
    return sizes


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Slack user ids the run mapped."""
    seen: list[str] = []
    check_text = engine.check_text

    def counting(fields: Any) -> None:
        seen.append(fields.get("Slack User Id"))
        check_text(fields)

    monkeypatch.setattr(engine, "check_text", counting)
    return seen


@pytest.fixture
def ticking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The emulator's clock for ``cache_ts``: a new second for every page."""
    now = [1_700_000_000]

    class Clock:
        @staticmethod
        def time() -> float:
            now[0] += 1
            return float(now[0])

    monkeypatch.setattr(emulator_module, "time", Clock)
    return now


def settings(**changes: Any) -> IntegrationSettings:
    values: dict[str, Any] = {
        "name": "slack-pages",
        "vendor": "slack",
        "credential": "slack-pages",
        # Last logins off: the emulator hands them out anew when a user changes, and a
        # person written since a member's fingerprint (a new last login) is read again.
        "settings": {"Slack.PageSize": str(PAGE), "Slack.LastLogins": "off"},
        "sync_key": "Slack User Id",
        "default_role": "Employee",
    }
    values.update(changes)
    return IntegrationSettings(**values)


def sync(slack: SlackEmulator, store: SQLiteStore, **kwargs: Any):
    integration = kwargs.pop("integration", None) or settings()
    session = run_sync(
        integration,
        credential=slack.test_credential(),
        store=store,
        options=fast_options(slack),
        **{"batch_size": 10, **kwargs},
    )
    assert session.status in (SyncStatus.SUCCEEDED, SyncStatus.COMPLETED_WITH_ERRORS)
    return session


def settle(slack: SlackEmulator, store: SQLiteStore, decoded: list[int]):
    """The first sync; *decoded* keeps its pages. Returns its session."""
    return sync(slack, store)


def give_everyone_an_address(slack: SlackEmulator) -> None:
    """Every user with an email address, for integrations whose sync key is email."""
    for user_id in slack.user_ids():
        if not (slack.user(user_id) or {}).get("profile", {}).get("email"):
            slack.update_user(user_id, profile={"email": f"{user_id.lower()}@example.org"})


def counts(session) -> tuple[int, int, int, int, int]:
    c = session.counts
    return c.created, c.updated, c.unchanged, c.skipped, c.failed


def test_an_unchanged_resync_decodes_no_page_and_counts_the_same(
    slack, store, decoded, mapped, ticking
):
    first = settle(slack, store, decoded)
    assert len(decoded) > 3
    assert len(set(mapped)) == first.counts.created
    decoded.clear()
    mapped.clear()

    again = sync(slack, store)
    assert decoded == []
    assert mapped == []
    c = first.counts
    assert counts(again) == (0, 0, c.created + c.updated, c.skipped, 0)
    assert again.counts.vanished == 0


def test_a_changed_user_costs_its_own_page_only(slack, store, decoded, mapped, ticking):
    settle(slack, store, decoded)
    changed = slack.user_id(17)  # on the third page
    slack.update_user(changed, profile={"first_name": "Renamed"})
    decoded.clear()
    mapped.clear()

    session = sync(slack, store)
    assert len(decoded) == 1  # that page alone is decoded
    assert mapped == [changed]  # and of it, the changed user alone is mapped
    assert session.counts.updated == 1
    assert store.find_person("Slack User Id", changed).fields["first_name"] == "Renamed"
    decoded.clear()
    assert sync(slack, store).counts.updated == 0
    assert decoded == []  # the page as read then is recognised from now on


def test_shifted_pages_fall_back_to_each_members_fingerprint(
    slack, store, decoded, mapped, ticking
):
    settle(slack, store, decoded)
    pages = len(decoded)
    gone = next(uid for uid in slack.user_ids()[2:] if store.find_person("Slack User Id", uid))
    slack.remove_user(gone)
    decoded.clear()
    mapped.clear()

    session = sync(slack, store)
    assert len(decoded) >= pages - 1  # every page moved by one user
    assert mapped == []  # yet its unchanged members are not mapped
    assert session.counts.vanished == 1
    assert store.find_person("Slack User Id", gone).vanished_from == ("slack",)
    decoded.clear()
    assert sync(slack, store).counts.vanished == 0
    assert decoded == []


def test_a_person_changed_in_the_store_reads_its_page_again(slack, store, decoded, mapped, ticking):
    settle(slack, store, decoded)
    user = slack.user_id(9)
    person = store.find_person("Slack User Id", user)
    store.update_person_fields(person.id, {"first_name": "Edited by hand"})
    decoded.clear()
    mapped.clear()

    session = sync(slack, store)
    assert len(decoded) == 1
    assert mapped == [user]
    assert session.counts.updated == 1
    assert store.get_person(person.id).fields["first_name"] != "Edited by hand"
    # The page read after all is remembered under its own digest: all recognised now.
    decoded.clear()
    again = sync(slack, store)
    assert decoded == []
    assert counts(again)[:3] == (0, 0, session.counts.total - session.counts.skipped)


def test_the_next_page_is_fetched_while_a_recognised_page_is_checked(
    slack, store, decoded, ticking, monkeypatch
):
    settle(slack, store, decoded)
    decoded.clear()
    check = store.recall_page
    fetched_meanwhile: list[bool] = []

    def listings() -> int:
        return sum(1 for r in list(slack.requests) if r.endpoint == "users.list")

    def slow_check(plan: Any, digest: str) -> Any:
        if not fetched_meanwhile:  # the first page: hold its check until the next page came
            before = listings()
            deadline = time.monotonic() + 5
            while listings() == before and time.monotonic() < deadline:
                time.sleep(0.01)
            fetched_meanwhile.append(listings() > before)
        return check(plan, digest)

    monkeypatch.setattr(store, "recall_page", slow_check)
    session = sync(slack, store)
    assert fetched_meanwhile == [True]
    assert decoded == []  # and every page still recognised, in order
    assert counts(session)[:2] == (0, 0)


def test_a_changed_integration_recognises_no_page(slack, store, decoded, mapped, ticking):
    settle(slack, store, decoded)
    pages = len(decoded)
    decoded.clear()
    mapped.clear()
    session = sync(slack, store, integration=settings(default_role="Contractor"))
    assert len(decoded) == pages
    assert mapped
    assert session.counts.updated == len(mapped)


def test_a_sync_value_taken_earlier_in_the_run_fails_a_recognised_member(
    slack, store, decoded, ticking
):
    give_everyone_an_address(slack)
    by_email = settings(sync_key="email")
    sync(slack, store, integration=by_email)
    # The first page's user takes the address of a user on a later page, which is
    # recognised unchanged: the duplicate rule keeps the first one, as always.
    early, later = slack.user_id(0), slack.user_id(17)
    slack.update_user(early, profile={"email": slack.user(later)["profile"]["email"]})
    decoded.clear()

    session = sync(slack, store, integration=by_email)
    failed = {error.vendor_user_id: error.reason for error in session.errors}
    assert "the first one was kept" in failed.pop(later)
    # (the first one then claims a Slack User Id its new address's person holds)
    assert list(failed) == [early]
    assert len(decoded) == 1


def test_a_test_run_reads_every_page(slack, store, decoded, ticking):
    settle(slack, store, decoded)
    pages = len(decoded)
    decoded.clear()
    session = sync(slack, store, test_run=True)
    assert len(decoded) == pages
    plan = list(store.iter_plan(session.id))
    assert {entry["action"] for entry in plan} <= {"unchanged", "skip"}


def test_only_the_runs_pages_are_kept(slack, store, decoded, ticking, monkeypatch):
    settle(slack, store, decoded)
    books: list[PageBook] = []

    class Recording(PageBook):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            books.append(self)

    monkeypatch.setattr(engine, "PageBook", Recording)
    for index in (3, 4, 5):
        slack.remove_user(slack.user_id(index))
    decoded.clear()
    sync(slack, store)
    # The first page changed; the next one now starts where the third did, so the
    # rest are recognised (a page is known by its bytes, wherever it comes).
    assert len(decoded) == 1
    kept = {row[0] for row in store._db.execute("SELECT digest FROM member_pages")}
    assert kept == set(books[0].digests)
    assert len(kept) == len(books[0].digests)


def test_recognised_pages_are_handed_on_in_listing_order(
    slack, store, decoded, ticking, monkeypatch
):
    settle(slack, store, decoded)
    books: list[Any] = []

    class Recording(PageBook):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.arrived: list[str] = []
            books.append(self)

        def recall(self, content: bytes) -> Any:
            known = super().recall(content)
            if known is not None:
                self.arrived.append(known.recalled.digest)
            return known

    monkeypatch.setattr(engine, "PageBook", Recording)
    decoded.clear()
    sync(slack, store)
    (book,) = books
    assert decoded == []
    assert len(book.arrived) > 2
    # Settled (and so counted, and their sync values claimed) in the order listed.
    assert book.digests == book.arrived


def test_the_volatile_key_is_cut_from_the_last_place_it_appears():
    seen: list[bytes] = []

    class Memo:
        def recall(self, content: bytes) -> None:
            seen.append(content)

        def page_read(self, skeleton: dict[str, Any]) -> None:
            return None

    memo = _WithoutVolatileKeys(Memo(), ("cache_ts",))
    memo.recall(b'{"members":[{"cache_ts":1}],"cache_ts":170,"response_metadata":{}}')
    memo.recall(b'{"members":[{"cache_ts":1}],"cache_ts":171,"response_metadata":{}}')
    memo.recall(b'{"members":[]}')
    assert seen[0] == seen[1] == b'{"members":[{"cache_ts":1}],,"response_metadata":{}}'
    assert seen[2] == b'{"members":[]}'


def test_a_page_without_its_users():
    page = {"data": {"users": [1, 2], "next": "c"}, "total": 2}
    assert _without_items(page, ("data", "users")) == {"data": {"users": [], "next": "c"},
                                                       "total": 2}  # fmt: skip
    assert page["data"]["users"] == [1, 2]
    assert _without_items(page, ("users",)) is None
    assert _without_items([1, 2], ("users",)) is None


def pages_apart(store: SQLiteStore) -> bool:
    return store._pages_apart(settings().name)


def test_a_sync_value_of_a_recognised_page_fails_a_later_changed_member(
    slack, store, decoded, ticking
):
    give_everyone_an_address(slack)
    by_email = settings(sync_key="email")
    sync(slack, store, integration=by_email)
    assert pages_apart(store)
    # A user on the third page takes the address of one on the first, which is
    # recognised: its members are held back, yet the later one fails as always.
    early, later = slack.user_id(0), slack.user_id(17)
    slack.update_user(later, profile={"email": slack.user(early)["profile"]["email"]})
    decoded.clear()

    session = sync(slack, store, integration=by_email)
    failed = {error.vendor_user_id: error.reason for error in session.errors}
    assert list(failed) == [later]
    assert "the first one was kept" in failed[later]
    assert len(decoded) == 1
    assert session.counts.vanished == 0


def test_a_vanished_member_next_to_recognised_pages(slack, store, decoded, mapped, ticking):
    first = settle(slack, store, decoded)
    pages = len(decoded)
    gone = next(
        uid for uid in reversed(slack.user_ids()) if store.find_person("Slack User Id", uid)
    )
    slack.remove_user(gone)
    decoded.clear()
    mapped.clear()

    session = sync(slack, store)
    assert 1 <= len(decoded) < pages  # the pages before it are recognised
    assert session.counts.vanished == 1
    assert [v.vendor_user_id for v in store.iter_vanished(session.id)] == [gone]
    assert store.find_person("Slack User Id", gone).vanished_from == ("slack",)
    others = [p for p in store.iter_people() if p.fields.get("Slack User Id") != gone]
    assert len(others) == first.counts.created - 1
    assert all(not p.vanished_from for p in others)


def test_pages_found_apart_only_after_a_complete_run_looked(slack, store, decoded, mapped, ticking):
    first = settle(slack, store, decoded)
    assert pages_apart(store)
    # A store from before the check (or after an interrupted run) has no word on
    # its pages: the next complete run marks each member as it used to, then looks.
    store._db.execute("DELETE FROM meta WHERE key LIKE 'pages_apart:%'")
    decoded.clear()
    again = sync(slack, store)
    assert decoded == []
    assert counts(again) == (0, 0, first.counts.created, first.counts.skipped, 0)
    assert again.counts.vanished == 0
    assert pages_apart(store)
    assert counts(sync(slack, store)) == counts(again)


def test_an_unchanged_resync_puts_no_member_in_the_runs_tables(
    slack, store, decoded, ticking, monkeypatch
):
    first = settle(slack, store, decoded)
    decoded.clear()
    put_in: list[int] = []
    put_in_pages = _SQLiteRunBook.put_in_pages

    def counting(book: _SQLiteRunBook) -> None:
        put_in.append(book.pages_held)
        put_in_pages(book)

    monkeypatch.setattr(_SQLiteRunBook, "put_in_pages", counting)
    session = sync(slack, store)
    assert decoded == []
    # Every page held back. Their deactivated members, written last, and the
    # vanish query are answered without putting the held members in.
    assert [held for held in put_in if held] == []
    assert counts(session) == (0, 0, first.counts.created, first.counts.skipped, 0)
    assert session.counts.vanished == 0


def test_every_page_recognised_and_a_link_no_page_holds_still_vanishes(
    slack, store, decoded, ticking
):
    settle(slack, store, decoded)
    decoded.clear()
    # A person linked to the integration by hand, whom the vendor never listed.
    with store._db:
        store._db.execute(
            "INSERT INTO people (id, sync_key, sync_value, fields, created_at, updated_at) "
            "VALUES (9999, 'Slack User Id', 'UGHOST', '{}', '2026-01-01', '2026-01-01')"
        )
        store._db.execute(
            "INSERT INTO person_sources (integration, person_id, vendor, vendor_user_id) "
            "VALUES ('slack-pages', 9999, 'slack', 'UGHOST')"
        )
    session = sync(slack, store)
    assert decoded == []  # still every page recognised
    assert session.counts.vanished == 1
    assert [v.vendor_user_id for v in store.iter_vanished(session.id)] == ["UGHOST"]
    # and none of the listed people
    assert [p.id for p in store.iter_people() if p.vanished_from] == [9999]


def test_recognising_pages_changes_no_outcome_when_an_active_user_takes_a_deactivated_value(
    slack, store, decoded, ticking, tmp_path
):
    by_email = settings(sync_key="email")
    give_everyone_an_address(slack)
    with SQLiteStore(tmp_path / "reads-every-page.db") as reader:
        for _ in range(2):  # the second run finds the pages apart
            for each in (store, reader):
                sync(slack, each, integration=by_email)
        inactive = next(uid for uid in slack.user_ids() if (slack.user(uid) or {}).get("deleted"))
        last = slack.user_ids()[-1]
        assert not slack.user(last).get("deleted")
        slack.update_user(last, profile={"email": slack.user(inactive)["profile"]["email"]})
        with reader._db:
            reader._db.execute("DELETE FROM member_pages")  # it recognises nothing
        decoded.clear()
        recognised = sync(slack, store, integration=by_email)
        pages_recognised = len(decoded)
        decoded.clear()
        read = sync(slack, reader, integration=by_email)
        assert pages_recognised < len(decoded)  # one store recognised pages, one did not
        assert counts(recognised) == counts(read)
        assert recognised.counts.vanished == read.counts.vanished
        assert sorted((e.vendor_user_id, e.reason) for e in recognised.errors) == sorted(
            (e.vendor_user_id, e.reason) for e in read.errors
        )
        assert recognised.errors  # the address is contested
        assert people_of(store) == people_of(reader)


def people_of(store: SQLiteStore) -> list[list[tuple[str, Any]]]:
    """Every person's fields (connector_sync_time differs by the moment each run wrote it)."""
    return [
        sorted((k, v) for k, v in p.fields.items() if k != "connector_sync_time")
        for p in store.iter_people()
    ]


class RecognisesNothing(SQLiteStore):
    """A SQLite store that remembers no page and no fingerprint: a run maps every member."""

    remembers_pages = False

    def unchanged_members(self, plan: Any, fingerprints: Any) -> dict[str, tuple[str, bool]]:
        return {}

    def remember_fingerprints(self, plan: Any, members: Any) -> None:
        pass


def came_to(session: Any, store: SQLiteStore) -> dict[str, Any]:
    """What a run came to: its counts, who failed and why, its plan, the people it left."""
    return {
        "counts": (*counts(session), session.counts.vanished),
        "failed": sorted((e.vendor_user_id, e.reason) for e in session.errors),
        "plan": sorted(
            (entry.get("vendor_user_id") or "", entry["action"], entry.get("reason") or "")
            for entry in store.iter_plan(session.id)
        ),
        "people": people_of(store),
    }


def repeats(end: dict[str, Any]) -> list[str]:
    """The users a run failed as repeating a sync value an earlier record had."""
    return [user_id for user_id, reason in end["failed"] if "the first one was kept" in reason]


def resync_both_ways(
    slack: SlackEmulator,
    tmp_path: Any,
    mapped: list[str],
    *,
    taker: int,
    holder: int,
    batch_size: int = 7,
    deleted: tuple[int, ...] = (),
    test_run: bool = False,
    before_each: Any = None,
    sync_key: str = "email",
) -> dict[str, Any]:
    """Sync (by *sync_key*) into a store that recognises pages and one that recognises
    nothing; then user *taker* takes user *holder*'s address and both re-sync three times.

    Asserts that each re-sync came to the same in both (a test run's plan included) and
    that the first store recognised members; returns what the last re-sync came to.
    """
    integration = settings(sync_key=sync_key)
    give_everyone_an_address(slack)
    for index in deleted:
        slack.update_user(slack.user_id(index), deleted=True)

    def run(each: SQLiteStore, *, test_run: bool = False) -> Any:
        if before_each is not None:
            before_each()
        return sync(slack, each, integration=integration, batch_size=batch_size, test_run=test_run)

    with (
        SQLiteStore(tmp_path / "recognises.db") as store,
        RecognisesNothing(tmp_path / "recognises-nothing.db") as reader,
    ):
        for _ in range(2):  # the second run finds the pages apart
            for each in (store, reader):
                run(each)
        taking, holding = slack.user_id(taker), slack.user_id(holder)
        address = slack.user(holding)["profile"]["email"]
        slack.update_user(taking, profile={**slack.user(taking)["profile"], "email": address})
        for _ in range(1 if test_run else 3):
            mapped.clear()
            recognised = came_to(run(store, test_run=test_run), store)
            mapped_there = len(mapped)
            mapped.clear()
            read = came_to(run(reader, test_run=test_run), reader)
            assert mapped_there < len(mapped)  # one store recognised members, one did not
            assert recognised == read
        return recognised


# Users 0-6 are the first page, 7-13 the second; user 1 is Slackbot and 2 a bot (skipped).


@pytest.mark.parametrize(
    ("taker", "holder"),
    [(3, 5), (3, 9), (3, 30), (5, 3), (9, 3), (30, 3)],
    ids=[
        "earlier-takes-same-page", "earlier-takes-next-page", "earlier-takes-last-page",
        "later-takes-same-page", "later-takes-last-page", "last-page-takes-first",
    ],
)  # fmt: skip
def test_a_sync_value_goes_to_the_first_user_listed_whatever_the_store_recognises(
    slack, ticking, mapped, tmp_path, taker, holder
):
    end = resync_both_ways(slack, tmp_path, mapped, taker=taker, holder=holder)
    assert repeats(end) == [slack.user_id(max(taker, holder))]


@pytest.mark.parametrize("batch_size", [3, 4, 8, 13])
@pytest.mark.parametrize(("taker", "holder"), [(6, 8), (8, 6), (3, 9), (9, 3)])
def test_a_sync_value_claimed_across_a_batch_boundary_goes_to_the_first_user_listed(
    slack, ticking, mapped, tmp_path, taker, holder, batch_size
):
    end = resync_both_ways(
        slack, tmp_path, mapped, taker=taker, holder=holder, batch_size=batch_size
    )
    assert repeats(end) == [slack.user_id(max(taker, holder))]


@pytest.mark.parametrize(
    ("taker", "holder", "loser"),
    [(4, 5, 5), (5, 4, 5), (5, 12, 12), (12, 5, 12), (5, 9, 5), (12, 9, 12), (9, 5, 5),
     (3, 12, 12)],
    ids=[
        "deactivated-takes-next-deactivated", "deactivated-takes-previous-deactivated",
        "deactivated-takes-later-deactivated", "deactivated-takes-earlier-deactivated",
        "deactivated-takes-later-active", "deactivated-takes-earlier-active",
        "active-takes-earlier-deactivated", "active-takes-later-deactivated",
    ],
)  # fmt: skip
def test_an_active_user_wins_a_sync_value_then_the_first_deactivated_one_listed(
    slack, ticking, mapped, tmp_path, taker, holder, loser
):
    # Users 4 (by the emulator), 5 and 12 deactivated: written after every active
    # user, in listing order.
    assert slack.user(slack.user_id(4))["deleted"]
    end = resync_both_ways(slack, tmp_path, mapped, taker=taker, holder=holder, deleted=(5, 12))
    assert repeats(end) == [slack.user_id(loser)]


@pytest.mark.parametrize(("taker", "holder"), [(3, 5), (3, 9), (9, 3)])
def test_a_test_run_plans_the_sync_value_for_the_first_user_listed(
    slack, ticking, mapped, tmp_path, taker, holder
):
    end = resync_both_ways(slack, tmp_path, mapped, taker=taker, holder=holder, test_run=True)
    assert repeats(end) == [slack.user_id(max(taker, holder))]


@pytest.mark.parametrize(
    ("taker", "holder", "failed"),
    [(9, 4, []), (5, 4, []), (3, 4, []), (4, 9, []), (3, 9, [3]), (9, 3, [9])],
    ids=[
        "active-takes-earlier-deactivated", "active-takes-previous-deactivated",
        "active-takes-next-deactivated", "deactivated-takes-later-active",
        "active-takes-later-active", "active-takes-earlier-active",
    ],
)  # fmt: skip
def test_a_unique_value_other_than_the_sync_key_whatever_the_store_recognises(
    slack, ticking, mapped, tmp_path, taker, holder, failed
):
    # By Slack User Id, the address is a unique value of its own: a person whose
    # account is deactivated (user 4) gives it up to an active user, one still
    # active keeps it, and a deactivated account does not take it.
    end = resync_both_ways(
        slack, tmp_path, mapped, taker=taker, holder=holder, sync_key="Slack User Id"
    )
    address = slack.user(slack.user_id(holder))["profile"]["email"].lower()  # (mapped so)
    assert [user_id for user_id, _ in end["failed"]] == [slack.user_id(n) for n in failed]
    (person,) = [dict(fields) for fields in end["people"] if dict(fields)["email"] == address]
    active = not slack.user(slack.user_id(holder)).get("deleted")
    assert person["Slack User Id"] == slack.user_id(holder if active else taker)


def test_a_user_listed_twice_after_one_that_took_its_sync_value_fails_both_times(
    slack, ticking, mapped, tmp_path
):
    from oomnitza_connect.testing.emulator import Fault

    def second_page_sends_its_first_user_twice() -> None:
        slack.faults.clear()
        slack.faults.add(Fault.duplicate_record(), endpoint="users.list", after=1)

    end = resync_both_ways(
        slack, tmp_path, mapped, taker=3, holder=7,
        before_each=second_page_sends_its_first_user_twice,
    )  # fmt: skip
    assert repeats(end) == [slack.user_id(7)] * 2


@pytest.mark.parametrize("batch_size", range(3, 26))
def test_every_page_read_whole_is_remembered_whatever_the_batch_size(
    slack, tmp_path, decoded, ticking, batch_size
):
    # The last page's mark can come after a batch just filled up: it still counts.
    # (No deactivated user: those are written after the listing, in a batch of their own.)
    for user_id in slack.user_ids():
        if (slack.user(user_id) or {}).get("deleted"):
            slack.update_user(user_id, deleted=False)
    with SQLiteStore(tmp_path / f"batches-{batch_size}.db") as store:
        sync(slack, store, batch_size=batch_size)
        pages = len(decoded)
        kept = store._db.execute("SELECT count(*) FROM member_pages").fetchone()[0]
        decoded.clear()
        sync(slack, store, batch_size=batch_size)
    assert kept == pages
    assert decoded == []


def test_a_member_no_longer_holding_its_sync_value_reads_its_page_again(
    slack, store, decoded, mapped, ticking
):
    settle(slack, store, decoded)  # the sync key is a custom field, Slack User Id
    user = slack.user_id(9)
    person = store.find_person("Slack User Id", user)
    # Its key row gone (the person row untouched): the check looks the value up.
    with store._db:
        store._db.execute(
            "DELETE FROM person_keys WHERE field = 'Slack User Id' AND person_id = ?",
            (person.id,),
        )
    decoded.clear()
    mapped.clear()
    sync(slack, store)
    assert len(decoded) == 1
    assert user in mapped


@pytest.mark.parametrize("recognised", [True, False])
def test_an_active_user_wins_an_address_a_deactivated_member_kept_unchanged(
    slack, store, decoded, ticking, recognised
):
    by_email = settings(sync_key="email")
    give_everyone_an_address(slack)
    sync(slack, store, integration=by_email)
    sync(slack, store, integration=by_email)
    if not recognised:
        with store._db:
            store._db.execute("DELETE FROM member_pages")  # each member by its fingerprint
    inactive = next(uid for uid in slack.user_ids() if (slack.user(uid) or {}).get("deleted"))
    last = slack.user_ids()[-1]  # on the last page, written in the run's last batch
    assert not slack.user(last).get("deleted")
    address = slack.user(inactive)["profile"]["email"]
    slack.update_user(last, profile={**slack.user(last)["profile"], "email": address})
    session = sync(slack, store, integration=by_email)
    failed = {error.vendor_user_id: error.reason for error in session.errors}
    # The deactivated member, unchanged and written after every active record, gives
    # the address up: the active user does not fail as the duplicate.
    assert "the first one was kept" in failed[inactive]
    assert "the first one was kept" not in failed.get(last, "")


def test_a_closed_page_book_recognises_nothing_more():
    # A fetch that outlives its run (read-ahead waits a second for it) reads its page
    # as usual: no new checking thread, no check against a store the caller closed.
    checked: list[str] = []

    class EveryPageKnown(dict[str, str]):
        def get(self, digest: str, default: Any = None) -> str:
            return "{}"

    class Destination:
        def page_digests(self, plan: Any) -> EveryPageKnown:
            return EveryPageKnown()

        def recall_page(self, plan: Any, digest: str) -> None:
            checked.append(digest)

    book = PageBook(Destination(), None, b"salt")  # type: ignore[arg-type]
    known = book.recall(b'{"members":[]}')
    assert known is not None
    assert book.settle(known.recalled) is None
    book.close()
    assert book.recall(b'{"members":[1]}') is None
    assert len(checked) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("oomnitza-connect-page")]


class SetOfDigests(SQLiteStore):
    """A third-party destination written for page_digests' first shape: a set of digests."""

    def page_digests(self, plan: Any) -> Any:
        return set(super().page_digests(plan))


def test_a_destination_whose_page_digests_are_not_a_mapping_fails_the_run_naming_it(
    slack, tmp_path
):
    # Refused before the first page is fetched, not as an AttributeError from the
    # thread that fetches it: the run fails as for any destination problem.
    with SetOfDigests(tmp_path / "set.db") as store:
        session = run_sync(
            settings(),
            credential=slack.test_credential(),
            store=store,
            options=fast_options(slack),
            batch_size=10,
        )
        assert session.status == SyncStatus.FAILED
        message = session.message or ""
        assert f"{SetOfDigests.__qualname__}.page_digests() returned a set" in message
        assert "expected a Mapping of page digest -> skeleton" in message
        assert store._db.execute("SELECT count(*) FROM people").fetchone()[0] == 0


def sync_tracing(slack: SlackEmulator, store: SQLiteStore):
    """A sync, and the SQL statements it ran on the store's connection."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        return sync(slack, store), statements
    finally:
        store._db.set_trace_callback(None)


def links_compared(statements: list[str]) -> list[str]:
    """The statements that compared the integration's links with the run's members."""
    return [s for s in statements if "person_sources" in s and "NOT IN" in s]


def resync_reading_nothing(slack, store, decoded, first) -> list[str]:
    """Re-sync with nothing changed since *first*: no page decoded, everyone unchanged,
    nobody vanished; the statements it ran."""
    decoded.clear()
    session, statements = sync_tracing(slack, store)
    assert decoded == []
    assert counts(session) == (0, 0, first.counts.created, first.counts.skipped, 0)
    assert session.counts.vanished == 0
    return statements


def test_an_unchanged_resync_with_deactivated_members_vanishes_nobody_by_a_count(
    slack, store, decoded, ticking
):
    first = settle(slack, store, decoded)
    (deactivated,) = store._db.execute(
        "SELECT count(*) FROM member_fingerprints WHERE active = 0"
    ).fetchone()
    assert deactivated > 0  # deleted users, linked, on the recognised pages
    statements = resync_reading_nothing(slack, store, decoded, first)
    # Every link vouched for by a member of a page held apart: counted, not
    # compared with the run's members.
    assert links_compared(statements) == []


def test_pages_of_deactivated_members_only_vouch_for_their_links(slack, store, decoded, ticking):
    for user_id in slack.user_ids()[PAGE : 3 * PAGE]:  # the second and third pages
        slack.update_user(user_id, deleted=True)
    first = settle(slack, store, decoded)
    statements = resync_reading_nothing(slack, store, decoded, first)
    assert links_compared(statements) == []


def test_a_page_served_twice_in_one_run_is_recalled_apart_once(slack, store, decoded):
    from oomnitza_connect.store.base import SyncPlan

    settle(slack, store, decoded)
    plan = SyncPlan(integration="slack-pages", vendor="slack", sync_key="Slack User Id")
    digest = next(iter(store.page_digests(plan)))
    assert pages_apart(store)
    session = store.start_session(plan)
    first, second = store.recall_page(plan, digest), store.recall_page(plan, digest)
    assert first is not None
    assert second is not None
    # Its members would otherwise be held twice: counted unchanged, and vouching
    # for links, twice.
    assert (first.apart, second.apart) == (True, False)
    store.finish_session(session.id, status=SyncStatus.SUCCEEDED)
    again = store.start_session(plan)  # a run of its own recalls it apart again
    assert store.recall_page(plan, digest).apart
    store.finish_session(again.id, status=SyncStatus.SUCCEEDED)


@pytest.mark.parametrize("sync_key", ["Slack User Id", "email"])
def test_an_unchanged_user_listed_twice_fails_the_second_time_as_in_a_first_sync(
    slack, store, decoded, ticking, sync_key
):
    from oomnitza_connect.testing.emulator import Fault

    give_everyone_an_address(slack)
    integration = settings(sync_key=sync_key)
    first = sync(slack, store, integration=integration)
    # The second page's first user sent twice: both copies as their fingerprint says.
    slack.faults.add(Fault.duplicate_record(), endpoint="users.list", after=1)
    again = sync(slack, store, integration=integration)
    assert counts(again) == (0, 0, first.counts.created, first.counts.skipped, 1)
    (error,) = again.errors
    assert "already has" in error.reason
    assert again.counts.vanished == 0
