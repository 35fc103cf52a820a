"""Authentication strategies: ``requests`` auth classes built from a :class:`Credential`.

=================================  ==========================================
credential kind                    auth
=================================  ==========================================
``api_key``                        :class:`HeaderTokenAuth` (any header, any prefix)
``basic``                          :class:`BasicAuth`
``oauth2_client_credentials``      :class:`ClientCredentialsAuth` (client_secret_basic,
                                   client_secret_post, private_key_jwt)
``oauth2_authorization_code``      :class:`AuthorizationCodeAuth` (refresh, rotation)
=================================  ==========================================

OAuth2 requests are prepared and parsed with oauthlib; JWT client assertions
are signed with PyJWT. Access tokens are cached with their expiry and renewed
:data:`REFRESH_SKEW` seconds before it, and once more when the vendor refuses
one (:meth:`OAuth2Auth.token_rejected`, called by the HTTP client). Only one
thread renews at a time. A rotated refresh token is saved through the
credential store *before* the new access token is used, so that a crash
cannot lose it.

The authorization code flow with PKCE (:func:`start_authorization`,
:func:`complete_authorization`, :func:`login_with_loopback`) is what
``oomnitza-connect auth login`` runs.
"""

from __future__ import annotations

import base64
import html
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote_plus, urlsplit, urlunsplit

import attrs
import requests

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponseError,
    OomnitzaConnectError,
    RateLimitError,
    VendorAPIError,
)
from ..models import AuthKind, ClientAuthMethod, Credential, VendorInfo
from ..redaction import Secret, redact
from ..transport.http import (
    ClientOptions,
    HttpClient,
    VendorErrorInfo,
    decode_json,
    request_id_of,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from oauthlib.oauth2 import WebApplicationClient

    from .credentials import CredentialStore

__all__ = [
    "ASSERTION_ALGORITHMS",
    "REFRESH_SKEW",
    "AuthorizationCodeAuth",
    "AuthorizationRequest",
    "BasicAuth",
    "ClientCredentialsAuth",
    "HeaderTokenAuth",
    "OAuth2Auth",
    "TokenResponse",
    "TokenResponseParser",
    "auth_for_credential",
    "build_client_assertion",
    "check_private_key",
    "complete_authorization",
    "load_private_key",
    "login_with_loopback",
    "resolve_oauth_urls",
    "rfc6749_token_response",
    "start_authorization",
]

log = logging.getLogger(__name__)

REFRESH_SKEW = 60.0
"""Seconds before expiry at which a cached access token is renewed."""

ASSERTION_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
ASSERTION_LIFETIME = 300
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


# ---------------------------------------------------------------------------
# Static credentials
# ---------------------------------------------------------------------------


class HeaderTokenAuth(requests.auth.AuthBase):
    """A static token in a header: ``Authorization: Bearer x``, ``X-Api-Key: x``.

    :param prefix: put before the token with a space; empty sends the raw value.
    """

    def __init__(
        self, token: Secret, *, header_name: str = "Authorization", prefix: str = "Bearer"
    ) -> None:
        self._token = token
        self.header_name = header_name
        self.prefix = prefix

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        value = self._token.reveal()
        request.headers[self.header_name] = f"{self.prefix} {value}" if self.prefix else value
        return request

    def __repr__(self) -> str:
        return f"<HeaderTokenAuth header={self.header_name!r} token={self._token!r}>"


class BasicAuth(requests.auth.AuthBase):
    """HTTP Basic whose password stays a :class:`Secret` until the request is sent."""

    def __init__(self, username: str, password: Secret) -> None:
        self.username = username
        self._password = password

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        pair = f"{self.username}:{self._password.reveal()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return request

    def __repr__(self) -> str:
        return f"<BasicAuth username={self.username!r} password={self._password!r}>"


# ---------------------------------------------------------------------------
# Token responses
# ---------------------------------------------------------------------------


@attrs.frozen
class TokenResponse:
    """What a token endpoint granted.

    :param expires_in: seconds the access token lives; ``None`` when unknown
        (the token is then used until the vendor refuses it).
    :param refresh_token: a new refresh token, when the server rotates them.
    """

    access_token: Secret
    expires_in: float | None = None
    refresh_token: Secret | None = None
    token_type: str | None = None
    scope: tuple[str, ...] = ()


TokenResponseParser = Callable[[requests.Response], TokenResponse]
"""Reads a token endpoint's answer; raise :class:`AuthenticationError` on a refusal.

An answer with no usable token is a :class:`MalformedResponseError` (the vendor
may be left empty: :class:`OAuth2Auth` fills it in). A success whose body is not
JSON never reaches the parser: the HTTP client raises it first.

Vendors that wrap their token response (Slack's ``oauth.v2.access`` answers
``{"ok": true, "access_token": …}`` and refuses with HTTP 200
``{"ok": false, "error": "invalid_refresh_token"}``) pass their own parser.
"""


def rfc6749_token_response(response: requests.Response) -> TokenResponse:
    """Parse a standard (RFC 6749 section 5) token response.

    The body is decoded here rather than by oauthlib, whose parser reads a body
    that is not JSON as a form and then reports an invented ``missing_token``.

    :raises AuthenticationError: the answer is an OAuth2 error (``invalid_grant``).
    :raises MalformedResponseError: the answer is not JSON or has no usable token.
    """
    try:
        body = decode_json(response)
    except ValueError:
        raise _malformed_answer("is not JSON", response) from None
    if not isinstance(body, Mapping):
        raise _malformed_answer("is not a JSON object", response)
    error = body.get("error")
    if error:
        description = body.get("error_description")
        raise AuthenticationError(
            redact(f"the token endpoint refused the request: {description or error}"),
            status=response.status_code,
            code=str(error),
            request_id=request_id_of(response),
        )
    return token_response_from_mapping(body)


def _malformed_answer(problem: str, response: requests.Response | None) -> MalformedResponseError:
    # The vendor is filled in by OAuth2Auth, which knows it; a parser does not.
    return MalformedResponseError(
        f"the token endpoint's answer {problem}",
        vendor="",
        status=response.status_code if response is not None else None,
        request_id=request_id_of(response) if response is not None else None,
    )


def token_response_from_mapping(token: Mapping[str, Any]) -> TokenResponse:
    """Build a :class:`TokenResponse` from a decoded token response (for custom parsers).

    :raises MalformedResponseError: no access token, a token that could not be
        sent in a header, or an ``expires_in`` that is not a number.
    """
    access = token.get("access_token")
    if not access:
        raise _malformed_answer("has no access_token", None)
    from .credentials import token_character_problem

    for key in ("access_token", "refresh_token"):
        value = token.get(key)
        problem = token_character_problem(str(value)) if value else None
        if problem is not None:
            raise _malformed_answer(f"has an {key} that {problem}", None)
    expires_in = token.get("expires_in")
    try:
        lifetime = float(expires_in) if expires_in not in (None, "") else None
    except (TypeError, ValueError):
        raise _malformed_answer("has an expires_in that is not a number", None) from None
    refresh = token.get("refresh_token")
    scope = token.get("scope") or ()
    if isinstance(scope, str):
        scope = tuple(scope.replace(",", " ").split())
    return TokenResponse(
        access_token=Secret(str(access)),
        expires_in=lifetime,
        refresh_token=Secret(str(refresh)) if refresh else None,
        token_type=token.get("token_type"),
        scope=tuple(scope),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _oauth_error_parser(response: requests.Response) -> VendorErrorInfo | None:
    status = response.status_code
    if status < 400:
        # Decoded here so that a success whose body is not JSON becomes the HTTP
        # client's MalformedResponseError, retried when the request may be sent again.
        decode_json(response)
        return None
    try:
        body = decode_json(response)
    except ValueError:
        body = {}
    if not isinstance(body, Mapping):
        body = {}
    # RFC 6749's error and error_description; else the vendor's usual envelope
    # (Talkdesk's code and message, Webex's message and trackingId).
    code = _text(body.get("error")) or _text(body.get("code"))
    description = (
        _text(body.get("error_description"))
        or _text(body.get("message"))
        or _text(body.get("description"))
    )
    if description is None:
        if status >= 500:
            description = "server error"
        elif status == 429:
            description = "rate limited"
        else:
            description = f"the token endpoint refused the request ({code or f'HTTP {status}'})"
    return VendorErrorInfo(
        message=redact(description),
        code=code,
        request_id=_text(body.get("trackingId")) or request_id_of(response),
    )


# ---------------------------------------------------------------------------
# Keys and JWT client assertions
# ---------------------------------------------------------------------------


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """Load a PEM private key, or a base64 PKCS#8 DER key as Talkdesk delivers it."""
    # Imported only by the credentials that sign: everyone else's start-up skips it.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    data = text.strip()
    try:
        if "-----BEGIN" in data:
            key = serialization.load_pem_private_key(data.encode("ascii"), password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode(data), password=None)
    except (ValueError, TypeError, UnicodeError):
        # The library's message can quote the key material.
        raise ConfigurationError(
            "the private key could not be read (not a private key, or an encrypted one)",
            key_path="private_key",
            allowed=PRIVATE_KEY_FORMS,
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_ALGORITHMS:
        return key
    kind = (
        f"an EC key on the curve {key.curve.name}"
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else f"a key of type {type(key).__name__.removeprefix('_').replace('PrivateKey', '')}"
    )
    raise ConfigurationError(
        f"the private key is {kind}, which cannot sign {', '.join(ASSERTION_ALGORITHMS)}",
        key_path="private_key",
        allowed=PRIVATE_KEY_FORMS,
    )


_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
PRIVATE_KEY_FORMS = (
    "an unencrypted EC (P-256, P-384, P-521) or RSA private key, as PEM or as base64 PKCS#8"
)
"""The private keys a ``private_key_jwt`` credential may hold."""


def check_private_key(text: str, *, algorithm: str | None = None) -> str:
    """Check that *text* is a private key that can sign client assertions; return the algorithm.

    Signs a throwaway assertion, so a key that loads but cannot sign with
    *algorithm* (an ES384 key asked for ES256) is refused now, not at the first
    token request.

    :raises ConfigurationError: naming ``private_key`` or ``signing_algorithm``;
        never quoting the key.
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    key = load_private_key(text)
    fits = _default_algorithm(key)
    chosen = algorithm or fits
    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    if chosen in ASSERTION_ALGORITHMS and (chosen[:2] != fits[:2] or (is_ec and chosen != fits)):
        kind = f"an EC {key.curve.name} key" if is_ec else "an RSA key"  # type: ignore[union-attr]
        can = fits if is_ec else "PS256, PS384, PS512"
        raise ConfigurationError(
            f"the private key is {kind}, which signs {can}, not {chosen}",
            key_path="signing_algorithm",
            allowed=can,
        )
    build_client_assertion("check", "https://check.invalid/", Secret(text), algorithm=chosen)
    return chosen


def _default_algorithm(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    return _CURVE_ALGORITHMS.get(key.curve.name, "ES256")


def build_client_assertion(
    client_id: str,
    audience: str,
    private_key: Secret,
    *,
    key_id: str | None = None,
    algorithm: str | None = None,
    now: float | None = None,
) -> str:
    """Sign a ``private_key_jwt`` client assertion (RFC 7523).

    ``iss`` = ``sub`` = *client_id*, ``aud`` = the token URL, a random
    ``jti``, ``iat`` now and ``exp`` five minutes later; the header names
    *key_id* as ``kid``.
    """
    import jwt

    key = load_private_key(private_key.reveal())
    chosen = algorithm or _default_algorithm(key)
    if chosen not in ASSERTION_ALGORITHMS:
        raise ConfigurationError(
            f"signing algorithm {chosen!r} is not supported",
            key_path="signing_algorithm",
            allowed=", ".join(ASSERTION_ALGORITHMS),
        )
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    headers = {"kid": key_id} if key_id else None
    try:
        return jwt.encode(claims, key, algorithm=chosen, headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigurationError(
            f"the private key cannot sign with {chosen} ({exc.__class__.__name__})",
            key_path="signing_algorithm",
            allowed=", ".join(ASSERTION_ALGORITHMS),
        ) from None


# ---------------------------------------------------------------------------
# OAuth2 endpoints
# ---------------------------------------------------------------------------


def template_variables(settings: Mapping[str, str]) -> dict[str, Any]:
    """Expose ``Talkdesk.Account`` both flat and as ``{{Talkdesk.Account}}``."""
    variables: dict[str, Any] = {}
    for key, value in settings.items():
        head, dot, tail = key.partition(".")
        if dot:
            group = variables.setdefault(head, {})
            if isinstance(group, dict):
                group[tail] = value
        else:
            variables[key] = value
    return variables


def _check_endpoint(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return url  # an emulator on this machine
    raise ConfigurationError(
        f"the OAuth2 {what} must use https (plain http is only allowed on 127.0.0.1)",
        key_path=what,
        value=url,
    )


def resolve_oauth_urls(
    credential: Credential, info: VendorInfo | None, settings: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """Return (token URL, authorize URL), from the credential or else the vendor, rendered."""
    variables = template_variables(settings)
    token_url = credential.token_url or (info.token_url if info else None)
    authorize_url = credential.authorize_url or (info.authorize_url if info else None)
    return (
        _check_endpoint(_render(token_url, variables), "token_url") if token_url else None,
        _check_endpoint(_render(authorize_url, variables), "authorize_url")
        if authorize_url
        else None,
    )


# ---------------------------------------------------------------------------
# OAuth2 token management
# ---------------------------------------------------------------------------


class OAuth2Auth(requests.auth.AuthBase):
    """Base of the OAuth2 auths: a cached access token, renewed when due.

    :param credential_store: where renewed tokens are saved; required for
        rotating refresh tokens to survive the process.
    :param token_response_parser: reads the token endpoint's answer.
    :param refresh_skew: renew this many seconds before the token expires.
    """

    persist_tokens = False

    def __init__(
        self,
        credential: Credential,
        *,
        token_url: str,
        options: ClientOptions | None = None,
        credential_store: CredentialStore | None = None,
        token_response_parser: TokenResponseParser | None = None,
        refresh_skew: float = REFRESH_SKEW,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._credential = credential
        self.token_url = _check_endpoint(token_url, "token_url")
        self.credential_store = credential_store
        self.parse_token_response = token_response_parser or rfc6749_token_response
        self.refresh_skew = refresh_skew
        self._clock = clock
        self._lock = threading.RLock()
        token_options = attrs.evolve(options or ClientOptions(), base_url=None, pace_requests=False)
        self._token_client = HttpClient(
            credential.vendor,
            self.token_url,
            options=token_options,
            error_parser=_oauth_error_parser,
            sleep=sleep,
        )
        self._access_token: Secret | None = credential.access_token
        self._expires_at: float | None = (
            credential.expires_at.timestamp() if credential.expires_at else None
        )
        self.refresh_count = 0
        self.listeners: list[Callable[[Credential], None]] = []
        """Called with the updated credential after each renewal (after it was saved)."""

    @property
    def credential(self) -> Credential:
        """The credential with the latest tokens."""
        return self._credential

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"<{name} credential={self._credential.name!r} token_url={self.token_url!r}>"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.current_token().reveal()}"
        return request

    def _is_fresh(self) -> bool:
        if not self._access_token:
            return False
        if self._expires_at is None:
            return True
        return self._clock() < self._expires_at - self.refresh_skew

    def current_token(self) -> Secret:
        """Return a usable access token, renewing it first when due."""
        with self._lock:
            if not self._is_fresh():
                self._renew(rejected=None)
            assert self._access_token is not None
            return self._access_token

    def token_rejected(self, sent_authorization: str | None) -> bool:
        """Renew after the vendor refused the token sent in *sent_authorization*."""
        with self._lock:
            current = self._access_token
            if current and sent_authorization != f"Bearer {current.reveal()}":
                return True  # another thread renewed it meanwhile
            self._renew(rejected=current.reveal() if current else None)
            return True

    def _renew(self, *, rejected: str | None) -> None:
        store = self.credential_store
        if store is None:
            self._exchange(self._request_token())
            return
        # Another process (a second CLI run, a Celery worker) may be renewing the
        # same credential: hold the store's renewal lock (a file lock; Redis for
        # RedisCredentialStore), re-read the tokens, and use what the other
        # process got instead of spending a refresh token it already spent.
        name = self._credential.name
        with store.renewing(name):
            try:
                stored: Credential | None = store.get(name)
            except OomnitzaConnectError:
                stored = None  # a store that does not hold this credential
            if stored is not None and (
                stored.refresh_token != self._credential.refresh_token
                or stored.access_token != self._access_token
            ):
                self._adopt(stored)
                if self._is_fresh() and (
                    rejected is None or self._access_token_value() != rejected
                ):
                    log.info(
                        "%s: credential '%s' was renewed by another process; using its tokens",
                        stored.vendor,
                        name,
                    )
                    return
            refresh = self._credential.refresh_token
            if stored is None or refresh is None:
                self._exchange(self._request_token())
                return
            interrupted = store.interrupted_rotation(name, refresh.reveal())
            store.begin_rotation(name, refresh.reveal())
            try:
                granted = self._request_token()
            except AuthenticationError as exc:
                if exc.status is not None and 400 <= exc.status < 500:
                    # A definite refusal: the old token was not spent by this request.
                    store.end_rotation(name)
                if interrupted is not None:
                    raise self._spent_by_interrupted_rotation(interrupted, exc) from None
                raise
            updated = self._updated_with(granted)
            # Saved (and the intent cleared) before the new access token is used.
            store.end_rotation(name, updated)
            self._commit(updated)

    def _access_token_value(self) -> str | None:
        return self._access_token.reveal() if self._access_token else None

    def _adopt(self, stored: Credential) -> None:
        from .credentials import with_tokens_of

        self._credential = with_tokens_of(self._credential, stored)
        self._access_token = stored.access_token
        self._expires_at = stored.expires_at.timestamp() if stored.expires_at else None

    def _spent_by_interrupted_rotation(
        self, started_at: str, refused: AuthenticationError
    ) -> AuthenticationError:
        name = self._credential.name
        return AuthenticationError(
            f"credential '{name}' must be signed in again: a token rotation started at "
            f"{started_at} was interrupted after the refresh token was sent, and the vendor "
            f"no longer accepts that token. Run 'oomnitza-connect auth login {name}'",
            vendor=self._credential.vendor,
            status=refused.status,
            code=refused.code,
            request_id=refused.request_id,
        )

    def _updated_with(self, granted: TokenResponse) -> Credential:
        expires_at = self._clock() + granted.expires_in if granted.expires_in is not None else None
        return attrs.evolve(
            self._credential,
            access_token=granted.access_token,
            refresh_token=granted.refresh_token or self._credential.refresh_token,
            expires_at=datetime.fromtimestamp(expires_at, UTC) if expires_at else None,
        )

    def _exchange(self, granted: TokenResponse) -> Credential:
        """Take the tokens *granted* (saved first when they must be); return them."""
        updated = self._updated_with(granted)
        rotated = (
            granted.refresh_token is not None
            and granted.refresh_token != self._credential.refresh_token
        )
        if self.persist_tokens or rotated:
            self._persist(updated, rotated=rotated)
        self._commit(updated)
        return updated

    def _commit(self, updated: Credential) -> None:
        # Only now, with the new refresh token safe, is the new access token used.
        self.refresh_count += 1
        self._credential = updated
        self._access_token = updated.access_token
        self._expires_at = updated.expires_at.timestamp() if updated.expires_at else None
        for listener in self.listeners:
            listener(updated)
        log.info(
            "%s: obtained a new access token for credential '%s'",
            self._credential.vendor,
            self._credential.name,
        )

    def _persist(self, updated: Credential, *, rotated: bool) -> None:
        store = self.credential_store
        if store is None:
            if rotated:
                log.warning(
                    "%s: credential '%s' received a new refresh token but no credential "
                    "store was given; it will be lost when this process ends",
                    updated.vendor,
                    updated.name,
                )
            return
        store.save(updated)

    def _request_token(self) -> TokenResponse:
        raise NotImplementedError

    def _client_auth(self, body: dict[str, str]) -> dict[str, str]:
        """Add the client's proof to the token request; return extra headers."""
        credential = self._credential
        method = credential.client_auth_method
        if not credential.client_id:
            raise ConfigurationError(
                f"credential '{credential.name}' needs a client_id", key_path="client_id"
            )
        if method is ClientAuthMethod.PRIVATE_KEY_JWT:
            if not credential.private_key:
                raise ConfigurationError(
                    f"credential '{credential.name}' uses private_key_jwt but has no private_key",
                    key_path="private_key",
                )
            body["client_id"] = credential.client_id
            body["client_assertion_type"] = JWT_BEARER_ASSERTION
            # Wrapped so that log redaction knows the assertion too.
            body["client_assertion"] = Secret(
                build_client_assertion(
                    credential.client_id,
                    self.token_url,
                    credential.private_key,
                    key_id=credential.key_id,
                    algorithm=credential.signing_algorithm,
                    now=self._clock(),
                )
            ).reveal()
            return {}
        if not credential.client_secret:
            # A public client (PKCE): it identifies itself and proves nothing.
            body["client_id"] = credential.client_id
            return {}
        if method is ClientAuthMethod.CLIENT_SECRET_POST:
            body["client_id"] = credential.client_id
            body["client_secret"] = credential.client_secret.reveal()
            return {}
        # RFC 6749 section 2.3.1: both parts form-encoded before base64.
        pair = f"{quote_plus(credential.client_id)}:{quote_plus(credential.client_secret.reveal())}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    def _post_token_request(
        self, body: str | Callable[[], str], headers: Mapping[str, str], *, repeatable: bool
    ) -> TokenResponse:
        """Send one token request (every grant comes here) and read the answer.

        Only a 4xx is the credential's fault (:class:`AuthenticationError`).
        A 5xx, a 429, a time-out or a body that is not JSON is the vendor's: the
        HTTP client retries it when *repeatable* (a client credentials grant;
        a refresh token or a code may be spent by a request that arrived), then
        it is raised as the :class:`VendorAPIError`, :class:`RateLimitError`,
        :class:`MalformedResponseError` or :class:`TransportError` it is.
        """
        credential = self._credential
        name = credential.name
        try:
            response = self._token_client.request(
                "POST",
                self.token_url,
                data=body,
                endpoint="oauth.token",
                headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
                idempotent=repeatable,
            )
        except RateLimitError:
            raise
        except MalformedResponseError as exc:
            raise MalformedResponseError(
                f"credential '{name}': the token endpoint's answer is not JSON",
                vendor=credential.vendor,
                status=exc.status,
                request_id=exc.request_id,
            ) from None
        except VendorAPIError as exc:  # CredentialRefusedError (a 401) too
            if exc.status is not None and 400 <= exc.status < 500:
                if exc.status in (400, 401, 403):
                    message = (
                        f"the token endpoint refused credential '{name}': {exc.vendor_message}"
                    )
                else:
                    message = (
                        f"the token endpoint answered credential '{name}' with HTTP "
                        f"{exc.status}: {exc.vendor_message}; check its token_url"
                    )
                raise AuthenticationError(
                    message,
                    vendor=credential.vendor,
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                ) from None
            raise VendorAPIError(
                f"the token endpoint failed to issue a token for credential '{name}', a fault "
                f"on {credential.vendor}'s side (try again later): {exc.vendor_message}",
                vendor=credential.vendor,
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
                method=exc.method,
                endpoint=exc.endpoint,
            ) from None
        try:
            return self.parse_token_response(response)
        except MalformedResponseError as exc:
            if exc.vendor:
                raise
            raise MalformedResponseError(
                f"credential '{name}': {exc.vendor_message}",
                vendor=credential.vendor,
                status=exc.status if exc.status is not None else response.status_code,
                code=exc.code,
                request_id=exc.request_id or request_id_of(response),
            ) from None
        except AuthenticationError as exc:
            if exc.vendor is not None:
                raise
            # A parser that does not know the vendor: the message alone, since
            # str(exc) already ends with the details given again here.
            raise AuthenticationError(
                exc.message,
                vendor=credential.vendor,
                status=exc.status if exc.status is not None else response.status_code,
                code=exc.code,
                request_id=exc.request_id or request_id_of(response),
            ) from None


def _form(pairs: Mapping[str, str], prepared: str) -> str:
    from urllib.parse import urlencode

    return "&".join(p for p in (prepared, urlencode(pairs)) if p)


class ClientCredentialsAuth(OAuth2Auth):
    """Machine-to-machine OAuth2 (``grant_type=client_credentials``)."""

    def _request_token(self) -> TokenResponse:
        credential = self._credential
        from oauthlib.oauth2 import BackendApplicationClient  # only OAuth2 credentials need it

        client = BackendApplicationClient(client_id=credential.client_id or "")
        prepared = client.prepare_request_body(
            scope=list(credential.scopes) or None, include_client_id=False
        )
        headers = self._client_auth({})

        def body() -> str:
            # Built for every attempt: a retried private_key_jwt request needs a
            # new assertion, since the server refuses a jti it has seen.
            extra: dict[str, str] = {}
            self._client_auth(extra)
            return _form(extra, prepared)

        # A client credentials grant can be asked for again without harm.
        return self._post_token_request(body, headers, repeatable=True)


class AuthorizationCodeAuth(OAuth2Auth):
    """Tokens a user granted in a browser, renewed with the refresh token."""

    persist_tokens = True

    def _request_token(self) -> TokenResponse:
        credential = self._credential
        if not credential.refresh_token:
            raise AuthenticationError(
                f"credential '{credential.name}' has no valid access token and no refresh "
                f"token; run 'oomnitza-connect auth login {credential.name}'",
                vendor=credential.vendor,
            )
        from oauthlib.oauth2 import WebApplicationClient

        client = WebApplicationClient(client_id=credential.client_id or "")
        prepared = client.prepare_refresh_body(refresh_token=credential.refresh_token.reveal())
        extra: dict[str, str] = {}
        headers = self._client_auth(extra)
        # A rotating refresh token is spent once the server has seen it, so a
        # request that may have arrived is never sent twice.
        return self._post_token_request(_form(extra, prepared), headers, repeatable=False)


# ---------------------------------------------------------------------------
# Choosing the auth
# ---------------------------------------------------------------------------


def auth_for_credential(
    credential: Credential,
    *,
    info: VendorInfo | None = None,
    settings: Mapping[str, str] | None = None,
    options: ClientOptions | None = None,
    credential_store: CredentialStore | None = None,
    token_response_parser: TokenResponseParser | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.auth.AuthBase:
    """Return the auth for *credential*'s kind.

    With no *credential_store*, OAuth2 tokens are saved through the default
    store when that store already holds the credential (and kept in memory
    otherwise).
    """
    from .credentials import check_token_characters

    # Also for a credential built in code rather than read from the store.
    check_token_characters(credential)
    kind = credential.kind
    if kind is AuthKind.API_KEY:
        if not credential.token:
            raise ConfigurationError(
                f"credential '{credential.name}' is an api_key credential without a token",
                key_path="token",
            )
        return HeaderTokenAuth(
            credential.token, header_name=credential.header_name, prefix=credential.header_prefix
        )
    if kind is AuthKind.BASIC:
        username = credential.username or credential.client_id
        password = credential.password or credential.client_secret
        if not username or not password:
            raise ConfigurationError(
                f"credential '{credential.name}' needs a username and a password",
                key_path="password",
            )
        return BasicAuth(username, password)
    token_url, _ = resolve_oauth_urls(credential, info, settings or {})
    if not token_url:
        raise ConfigurationError(
            f"credential '{credential.name}' needs a token_url (the vendor declares none)",
            key_path="token_url",
        )
    store = credential_store if credential_store is not None else _default_store_holding(credential)
    cls: type[OAuth2Auth] = (
        ClientCredentialsAuth
        if kind is AuthKind.OAUTH2_CLIENT_CREDENTIALS
        else AuthorizationCodeAuth
    )
    return cls(
        credential,
        token_url=token_url,
        options=options,
        credential_store=store,
        token_response_parser=token_response_parser,
        sleep=sleep,
    )


def _default_store_holding(credential: Credential) -> CredentialStore | None:
    from .credentials import default_credential_store

    try:
        store = default_credential_store()
        store.get(credential.name)
    except OomnitzaConnectError:
        return None
    return store


# ---------------------------------------------------------------------------
# The authorization code flow (auth login)
# ---------------------------------------------------------------------------


@attrs.frozen
class AuthorizationRequest:
    """One started login: where to send the user, and what to check on return."""

    url: str
    state: str
    redirect_uri: str
    code_verifier: Secret = attrs.field(repr=False)


def _prepare_grant_uri(client: WebApplicationClient, authorize_url: str, **kwargs: Any) -> str:
    parts = urlsplit(authorize_url)
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        # oauthlib insists on https; an emulator on this machine speaks http.
        secure = urlunsplit(("https", *parts[1:]))
        url: str = client.prepare_request_uri(secure, **kwargs)
        return "http" + url[len("https") :]
    prepared: str = client.prepare_request_uri(authorize_url, **kwargs)
    return prepared


def start_authorization(
    credential: Credential,
    *,
    authorize_url: str,
    redirect_uri: str,
    scopes: tuple[str, ...] = (),
    extra_params: Mapping[str, str] | None = None,
) -> AuthorizationRequest:
    """Build the authorize URL with a fresh ``state`` and a PKCE ``S256`` challenge.

    :param extra_params: vendor-specific query parameters of the authorize URL,
        such as Slack's ``user_scope``.
    """
    if not credential.client_id:
        raise ConfigurationError(
            f"credential '{credential.name}' needs a client_id", key_path="client_id"
        )
    from oauthlib.oauth2 import WebApplicationClient

    client = WebApplicationClient(client_id=credential.client_id)
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    state = secrets.token_urlsafe(24)
    url = _prepare_grant_uri(
        client,
        _check_endpoint(authorize_url, "authorize_url"),
        redirect_uri=redirect_uri,
        scope=list(scopes or credential.scopes) or None,
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256",
        **dict(extra_params or {}),
    )
    return AuthorizationRequest(
        url=url, state=state, redirect_uri=redirect_uri, code_verifier=Secret(verifier)
    )


def code_from_redirect(pending: AuthorizationRequest, returned: str) -> str:
    """Return the code from the redirect URL (or bare code) the user came back with.

    :raises AuthenticationError: the vendor reported an error or ``state`` differs.
    """
    returned = returned.strip()
    if "code=" not in returned and "error=" not in returned:
        if not returned:
            raise AuthenticationError("no authorization code was given")
        return returned  # a bare code, pasted; there is no state to compare
    query = urlsplit(returned).query or returned.lstrip("?")
    values = {k: v[-1] for k, v in parse_qs(query).items()}
    if "error" in values:
        reason = values.get("error_description") or values["error"]
        raise AuthenticationError(f"the authorization was refused: {reason}", code=values["error"])
    if not secrets.compare_digest(values.get("state", ""), pending.state):
        raise AuthenticationError(
            "the redirect's state does not match this login; it may be forged or from "
            "another attempt, so it was refused"
        )
    code = values.get("code")
    if not code:
        raise AuthenticationError("the redirect carries no authorization code")
    return code


def complete_authorization(
    credential: Credential,
    pending: AuthorizationRequest,
    returned: str,
    *,
    token_url: str,
    options: ClientOptions | None = None,
    token_response_parser: TokenResponseParser | None = None,
    credential_store: CredentialStore | None = None,
    clock: Callable[[], float] = time.time,
) -> Credential:
    """Exchange the returned code for tokens; return (and save) the updated credential."""
    code = code_from_redirect(pending, returned)
    exchanger = _CodeExchange(
        credential,
        token_url=token_url,
        options=options,
        token_response_parser=token_response_parser,
        clock=clock,
    )
    granted = exchanger.exchange(code, pending)
    expires_at = (
        datetime.fromtimestamp(clock(), UTC) + timedelta(seconds=granted.expires_in)
        if granted.expires_in is not None
        else None
    )
    updated = attrs.evolve(
        credential,
        access_token=granted.access_token,
        refresh_token=granted.refresh_token,
        expires_at=expires_at,
        redirect_uri=credential.redirect_uri or pending.redirect_uri,
    )
    if credential_store is not None:
        credential_store.save(updated)
    return updated


class _CodeExchange(OAuth2Auth):
    def exchange(self, code: str, pending: AuthorizationRequest) -> TokenResponse:
        from oauthlib.oauth2 import WebApplicationClient

        client = WebApplicationClient(client_id=self._credential.client_id or "")
        prepared = client.prepare_request_body(
            code=code,
            redirect_uri=pending.redirect_uri,
            code_verifier=pending.code_verifier.reveal(),
            include_client_id=False,
        )
        extra: dict[str, str] = {}
        headers = self._client_auth(extra)
        return self._post_token_request(_form(extra, prepared), headers, repeatable=False)


class _RedirectCatcher(HTTPServer):
    returned: str | None = None


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _RedirectCatcher

    def do_GET(self) -> None:
        if "code=" not in self.path and "error=" not in self.path:
            self.send_response(404)
            self.end_headers()
            return
        self.server.returned = self.path
        page = (
            "<html><body><h1>oomnitza-connect</h1><p>"
            + html.escape("You can close this window and return to the terminal.")
            + "</p></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request line holds the authorization code


def login_with_loopback(
    credential: Credential,
    *,
    authorize_url: str,
    token_url: str,
    open_url: Callable[[str], None],
    port: int = 0,
    timeout: float = 300.0,
    options: ClientOptions | None = None,
    token_response_parser: TokenResponseParser | None = None,
    credential_store: CredentialStore | None = None,
    extra_params: Mapping[str, str] | None = None,
) -> Credential:
    """Run the whole login: catch the redirect on ``http://127.0.0.1:PORT/callback``.

    *open_url* is given the authorize URL (the CLI prints it and opens a
    browser; tests fetch it with requests). Returns the credential holding
    the new tokens, saved through *credential_store* when given.
    *extra_params* are added to the authorize URL (Slack's ``user_scope``).
    """
    server = _RedirectCatcher(("127.0.0.1", port), _RedirectHandler)
    server.timeout = timeout
    try:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
        pending = start_authorization(
            credential,
            authorize_url=authorize_url,
            redirect_uri=redirect_uri,
            extra_params=extra_params,
        )
        deadline = time.monotonic() + timeout
        worker = threading.Thread(
            target=_serve_until_redirect, args=(server, deadline), daemon=True
        )
        worker.start()
        open_url(pending.url)
        worker.join(timeout + 1)
        if server.returned is None:
            raise AuthenticationError(
                f"no browser came back to {redirect_uri} within {timeout:.0f} s; "
                "try again or use --paste"
            )
        returned = server.returned
    finally:
        server.server_close()
    return complete_authorization(
        credential,
        pending,
        returned,
        token_url=token_url,
        options=options,
        token_response_parser=token_response_parser,
        credential_store=credential_store,
    )


def _serve_until_redirect(server: _RedirectCatcher, deadline: float) -> None:
    while server.returned is None and time.monotonic() < deadline:
        server.timeout = max(min(deadline - time.monotonic(), 1.0), 0.01)
        server.handle_request()


def _render(template: str, variables: Mapping[str, Any]) -> str:
    # The template engine is imported by the credentials that need a rendered URL.
    from ..templating import render

    return render(template, variables)
