"""Talkdesk connector for oomnitza-connect.

Lists the account's users (``GET /users``, HAL pages) with OAuth2 client
credentials signed by a JWT or sent with HTTP Basic, offers seven presets
(users, contacts, apps and the app's installation) and ships
:class:`~oomnitza_connect_talkdesk.emulator.TalkdeskEmulator`. A credential can
be made from Talkdesk's ``app.installed`` event with
:func:`~oomnitza_connect_talkdesk.installation.credential_from_app_installed`.
:data:`vendor` (a :class:`~oomnitza_connect_talkdesk.vendor.TalkdeskVendor`) is
the object the ``oomnitza_connect`` entry point registers.
"""

from __future__ import annotations

from ._version import __version__
from .vendor import TalkdeskVendor, vendor

TALKDESK = vendor.info
"""Talkdesk's VendorInfo (fields, settings, standard mapping, rate budgets)."""

__all__ = ["TALKDESK", "TalkdeskVendor", "__version__", "vendor"]
