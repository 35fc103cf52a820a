"""Opening a Webex session: a personal access token, a bot token, or OAuth2 with refresh.

Webex's token endpoint (``/v1/access_token``) takes its parameters
form-encoded, the client's id and secret included, and answers
``{"access_token", "expires_in", "refresh_token", "refresh_token_expires_in"}``
without a ``token_type``. A refresh may return a new refresh token; the core
saves it before the new access token is used.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from oomnitza_connect.auth.oauth import TokenResponse, token_response_from_mapping
from oomnitza_connect.errors import AuthenticationError

from .client import TRACKING_ID_HEADER
from .mapping import VENDOR

__all__ = ["parse_token_response"]


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
            vendor=VENDOR,
            status=response.status_code,
            request_id=tracking_id,
        ) from None
    if not isinstance(body, Mapping):
        body = {}
    if response.status_code >= 400 or not body.get("access_token"):
        reason = body.get("message") or body.get("error_description") or body.get("error")
        raise AuthenticationError(
            f"Webex refused the token request: {reason or 'no access token in the answer'}",
            vendor=VENDOR,
            status=response.status_code,
            code=str(body["error"]) if body.get("error") else None,
            request_id=str(body.get("trackingId") or tracking_id or "") or None,
        )
    return token_response_from_mapping(body)
