"""A vendor session: the HTTP client, its auth and the credential, opened together.

This is where transport and auth meet, so neither has to import the other.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..auth.oauth import auth_for_credential
from ..models import Credential, VendorInfo
from ..transport.http import (
    ClientOptions,
    ErrorParser,
    HttpClient,
    PageMemo,
    default_error_parser,
)

if TYPE_CHECKING:
    from ..auth.credentials import CredentialStore

__all__ = ["VendorSession", "open_session"]


@attrs.define
class VendorSession:
    """An authenticated conversation with one vendor account.

    :param identity: what the vendor said about the credential's owner
        (team, admin, account), for display and for presets.
    :param wanted_fields: the record field keys the caller reads (its mapping's
        sources, expressions and filters); ``None`` means every field. The sync
        engine sets it, so a plugin may leave out what costs extra and nobody
        reads (Intercom asks for avatars only when Avatar is mapped).
    """

    vendor: str
    http: HttpClient
    credential: Credential
    settings: Mapping[str, str] = attrs.field(factory=dict)
    identity: Mapping[str, Any] = attrs.field(factory=dict)
    wanted_fields: frozenset[str] | None = None
    skipped: Counter[str] = attrs.field(factory=Counter)
    """Entries the vendor listed that are not users, by reason (counted, not errors)."""
    expected_total: int | None = None
    """How many users the vendor says it has (its first page's ``total``), once
    known; ``None`` when it does not say. Progress displays read it."""
    cache: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    """What a plugin keeps for the session's life under a key of its own (Webex's
    role names: one ``GET /v1/roles`` per session, however many presets run)."""
    page_memo: PageMemo | None = attrs.field(default=None, eq=False, repr=False)
    """Set by the sync engine: users pages it recognises by their bytes are not
    decoded (a declarative vendor's :meth:`~oomnitza_connect.vendors.base.RestVendor.iter_users`
    yields what the memo recalls instead of the page's users)."""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VendorSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_session(
    info: VendorInfo,
    credential: Credential,
    settings: Mapping[str, str],
    options: ClientOptions,
    *,
    error_parser: ErrorParser = default_error_parser,
    default_headers: Mapping[str, str] | None = None,
    plugin_version: str | None = None,
    credential_store: CredentialStore | None = None,
    token_response_parser: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VendorSession:
    """Build the HTTP client for *credential* and return an (unverified) session.

    The base URL is ``options.base_url``, else ``credential.base_url``, else
    ``info.base_url``; the CA bundle ``options.ca_bundle`` else
    ``credential.ca_bundle``; OAuth2 endpoints come from the credential, else
    from *info*, rendered with *settings* (``{{Talkdesk.Account}}``). Rotated
    tokens are saved through *credential_store* (the default store when
    ``None``) before they are used.

    :param token_response_parser: reads a vendor's token endpoint answer (see
        :class:`oomnitza_connect.auth.oauth.TokenResponse`); ``None`` for RFC 6749.
    """

    base_url = options.base_url or credential.base_url or info.base_url
    effective = attrs.evolve(
        options,
        base_url=base_url,
        ca_bundle=options.ca_bundle or credential.ca_bundle,
    )
    auth = auth_for_credential(
        credential,
        info=info,
        settings=settings,
        options=effective,
        credential_store=credential_store,
        token_response_parser=token_response_parser,
    )
    client = HttpClient(
        info.name,
        base_url,
        auth=auth,
        options=effective,
        rate_budgets=info.rate_budgets,
        error_parser=error_parser,
        plugin_version=plugin_version,
        default_headers=default_headers,
        sleep=sleep,
    )
    session = VendorSession(
        vendor=info.name, http=client, credential=credential, settings=dict(settings)
    )
    listeners = getattr(auth, "listeners", None)
    if isinstance(listeners, list):
        # session.credential follows renewed tokens, for plugins and presets that read it.
        listeners.append(lambda updated: setattr(session, "credential", updated))
    return session
