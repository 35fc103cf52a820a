"""Intercom as a vendor object; the work is done in the sibling modules.

A bridge onto the core's vendor objects (no per-hook guards): the Intercom
plugin's own port onto the declarative description replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from oomnitza_connect.auth.oauth import TokenResponseParser
from oomnitza_connect.models import Credential, Preset, VendorInfo, VendorRecord
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors import Vendor
from oomnitza_connect.vendors.session import VendorSession

from . import client
from .auth import open_intercom_session, parse_token_response
from .mapping import VENDOR
from .presets import PRESETS
from .vendor import INTERCOM


class IntercomVendor(Vendor):
    name = VENDOR
    emulator = "oomnitza_connect_intercom.emulator:IntercomEmulator"

    @property
    def info(self) -> VendorInfo:
        return INTERCOM

    @property
    def token_response_parser(self) -> TokenResponseParser:
        return parse_token_response

    def authenticate(
        self, credential: Credential, settings: Mapping[str, str], options: ClientOptions
    ) -> VendorSession:
        client.validate_settings(settings)
        session = open_intercom_session(credential, settings, options)
        try:
            session.identity = client.verify_token(session)
        except BaseException:
            session.close()
            raise
        return session

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord]:
        return client.iter_admins(session)

    def workflow_presets(self) -> Sequence[Preset]:
        return PRESETS


vendor = IntercomVendor()
