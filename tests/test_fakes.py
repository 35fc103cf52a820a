"""The test kit's fake people: reproducible, unique at scale, and computed only on demand."""

from __future__ import annotations

import tracemalloc

import pytest

from oomnitza_connect.testing.fakes import FakePeople, FakePerson


def test_the_same_seed_gives_the_same_people_and_another_seed_others() -> None:
    first, again = FakePeople(seed=7), FakePeople(seed=7)
    assert [first[i] for i in range(50)] == [again[i] for i in range(50)]
    other = FakePeople(seed=8)
    assert sum(first[i].full_name != other[i].full_name for i in range(50)) > 30


def test_a_person_is_complete_and_consistent() -> None:
    person = FakePeople(seed=3, email_domain="acme.example.com")[12]
    assert isinstance(person, FakePerson)
    assert person.handle == f"{person.first_name}.{person.last_name}.12".lower()
    assert person.email == f"{person.handle}@acme.example.com"
    assert person.email_as_typed.lower() == person.email
    assert person.email_as_typed != person.email  # the name's capitals
    assert person.phone.startswith("+1 555 ")
    assert len(person.phone) == 14
    assert person.time_zone.name
    assert -12 * 3600 <= person.time_zone.offset <= 14 * 3600
    assert 1_700_000_000 <= person.created_at < 1_760_000_000
    assert 0 <= person.roll < 1


def test_emails_and_handles_are_unique_across_100k_people() -> None:
    people = FakePeople(seed=1)
    emails, handles = set(), set()
    for index in range(100_000):
        person = people[index]
        emails.add(person.email)
        handles.add(person.handle)
    assert len(emails) == len(handles) == 100_000


def test_names_titles_and_zones_vary() -> None:
    people = [FakePeople(seed=2)[i] for i in range(2000)]
    assert len({p.first_name for p in people}) == 26
    assert len({p.last_name for p in people}) == 26
    assert len({p.title for p in people}) == 10
    assert len({p.time_zone for p in people}) == 4
    # The kind roll is spread evenly: about a tenth of people fall under 0.1.
    assert 120 < sum(p.roll < 0.1 for p in people) < 280


def test_people_are_computed_on_demand_not_up_front() -> None:
    tracemalloc.start()
    try:
        people = FakePeople(seed=5)
        last = people[99_999]  # the last of 100k, without the 99,999 before it
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000  # bytes: one person, no directory
    assert last.index == 99_999
    assert last == FakePeople(seed=5)[99_999]


def test_an_email_or_handle_leads_back_to_its_person() -> None:
    people = FakePeople(seed=4, email_domain="acme.example.com")
    person = people[4321]
    assert people.index_of_email(person.email) == 4321
    assert people.index_of_email(person.email_as_typed) == 4321
    assert people.index_of_handle(person.handle.upper()) == 4321
    assert people.index_of_email(person.handle + "@elsewhere.example.com") is None
    assert people.index_of_email("nobody.at.all@acme.example.com") is None
    # Right number, wrong name: not that person.
    assert people.index_of_email("zzz.zzz.4321@acme.example.com") is None


def test_a_negative_person_number_is_refused() -> None:
    with pytest.raises(IndexError, match="start at 0"):
        FakePeople()[-1]
