"""Opening an Intercom session: an access token, or the token an OAuth install granted.

Intercom's tokens do not expire and its OAuth exchange issues no refresh
token, so an OAuth credential is used exactly like an access token: the
``access_token`` that ``oomnitza-connect auth login`` saved is sent as
``Authorization: Bearer``. Intercom's token answer carries the token twice
(``token`` and ``access_token``); :func:`parse_token_response` reads either.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import requests

from oomnitza_connect.auth.oauth import TokenResponse, token_response_from_mapping
from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession, open_session

from . import __version__
from .client import parse_intercom_error, rate_budgets, region_host, version_headers
from .vendor import INTERCOM

__all__ = ["bearer_credential", "open_intercom_session", "parse_token_response"]


def bearer_credential(credential: Credential) -> Credential:
    """Return *credential* as the bearer token it holds.

    :raises AuthenticationError: the kind is not Intercom's, or no token is stored.
    """
    if credential.kind not in INTERCOM.auth_kinds:
        raise AuthenticationError(
            f"Credential '{credential.name}' is of kind '{credential.kind}', but Intercom takes "
            "an access token (api_key) or OAuth (oauth2_authorization_code).",
            vendor=INTERCOM.name,
        )
    if credential.kind is AuthKind.API_KEY:
        if not credential.token:
            raise AuthenticationError(
                f"Credential '{credential.name}' has no token; give the Intercom access token "
                "(Developer Hub > your app > Configure > Authentication).",
                vendor=INTERCOM.name,
            )
        return attrs.evolve(credential, header_name="Authorization", header_prefix="Bearer")
    if not credential.access_token:
        raise AuthenticationError(
            f"Credential '{credential.name}' holds no Intercom access token yet; run "
            f"'oomnitza-connect auth login {credential.name}' to install the app.",
            vendor=INTERCOM.name,
        )
    return attrs.evolve(
        credential,
        kind=AuthKind.API_KEY,
        token=credential.access_token,
        header_name="Authorization",
        header_prefix="Bearer",
    )


def open_intercom_session(
    credential: Credential, settings: Mapping[str, str], options: ClientOptions
) -> VendorSession:
    """Return an unverified session on the configured region's host (call ``/me`` next).

    The host is ``options.base_url``, else the credential's ``base_url``, else the
    ``Intercom.Region`` host; every request carries ``Intercom-Version``.
    """
    info = attrs.evolve(
        INTERCOM, base_url=region_host(settings), rate_budgets=rate_budgets(settings)
    )
    session = open_session(
        info,
        bearer_credential(credential),
        settings,
        options,
        error_parser=parse_intercom_error,
        default_headers=version_headers(settings),
        plugin_version=__version__,
    )
    # Presets and callers see the credential as stored, not its bearer form.
    session.credential = credential
    return session


def parse_token_response(response: requests.Response) -> TokenResponse:
    """Read the answer of ``POST /auth/eagle/token``: ``{token_type, token, access_token}``.

    :raises AuthenticationError: Intercom refused the code (an error or no token).
    """
    info = parse_intercom_error(response) if response.status_code >= 400 else None
    try:
        body = response.json()
    except ValueError:
        body = None
    if info is not None or not isinstance(body, Mapping):
        raise AuthenticationError(
            info.message
            if info
            else "Intercom's token endpoint answered with a body that is not JSON",
            vendor=INTERCOM.name,
            status=response.status_code,
            code=info.code if info else None,
            request_id=info.request_id if info else None,
        )
    granted = dict(body)
    if not granted.get("access_token") and granted.get("token"):
        granted["access_token"] = granted["token"]
    if not granted.get("access_token"):
        raise AuthenticationError(
            "Intercom's token endpoint answered without a token",
            vendor=INTERCOM.name,
            status=response.status_code,
        )
    # No refresh token is expected; one that does come is kept, never required.
    return token_response_from_mapping(granted)
