"""Talkdesk connector for oomnitza-connect.

Lists the account's users (``GET /users``, HAL pages) with OAuth2 client
credentials signed by a JWT or sent with HTTP Basic, offers seven presets
(users, contacts, apps and the app's installation) and ships
:class:`~oomnitza_connect_talkdesk.emulator.TalkdeskEmulator`. A credential can
be made from Talkdesk's ``app.installed`` event with
:func:`~oomnitza_connect_talkdesk.installation.credential_from_app_installed`.
The hook implementations live in :mod:`oomnitza_connect_talkdesk.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .vendor import TALKDESK

__all__ = ["TALKDESK", "__version__"]
