"""Slack connector for oomnitza-connect.

Lists workspace members (``users.list``), reads last logins
(``team.accessLogs``), offers the "Get User Details" and "Find User By Email"
presets and ships :class:`~oomnitza_connect_slack.emulator.SlackEmulator`.
:data:`vendor` (a :class:`~oomnitza_connect_slack.vendor.SlackVendor`) is the
object the ``oomnitza_connect`` entry point registers.
"""

from __future__ import annotations

from ._version import __version__
from .vendor import SlackVendor, vendor

SLACK = vendor.info
"""Slack's VendorInfo (fields, settings, standard mapping, rate budgets)."""

__all__ = ["SLACK", "SlackVendor", "__version__", "vendor"]
