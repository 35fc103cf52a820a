"""Fixtures of the Slack plugin's tests: a registered plugin, an emulator, sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oomnitza_connect_slack.plugin as slack_plugin
import pytest
from oomnitza_connect_slack.emulator import SlackEmulator

from oomnitza_connect.connectors import Connector, get_connector
from oomnitza_connect.http import ClientOptions, VendorSession
from oomnitza_connect.plugins import register_plugin

SAMPLES = Path(__file__).parent / "samples"


def load_sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def fast_options(emulator: SlackEmulator, **changes: Any) -> ClientOptions:
    """Client options for tests: no pacing, short waits."""
    settings: dict[str, Any] = {
        "base_url": emulator.base_url,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "max_single_wait": 3.0,
        "max_total_wait": 10.0,
        "pace_requests": False,
    }
    settings.update(changes)
    return ClientOptions(**settings)


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
