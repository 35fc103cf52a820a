"""Users pages a run recognises by their bytes: an unchanged page is neither decoded nor read.

A re-sync of people who did not change would otherwise decode every page,
fingerprint every member and look each fingerprint up. Instead the run keeps,
for each page it read whole, a digest of the page's bytes (keyed on the
integration's configuration digest, so a changed mapping, filter or version
recognises nothing), the page without its users and its members'
fingerprints. When the next run receives a page with the same digest and every
one of its members still is as its fingerprint's write left it, the page is
handed on as a :class:`~oomnitza_connect.store.base.RecalledPage`: its members
are counted unchanged and marked seen in one set-based statement.

A page that differs in one byte (a changed user, users shifted by one) is
decoded and read as usual; its members' own fingerprints still spare the
unchanged ones mapping.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..decoding import loads
from ..errors import StoreError
from ..store.base import Destination, ReadPage, RecalledPage, SyncPlan
from ..transport.pagination import KnownPage

__all__ = ["PageBook", "PageRead", "PendingPage", "is_page_mark"]


class PageRead:
    """Handed on after the users of a page read whole (what remembering it needs)."""

    __slots__ = ("digest", "skeleton")

    id = None  # the engine's stream of records holds it among them: it has no user id
    raw = None

    def __init__(self, digest: str, skeleton: str) -> None:
        self.digest = digest
        self.skeleton = skeleton

    def remembered(self, members: str, count: int, skipped: int) -> ReadPage:
        return ReadPage(self.digest, self.skeleton, members, count, skipped)


class PendingPage:
    """A recognised page whose members are being checked on the book's own thread.

    The users pages go on arriving meanwhile (the check is SQL, the fetch is
    HTTP: both wait without the GIL); :meth:`PageBook.settle` gives the verdict.
    """

    __slots__ = ("check", "content", "digest")

    def __init__(self, digest: str, content: bytes, check: Future[RecalledPage | None]) -> None:
        self.digest = digest
        self.content = content
        """The page's body, decoded after all if one of its members changed."""
        self.check = check


class PageBook:
    """The run's :class:`~oomnitza_connect.transport.http.PageMemo` over the destination's pages.

    Used by the one thread that fetches the users pages; the check of a
    recognised page's members runs on a thread of the book's own, so that the
    next page is fetched while the last one is checked. Close it when the
    listing ends.
    """

    def __init__(self, destination: Destination, plan: SyncPlan, salt: bytes) -> None:
        self.destination = destination
        self.plan = plan
        self._last: str | None = None
        self.digests: list[str] = []
        """The digest of every page of the run recalled or read whole, in order."""
        # Asked once: a page never seen (every page of a first sync) costs no SQL.
        self.known = _known_pages(destination, plan)
        self._checker: ThreadPoolExecutor | None = None
        self._closed = False
        # SHA-256 keyed by a prefix, not BLAKE2b: OpenSSL's SHA-256 uses the SHA
        # instructions of current x86 and ARM CPUs and hashes 100,000 Slack users'
        # pages in 40 ms against BLAKE2b's 73, on the thread that fetches them.
        self._keyed = hashlib.sha256(salt)

    def recall(self, content: bytes) -> Any | None:
        hasher = self._keyed.copy()
        hasher.update(content)
        digest = hasher.hexdigest()[:32]
        self._last = digest
        skeleton = self.known.get(digest)
        if skeleton is None or self._closed:
            return None  # (closed: a fetch that outlived its run reads the page as usual)
        if self._checker is None:
            self._checker = ThreadPoolExecutor(1, thread_name_prefix="oomnitza-connect-page-check")
        check = self._checker.submit(self.destination.recall_page, self.plan, digest)
        self._last = None
        return KnownPage(loads(skeleton), PendingPage(digest, content, check))

    def settle(self, pending: PendingPage) -> RecalledPage | None:
        """Wait for *pending*'s check: the page, or ``None`` when its body must be read."""
        recalled = pending.check.result()
        if recalled is not None:
            self.digests.append(pending.digest)
        return recalled

    def page_read(
        self, skeleton: dict[str, Any], pending: PendingPage | None = None
    ) -> PageRead | None:
        digest: str | None
        if pending is not None:
            digest = pending.digest  # recognised, then read after all
        else:
            digest, self._last = self._last, None
        if digest is None:
            return None
        self.digests.append(digest)
        return PageRead(digest, json.dumps(skeleton, separators=(",", ":")))

    def close(self) -> None:
        """Stop the checking thread for good (a check still queued is dropped)."""
        self._closed = True
        if self._checker is not None:
            self._checker.shutdown(wait=True, cancel_futures=True)
            self._checker = None


def _known_pages(destination: Destination, plan: SyncPlan) -> Mapping[str, str]:
    """The destination's :meth:`~Destination.page_digests`, refused unless a mapping.

    Asked before the first page is fetched, so that a destination written for
    the method's first shape (a set of digests) fails the run naming itself,
    not at the first page as an ``AttributeError`` from the fetching thread.
    A set is not taken as "those pages, skeletons unknown": a recognised page
    would then be decoded for its next cursor all the same, which is the
    work the skeletons are there to save.
    """
    known = destination.page_digests(plan)
    if not isinstance(known, Mapping):
        kind = type(destination)
        raise StoreError(
            f"{kind.__module__}.{kind.__qualname__}.page_digests() returned"
            f" a {type(known).__name__}; expected a Mapping of page"
            " digest -> skeleton (the page's JSON without its users, as remember_pages"
            " was given it), or {} when it remembers none"
        )
    return known


def is_page_mark(item: Any) -> bool:
    """Whether *item* of the record stream is a page's mark rather than a user."""
    return type(item) is PageRead or type(item) is RecalledPage
