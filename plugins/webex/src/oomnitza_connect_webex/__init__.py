"""Webex connector for oomnitza-connect.

Lists the org's people (``GET /v1/people`` with ``Link`` paging), turns role
ids into names (``GET /v1/roles``), offers the Create User, Get User Details,
Update User, Delete User and User Role presets, the inactive-user workflow,
and ships :class:`~oomnitza_connect_webex.emulator.WebexEmulator`. The hook
implementations live in :mod:`oomnitza_connect_webex.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
