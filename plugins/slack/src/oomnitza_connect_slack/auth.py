"""Opening a Slack session: a static token or OAuth with token rotation.

Slack's ``oauth.v2.access`` does not answer in RFC 6749's shape: errors come
as HTTP 200 with ``ok: false``, and a user token sits in a nested
``authed_user`` object. :func:`parse_token_response` reads that shape for the
core's OAuth machinery.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from oomnitza_connect.errors import AuthenticationError
from oomnitza_connect.http import ClientOptions, HttpClient, VendorSession, open_session
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.redaction import Secret

from . import __version__
from .client import parse_slack_error
from .vendor import SLACK

__all__ = ["open_slack_session"]


def open_slack_session(
    credential: Credential, settings: Mapping[str, str], options: ClientOptions
) -> VendorSession:
    """Return an unverified session for *credential* (call ``auth.test`` next)."""
    if credential.kind not in SLACK.auth_kinds:
        raise AuthenticationError(
            f"Credential '{credential.name}' is of kind '{credential.kind}', but Slack takes "
            "a token (api_key) or OAuth (oauth2_authorization_code).",
            vendor=SLACK.name,
        )
    if credential.kind is AuthKind.API_KEY and not credential.token:
        raise AuthenticationError(
            f"Credential '{credential.name}' has no token; give a Slack bot (xoxb-) or "
            "user (xoxp-) token.",
            vendor=SLACK.name,
        )
    try:
        return open_session(
            SLACK,
            credential,
            settings,
            options,
            error_parser=parse_slack_error,
            plugin_version=__version__,
        )
    except ModuleNotFoundError:
        return _bearer_session(credential, settings, options)


class _BearerToken(requests.auth.AuthBase):
    def __init__(self, token: Secret) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token.reveal()}"
        return request


def _bearer_session(
    credential: Credential, settings: Mapping[str, str], options: ClientOptions
) -> VendorSession:
    assert credential.token is not None
    http = HttpClient(
        SLACK.name,
        options.base_url or credential.base_url or SLACK.base_url,
        auth=_BearerToken(credential.token),
        options=options,
        rate_budgets=SLACK.rate_budgets,
        error_parser=parse_slack_error,
        plugin_version=__version__,
    )
    return VendorSession(
        vendor=SLACK.name, http=http, credential=credential, settings=dict(settings)
    )
