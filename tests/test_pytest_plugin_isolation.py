"""The SDK's pytest plugin leaves users' test sessions alone; isolation is opt-in.

A user's tests run in a fresh directory, in a pytest subprocess, as they would
in the user's own project with the SDK and its vendor plugins installed.
"""

from __future__ import annotations

import os

import pytest

from oomnitza_connect import list_connectors
from oomnitza_connect.plugins import LOAD_ENTRY_POINTS_ENV, register_plugin
from oomnitza_connect.testing import generic

pytest_plugins = ["pytester"]

INSTALLED_VENDORS = {"intercom", "slack", "talkdesk", "webex"}

USERS_TESTS = f"""
import pytest

from oomnitza_connect import list_connectors
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.testing import generic


def test_a_users_test_sees_the_installed_vendors():
    assert {{c.name for c in list_connectors()}} >= {INSTALLED_VENDORS!r}


def test_a_users_test_may_ask_for_isolation(isolated_plugins):
    assert list_connectors() == []
    with register_plugin(generic.vendor):
        assert [c.name for c in list_connectors()] == ["generic"]


@pytest.mark.usefixtures("isolated_plugins")
def test_isolation_also_comes_as_a_marker():
    assert list_connectors() == []


def test_isolation_ends_with_its_test():
    # Runs after the isolated tests above (pytest keeps the file's order).
    assert {{c.name for c in list_connectors()}} >= {INSTALLED_VENDORS!r}
"""


@pytest.fixture
def users_session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The environment of a user's shell: this suite's own isolation not inherited.
    monkeypatch.delenv(LOAD_ENTRY_POINTS_ENV, raising=False)
    pytester.makepyfile(test_mysync=USERS_TESTS)
    return pytester


def test_a_users_pytest_run_sees_the_installed_plugins(users_session: pytest.Pytester) -> None:
    result = users_session.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_user_may_still_turn_the_sdks_pytest_plugin_off(users_session: pytest.Pytester) -> None:
    # Without the plugin its fixture is gone: the isolated tests error, the rest pass.
    result = users_session.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:oomnitza_connect"
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*fixture 'isolated_plugins' not found*"])


def test_this_repositorys_tests_are_isolated() -> None:
    # The autouse fixture of the repository's conftest.py.
    assert os.environ[LOAD_ENTRY_POINTS_ENV] == "0"
    assert list_connectors() == []
    with register_plugin(generic.vendor):
        assert [c.name for c in list_connectors()] == ["generic"]
    assert list_connectors() == []
