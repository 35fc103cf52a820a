"""Intercom connector for oomnitza-connect.

Lists a workspace's admins (``GET /admins``) on the workspace's regional host
(US, EU or AU) with the chosen ``Intercom-Version``, offers the "Get Admin
Details" and "Identify Current Admin" presets and ships
:class:`~oomnitza_connect_intercom.emulator.IntercomEmulator`.
:data:`vendor` (an :class:`~oomnitza_connect_intercom.vendor.IntercomVendor`) is
the object the ``oomnitza_connect`` entry point registers.
"""

from __future__ import annotations

from ._version import __version__
from .vendor import IntercomVendor, vendor

INTERCOM = vendor.info
"""Intercom's VendorInfo (fields, settings, standard mapping, rate budgets)."""

__all__ = ["INTERCOM", "IntercomVendor", "__version__", "vendor"]
