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
from typing import Any

from ..decoding import loads
from ..store.base import Destination, ReadPage, RecalledPage, SyncPlan
from ..transport.pagination import KnownPage

__all__ = ["PageBook", "PageRead", "is_page_mark"]


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


class PageBook:
    """The run's :class:`~oomnitza_connect.transport.http.PageMemo` over the destination's pages.

    Used by the one thread that fetches the users pages.
    """

    def __init__(self, destination: Destination, plan: SyncPlan, salt: bytes) -> None:
        self.destination = destination
        self.plan = plan
        self.salt = salt
        self._last: str | None = None
        self.digests: list[str] = []
        """The digest of every page of the run recalled or read whole, in order."""
        # Asked once: a page never seen (every page of a first sync) costs no SQL.
        self.known = destination.page_digests(plan)

    def recall(self, content: bytes) -> Any | None:
        digest = hashlib.blake2b(content, key=self.salt, digest_size=16).hexdigest()
        self._last = digest
        if digest not in self.known:
            return None
        recalled = self.destination.recall_page(self.plan, digest)
        if recalled is None:
            return None
        self._last = None
        self.digests.append(digest)
        return KnownPage(loads(recalled.skeleton), recalled)

    def page_read(self, skeleton: dict[str, Any]) -> PageRead | None:
        digest, self._last = self._last, None
        if digest is None:
            return None
        self.digests.append(digest)
        return PageRead(digest, json.dumps(skeleton, separators=(",", ":")))


def is_page_mark(item: Any) -> bool:
    """Whether *item* of the record stream is a page's mark rather than a user."""
    return type(item) is PageRead or type(item) is RecalledPage
