"""Slack connector for oomnitza-connect.

Lists workspace members (``users.list``), reads last logins
(``team.accessLogs``), offers the "Get User Details" and "Find User By Email"
presets and ships :class:`~oomnitza_connect_slack.emulator.SlackEmulator`.
The hook implementations live in :mod:`oomnitza_connect_slack.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .vendor import SLACK

__all__ = ["SLACK", "__version__"]
