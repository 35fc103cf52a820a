"""An OAuth2 authorization server for emulators, checked as strictly as a real one.

Mix :class:`OAuthTokenEndpointMixin` into an emulator (it is an
:class:`~oomnitza_connect.testing.emulator.Emulator` subclass) and register
clients with :meth:`~OAuthTokenEndpointMixin.register_client`. It serves:

* ``POST /oauth/token`` (endpoint ``oauth.token``) with the grants
  ``client_credentials``, ``authorization_code`` (PKCE ``S256`` and ``plain``)
  and ``refresh_token``. Refresh tokens are single-use and rotate: the old
  one is refused once used.
* ``GET /oauth/authorize`` (endpoint ``oauth.authorize``), which grants at
  once and redirects to the client's ``redirect_uri`` with ``code`` and
  ``state``, so a test can drive the flow by fetching the authorize URL.

Clients prove themselves with ``client_secret_basic``, ``client_secret_post``
or ``private_key_jwt``. A JWT assertion is checked for its signature (with the
registered public key), ``kid``, ``aud`` (the token URL), ``iss`` = ``sub`` =
client id, an ``exp`` in the future at most five minutes after ``iat``, and a
``jti`` never seen before.

A vendor whose endpoints live elsewhere (Slack's ``/api/oauth.v2.access``)
sets :attr:`~OAuthTokenEndpointMixin.token_path` and
:attr:`~OAuthTokenEndpointMixin.authorize_path`, or, where a request needs
reshaping first (Intercom's grant-less form), adds a route that calls
:meth:`~OAuthTokenEndpointMixin.handle_token_request`; it overrides
:meth:`~OAuthTokenEndpointMixin.token_success` and
:meth:`~OAuthTokenEndpointMixin.token_error` to answer in its own format. One
whose answers differ more (Slack: HTTP 200 with ``ok: false``, a nested
``authed_user`` token) overrides :meth:`~OAuthTokenEndpointMixin.grant_tokens`
(a checked :class:`TokenGrant` in, the answer out) and
:meth:`~OAuthTokenEndpointMixin.token_refused` (maps a
:class:`TokenRefused` reason to its own code); ``code_parameters`` keeps extra
authorize parameters with the code, :meth:`~OAuthTokenEndpointMixin.parse_scopes`
reads its scope syntax, and the token prefixes are class attributes.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import unquote_plus, urlencode, urlsplit

import attrs
import jwt

from .emulator import (
    Emulator,
    EmulatorRequest,
    EmulatorResponse,
    IssuedToken,
    json_response,
)

__all__ = [
    "OAuthTokenEndpointMixin",
    "RefreshEvent",
    "RegisteredClient",
    "TokenGrant",
    "TokenRefused",
]

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512")


@attrs.frozen
class RegisteredClient:
    """A client the authorization server knows.

    :param client_secret: for ``client_secret_basic``/``client_secret_post``.
    :param public_key: PEM of the key that verifies ``private_key_jwt`` assertions.
    :param key_id: the ``kid`` assertions must name.
    :param redirect_uris: allowed redirect URIs; empty allows any loopback URI.
    """

    client_id: str
    client_secret: str | None = None
    public_key: str | None = None
    key_id: str | None = None
    redirect_uris: tuple[str, ...] = ()
    scopes: frozenset[str] = frozenset()


@attrs.frozen
class RefreshEvent:
    """One use of a refresh token, as the server saw it."""

    old_refresh_token: str
    new_refresh_token: str | None
    accepted: bool


@attrs.define
class _IssuedCode:
    client_id: str
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str
    scopes: frozenset[str]
    expires_at: float
    extras: Mapping[str, str] = attrs.field(factory=dict)


class TokenRefused(Exception):
    """Why the token endpoint refuses: an OAuth *error*, and a finer *reason* a vendor
    with its own codes maps (``unknown_client``, ``bad_secret``, ``malformed``,
    ``bad_code``, ``bad_redirect``, ``bad_verifier``, ``bad_refresh``, ``bad_grant``;
    otherwise the error itself)."""

    def __init__(self, error: str, description: str, status: int = 400, reason: str = "") -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.reason = reason or error


@attrs.frozen
class TokenGrant:
    """What the token endpoint grants, once the client and the grant are checked.

    :param refresh_token: the new refresh token (already issued), if any.
    :param extras: the authorize parameters named in ``code_parameters``
        (Slack's ``user_scope``), for an ``authorization_code`` grant.
    :param refreshed: the spent refresh token, for a ``refresh_token`` grant.
    """

    client: RegisteredClient
    grant_type: str
    scopes: frozenset[str]
    refresh_token: str | None
    extras: Mapping[str, str] = attrs.field(factory=dict)
    refreshed: IssuedToken | None = None


class OAuthTokenEndpointMixin(Emulator):
    """The token and authorize endpoints of an OAuth2 authorization server."""

    access_token_ttl: ClassVar[float | None] = 3600.0
    refresh_token_ttl: ClassVar[float | None] = None
    rotate_refresh_tokens: ClassVar[bool] = True
    issue_refresh_tokens_for_client_credentials: ClassVar[bool] = False
    max_assertion_lifetime: ClassVar[float] = 300.0
    token_path: ClassVar[str] = "/oauth/token"
    token_endpoint: ClassVar[str] = "oauth.token"
    authorize_path: ClassVar[str] = "/oauth/authorize"
    """Where the auto-approving authorize endpoint listens (a vendor sets its own path)."""
    authorize_endpoint: ClassVar[str] = "oauth.authorize"
    access_token_prefix: ClassVar[str] = "emu-at-"
    refresh_token_prefix: ClassVar[str] = "emu-rt-"
    code_parameters: ClassVar[tuple[str, ...]] = ()
    """Authorize parameters kept with the code and handed to :meth:`grant_tokens`."""
    infer_grant_type: ClassVar[bool] = False
    """A form with a ``code`` and no ``grant_type`` is an ``authorization_code`` grant
    (Slack makes ``grant_type`` optional)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refresh_token_reuse_grace: float | None = None
        """Seconds a rotated refresh token is still accepted once more (Okta's grace
        period, Auth0's reuse interval); ``None``: spent at once, as most vendors do."""
        self._spent_refresh: dict[str, tuple[float, str]] = {}
        self._oauth_lock = threading.Lock()
        self.oauth_clients: dict[str, RegisteredClient] = {}
        self._codes: dict[str, _IssuedCode] = {}
        self._seen_jtis: set[str] = set()
        self.refresh_events: list[RefreshEvent] = []
        self.token_requests = 0
        self.token_audience: str | None = None
        """The ``aud`` assertions must carry; ``None`` means this server's token URL."""

    # -- configuration --------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        public_key: str | None = None,
        key_id: str | None = None,
        redirect_uris: Iterable[str] = (),
        scopes: Iterable[str] = (),
    ) -> RegisteredClient:
        client = RegisteredClient(
            client_id=client_id,
            client_secret=client_secret,
            public_key=public_key,
            key_id=key_id,
            redirect_uris=tuple(redirect_uris),
            scopes=frozenset(scopes),
        )
        with self._oauth_lock:
            self.oauth_clients[client_id] = client
        return client

    def grant_refresh_token(self, client_id: str, *, scopes: Iterable[str] = ()) -> str:
        """Issue a refresh token directly, as if a user had consented earlier."""
        return self.issue_token(
            scopes=scopes,
            ttl=self.refresh_token_ttl,
            prefix=self.refresh_token_prefix,
            subject=client_id,
            kind="refresh",
        ).value

    @property
    def token_url(self) -> str:
        return self.server_url + self.token_path

    @property
    def authorize_url(self) -> str:
        return self.server_url + self.authorize_path

    # -- routes (at :attr:`token_path` and :attr:`authorize_path`) -------------

    @classmethod
    def configured_routes(cls) -> Iterable[tuple[str, str, str, Any]]:
        yield from super().configured_routes()
        yield ("POST", cls.token_path, cls.token_endpoint, cls.oauth_token)
        yield ("GET", cls.authorize_path, cls.authorize_endpoint, cls.oauth_authorize)

    def oauth_token(self, request: EmulatorRequest) -> EmulatorResponse:
        return self.handle_token_request(request)

    def oauth_authorize(self, request: EmulatorRequest) -> EmulatorResponse:
        """Approve at once and redirect back with a code (no browser needed)."""
        return self.handle_authorize_request(request)

    # -- answers (override for a vendor's format) ------------------------------

    def token_success(
        self,
        access_token: str,
        refresh_token: str | None,
        expires_in: float | None,
        scopes: frozenset[str],
    ) -> EmulatorResponse:
        body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer"}
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if scopes:
            body["scope"] = " ".join(sorted(scopes))
        return EmulatorResponse(status=200, body=body, headers={"Cache-Control": "no-store"})

    def token_error(self, error: str, description: str, status: int) -> EmulatorResponse:
        return json_response({"error": error, "error_description": description}, status=status)

    def token_refused(self, refused: TokenRefused) -> EmulatorResponse:
        """The answer to a refused token request; override to map ``refused.reason``."""
        return self.token_error(refused.error, refused.description, refused.status)

    def authorize_error(self, error: str) -> EmulatorResponse:
        """The answer when the authorize request cannot even redirect back."""
        return json_response({"error": error}, status=400)

    def parse_scopes(self, value: str | None) -> frozenset[str]:
        """The scopes of a ``scope`` parameter (space-separated, as RFC 6749 says)."""
        return frozenset((value or "").split())

    def grant_tokens(self, grant: TokenGrant) -> EmulatorResponse:
        """Issue the access token of *grant* and answer; override for a vendor's shape."""
        access = self.issue_token(
            scopes=grant.scopes,
            ttl=self.access_token_ttl,
            prefix=self.access_token_prefix,
            subject=grant.client.client_id,
        )
        return self.token_success(
            access.value, grant.refresh_token, self.access_token_ttl, grant.scopes
        )

    # -- the token endpoint -----------------------------------------------------

    def handle_token_request(self, request: EmulatorRequest) -> EmulatorResponse:
        with self._oauth_lock:
            self.token_requests += 1
        try:
            form = request.form()
            client = self._authenticate_client(request, form)
            grant = form.get("grant_type")
            if not grant and self.infer_grant_type and form.get("code"):
                grant = "authorization_code"
            if grant == "client_credentials":
                return self._client_credentials(client, form)
            if grant == "authorization_code":
                return self._authorization_code(client, form)
            if grant == "refresh_token":
                return self._refresh(client, form)
            raise TokenRefused(
                "unsupported_grant_type",
                f"grant_type {grant!r} is not supported",
                reason="bad_grant",
            )
        except TokenRefused as refused:
            return self.token_refused(refused)

    def _authenticate_client(
        self, request: EmulatorRequest, form: dict[str, str]
    ) -> RegisteredClient:
        header = request.header("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
                raw_id, raw_secret = decoded.split(":", 1)
            except ValueError:
                raise TokenRefused(
                    "invalid_client", "malformed Basic credentials", 401, "malformed"
                ) from None
            client = self._client(unquote_plus(raw_id))
            if client.client_secret is None or not secrets.compare_digest(
                unquote_plus(raw_secret), client.client_secret
            ):
                raise TokenRefused(
                    "invalid_client", "client authentication failed", 401, "bad_secret"
                )
            return client
        if "client_assertion" in form:
            return self._verify_assertion(request, form)
        client = self._client(form.get("client_id", ""))
        if "client_secret" in form:
            if client.client_secret is None or not secrets.compare_digest(
                form["client_secret"], client.client_secret
            ):
                raise TokenRefused(
                    "invalid_client", "client authentication failed", 401, "bad_secret"
                )
            return client
        if client.client_secret is None and client.public_key is None:
            return client  # a public client, held to PKCE
        raise TokenRefused("invalid_client", "client authentication is required", 401, "bad_secret")

    def _client(self, client_id: str) -> RegisteredClient:
        with self._oauth_lock:
            client = self.oauth_clients.get(client_id)
        if client is None:
            raise TokenRefused("invalid_client", "unknown client", 401, "unknown_client")
        return client

    def _verify_assertion(self, request: EmulatorRequest, form: dict[str, str]) -> RegisteredClient:
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION:
            raise TokenRefused("invalid_client", "unsupported client_assertion_type", 401)
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRefused("invalid_client", "the client assertion is not a JWT", 401) from None
        client = self._client(str(unverified.get("iss", "")))
        if client.public_key is None:
            raise TokenRefused("invalid_client", "the client has no registered key", 401)
        if header.get("alg") not in ASSERTION_ALGORITHMS:
            raise TokenRefused(
                "invalid_client", f"algorithm {header.get('alg')!r} is not allowed", 401
            )
        if client.key_id is not None and header.get("kid") != client.key_id:
            raise TokenRefused("invalid_client", "the assertion names an unknown kid", 401)
        audience = self.token_audience or f"{self.base_url}{request.path}"
        try:
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=list(ASSERTION_ALGORITHMS),
                audience=audience,
                options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidAudienceError:
            raise TokenRefused(
                "invalid_client", "the assertion's aud is not this token URL", 401
            ) from None
        except jwt.ExpiredSignatureError:
            raise TokenRefused("invalid_client", "the assertion has expired", 401) from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(
                "invalid_client", f"bad assertion: {exc.__class__.__name__}", 401
            ) from None
        if claims["sub"] != client.client_id or claims["iss"] != client.client_id:
            raise TokenRefused("invalid_client", "iss and sub must both be the client id", 401)
        if float(claims["exp"]) - float(claims["iat"]) > self.max_assertion_lifetime:
            raise TokenRefused(
                "invalid_client", "the assertion lives longer than five minutes", 401
            )
        with self._oauth_lock:
            if claims["jti"] in self._seen_jtis:
                raise TokenRefused("invalid_client", "the assertion's jti was used before", 401)
            self._seen_jtis.add(str(claims["jti"]))
        return client

    def _scopes(self, client: RegisteredClient, form: dict[str, str]) -> frozenset[str]:
        asked = self.parse_scopes(form.get("scope"))
        if client.scopes and not asked <= client.scopes:
            raise TokenRefused("invalid_scope", "a requested scope is not granted to the client")
        return asked or client.scopes

    def _client_credentials(
        self, client: RegisteredClient, form: dict[str, str]
    ) -> EmulatorResponse:
        scopes = self._scopes(client, form)
        refresh = None
        if self.issue_refresh_tokens_for_client_credentials:
            refresh = self.grant_refresh_token(client.client_id, scopes=scopes)
        return self.grant_tokens(TokenGrant(client, "client_credentials", scopes, refresh))

    def _authorization_code(
        self, client: RegisteredClient, form: dict[str, str]
    ) -> EmulatorResponse:
        with self._oauth_lock:
            issued = self._codes.pop(form.get("code", ""), None)  # codes are single-use
        if issued is None or issued.expires_at < time.time():
            raise TokenRefused(
                "invalid_grant",
                "the authorization code is unknown, used or expired",
                reason="bad_code",
            )
        if issued.client_id != client.client_id:
            raise TokenRefused(
                "invalid_grant", "the code was issued to another client", reason="bad_code"
            )
        if issued.redirect_uri is not None and form.get("redirect_uri") != issued.redirect_uri:
            raise TokenRefused(
                "invalid_grant",
                "redirect_uri differs from the authorization request",
                reason="bad_redirect",
            )
        if issued.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise TokenRefused(
                    "invalid_grant", "code_verifier is required (PKCE)", reason="bad_verifier"
                )
            if _challenge(verifier, issued.code_challenge_method) != issued.code_challenge:
                raise TokenRefused(
                    "invalid_grant",
                    "code_verifier does not match the code challenge",
                    reason="bad_verifier",
                )
        elif client.client_secret is None:
            raise TokenRefused("invalid_grant", "a public client must use PKCE", reason="bad_code")
        refresh = self.grant_refresh_token(client.client_id, scopes=issued.scopes)
        return self.grant_tokens(
            TokenGrant(client, "authorization_code", issued.scopes, refresh, issued.extras)
        )

    def _refresh(self, client: RegisteredClient, form: dict[str, str]) -> EmulatorResponse:
        presented = form.get("refresh_token", "")
        token = self.lookup_token(presented, kind="refresh")
        if token is None and self.refresh_token_reuse_grace is not None:
            with self._oauth_lock:
                spent = self._spent_refresh.pop(presented, None)
            if spent is not None and time.time() - spent[0] <= self.refresh_token_reuse_grace:
                # Accepted again within the grace period; what it was exchanged
                # for the first time never reached the client, so it is revoked.
                token = self.lookup_token(spent[1], kind="refresh")
                if token is not None:
                    self.revoke_token(spent[1])
                    presented = spent[1]
        if token is None or token.expired() or token.subject != client.client_id:
            with self._oauth_lock:
                self.refresh_events.append(RefreshEvent(presented, None, accepted=False))
            raise TokenRefused(
                "invalid_grant",
                "the refresh token is unknown, used or expired",
                reason="bad_refresh",
            )
        scopes = token.scopes
        if self.rotate_refresh_tokens:
            self.revoke_token(presented)
            rotated = self.grant_refresh_token(client.client_id, scopes=scopes)
            with self._oauth_lock:
                self._spent_refresh[form.get("refresh_token", "")] = (time.time(), rotated)
            new_refresh: str | None = rotated
        else:
            new_refresh = None
        with self._oauth_lock:
            self.refresh_events.append(RefreshEvent(presented, new_refresh, accepted=True))
        return self.grant_tokens(
            TokenGrant(client, "refresh_token", scopes, new_refresh, refreshed=token)
        )

    # -- the authorize endpoint --------------------------------------------------

    def issue_authorization_code(
        self,
        client_id: str,
        *,
        redirect_uri: str | None = None,
        scopes: Iterable[str] = (),
        code_challenge: str | None = None,
        code_challenge_method: str = "plain",
        extras: Mapping[str, str] | None = None,
    ) -> str:
        """Return a code, as if the user had approved the authorize request."""
        code = "emu-code-" + secrets.token_urlsafe(16)
        with self._oauth_lock:
            self._codes[code] = _IssuedCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                scopes=frozenset(scopes),
                expires_at=time.time() + 300,
                extras=dict(extras or {}),
            )
        return code

    def handle_authorize_request(self, request: EmulatorRequest) -> EmulatorResponse:
        query = request.query
        try:
            client = self._client(query.get("client_id", ""))
        except TokenRefused as refused:
            return self.authorize_error(refused.error)
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri or not _redirect_allowed(client, redirect_uri):
            return self.authorize_error("invalid_redirect_uri")
        if query.get("response_type") != "code":
            return _redirect(
                redirect_uri,
                {"error": "unsupported_response_type", "state": query.get("state", "")},
            )
        code = self.issue_authorization_code(
            client.client_id,
            redirect_uri=redirect_uri,
            scopes=self.parse_scopes(query.get("scope")),
            code_challenge=query.get("code_challenge"),
            code_challenge_method=query.get("code_challenge_method", "plain"),
            extras={key: query[key] for key in self.code_parameters if key in query},
        )
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        return _redirect(redirect_uri, params)


def _redirect(uri: str, params: dict[str, str]) -> EmulatorResponse:
    separator = "&" if "?" in uri else "?"
    return EmulatorResponse(
        status=302, body={}, headers={"Location": uri + separator + urlencode(params)}
    )


def _redirect_allowed(client: RegisteredClient, uri: str) -> bool:
    if client.redirect_uris:
        return uri in client.redirect_uris
    return urlsplit(uri).hostname in ("127.0.0.1", "localhost", "::1")


def _challenge(verifier: str, method: str) -> str:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier
