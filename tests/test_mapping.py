"""The built-in map_record: sources, dotted paths, expressions, converters, filters, targets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oomnitza_connect.errors import MappingError
from oomnitza_connect.models import FieldMapping, VendorRecord
from oomnitza_connect.plugins import get_plugin_manager
from oomnitza_connect.sync.mapping import (
    apply_mapping,
    merge_mappings,
    normalize_target,
    record_passes,
    record_variables,
)

RECORD = VendorRecord(
    vendor="acme",
    id="U1",
    fields={"login": "egon", "mail": "Egon@X.io", "name": "Egon Spengler", "admin": "yes"},
    raw={"profile": {"title": "Scientist", "team": {"name": "Ghosts"}}},
)
CONTEXT = {"sync_time": datetime(2026, 1, 2, tzinfo=UTC), "api_version": "v9", "vendor": "acme"}


def test_sources_converters_and_expressions():
    mapping = (
        FieldMapping(target="Username", source="login"),
        FieldMapping(target="email", source="mail", converter="email"),
        FieldMapping(target="first_name", source="name", converter="first_name"),
        FieldMapping(target="Admin", source="admin", converter="bool"),
        FieldMapping(target="position", source="profile.title"),
        FieldMapping(target="Team", source="profile.team.name"),
        FieldMapping(target="Greeting", expression="Hi {{ login | upper }} ({{ id }})"),
        FieldMapping(target="connector_sync_time", expression="{{ sync_time }}"),
        FieldMapping(target="vendor_api_version", expression="{{ api_version }}"),
        FieldMapping(target="Missing", source="nope"),
    )
    mapped = apply_mapping(RECORD, mapping, CONTEXT)
    assert mapped == {
        "username": "egon",
        "email": "egon@x.io",
        "first_name": "Egon",
        "Admin": True,
        "position": "Scientist",
        "Team": "Ghosts",
        "Greeting": "Hi EGON (U1)",
        "connector_sync_time": datetime(2026, 1, 2, tzinfo=UTC),
        "vendor_api_version": "v9",
        "Missing": None,
    }


def test_the_hook_goes_through_the_builtin_plugin():
    results = get_plugin_manager().hook.map_record(
        vendor="acme",
        record=RECORD,
        mapping=(FieldMapping(target="email", source="mail", converter="lower"),),
        context=CONTEXT,
    )
    assert results == {"email": "egon@x.io"}


def test_a_failing_converter_names_the_target():
    with pytest.raises(MappingError, match="field 'Hired': cannot convert 'egon' to a timestamp"):
        apply_mapping(
            RECORD, (FieldMapping(target="Hired", source="login", converter="timestamp"),), CONTEXT
        )


def test_a_missing_variable_is_named():
    with pytest.raises(MappingError, match="field 'X': variable 'nickname' is not defined"):
        apply_mapping(RECORD, (FieldMapping(target="X", expression="{{ nickname }}"),), CONTEXT)


def test_expressions_are_sandboxed():
    with pytest.raises(MappingError, match="field 'X'"):
        apply_mapping(
            RECORD, (FieldMapping(target="X", expression="{{ login.__class__.__mro__ }}"),), CONTEXT
        )


def test_filters():
    variables = record_variables(RECORD, CONTEXT)
    assert record_passes(["login == 'egon'", "admin == 'yes'"], variables)
    assert not record_passes(["login == 'egon'", "admin == 'no'"], variables)
    with pytest.raises(MappingError, match="filter failed: variable 'deleted' is not defined"):
        record_passes(["not deleted"], variables)


def test_targets_normalize_labels_but_keep_custom_names():
    assert normalize_target("Email") == "email"
    assert normalize_target("Last Login") == "last_login"
    assert normalize_target("Slack User Id") == "Slack User Id"


def test_integration_mappings_replace_standard_targets_and_add_new_ones():
    standard = (
        FieldMapping(target="email", source="mail"),
        FieldMapping(target="username", source="login"),
    )
    custom = (
        FieldMapping(target="Email", source="alt_mail"),
        FieldMapping(target="Team", source="team"),
    )
    merged = merge_mappings(standard, custom)
    assert [(m.target, m.source) for m in merged] == [
        ("Email", "alt_mail"),
        ("username", "login"),
        ("Team", "team"),
    ]


FILTER_CASES = [
    "not is_bot",
    "user_id != 'USLACKBOT'",
    "not is_bot and user_id != 'USLACKBOT'",
    "deleted == false or role in ['admin', 'owner']",
    "1 < count <= 5",
    "profile.email == 'a@x.io'",
    "profile['team'] != 'ghosts'",
    "role not in ('guest',)",
    "email.endswith('@x.io')",
    "missing_name",
    "profile.nope == 1",
]
FILTER_VARIABLES = [
    {
        "is_bot": False,
        "user_id": "U1",
        "deleted": False,
        "role": "member",
        "count": 3,
        "profile": {"email": "a@x.io", "team": "red"},
        "email": "a@x.io",
    },
    {
        "is_bot": True,
        "user_id": "USLACKBOT",
        "deleted": True,
        "role": "admin",
        "count": 9,
        "profile": {"email": "b@x.io", "team": "ghosts"},
        "email": "b@y.io",
    },
]


@pytest.mark.parametrize("expression", FILTER_CASES)
@pytest.mark.parametrize("variables", FILTER_VARIABLES)
def test_compiled_filters_agree_with_the_sandbox(expression, variables):
    from oomnitza_connect.sync.mapping import compile_filters

    def outcome(check):
        try:
            return bool(check(variables))
        except MappingError as exc:
            return type(exc), str(exc).split(" in template")[0]

    compiled = compile_filters([expression])
    sandboxed = outcome(lambda v: record_passes([expression], v))
    assert outcome(compiled) == sandboxed


def test_variables_for_picks_only_the_named_variables_with_record_precedence():
    from oomnitza_connect.sync.mapping import variables_for

    record = VendorRecord(vendor="acme", id="U1", fields={"login": "egon", "vendor": "own"})
    found = variables_for({"login", "id", "vendor", "sync_time", "nowhere"}, record, CONTEXT)
    expected = {"login": "egon", "id": "U1", "vendor": "own", "sync_time": CONTEXT["sync_time"]}
    assert found == expected
    assert found == {k: v for k, v in record_variables(record, CONTEXT).items() if k in found}


PLAIN_FILTERS = [
    *(case for case in FILTER_CASES if "endswith" not in case),
    "true",
    "none == none and not false",
    "is_bot == True or deleted != False",
    "not (is_bot or deleted)",
    "role in ['admin', 'owner'] and count > 2.5",
    "user_id == 'U' 'SLACKBOT'",
    'profile.team == "red"',
]


@pytest.mark.parametrize("expression", PLAIN_FILTERS)
def test_plain_filters_are_read_by_python_as_jinja_reads_them(expression):
    from oomnitza_connect.sync.mapping import _parser, _plain, plain_filter
    from oomnitza_connect.templating import variables_of

    read = plain_filter(expression)
    assert read is not None
    check, names = read
    assert names == variables_of("{{ " + expression + " }}")
    through_jinja = _plain(_parser().parse("{{ " + expression + " }}").body[0].nodes[0])

    def outcome(closure, variables):
        try:
            return ("value", closure(variables))
        except Exception as exc:
            return ("raised", type(exc).__name__, str(exc))

    for variables in FILTER_VARIABLES:
        assert outcome(check, variables) == outcome(through_jinja, variables)


@pytest.mark.parametrize(
    "expression",
    [
        "email.endswith('@x.io')",  # a method call: the sandbox's
        "role is none",  # a Jinja test, Python's identity
        "user_id # a comment Python would drop",
        "user_id == 'a\\nb'",  # escapes: left to Jinja's reading
        "user_id == r'USLACKBOT'",
        "user_id == b'U'",
        "user_id == f'{role}'",
        "profile['team'][0:2] == 're'",
        "-1 < count",
        "role | length > 3",
        "role ~ 'x'",
        "{'a': 1} == profile",
        "role if is_bot else user_id",
        "profile[role] == 1",
        "(count := 1)",
        "class == 1",
        "is_bot) or (deleted",
        "",
    ],
)
def test_what_python_would_read_otherwise_is_left_to_jinja(expression):
    from oomnitza_connect.sync.mapping import plain_filter

    assert plain_filter(expression) is None
