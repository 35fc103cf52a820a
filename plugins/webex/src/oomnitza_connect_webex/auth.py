"""Opening a Webex session: a personal access token, a bot token, or OAuth2 with refresh.

Webex's token endpoint (``/v1/access_token``) takes its parameters
form-encoded, the client's id and secret included, and answers
``{"access_token", "expires_in", "refresh_token", "refresh_token_expires_in"}``
without a ``token_type``. A refresh may return a new refresh token; the core
saves it before the new access token is used.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import requests

from oomnitza_connect.auth.oauth import TokenResponse, token_response_from_mapping
from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession, open_session

from . import __version__
from .client import TRACKING_ID_HEADER, parse_webex_error
from .vendor import WEBEX

__all__ = ["open_webex_session", "parse_token_response"]


def open_webex_session(
    credential: Credential, settings: Mapping[str, str], options: ClientOptions
) -> VendorSession:
    """Return an unverified session for *credential* (call ``GET /v1/people/me`` next)."""
    if credential.kind not in WEBEX.auth_kinds:
        raise AuthenticationError(
            f"Credential '{credential.name}' is of kind '{credential.kind}', but Webex takes a "
            "personal access or bot token (api_key) or OAuth (oauth2_authorization_code).",
            vendor=WEBEX.name,
        )
    if credential.kind is AuthKind.API_KEY and not credential.token:
        raise AuthenticationError(
            f"Credential '{credential.name}' has no token; give a Webex personal access token "
            "or bot token.",
            vendor=WEBEX.name,
        )
    if (
        credential.kind is AuthKind.OAUTH2_AUTHORIZATION_CODE
        and credential.client_auth_method is ClientAuthMethod.CLIENT_SECRET_BASIC
    ):
        # Webex documents the client id and secret as form fields of the token
        # request; HTTP Basic (the core's default) is not among its options.
        credential = attrs.evolve(
            credential, client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST
        )
    return open_session(
        WEBEX,
        credential,
        settings,
        options,
        error_parser=parse_webex_error,
        plugin_version=__version__,
        token_response_parser=parse_token_response,
    )


def parse_token_response(response: requests.Response) -> TokenResponse:
    """Read a ``/v1/access_token`` answer (Webex's shape: no ``token_type``, no ``scope``).

    :raises AuthenticationError: Webex refused, or answered without an access token.
    """
    tracking_id = response.headers.get(TRACKING_ID_HEADER)
    try:
        body = response.json()
    except ValueError:
        raise AuthenticationError(
            "Webex's /v1/access_token answered with a body that is not JSON",
            vendor=WEBEX.name,
            status=response.status_code,
            request_id=tracking_id,
        ) from None
    if not isinstance(body, Mapping):
        body = {}
    if response.status_code >= 400 or not body.get("access_token"):
        reason = body.get("message") or body.get("error_description") or body.get("error")
        raise AuthenticationError(
            f"Webex refused the token request: {reason or 'no access token in the answer'}",
            vendor=WEBEX.name,
            status=response.status_code,
            code=str(body["error"]) if body.get("error") else None,
            request_id=str(body.get("trackingId") or tracking_id or "") or None,
        )
    return token_response_from_mapping(body)
