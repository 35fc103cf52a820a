"""Slack hook implementations; the work is done in the sibling modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from oomnitza_connect.auth.oauth import TokenResponseParser
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import Credential, Preset, UnreadRecord, VendorInfo, VendorRecord
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession

from . import client
from .auth import open_slack_session, parse_token_response
from .emulator import SlackEmulator
from .mapping import VENDOR
from .presets import PRESETS
from .vendor import ADMIN_SCOPE, SLACK


@hookimpl
def register_vendors(register: Callable[[VendorInfo], None]) -> None:
    register(SLACK)


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
    session = open_slack_session(credential, settings, options)
    try:
        session.identity = client.verify_token(session.http)
    except BaseException:
        session.close()
        raise
    return session


@hookimpl
def list_users(vendor: str, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord] | None:
    if vendor != VENDOR:
        return None
    return client.iter_users(session)


@hookimpl
def list_last_logins(vendor: str, session: VendorSession) -> Iterable[Mapping[str, Any]] | None:
    if vendor != VENDOR:
        return None
    mode = client.last_logins_mode(session.settings)
    if mode == "off":
        return None
    scopes = session.identity.get("scopes")
    if mode == "auto" and scopes is not None and ADMIN_SCOPE not in scopes:
        # Without the admin scope team.accessLogs can only fail; say so once, quietly.
        client.log.info(
            "slack: the token has no '%s' scope, so last logins are not read", ADMIN_SCOPE
        )
        return None
    return client.last_logins(session)


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
def create_emulator(vendor: str, options: Mapping[str, Any]) -> SlackEmulator | None:
    if vendor != VENDOR:
        return None
    return SlackEmulator.from_options(options)
