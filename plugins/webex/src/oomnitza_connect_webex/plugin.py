"""Webex hook implementations; the work is done in the sibling modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import click

from oomnitza_connect.auth.oauth import TokenResponseParser
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import Credential, Preset, UnreadRecord, VendorInfo
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession

from . import client
from .auth import open_webex_session, parse_token_response
from .emulator import WebexEmulator
from .mapping import VENDOR
from .presets import PRESETS
from .vendor import WEBEX


@hookimpl
def register_vendors(register: Callable[[VendorInfo], None]) -> None:
    register(WEBEX)


@hookimpl
def authenticate(
    vendor: str,
    credential: Credential,
    settings: Mapping[str, str],
    options: ClientOptions,
) -> VendorSession | None:
    if vendor != VENDOR:
        return None
    client.validate_settings(settings)
    session = open_webex_session(credential, settings, options)
    try:
        session.identity = client.verify_token(session.http)
    except BaseException:
        session.close()
        raise
    return session


@hookimpl
def list_users(vendor: str, session: VendorSession) -> Iterator[UnreadRecord] | None:
    if vendor != VENDOR:
        return None
    return client.iter_users(session)


@hookimpl
def token_response_parser(vendor: str) -> TokenResponseParser | None:
    if vendor != VENDOR:
        return None
    return parse_token_response


@hookimpl
def workflow_presets(vendor: str) -> list[Preset] | None:
    if vendor != VENDOR:
        return None
    return list(PRESETS)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .commands import webex_group

    cli.add_command(webex_group)


@hookimpl
def create_emulator(vendor: str, options: Mapping[str, Any]) -> WebexEmulator | None:
    if vendor != VENDOR:
        return None
    return WebexEmulator.from_options(options)
