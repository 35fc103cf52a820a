"""Fixtures of the Intercom plugin's tests: a registered plugin, an emulator, sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from intercom_support import fast_options
from oomnitza_connect_intercom import vendor as intercom_plugin
from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.connectors import Connector, get_connector
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def intercom_plugin_registered() -> Iterator[None]:
    with register_plugin(intercom_plugin):
        yield


@pytest.fixture
def connector(intercom_plugin_registered: None) -> Connector:
    return get_connector("intercom")


@pytest.fixture
def emulator() -> Iterator[IntercomEmulator]:
    with IntercomEmulator(users=30, seed=7, enforce_rate_limits=False) as running:
        yield running


@pytest.fixture
def session(connector: Connector, emulator: IntercomEmulator) -> Iterator[VendorSession]:
    opened = connector.authenticate(emulator.test_credential(), {}, options=fast_options(emulator))
    with opened:
        yield opened
