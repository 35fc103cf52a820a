"""Fixtures of the Webex plugin's tests: a registered plugin, an emulator, sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oomnitza_connect_webex.emulator import WebexEmulator
from oomnitza_connect_webex.plugin import vendor as webex_plugin
from webex_support import fast_options

from oomnitza_connect.connectors import Connector, get_connector
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def webex_plugin_registered() -> Iterator[None]:
    with register_plugin(webex_plugin):
        yield


@pytest.fixture
def connector(webex_plugin_registered: None) -> Connector:
    return get_connector("webex")


@pytest.fixture
def emulator() -> Iterator[WebexEmulator]:
    with WebexEmulator(users=40, seed=7, enforce_rate_limits=False) as running:
        yield running


@pytest.fixture
def session(connector: Connector, emulator: WebexEmulator) -> Iterator[VendorSession]:
    opened = connector.authenticate(
        emulator.test_credential(), {"Webex.PageSize": "7"}, options=fast_options(emulator)
    )
    with opened:
        yield opened
