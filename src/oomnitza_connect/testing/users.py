"""Generated users with per-user changes, for emulators that compute user *n* on demand.

A vendor emulator mixes :class:`GeneratedUsers` in (before its
:class:`~oomnitza_connect.testing.emulator.Emulator` base), says how user *n*
looks (:meth:`~GeneratedUsers.generate_user`) and what its id is
(:meth:`~GeneratedUsers.user_id`), and gets what tests do to a directory:
change a user's fields, take a user out, or send an odd record (``null``, a
list, an object without an id) in a user's place, without storing any user
that was not changed.

>>> from oomnitza_connect.testing.emulator import Emulator
>>> from oomnitza_connect.testing.fakes import FakePeople
>>> class AcmeEmulator(GeneratedUsers, Emulator):
...     def user_id(self, index: int) -> str:
...         return f"u{index}"
...     def generate_user(self, index: int) -> dict[str, object]:
...         return {"id": self.user_id(index), "name": FakePeople()[index].full_name}
>>> acme = AcmeEmulator()
>>> acme.user_count = 3
>>> acme.update_user("u1", name="Renamed")
>>> acme.remove_user("u2")
>>> [acme.user_at(i)["name"] for i in acme.listed_indexes()][1], acme.user_ids()
('Renamed', ['u0', 'u1'])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from .fakes import FakePeople

__all__ = ["GeneratedUsers", "pick_kind"]

T = TypeVar("T")


def pick_kind(
    index: int, roll: float, special: Sequence[str], shares: Sequence[tuple[str, float]]
) -> str:
    """The kind of user *index*: ``special[index]`` for the first ones (so even a tiny
    directory has one of each), then the first of *shares* whose cumulative upper bound
    exceeds *roll* (a number in [0, 1) drawn for the user), else ``"person"``.

    >>> pick_kind(0, 0.5, ("owner",), (("bot", 0.1), ("guest", 0.2)))
    'owner'
    >>> pick_kind(7, 0.15, ("owner",), (("bot", 0.1), ("guest", 0.2)))
    'guest'
    """
    if index < len(special):
        return special[index]
    return next((kind for kind, upper in shares if roll < upper), "person")


class GeneratedUsers:
    """Per-user changes over users computed from their number.

    :attr:`user_count` users, numbered from 0, minus the removed ones, are listed.
    """

    user_count: int
    merged_fields: ClassVar[tuple[str, ...]] = ()
    """Fields whose changes are merged into the generated object instead of replacing
    it (Slack's ``profile={"title": ...}`` changes one entry of the profile)."""
    people: FakePeople | None = None
    """The fake people users are made from, when they are (:meth:`index_of_email` uses it)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.users_lock = threading.Lock()
        self._derived: dict[str, tuple[int, Any]] = {}
        self.overrides: dict[int, dict[str, Any]] = {}
        """user number -> the changes :meth:`update_user` made."""
        self.raw_records: dict[int, Any] = {}
        """user number -> what a listing sends instead of the user (:meth:`serve_raw_user`)."""
        self.removed: set[int] = set()

    # -- what the vendor emulator says ------------------------------------------

    def user_id(self, index: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} must say what user {index}'s id is")

    def generate_user(self, index: int) -> dict[str, Any]:
        """The vendor's JSON of user *index* before any change."""
        raise NotImplementedError(f"{type(self).__name__} must generate user {index}")

    def users_changed(self) -> None:
        """Called after every change; an emulator that caches what users imply drops it."""

    def email_of(self, user: dict[str, Any]) -> str | None:
        """The address in a user's JSON, for :meth:`index_of_email`."""
        return None

    def derived(self, name: str, compute: Callable[[], T]) -> T:
        """*compute*'s answer, kept until a user changes or :attr:`user_count` does
        (what a directory implies, such as who has access-log entries)."""
        with self.users_lock:
            kept = self._derived.get(name)
        if kept is not None and kept[0] == self.user_count:
            return kept[1]  # type: ignore[no-any-return]
        value = compute()
        with self.users_lock:
            self._derived[name] = (self.user_count, value)
        return value

    # -- lookups ------------------------------------------------------------------

    def exists(self, index: int) -> bool:
        return 0 <= index < self.user_count and index not in self.removed

    def listed_indexes(self) -> Iterator[int]:
        """The numbers of the users a listing holds now, in order."""
        return (i for i in range(self.user_count) if i not in self.removed)

    def index_of(self, user_id: str) -> int | None:
        """The number of *user_id*, or ``None``; a walk, so an emulator whose ids carry
        their number overrides it."""
        return next((i for i in self.listed_indexes() if self.user_id(i) == user_id), None)

    def index_of_email(self, email: str) -> int | None:
        """The number of the listed user whose address is *email* (any case), or ``None``.

        A changed address is looked for among the changed users; any other is found
        from :attr:`people` without a walk, then checked against the user's JSON.
        """
        wanted = email.strip().lower()

        def has_it(index: int) -> bool:
            return (
                self.exists(index) and (self.email_of(self.user_at(index)) or "").lower() == wanted
            )

        with self.users_lock:
            changed = list(self.overrides)
        found = next((index for index in changed if has_it(index)), None)
        if found is None and self.people is not None:
            guess = self.people.index_of_email(wanted)
            found = guess if guess is not None and has_it(guess) else None
        return found

    def user_ids(self) -> list[str]:
        """Every user id a listing holds now, in listing order."""
        return [self.user_id(i) for i in self.listed_indexes()]

    def expected_user_ids(self) -> set[str]:
        return set(self.user_ids())

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The JSON of *user_id* as the vendor would send it, or ``None``."""
        index = self.index_of(user_id)
        return None if index is None else self.user_at(index)

    def user_at(self, index: int) -> dict[str, Any]:
        """User *index*, with the changes made to it."""
        user = self.generate_user(index)
        changes = dict(self.overrides.get(index) or {})
        merged = {field: changes.pop(field, None) for field in self.merged_fields}
        user.update(changes)
        for field, values in merged.items():
            if values:
                user[field] = {**(user.get(field) or {}), **values}
        return user

    # -- changes ------------------------------------------------------------------

    def update_user(self, user_id: str, **changes: Any) -> None:
        """Change a user's fields (a field of :attr:`merged_fields` is merged into)."""
        index = self._existing(user_id)
        with self.users_lock:
            current = self.overrides.setdefault(index, {})
            for field in self.merged_fields:
                values = changes.pop(field, None)
                if values is not None:
                    current.setdefault(field, {}).update(values)
            current.update(changes)
        self._changed()

    def serve_raw_user(self, user_id: str, raw: Any) -> None:
        """Send *raw* (any JSON value, even ``null``) in listings instead of the user."""
        index = self._existing(user_id)
        with self.users_lock:
            self.raw_records[index] = raw

    def remove_user(self, user_id: str) -> None:
        """Take a user out of the directory entirely (as if never there)."""
        index = self._existing(user_id)
        with self.users_lock:
            self.removed.add(index)
        self._changed()

    def _changed(self) -> None:
        with self.users_lock:
            self._derived.clear()
        self.users_changed()

    def _existing(self, user_id: str) -> int:
        index = self.index_of(user_id)
        if index is None:
            raise KeyError(user_id)
        return index
