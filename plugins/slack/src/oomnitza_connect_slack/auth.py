"""Reading Slack's OAuth token answers.

Slack's ``oauth.v2.access`` does not answer in RFC 6749's shape: errors come
as HTTP 200 with ``ok: false``, and a user token sits in a nested
``authed_user`` object. :func:`parse_token_response` reads that shape for the
core's OAuth machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from oomnitza_connect.auth.oauth import TokenResponse, token_response_from_mapping
from oomnitza_connect.errors import AuthenticationError

__all__ = ["parse_token_response"]


def parse_token_response(response: requests.Response) -> TokenResponse:
    """Read an ``oauth.v2.access`` answer: the app's (bot) token, else the user's.

    A workspace installed with bot scopes gets the bot token at the top level;
    an install with only user scopes (needed for ``team.accessLogs``) gets it in
    ``authed_user``. Refreshing a rotated token answers at the top level.

    :raises AuthenticationError: Slack refused (``ok: false`` with HTTP 200).
    """
    try:
        body = response.json()
    except ValueError:
        raise AuthenticationError(
            "Slack's oauth.v2.access answered with a body that is not JSON",
            vendor="slack",
            status=response.status_code,
        ) from None
    if not isinstance(body, Mapping):
        body = {}
    request_id = response.headers.get("X-Slack-Req-Id")
    if body.get("ok") is not True:
        code = str(body.get("error") or "unknown_error")
        raise AuthenticationError(
            _TOKEN_ERRORS.get(code, f"Slack refused the token request ({code})"),
            vendor="slack",
            status=response.status_code,
            code=code,
            request_id=request_id,
        )
    granted: Mapping[str, Any] = body
    authed_user = body.get("authed_user")
    if not body.get("access_token") and isinstance(authed_user, Mapping):
        granted = authed_user
    if not granted.get("access_token"):
        raise AuthenticationError(
            "Slack's oauth.v2.access answer holds no access token; ask for bot scopes "
            "(scope) or user scopes (user_scope)",
            vendor="slack",
            status=response.status_code,
            request_id=request_id,
        )
    return token_response_from_mapping(granted)


_TOKEN_ERRORS = {
    "invalid_refresh_token": (
        "Slack refused the refresh token: it was already used or revoked (Slack refresh "
        "tokens are single-use); sign in again with 'oomnitza-connect auth login'"
    ),
    "invalid_code": "Slack refused the authorization code: it is unknown, used or expired",
    "bad_client_secret": "Slack refused the client secret of the app",
    "invalid_client_id": "Slack does not know the app's client id",
    "bad_redirect_uri": "the redirect URI differs from the one of the authorization request",
    "invalid_grant_type": "Slack does not accept that grant_type",
    "invalid_code_verifier": "the PKCE code verifier does not match the code challenge",
}
