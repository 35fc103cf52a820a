"""What an integration is refused for, whichever way it is made (a TOML file or Python).

Each check here stands for a reviewer's finding: something that loaded (or was
built in Python) and then failed every record, or silently did something else.
"""

from __future__ import annotations

import attrs
import pytest
from sync_support import ACME, AcmePlugin, write_integration

from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import (
    DestinationSettings,
    FieldMapping,
    IntegrationSettings,
    SyncPreference,
    UserSelection,
)
from oomnitza_connect.plugins import register_plugin, vendor_info
from oomnitza_connect.sync.integrations import (
    IntegrationWarning,
    check_integration,
    check_rate_budgets,
    check_settings,
    integration_warnings,
    load_integration,
    rate_budget_problems,
)
from oomnitza_connect.vendors.base import RestVendor

BASE = """name = "x"
vendor = "slack"
credential = "slack"
default_role = "Employee"
sync_key = "email"
"""

OOMNITZA = """
[destination]
type = "oomnitza"
url = "https://example.oomnitza.com"
credential = "oz"
"""


def slack_settings(**changes: object) -> IntegrationSettings:
    values: dict[str, object] = {
        "name": "x",
        "vendor": "slack",
        "credential": "slack",
        "default_role": "Employee",
        "sync_key": "email",
    }
    values.update(changes)
    return IntegrationSettings(**values)  # type: ignore[arg-type]


def refused(tmp_path, text: str) -> ConfigurationError:
    path = tmp_path / "i.toml"
    path.write_text(BASE + text)
    with pytest.raises(ConfigurationError) as raised:
        load_integration(path)
    assert raised.value.file == str(path)
    return raised.value


@pytest.fixture(autouse=True)
def vendors():
    from contextlib import ExitStack

    from oomnitza_connect_intercom import vendor as intercom
    from oomnitza_connect_slack import vendor as slack
    from oomnitza_connect_talkdesk import vendor as talkdesk
    from oomnitza_connect_webex.plugin import vendor as webex

    with ExitStack() as stack:
        for module in (slack, intercom, webex, talkdesk):
            stack.enter_context(register_plugin(module))
        yield


@pytest.fixture
def slack():
    return vendor_info("slack")


# -- 1. one mapping per target ------------------------------------------------------


def test_a_target_mapped_twice_is_refused_naming_both_from_toml(tmp_path):
    error = refused(
        tmp_path,
        '[[mapping]]\ntarget = "email"\nsource = "email"\n\n'
        '[[mapping]]\ntarget = "Email"\nsource = "user_id"\n',
    )
    assert error.key_path == "mapping[1].target"
    assert "'Email' is already mapped by mapping[0]" in str(error)


def test_a_target_mapped_twice_is_refused_from_python(slack):
    mapping = (FieldMapping("Email", "email"), FieldMapping(" email", "user_id"))
    problems = check_integration(slack_settings(mapping=mapping), slack)
    assert problems == [
        "key 'mapping[1].target': ' email' is already mapped by mapping[0] "
        "(allowed: one mapping per target)"
    ]
    # A custom target is compared as written: two different labels are two fields.
    distinct = (FieldMapping("Slack Id", "user_id"), FieldMapping("Slack Name", "user_name"))
    assert check_integration(slack_settings(mapping=distinct), slack) == []


# -- 2. integrations that would fail every record -----------------------------------


def test_a_default_role_without_an_oomnitza_role_id_is_refused(tmp_path):
    error = refused(tmp_path, OOMNITZA + "[destination.roles]\nAdmin = 3\n")
    assert error.key_path == "destination.roles"
    assert "the default role 'Employee' has no Oomnitza role id" in str(error)
    assert error.allowed == "Admin"


def test_the_default_role_passes_when_roles_default_id_or_a_number_give_one(tmp_path, slack):
    for table in ("[destination.roles]\nEmployee = 7\n", "default_role_id = 9\n"):
        path = tmp_path / "i.toml"
        path.write_text(BASE + OOMNITZA + table)
        assert load_integration(path).destination is not None
    numeric = slack_settings(
        default_role="12",
        destination=DestinationSettings(
            type="oomnitza", url="https://example.oomnitza.com", credential="oz"
        ),
    )
    assert check_integration(numeric, slack) == []


def test_constant_roles_a_role_mapping_can_give_are_checked(slack):
    destination = DestinationSettings(
        type="oomnitza",
        url="https://example.oomnitza.com",
        credential="oz",
        roles={"Employee": 1, "Admin": 2},
    )
    mapping = (FieldMapping("role", expression="{{ 'Admin' if is_admin else 'Owner' }}"),)
    problems = check_integration(slack_settings(destination=destination, mapping=mapping), slack)
    assert problems == [
        "key 'mapping[0].expression': the role 'Owner' has no Oomnitza role id in "
        "[destination.roles] (allowed: Admin, Employee)"
    ]
    # Roles known only per record (read from a field) cannot be checked before the run.
    dynamic = (FieldMapping("role", expression="{{ title }}"),)
    assert check_integration(slack_settings(destination=destination, mapping=dynamic), slack) == []


def test_a_filter_naming_an_unknown_variable_is_refused_with_a_suggestion(tmp_path):
    error = refused(tmp_path, 'filters = ["not is_bot", "not is_bott"]\n')
    assert error.key_path == "filters[1]"
    assert "variable 'is_bott' is not defined; did you mean 'is_bot'?" in str(error)
    assert "is_bot" in (error.allowed or "")
    assert "sync_time" in (error.allowed or "")


def test_a_mapping_expression_naming_an_unknown_variable_is_refused(slack):
    mapping = (FieldMapping("Greeting", expression="{{ frist_name }} {{ range(1)|list }}"),)
    problems = check_integration(slack_settings(mapping=mapping), slack)
    assert len(problems) == 1
    assert problems[0].startswith(
        "key 'mapping[0].expression': variable 'frist_name' is not defined; "
        "did you mean 'first_name'?"
    )


def test_context_variables_and_the_record_pass_in_filters(slack):
    filters = ("id != '' and vendor == 'slack' and fields.is_bot is defined", "raw or sync_time")
    assert check_integration(slack_settings(filters=filters), slack) == []


def test_a_vendor_with_open_fields_only_warns_about_unknown_variables(tmp_path):
    # Acme's records carry every key of the vendor's JSON, declared or not.
    assert ACME.open_fields
    path = write_integration(
        tmp_path, '\n[[mapping]]\ntarget = "Greeting"\nexpression = "{{ nickname }}"\n'
    )
    with (
        register_plugin(AcmePlugin(), name="acme-test"),
        pytest.warns(IntegrationWarning, match="variable 'nickname' is not defined"),
    ):
        settings = load_integration(path)
    assert integration_warnings(settings, ACME) != []
    assert check_integration(settings, ACME) == []


def test_declarative_vendors_have_closed_fields():
    for vendor in ("slack", "intercom", "webex", "talkdesk"):
        assert vendor_info(vendor).open_fields is False, vendor


# -- 3. the Python API checks what the file loader checks ---------------------------


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("selection", "everyone", "users, users+saas"),
        ("selection", None, "users, users+saas"),
        ("preference", "nonsense", "create_update, create_only, update_only"),
    ],
)
def test_a_bad_choice_in_python_is_refused_naming_the_key(key, value, allowed):
    with pytest.raises(ConfigurationError) as raised:
        slack_settings(**{key: value})
    assert raised.value.key_path == key
    assert raised.value.allowed == allowed
    assert repr(value) in str(raised.value)


def test_choices_given_as_their_values_become_the_enums():
    settings = slack_settings(selection="users+saas", preference="update_only")
    assert settings.selection is UserSelection.USERS_AND_SAAS
    assert settings.preference is SyncPreference.UPDATE_ONLY


def test_one_contact_or_filter_as_a_string_is_a_list_of_one(slack):
    settings = slack_settings(
        contacts="it@example.com", filters="not is_bot", rate_budgets="users.list=10"
    )
    assert settings.contacts == ("it@example.com",)
    assert settings.filters == ("not is_bot",)
    assert settings.rate_budgets == ("users.list=10",)
    assert check_integration(settings, slack) == []
    assert check_integration(slack_settings(contacts=["nobody"]), slack) == [
        "key 'contacts[0]': 'nobody' is not an email address"
    ]


def test_wrong_types_from_python_are_problems_not_crashes(slack):
    problems = check_integration(
        slack_settings(contacts=[5], filters=[True], schedule=3, default_role=1), slack
    )
    assert "key 'contacts[0]': '5' is not an email address" not in problems
    keys = sorted(problem.split("'")[1] for problem in problems)
    assert keys == ["contacts[0]", "default_role", "filters[0]", "schedule"]


def test_a_non_positive_destination_timeout_is_refused_before_the_run(tmp_path, slack):
    error = refused(tmp_path, OOMNITZA + "timeout = -1.0\ndefault_role_id = 1\n")
    assert error.key_path == "destination.timeout"
    assert "-1.0 is not a positive number of seconds" in str(error)
    from oomnitza_connect.sync.engine import run_sync

    destination = DestinationSettings(
        type="oomnitza",
        url="https://example.oomnitza.com",
        credential="oz",
        timeout=0,
        default_role_id=1,
    )
    with pytest.raises(ConfigurationError) as raised:
        run_sync(slack_settings(destination=destination))
    assert "key 'destination.timeout'" in "\n".join(raised.value.problems)


# -- 4. budgets, names, keys a sqlite destination does not have ---------------------


def test_a_budget_for_an_endpoint_the_vendor_lacks_is_refused_listing_them(tmp_path, slack):
    error = refused(tmp_path, 'rate_budgets = ["users.lst=5"]\n')
    assert error.key_path == "rate_budgets[0]"
    assert "Slack has no endpoint 'users.lst'; did you mean 'users.list'?" in str(error)
    assert "users.list" in (error.allowed or "")
    assert "*" in (error.allowed or "")
    assert rate_budget_problems(["*=600", "users.list=100/5"], slack) == []


def test_command_line_budgets_have_the_same_check(slack):
    with pytest.raises(ConfigurationError) as raised:
        check_rate_budgets(["nosuch=5"], slack, key_path="--rate-budget")
    assert raised.value.key_path == "--rate-budget[0]"
    assert "Slack has no endpoint 'nosuch'" in str(raised.value)
    check_rate_budgets(["users.list=5"], slack, key_path="--rate-budget")


def test_a_vendor_that_declares_no_budgets_takes_any_endpoint():
    assert ACME.rate_budgets == ()
    assert rate_budget_problems(["users=100/5"], ACME) == []
    assert rate_budget_problems(["users=lots"], ACME) != []


@pytest.mark.parametrize("name", ["", "   ", " slack", "slack\n", "a/b", "a\\b", "..", "a\x00"])
def test_a_name_that_cannot_key_the_store_is_refused(slack, name):
    problems = check_integration(slack_settings(name=name), slack)
    assert len(problems) == 1
    assert problems[0].startswith("key 'name': ")
    assert "(allowed: a non-empty name" in problems[0]


def test_names_with_spaces_dots_and_unicode_inside_are_fine(slack):
    for name in ("Slack workspace 2", "slack.eu-main", "équipe_1"):
        assert check_integration(slack_settings(name=name), slack) == []


def test_a_sqlite_destination_refuses_oomnitza_only_keys(tmp_path):
    error = refused(tmp_path, '[destination]\ntype = "sqlite"\npath = "p.db"\ncredential = "oz"\n')
    assert error.key_path == "destination.credential"
    assert "only an oomnitza destination has this key" in str(error)
    more = refused(
        tmp_path,
        '[destination]\ntype = "sqlite"\npath = "p.db"\nbatch_size = 5\n'
        "[destination.roles]\nEmployee = 1\n",
    )
    keys = sorted(problem.split("'")[1] for problem in more.problems)
    assert keys == ["destination.batch_size", "destination.roles"]


def test_an_oomnitza_destination_refuses_a_path(tmp_path):
    error = refused(tmp_path, OOMNITZA + 'path = "p.db"\ndefault_role_id = 1\n')
    assert error.key_path == "destination.path"


# -- 5. nothing to list: said as such, never "(allowed: none)" -----------------------


def test_a_role_with_no_roles_table_says_a_number_is_allowed(tmp_path):
    error = refused(tmp_path, OOMNITZA)
    assert error.key_path == "destination.roles"
    assert error.allowed == "a numeric role id ([destination.roles] is empty)"
    assert "(allowed: none)" not in str(error)


def test_a_setting_for_a_vendor_without_settings_says_it_has_none():
    bare = attrs.evolve(ACME, global_settings=())
    with pytest.raises(ConfigurationError) as caught:
        check_settings({"Acme.Zone": "x"}, bare, source="--setting")
    assert caught.value.problems == (
        "key 'Acme.Zone': Acme has no setting 'Acme.Zone' (it has no global settings)",
    )


def test_a_template_naming_a_setting_of_a_vendor_without_settings_says_it_has_none():
    class Bare(RestVendor):
        name = "bare"
        display_name = "Bare"
        base_url = "https://bare.example"

    with pytest.raises(ConfigurationError) as caught:
        Bare().render("https://{{Bare.Host}}/x", {})
    assert str(caught.value) == (
        "key 'Bare.Host': Bare's template 'https://{{Bare.Host}}/x' names 'Bare.Host', "
        "but Bare has no settings."
    )
    assert caught.value.allowed is None
