"""TOML configuration: bad files fail with the file, the key path, the value and what is allowed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oomnitza_connect import ConfigurationError, Secret
from oomnitza_connect.config import load_toml, structure, unstructure
from oomnitza_connect.models import (
    AuthKind,
    Credential,
    FieldMapping,
    IntegrationSettings,
    SyncPreference,
    UserSelection,
)

GOOD = """
name = "slack-main"
vendor = "slack"
credential = "slack-bot"
selection = "users+saas"
preference = "update_only"
contacts = ["it@example.com"]
filters = ["not is_bot"]
sync_key = "email"
default_role = "Employee"

[settings]
team_id = "T123"

[[mapping]]
target = "Slack User Id"
source = "id"
unique = true

[[mapping]]
target = "full_name"
expression = "{{ first_name }} {{ last_name }}"
"""

BASE = {"name": "a", "vendor": "slack", "credential": "c"}


def _load(tmp_path: Path, text: str) -> IntegrationSettings:
    path = tmp_path / "integration.toml"
    path.write_text(text)
    return structure(load_toml(path), IntegrationSettings, file=path)


def _error(
    data: dict[str, Any], cls: type = IntegrationSettings, **kwargs: Any
) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        structure(data, cls, file="int.toml", **kwargs)
    return caught.value


def test_a_good_file_loads_into_frozen_models(tmp_path: Path) -> None:
    settings = _load(tmp_path, GOOD)
    assert settings.selection is UserSelection.USERS_AND_SAAS
    assert settings.preference is SyncPreference.UPDATE_ONLY
    assert settings.contacts == ("it@example.com",)
    assert settings.filters == ("not is_bot",)
    assert settings.settings == {"team_id": "T123"}
    assert settings.mapping == (
        FieldMapping("Slack User Id", source="id", unique=True),
        FieldMapping("full_name", expression="{{ first_name }} {{ last_name }}"),
    )
    assert settings.use_standard_mapping is True
    assert settings.filters is not None


def test_unstructure_round_trips(tmp_path: Path) -> None:
    settings = _load(tmp_path, GOOD)
    assert structure(unstructure(settings), IntegrationSettings) == settings


@pytest.mark.parametrize(
    ("data", "key_path", "message"),
    [
        pytest.param(
            {**BASE, "selection": "everyone"},
            "selection",
            "bad value 'everyone' (allowed: 'users', 'users+saas')",
            id="wrong enum",
        ),
        pytest.param(
            {**BASE, "use_standard_mapping": "yes"},
            "use_standard_mapping",
            "bad value 'yes' (allowed: true or false)",
            id="string for a boolean",
        ),
        pytest.param(
            {**BASE, "credential": 1},
            "credential",
            "bad value 1 (allowed: a string)",
            id="number for a string",
        ),
        pytest.param(
            {**BASE, "contacts": "it@example.com"},
            "contacts",
            "bad value 'it@example.com' (allowed: a list)",
            id="string for a list",
        ),
        pytest.param(
            {**BASE, "mapping": {"target": "x", "source": "y"}},
            "mapping",
            "bad value {'target': 'x', 'source': 'y'} (allowed: a list)",
            id="table for a list of tables",
        ),
        pytest.param(
            {**BASE, "settings": {"team_id": 5}},
            "settings.team_id",
            "bad value 5 (allowed: a string)",
            id="number inside a table of strings",
        ),
        pytest.param(
            {**BASE, "settings": ["a"]},
            "settings",
            "bad value ['a'] (allowed: a table)",
            id="list for a table",
        ),
        pytest.param(
            {**BASE, "shedule": "daily"},
            "shedule",
            "unknown key (allowed: base_url, contacts, credential, default_role, destination, "
            "filters, integration_user, mapping, name, pace_requests, preference, rate_budgets, "
            "schedule, selection, settings, sync_key, use_standard_mapping, vanish_limit_percent, "
            "vendor)",
            id="unknown key",
        ),
        pytest.param(
            {**BASE, "mapping": [{"target": "x", "source": "y"}, {"target": "z", "sorce": "w"}]},
            "mapping[1].sorce",
            "unknown key (allowed: converter, expression, source, target, unique)",
            id="unknown nested key",
        ),
        pytest.param(
            {"name": "a", "vendor": "slack"},
            "credential",
            "required key is missing (expected a string)",
            id="missing required key",
        ),
        pytest.param(
            {**BASE, "mapping": [{"source": "y"}]},
            "mapping[0].target",
            "required key is missing (expected a string)",
            id="missing nested key",
        ),
        pytest.param(
            {**BASE, "mapping": [{"target": "x", "source": "y", "expression": "z"}]},
            "mapping[0]",
            "mapping for 'x' needs exactly one of 'source' or 'expression'",
            id="model validation",
        ),
    ],
)
def test_bad_values_name_the_file_key_value_and_what_is_allowed(
    data: dict[str, Any], key_path: str, message: str
) -> None:
    error = _error(data)
    assert str(error) == f"int.toml: key '{key_path}': {message}"
    assert error.file == "int.toml"
    assert error.key_path == key_path


def test_several_problems_are_listed_together() -> None:
    error = _error({"name": 1, "vendor": "slack", "credential": "c", "selection": "x"})
    assert str(error) == (
        "int.toml: 2 problems in configuration\n"
        "  - key 'name': bad value 1 (allowed: a string)\n"
        "  - key 'selection': bad value 'x' (allowed: 'users', 'users+saas')"
    )
    assert len(error.problems) == 2


def test_a_bad_secret_is_never_echoed() -> None:
    data = {"name": "c", "vendor": "slack", "kind": "api_key", "token": ["xoxb-leaky-1234"]}
    error = _error(data, Credential, secret_keys=frozenset({"token"}))
    assert str(error) == "int.toml: key 'token': bad value (hidden) (allowed: a string)"
    assert "xoxb-leaky-1234" not in repr(error.args)


def test_credentials_structure_secrets_and_datetimes() -> None:
    credential = structure(
        {
            "name": "c",
            "vendor": "slack",
            "kind": "api_key",
            "token": "xoxb-good-1234",
            "expires_at": "2030-01-01T00:00:00+00:00",
        },
        Credential,
    )
    assert credential.kind is AuthKind.API_KEY
    assert credential.token == Secret("xoxb-good-1234")
    assert credential.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    error = _error(
        {"name": "c", "vendor": "s", "kind": "api_key", "expires_at": "tomorrow"}, Credential
    )
    assert str(error).startswith("int.toml: key 'expires_at': bad value 'tomorrow'")
    assert "(allowed: an ISO-8601 date-time" in str(error)


def test_bad_toml_syntax_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "a"\nvendor slack\n')
    with pytest.raises(ConfigurationError) as caught:
        load_toml(path)
    assert str(caught.value).startswith(f"{path}: not valid TOML: ")
    assert "line 2" in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.toml: file not found$"):
        load_toml(tmp_path / "nope.toml")


def test_a_directory_or_binary_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory, not a TOML file"):
        load_toml(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigurationError, match=r"binary\.toml: is not UTF-8 text"):
        load_toml(binary)


def test_a_top_level_that_is_not_a_table_is_a_configuration_error() -> None:
    expected = r"^int\.toml: expected a table of keys, found list$"
    with pytest.raises(ConfigurationError, match=expected):
        structure(["not", "a", "table"], IntegrationSettings, file="int.toml")  # type: ignore[arg-type]


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-. ", min_size=1, max_size=20)
_mappings = st.one_of(
    st.builds(FieldMapping, target=_names, source=_names, unique=st.booleans()),
    st.builds(FieldMapping, target=_names, expression=_names, converter=st.none() | _names),
)
_integrations = st.builds(
    IntegrationSettings,
    name=_names,
    vendor=_names,
    credential=_names,
    settings=st.dictionaries(_names, _names, max_size=3),
    selection=st.sampled_from(UserSelection),
    preference=st.sampled_from(SyncPreference),
    contacts=st.lists(_names, max_size=3).map(tuple),
    filters=st.none() | st.lists(_names, max_size=3).map(tuple),
    mapping=st.lists(_mappings, max_size=4).map(tuple),
    use_standard_mapping=st.booleans(),
    sync_key=st.none() | _names,
)


@given(settings=_integrations)
def test_every_integration_round_trips_through_its_file_form(
    settings: IntegrationSettings,
) -> None:
    assert structure(unstructure(settings), IntegrationSettings) == settings
