"""pytest plugin of oomnitza-connect (registered through the ``pytest11`` entry point).

Under pytest nothing is auto-loaded by surprise: entry-point plugins are not
loaded, and tests register the plugins they need explicitly.
"""

from __future__ import annotations

import os

import pytest

from ..plugins import LOAD_ENTRY_POINTS_ENV, reset_plugin_manager


def pytest_configure(config: pytest.Config) -> None:
    os.environ[LOAD_ENTRY_POINTS_ENV] = "0"
    reset_plugin_manager()
