"""Integration files: loading, vendor settings, mapping checks, drafts, the starting file."""

from __future__ import annotations

import tomllib

import attrs
import pytest
from sync_support import ACME, AcmePlugin, write_integration

from oomnitza_connect.errors import ConfigurationError, UnknownVendorError
from oomnitza_connect.models import FieldMapping, SyncPreference
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.sync.integrations import (
    draft_problems,
    effective_filters,
    effective_mapping,
    load_integration,
    render_integration_template,
)


@pytest.fixture(autouse=True)
def acme_plugin():
    with register_plugin(AcmePlugin(), name="acme-test"):
        yield


def test_a_complete_file_loads(tmp_path):
    settings = load_integration(write_integration(tmp_path))
    assert settings.name == "acme-main"
    assert settings.settings == {"Acme.Tenant": "test"}
    assert settings.schedule == "daily"
    assert settings.contacts == ("it@example.com",)
    assert draft_problems(settings, ACME) == []


def test_preference_and_filters_load(tmp_path):
    path = tmp_path / "i.toml"
    path.write_text(
        'name = "n"\nvendor = "acme"\ncredential = "c"\npreference = "update_only"\n'
        'filters = ["active", "not is_admin"]\n[settings]\n"Acme.Tenant" = "t"\n'
    )
    settings = load_integration(path)
    assert settings.preference == SyncPreference.UPDATE_ONLY
    assert effective_filters(settings, ACME) == ("active", "not is_admin")
    assert effective_filters(attrs.evolve(settings, filters=None), ACME) == ("active",)


def test_unknown_and_missing_settings_list_the_allowed_ones(tmp_path):
    path = tmp_path / "i.toml"
    path.write_text(
        'name = "n"\nvendor = "acme"\ncredential = "c"\n[settings]\n"Acme.Zone" = "x"\n'
    )
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    text = str(caught.value)
    assert str(path) in text
    assert (
        "key 'settings.Acme.Zone': Acme has no setting 'Acme.Zone' "
        "(allowed: Acme.Tenant, Acme.Region)" in text
    )
    assert "key 'settings.Acme.Tenant': Acme requires this setting" in text


def test_a_misspelled_setting_gets_a_did_you_mean(tmp_path):
    path = write_integration(tmp_path, '"Acme.Regoin" = "eu"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    assert (
        "key 'settings.Acme.Regoin': Acme has no setting 'Acme.Regoin'; "
        "did you mean 'Acme.Region'? (allowed: Acme.Tenant, Acme.Region)" in str(caught.value)
    )


def test_a_setting_outside_its_choices(tmp_path):
    path = write_integration(tmp_path, '"Acme.Region" = "mars"\n')
    with pytest.raises(ConfigurationError, match=r"settings.Acme.Region.*'mars'.*allowed: us, eu"):
        load_integration(path)


def test_a_bad_schedule_fails_loading(tmp_path):
    # validate and launch must refuse it, not only the scheduler later on
    path = tmp_path / "i.toml"
    path.write_text('schedule = "sometimes"\n' + write_integration(tmp_path).read_text())
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    text = str(caught.value)
    assert "key 'schedule': bad schedule 'sometimes'" in text
    assert "daily at HH:MM" in text


def test_mapping_problems_are_named_by_key(tmp_path):
    extra = """
[[mapping]]
target = "X"
source = "nope"

[[mapping]]
target = "Y"
source = "login"
converter = "reverse"

[[mapping]]
target = "Z"
expression = "{{ login "
"""
    with pytest.raises(ConfigurationError) as caught:
        load_integration(write_integration(tmp_path, extra))
    problems = "\n".join(caught.value.problems)
    assert "key 'mapping[0].source': Acme has no field 'nope' (allowed: id, login" in problems
    assert "key 'mapping[1].converter': there is no converter named 'reverse'" in problems
    assert "key 'mapping[2].expression'" in problems


def test_structure_errors_name_key_value_and_allowed(tmp_path):
    path = tmp_path / "i.toml"
    path.write_text(
        'name = "n"\nvendor = "acme"\ncredential = "c"\nselection = "all"\nschedul = "x"\n'
    )
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    text = str(caught.value)
    assert "key 'selection': bad value 'all' (allowed: 'users', 'users+saas')" in text
    assert "key 'schedul': unknown key" in text


def test_unknown_vendor(tmp_path):
    path = tmp_path / "i.toml"
    path.write_text('name = "n"\nvendor = "nosuch"\ncredential = "c"\n')
    with pytest.raises(UnknownVendorError, match="acme") as caught:
        load_integration(path)
    assert str(caught.value).startswith(f"{path}: key 'vendor': bad value 'nosuch'")
    assert "did you mean" not in str(caught.value)  # nothing is close to 'nosuch'
    assert "install oomnitza-connect-nosuch" in str(caught.value)


def test_a_misspelled_vendor_names_the_file_key_allowed_ones_and_the_close_one(tmp_path):
    path = tmp_path / "i.toml"
    path.write_text('name = "n"\nvendor = "acm"\ncredential = "c"\n')
    with pytest.raises(UnknownVendorError) as caught:
        load_integration(path)
    assert str(caught.value).startswith(
        f"{path}: key 'vendor': bad value 'acm': no installed plugin provides it; "
        "did you mean 'acme'? (allowed: acme)"
    )
    assert (caught.value.file, caught.value.key_path) == (str(path), "vendor")


def test_draft_lists_everything_missing(tmp_path):
    settings = load_integration(write_integration(tmp_path))
    draft = attrs.evolve(settings, default_role=None, sync_key=None, use_standard_mapping=False)
    problems = draft_problems(draft, ACME)
    assert len(problems) == 4
    assert any("Username is not mapped" in p for p in problems)
    assert any("Email is not mapped" in p for p in problems)
    assert any("no default role" in p for p in problems)
    assert any("no sync key" in p for p in problems)


def test_a_custom_sync_key_must_be_marked_unique(tmp_path):
    settings = load_integration(write_integration(tmp_path))
    custom = attrs.evolve(
        settings,
        sync_key="Badge",
        mapping=(FieldMapping(target="Badge", source="login"),),
    )
    assert any("not a unique field" in p for p in draft_problems(custom, ACME))
    unique = attrs.evolve(
        custom, mapping=(FieldMapping(target="Badge", source="login", unique=True),)
    )
    assert draft_problems(unique, ACME) == []
    assert draft_problems(attrs.evolve(settings, sync_key="Acme User Id"), ACME) == []
    assert any(
        "not a target" in p for p in draft_problems(attrs.evolve(settings, sync_key="Nope"), ACME)
    )


def test_effective_mapping_replaces_standard_targets(tmp_path):
    settings = load_integration(
        write_integration(tmp_path, '\n[[mapping]]\ntarget = "Username"\nsource = "mail"\n')
    )
    mapping = effective_mapping(settings, ACME)
    usernames = [m for m in mapping if m.target.lower() == "username"]
    assert [m.source for m in usernames] == ["mail"]
    assert len(mapping) == len(ACME.standard_mapping)


def test_the_starting_file_loads_and_carries_the_standard_mapping(tmp_path):
    text = render_integration_template(ACME, name="acme-test")
    path = tmp_path / "new.toml"
    path.write_text(text.replace('"Acme.Tenant" = ""', '"Acme.Tenant" = "t"'))
    settings = load_integration(path)
    assert settings.name == "acme-test"
    assert settings.mapping == ACME.standard_mapping
    assert draft_problems(settings, ACME) == [
        'no default role is set: add default_role = "Employee" (or another)'
    ]


# Text a vendor description may hold that hand-written TOML gets wrong: quotes,
# backslashes (Windows paths, regular expressions), newlines, any Unicode
# (an emoji is outside the BMP: JSON would write it as a surrogate pair, which
# TOML refuses).
AWKWARD = 'say "hi" \\ C:\\tenants\\ é ✓ 🚀\ttab'
AWKWARD_INFO = attrs.evolve(
    ACME,
    display_name='Acme "Pro"\nsecond line 🚀',
    global_settings=(
        attrs.evolve(ACME.global_settings[0], default=AWKWARD + "\nline two"),
        attrs.evolve(ACME.global_settings[1], default='eu "west"', choices=()),
    ),
    standard_mapping=(
        *ACME.standard_mapping,
        FieldMapping(target='Acme "Team" ✓', expression='{{ login ~ "\\\\" ~ "\\n" }}'),
    ),
    default_filters=('mail != "x\\\\y"', "active"),
)


def _uncommented(text: str, prefix: str) -> dict[str, object]:
    """Parse the one commented-out example line that starts with *prefix*."""
    (line,) = [line for line in text.splitlines() if line.startswith("# " + prefix)]
    return tomllib.loads(line.removeprefix("# ").split("  # ")[0])


def test_the_starting_file_round_trips_awkward_text() -> None:
    name = 'acme "main" \\ ✓ 🚀\nnext'
    text = render_integration_template(AWKWARD_INFO, name=name)
    data = tomllib.loads(text)
    assert data["name"] == name
    assert data["settings"] == {"Acme.Tenant": AWKWARD + "\nline two"}
    assert data["mapping"] == [
        {k: v for k, v in attrs.asdict(m).items() if v not in (None, False)}
        for m in AWKWARD_INFO.standard_mapping
    ]
    # The examples in comments are TOML too, once uncommented.
    assert _uncommented(text, "filters =") == {"filters": list(AWKWARD_INFO.default_filters)}
    assert _uncommented(text, '"Acme.Region" =') == {"Acme.Region": 'eu "west"'}
    # A newline in a description starts a new comment, never a line of TOML.
    assert '# Acme "Pro"\n# second line 🚀 integration for oomnitza-connect.\n' in text


def test_the_starting_file_loads_as_an_integration_with_awkward_text(tmp_path) -> None:
    path = tmp_path / "awkward.toml"
    path.write_text(render_integration_template(AWKWARD_INFO), encoding="utf-8")
    settings = load_integration(path, info=AWKWARD_INFO)
    assert settings.settings == {"Acme.Tenant": AWKWARD + "\nline two"}
    assert settings.mapping == AWKWARD_INFO.standard_mapping


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("ftp://x", "is not an https:// URL with a host"),
        ("not-a-url", "is not an https:// URL with a host"),
        ("https://", "is not an https:// URL with a host"),
        ("http://10.1.2.3:9/api", "plain http:// to another machine"),
    ],
)
def test_a_bad_base_url_is_refused_when_the_file_is_loaded(tmp_path, monkeypatch, base_url, says):
    monkeypatch.delenv("OOMNITZA_CONNECT_ALLOW_INSECURE_HTTP", raising=False)
    path = write_integration(tmp_path, base_url=base_url)
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    text = str(caught.value)
    assert str(path) in text
    assert "key 'base_url'" in text
    assert says in text


def test_loopback_or_an_explicit_opt_in_may_be_plain_http(tmp_path, monkeypatch):
    monkeypatch.delenv("OOMNITZA_CONNECT_ALLOW_INSECURE_HTTP", raising=False)
    loopback = load_integration(write_integration(tmp_path, base_url="http://127.0.0.1:8080/api"))
    assert loopback.base_url == "http://127.0.0.1:8080/api"
    monkeypatch.setenv("OOMNITZA_CONNECT_ALLOW_INSECURE_HTTP", "1")
    elsewhere = load_integration(write_integration(tmp_path, base_url="http://10.1.2.3/api"))
    assert elsewhere.base_url == "http://10.1.2.3/api"
