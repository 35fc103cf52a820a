"""Opening a Talkdesk session: OAuth2 client credentials, signed JWT or HTTP Basic.

Talkdesk's token host belongs to the account and the region
(``https://mycompany.talkdeskid.eu/oauth/token``); the session takes it from
the settings unless the credential names its own ``token_url`` (an emulator).
Client credentials issue no refresh token: the core's
:class:`~oomnitza_connect.auth.oauth.ClientCredentialsAuth` asks for a new access
token shortly before ``expires_in`` runs out and once more when a request
gets 401. The JWT client assertion is signed by the core too
(:func:`oomnitza_connect.auth.oauth.build_client_assertion`): ``iss`` = ``sub`` =
client id, ``aud`` = the exact token URL, a fresh ``jti`` and five minutes of
life, with the key's ``kid`` in the header.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession, open_session

from . import __version__
from .client import parse_talkdesk_error, resolved_api_base_url, resolved_token_url
from .vendor import TALKDESK

__all__ = ["open_talkdesk_session"]


def _checked(credential: Credential) -> Credential:
    if credential.kind is not AuthKind.OAUTH2_CLIENT_CREDENTIALS:
        raise AuthenticationError(
            f"Credential '{credential.name}' is of kind '{credential.kind}', but Talkdesk takes "
            "OAuth2 client credentials (oauth2_client_credentials) with a signed JWT "
            "(private_key_jwt) or HTTP Basic (client_secret_basic).",
            vendor=TALKDESK.name,
        )
    if not credential.client_id:
        raise AuthenticationError(
            f"Credential '{credential.name}' has no client_id; give the Talkdesk client id.",
            vendor=TALKDESK.name,
        )
    method = credential.client_auth_method
    if method is ClientAuthMethod.PRIVATE_KEY_JWT and not credential.private_key:
        raise AuthenticationError(
            f"Credential '{credential.name}' signs a JWT (private_key_jwt) but has no "
            "private_key; give the key Talkdesk delivered (Base64 PKCS#8) or a PEM key.",
            vendor=TALKDESK.name,
        )
    if method is not ClientAuthMethod.PRIVATE_KEY_JWT and not credential.client_secret:
        raise AuthenticationError(
            f"Credential '{credential.name}' uses HTTP Basic but has no client_secret.",
            vendor=TALKDESK.name,
        )
    if method is ClientAuthMethod.CLIENT_SECRET_POST:
        # Talkdesk documents Basic and signed JWTs only.
        credential = attrs.evolve(
            credential, client_auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC
        )
    return credential


def open_talkdesk_session(
    credential: Credential, settings: Mapping[str, str], options: ClientOptions
) -> VendorSession:
    """Return an unverified session for *credential* (read ``/users`` next)."""
    credential = _checked(credential)
    if not credential.token_url:
        credential = attrs.evolve(credential, token_url=resolved_token_url(settings))
    if not credential.scopes:
        credential = attrs.evolve(credential, scopes=TALKDESK.scopes)
    if not options.base_url and not credential.base_url:
        options = attrs.evolve(options, base_url=resolved_api_base_url(settings))
    return open_session(
        TALKDESK,
        credential,
        settings,
        options,
        error_parser=parse_talkdesk_error,
        plugin_version=__version__,
        default_headers={"Accept": "application/hal+json, application/json"},
    )
