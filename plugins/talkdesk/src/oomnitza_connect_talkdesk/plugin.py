"""Talkdesk hook implementations; the work is done in the sibling modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import Credential, Preset, VendorInfo, VendorRecord
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession

from . import client
from .auth import open_talkdesk_session
from .emulator import TalkdeskEmulator
from .mapping import VENDOR
from .presets import PRESETS
from .vendor import TALKDESK


@hookimpl
def register_vendors(register: Callable[[VendorInfo], None]) -> None:
    register(TALKDESK)


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
    session = open_talkdesk_session(credential, settings, options)
    try:
        session.identity = client.verify_access(session)
    except BaseException:
        session.close()
        raise
    return session


@hookimpl
def list_users(vendor: str, session: VendorSession) -> Iterator[VendorRecord] | None:
    if vendor != VENDOR:
        return None
    return client.iter_users(session)


@hookimpl
def workflow_presets(vendor: str) -> list[Preset] | None:
    if vendor != VENDOR:
        return None
    return list(PRESETS)


@hookimpl
def create_emulator(vendor: str, options: Mapping[str, Any]) -> TalkdeskEmulator | None:
    if vendor != VENDOR:
        return None
    return TalkdeskEmulator.from_options(options)
