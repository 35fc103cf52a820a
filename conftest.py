"""Fixtures every test of this repository gets (the core's and each plugin's).

The project's own tests see only the plugins they register: without that, the
four vendor plugins installed in the development environment would answer
every hook of every test. Users' test suites are not isolated unless they ask
(the ``isolated_plugins`` fixture of :mod:`oomnitza_connect.testing.pytest_plugin`).
"""

from __future__ import annotations

import pytest
from hypothesis import settings

# Hypothesis's deadline times each example by the wall clock, which measures the
# machine's load as much as the code (a test run is no benchmark: benchmarks/ is).
settings.register_profile("oomnitza-connect", deadline=None)
settings.load_profile("oomnitza-connect")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(pytest.mark.xdist_group("serial"))


@pytest.fixture(autouse=True)
def _only_registered_plugins(isolated_plugins: None) -> None:
    """Every test of this repository runs with entry-point loading off."""
