"""Webex as a vendor object; the work is done in the sibling modules.

A bridge onto the core's vendor objects (no per-hook guards): the Webex plugin's
own port onto the declarative description replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import click

from oomnitza_connect.auth.oauth import TokenResponseParser
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import Credential, Preset, UnreadRecord, VendorInfo
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors import Vendor
from oomnitza_connect.vendors.session import VendorSession

from . import client
from .auth import open_webex_session, parse_token_response
from .mapping import VENDOR
from .presets import PRESETS
from .vendor import WEBEX


class WebexVendor(Vendor):
    name = VENDOR
    emulator = "oomnitza_connect_webex.emulator:WebexEmulator"

    @property
    def info(self) -> VendorInfo:
        return WEBEX

    @property
    def token_response_parser(self) -> TokenResponseParser:
        return parse_token_response

    def authenticate(
        self, credential: Credential, settings: Mapping[str, str], options: ClientOptions
    ) -> VendorSession:
        client.validate_settings(settings)
        session = open_webex_session(credential, settings, options)
        try:
            session.identity = client.verify_token(session.http)
        except BaseException:
            session.close()
            raise
        return session

    def iter_users(self, session: VendorSession) -> Iterator[UnreadRecord]:
        return client.iter_users(session)

    def workflow_presets(self) -> Sequence[Preset]:
        return PRESETS

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        from .commands import webex_group

        cli.add_command(webex_group)


vendor = WebexVendor()
