"""Fake people for emulators: person *n* computed on demand, the same for every run.

:class:`FakePeople` holds no list: ``people[n]`` hashes the seed and *n*
(BLAKE2b, 192 bits) and cuts every value from those bits, so a workspace of
100,000 users costs nothing until a page needs them, and any person is O(1).
Handles and addresses carry *n*, so they are unique however many people there
are, and :meth:`FakePeople.index_of_email` finds *n* again without a search.

>>> people = FakePeople(seed=1, email_domain="acme.example.com")
>>> person = people[41]
>>> person.email == f"{person.handle}@acme.example.com"
True
>>> people.index_of_email(person.email.upper())
41
>>> people[41] == FakePeople(seed=1, email_domain="acme.example.com")[41]
True
"""

from __future__ import annotations

import hashlib

import attrs

__all__ = ["FakePeople", "FakePerson", "TimeZone"]

FIRST_NAMES = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemal", "Lucia", "Marek", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tanvi",
    "Ugo", "Vera", "Wen", "Ximena", "Yusuf", "Zofia",
)  # fmt: skip
LAST_NAMES = (
    "Adler", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haas", "Ivanova",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yilmaz", "Zhou",
)  # fmt: skip
TITLES = (
    "Engineer", "Designer", "Account Executive", "Support Lead", "Recruiter", "Analyst",
    "Product Manager", "Controller", "IT Administrator", "Office Manager",
)  # fmt: skip
CREATED_EPOCH = 1_700_000_000
"""The earliest ``created_at``; fixed so that runs are reproducible."""
CREATED_SPAN = 60_000_000


@attrs.frozen
class TimeZone:
    name: str
    label: str
    offset: int
    """Seconds east of UTC."""


TIME_ZONES = (
    TimeZone("America/Los_Angeles", "Pacific Standard Time", -28800),
    TimeZone("America/New_York", "Eastern Standard Time", -18000),
    TimeZone("Europe/Berlin", "Central European Time", 3600),
    TimeZone("Asia/Tokyo", "Japan Standard Time", 32400),
)


@attrs.frozen
class FakePerson:
    """Person *index* of a :class:`FakePeople`.

    :param bits: the 192 bits every value was cut from; an emulator draws its
        own vendor-specific choices from them (bits 0-15 are :attr:`roll`, free
        for picking a kind; bits 144-191 are used by nothing here).
    """

    index: int
    first_name: str
    last_name: str
    handle: str
    email: str
    title: str
    phone: str
    time_zone: TimeZone
    created_at: int
    """Seconds since the epoch, between 2023-11-14 and 2025-09-15."""
    avatar_hash: str
    color: str
    bits: int

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email_as_typed(self) -> str:
        """The address with the name's capitals (``Ada.Costa.7@…``), as people type them."""
        return f"{self.first_name}.{self.last_name}.{self.index}@{self.email.partition('@')[2]}"

    @property
    def roll(self) -> float:
        """A number in [0, 1) from the person's bits, for choosing a kind by share."""
        return (self.bits & 0xFFFF) / 0x10000


@attrs.frozen
class FakePeople:
    """An endless, reproducible directory: ``people[n]`` is always the same person.

    :param seed: a different seed gives different people.
    :param email_domain: the domain of every address.
    """

    seed: int = 0
    email_domain: str = "example.com"

    def __getitem__(self, index: int) -> FakePerson:
        if index < 0:
            raise IndexError(f"person numbers start at 0, not {index}")
        digest = hashlib.blake2b(b"%d:%d" % (self.seed, index), digest_size=24).digest()
        bits = int.from_bytes(digest, "big")
        first = FIRST_NAMES[(bits >> 16) % len(FIRST_NAMES)]
        last = LAST_NAMES[(bits >> 24) % len(LAST_NAMES)]
        handle = f"{first}.{last}.{index}".lower()
        return FakePerson(
            index=index,
            first_name=first,
            last_name=last,
            handle=handle,
            email=f"{handle}@{self.email_domain}",
            title=TITLES[(bits >> 88) % len(TITLES)],
            phone=f"+1 555 {(bits >> 96) % 10**7:07d}",
            time_zone=TIME_ZONES[(bits >> 32) % len(TIME_ZONES)],
            created_at=CREATED_EPOCH + (bits >> 152) % CREATED_SPAN,
            avatar_hash=f"{(bits >> 40) & 0xFFFFFFFFFFFF:012x}",
            color=f"{(bits >> 120) & 0xFFFFFF:06x}",
            bits=bits,
        )

    def index_of_email(self, email: str) -> int | None:
        """The number of the person with *email* (any case), or ``None``; O(1)."""
        local, _, domain = email.strip().lower().partition("@")
        if domain != self.email_domain.lower():
            return None
        return self.index_of_handle(local)

    def index_of_handle(self, handle: str) -> int | None:
        """The number of the person with *handle* (any case), or ``None``; O(1)."""
        number = handle.strip().lower().rsplit(".", 1)[-1]
        if not number.isdigit():
            return None
        index = int(number)
        return index if self[index].handle == handle.strip().lower() else None
