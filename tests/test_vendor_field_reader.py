"""The straight-line field reader of a declarative vendor reads what the field loop reads."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomnitza_connect.errors import MappingError
from oomnitza_connect.models import FieldSpec, FieldType
from oomnitza_connect.vendors.base import _COERCERS, _compile_dict_reader, _reader

SPECS = (
    FieldSpec("plain", "Plain"),
    FieldSpec("flag", "Flag", FieldType.BOOLEAN, default=False),
    FieldSpec("nested", "Nested", path="profile.email"),
    FieldSpec("nested_flag", "Nested flag", FieldType.BOOLEAN, path="profile.ok"),
    FieldSpec("either", "Either", path="team_id|profile.team"),
    FieldSpec("indexed", "Indexed", path="roles.0"),
    FieldSpec("deep", "Deep", path="a.b.c"),
    FieldSpec("count", "Count", FieldType.INTEGER, path="n"),
    FieldSpec("when", "When", FieldType.DATETIME, path="updated"),
    FieldSpec("items", "Items", FieldType.LIST, path="roles"),
    FieldSpec("long", "Long", FieldType.TEXT, path="profile.bio", default="none"),
)
FIELDS = [(spec.key, spec.path or spec.key, _COERCERS[spec.type], spec.default) for spec in SPECS]


def _looped(item: dict[str, Any]) -> tuple[str, Any] | dict[str, Any]:
    values: dict[str, Any] = {}
    for key, path, coerce, default in FIELDS:
        raw = _reader(path)(item)
        try:
            value = coerce(raw)
        except MappingError:
            return key, raw
        values[key] = default if value is None else value
    return values


def _compiled(item: dict[str, Any]) -> tuple[str, Any] | dict[str, Any]:
    try:
        return _compile_dict_reader(FIELDS)(item)
    except Exception as exc:  # _FieldFailure
        return exc.key, exc.raw  # type: ignore[attr-defined]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from(["", " ", "text", "true", "0", "no", "2024-01-01T00:00:00Z", "1700000000"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["email", "ok", "team", "bio", "b", "c"]), inner),
    ),
    max_leaves=8,
)
members = st.dictionaries(
    st.sampled_from(["plain", "flag", "profile", "team_id", "roles", "a", "n", "updated", "other"]),
    values,
    max_size=9,
)


@settings(max_examples=400, deadline=None)
@given(members)
def test_the_compiled_reader_matches_the_loop(member):
    assert repr(_compiled(member)) == repr(_looped(member))


@pytest.mark.parametrize(
    "member",
    [
        {"plain": "x", "flag": True, "profile": {"email": "a@b.c", "ok": False, "bio": ""}},
        {"profile": None, "roles": ["admin"], "a": {"b": {"c": 3}}, "n": "7"},
        {"profile": ["not", "an", "object"], "team_id": "", "updated": 1700000000},
        {"flag": "maybe"},  # not a true/false value: the field fails, named
    ],
)
def test_known_shapes(member):
    assert repr(_compiled(member)) == repr(_looped(member))
