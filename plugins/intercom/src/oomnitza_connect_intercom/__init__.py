"""Intercom connector for oomnitza-connect.

Lists a workspace's admins (``GET /admins``) on the workspace's regional host
(US, EU or AU) with the chosen ``Intercom-Version``, offers the "Get Admin
Details" and "Identify Current Admin" presets and ships
:class:`~oomnitza_connect_intercom.emulator.IntercomEmulator`.
The hook implementations live in :mod:`oomnitza_connect_intercom.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
