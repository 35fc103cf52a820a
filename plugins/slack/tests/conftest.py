"""Fixtures of the Slack plugin's tests: a registered plugin, an emulator, sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oomnitza_connect_slack import vendor as slack_plugin
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options

from oomnitza_connect.connectors import Connector, get_connector
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def slack_plugin_registered() -> Iterator[None]:
    with register_plugin(slack_plugin):
        yield


@pytest.fixture
def connector(slack_plugin_registered: None) -> Connector:
    return get_connector("slack")


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=40, seed=7, enforce_rate_limits=False) as running:
        yield running


@pytest.fixture
def session(connector: Connector, emulator: SlackEmulator) -> Iterator[VendorSession]:
    opened = connector.authenticate(
        emulator.test_credential(),
        {"Slack.PageSize": "7"},
        options=fast_options(emulator),
    )
    with opened:
        yield opened
