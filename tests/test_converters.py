"""Converters: booleans, numbers, timestamps, lists, emails, names; None passes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oomnitza_connect.errors import MappingError
from oomnitza_connect.sync.converters import (
    ConversionError,
    convert,
    converter_names,
    split_full_name,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("yes", True),
        ("TRUE", True),
        (1, True),
        ("off", False),
        ("", False),
        (0, False),
    ],
)
def test_bool(value, expected):
    assert convert("bool", value) is expected
    assert convert("boolean", value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, [1]])
def test_bool_refuses_what_it_cannot_read(value):
    with pytest.raises(ConversionError, match="true or false"):
        convert("bool", value)


def test_integer():
    assert convert("integer", " 42 ") == 42
    assert convert("int", 3.0) == 3
    with pytest.raises(ConversionError, match="whole number"):
        convert("integer", "4.5")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1_700_000_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("2016-06-14T16:23:07Z", datetime(2016, 6, 14, 16, 23, 7, tzinfo=UTC)),
        ("2016-06-14T18:23:07+02:00", datetime(2016, 6, 14, 16, 23, 7, tzinfo=UTC)),
        ("2016-06-14", datetime(2016, 6, 14, tzinfo=UTC)),
        (datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamp(value, expected):
    converted = convert("timestamp", value)
    assert converted == expected
    assert converted.tzinfo is not None


def test_timestamp_error_says_what_it_expected():
    with pytest.raises(ConversionError, match="cannot convert 'soon' to a timestamp"):
        convert("timestamp", "soon")


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2999, 1, 1),
        timezones=st.just(timezone(timedelta(hours=-5))),
    )
)
def test_timestamp_round_trips_iso_text(moment):
    assert convert("timestamp", moment.isoformat()) == moment


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2999, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
        ),
    ),
    st.sampled_from(["auto", "seconds", "milliseconds"]),
    st.booleans(),
)
def test_iso_text_with_a_zone_reads_as_the_same_moment_in_utc(moment, timespec, zulu):
    # Webex's timestamps ("2021-06-18T11:28:43.000Z") take a fast path: it must
    # give what the general path gives, a datetime in UTC itself.
    text = moment.isoformat(timespec=timespec)
    if zulu and moment.utcoffset() == timedelta(0):
        text = text.replace("+00:00", "Z")
    converted = convert("timestamp", text)
    assert converted.tzinfo is UTC
    assert converted == datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "text",
    ["2016-06-14T16:23:07", " 2016-06-14T16:23:07Z", "2016-06-14T16:23:07Z\n", "2016-06-14"],
)
def test_iso_text_without_a_zone_or_with_spaces_is_utc(text):
    converted = convert("timestamp", text)
    assert converted.tzinfo is UTC
    assert converted.replace(tzinfo=None) == datetime.fromisoformat(text.strip()[:19])


def test_list_and_join():
    assert convert("list", "a, b;c,,") == ["a", "b", "c"]
    assert convert("list", ("x",)) == ["x"]
    assert convert("list", 5) == [5]
    assert convert("join", ["a", "b"]) == "a, b"


def test_email_lowercases_and_checks():
    assert convert("email", "  Egon@GhostBusters.Example ") == "egon@ghostbusters.example"
    assert convert("lower", "ABC") == "abc"
    with pytest.raises(ConversionError, match="not an email address"):
        convert("email", "egon")


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Egon Spengler", "Egon", "Spengler"),
        ("Spengler, Egon", "Egon", "Spengler"),
        ("Mary Ann  van Dyke", "Mary", "Ann van Dyke"),
        ("Cher", "Cher", ""),
    ],
)
def test_full_name_splits(full, first, last):
    assert split_full_name(full) == (first, last)
    assert convert("first_name", full) == first
    assert convert("last_name", full) == last


@pytest.mark.parametrize("name", converter_names())
def test_none_passes_through_every_converter(name):
    assert convert(name, None) is None


def test_unknown_converter_lists_the_known_ones():
    with pytest.raises(MappingError, match=r"no converter named 'upside_down'.*timestamp"):
        convert("upside_down", "x")
