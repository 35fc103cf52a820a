"""Talkdesk as a vendor object; the work is done in the sibling modules.

A bridge onto the core's vendor objects (no per-hook guards): the Talkdesk
plugin's own port onto the declarative description replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from oomnitza_connect.models import Credential, Preset, UnreadRecord, VendorInfo, VendorRecord
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors import Vendor
from oomnitza_connect.vendors.session import VendorSession

from . import client
from .auth import open_talkdesk_session
from .mapping import VENDOR
from .presets import PRESETS
from .vendor import TALKDESK


class TalkdeskVendor(Vendor):
    name = VENDOR
    emulator = "oomnitza_connect_talkdesk.emulator:TalkdeskEmulator"

    @property
    def info(self) -> VendorInfo:
        return TALKDESK

    def authenticate(
        self, credential: Credential, settings: Mapping[str, str], options: ClientOptions
    ) -> VendorSession:
        client.validate_settings(settings)
        session = open_talkdesk_session(credential, settings, options)
        try:
            session.identity = client.verify_access(session)
        except BaseException:
            session.close()
            raise
        return session

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:
        return client.iter_users(session)

    def workflow_presets(self) -> Sequence[Preset]:
        return PRESETS


vendor = TalkdeskVendor()
