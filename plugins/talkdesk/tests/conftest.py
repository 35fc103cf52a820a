"""Fixtures of the Talkdesk plugin's tests: a registered plugin, an emulator, sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oomnitza_connect_talkdesk import vendor as talkdesk_plugin
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator
from talkdesk_support import fast_options

from oomnitza_connect.connectors import Connector, get_connector
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def talkdesk_plugin_registered() -> Iterator[None]:
    with register_plugin(talkdesk_plugin):
        yield


@pytest.fixture
def connector(talkdesk_plugin_registered: None) -> Connector:
    return get_connector("talkdesk")


@pytest.fixture
def emulator() -> Iterator[TalkdeskEmulator]:
    with TalkdeskEmulator(
        users=23, seed=7, subdomain="acme", max_page_size=5, enforce_rate_limits=False
    ) as running:
        yield running


@pytest.fixture
def session(connector: Connector, emulator: TalkdeskEmulator) -> Iterator[VendorSession]:
    opened = connector.authenticate(
        emulator.test_credential(), emulator.test_settings(), options=fast_options(emulator)
    )
    with opened:
        yield opened
