"""The HTTP client every vendor plugin uses.

One :class:`HttpClient` (one ``requests.Session``) per connector session, so
connections are reused; a base URL that can be overridden everywhere; connect
and read timeouts; a User-Agent naming the SDK and the plugin; retries with
tenacity; proactive pacing (:mod:`oomnitza_connect.transport.ratelimit`); vendor errors
turned into :class:`~oomnitza_connect.errors.VendorAPIError` and friends.

What is retried (see ``docs/http-and-auth.md``):

* 429, or a body the error parser reads as "rate limited": always, even for
  POST, because the vendor did not process the request. The wait is the
  vendor's ``Retry-After`` (seconds or an HTTP date), ``X-RateLimit-Reset``
  (epoch seconds) or the parser's ``retry_after``; when none is given,
  exponential backoff.
* 500, 502, 503 and 504, connection errors, read time-outs and malformed
  JSON: with exponential backoff and jitter, for idempotent requests only
  (GET, HEAD, PUT, DELETE, OPTIONS, or ``idempotent=True``). A connect
  time-out is always retried: nothing reached the vendor.
* 401, or a body the parser flags ``token_expired``: the auth refreshes its
  token once and the request is sent again.
* Nothing else: other 4xx fail at once.

Any single wait is capped by ``ClientOptions.max_single_wait`` (a vendor that
asks for a longer pause makes the request fail with ``RateLimitError``
carrying ``retry_after``), the sum of waits by ``max_total_wait`` and the
number of retries by ``max_retries``.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urljoin, urlsplit

import attrs
import requests
import urllib3

from .._version import __version__
from ..decoding import remember_decoding, response_json
from ..errors import (
    ConfigurationError,
    CredentialRefusedError,
    MalformedResponseError,
    RateLimitError,
    TransportError,
    VendorAPIError,
)
from ..models import RateBudget
from ..redaction import install_log_redaction
from .ratelimit import FALLBACK_ENDPOINT, make_pacer, merge_budgets

if TYPE_CHECKING:
    import tenacity

__all__ = [
    "ClientOptions",
    "CredentialRefusedError",
    "ErrorParser",
    "HttpClient",
    "MalformedResponseError",
    "RefreshableAuth",
    "VendorErrorInfo",
    "Wait",
    "decode_json",
    "default_error_parser",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# Exponential backoff: 0.5 s, 1 s, 2 s, … before jitter, capped by max_single_wait.
_BACKOFF_BASE = 0.5


@attrs.frozen
class ClientOptions:
    """Transport settings of a connector session.

    :param base_url: replaces the vendor's API root (region, proxy, emulator).
    :param ca_bundle: a PEM file of extra trusted CAs (a private CA), trusted besides the
        default ones; TLS is always verified.
    :param total_timeout: the longest one attempt may take from sending to the last byte
        of the body, in seconds; a body trickled slowly enough to beat ``read_timeout``
        still ends here.
    :param allow_insecure_http: send requests over plain ``http://`` to hosts other than
        this machine (tokens would travel unencrypted); off, such a URL is refused.
    :param max_retries: retries after the first attempt, at most.
    :param max_single_wait: the longest single wait before a retry, in seconds.
    :param max_total_wait: the longest total of waits for one request, in seconds.
    :param pace_requests: keep to the vendor's rate budgets before sending.
    :param rate_budgets: budgets that replace the plugin's for the same
        endpoint (or add one), for a vendor plan with a higher limit.
    :param budget_account: the vendor account the requests count against
        (``vendor:credential``, set by ``Connector.authenticate``); workers
        sharing budgets through Redis share one per account.
    :param wait_listener: the first :attr:`HttpClient.wait_listener` of every client
        built with these options, the OAuth token client's included, so that the
        pauses of the first requests a plugin's ``authenticate`` sends (the
        credential check) are heard too; a sync sets it to show its progress.
    """

    base_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    total_timeout: float = 300.0
    ca_bundle: str | None = None
    max_retries: int = 6
    max_single_wait: float = 60.0
    max_total_wait: float = 300.0
    pace_requests: bool = True
    user_agent_extra: str | None = None
    budget_account: str | None = None
    allow_insecure_http: bool = False
    rate_budgets: tuple[RateBudget, ...] = ()
    # Who listens does not make two option sets differ.
    wait_listener: Callable[[Wait], None] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class VendorErrorInfo:
    """What a plugin's error parser found in a vendor response.

    :param message: the vendor's explanation, as a sentence.
    :param code: the vendor's error code (``invalid_auth``).
    :param request_id: the vendor's request or tracking id.
    :param retry_after: seconds to wait; set it for vendors that rate-limit in
        the body (Slack ``ratelimited``) and the request is retried like a 429.
        When set it wins over the response's ``Retry-After``, so a parser can
        apply the vendor's own rule (Webex: at least 1 s, 15 s when missing).
    :param token_expired: the access token expired (Slack ``token_expired`` with
        HTTP 200); the auth refreshes once and the request is retried.
    :param credential_refused: the vendor refused the credential whatever the
        HTTP status (Slack ``invalid_auth`` with HTTP 200); raised as
        :class:`~oomnitza_connect.errors.CredentialRefusedError`.
    """

    message: str
    code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    token_expired: bool = False
    credential_refused: bool = False


ErrorParser = Callable[[requests.Response], VendorErrorInfo | None]
"""Returns the error a response carries, or ``None`` for a success.

Called for every response: Slack reports errors with HTTP 200 and ``ok: false``.
"""


class PageMemo(Protocol):
    """Recognises a page by its bytes, so that a page seen before need not be decoded.

    The sync engine's (:mod:`oomnitza_connect.sync.pages`): a users page
    byte-identical to one an earlier run wrote, whose people are all still as
    that run left them, is given back without its users instead of decoded.
    """

    def recall(self, content: bytes) -> Any | None:
        """Return what stands for the decoded body of a 2xx *content*, or ``None`` to decode it."""
        ...

    def settle(self, pending: Any) -> Any | None:
        """Return what stands for the users of a page :meth:`recall` recognised.

        :param pending: the ``recalled`` of the :class:`~.pagination.KnownPage`
            that :meth:`recall` returned; checked while later pages were fetched.
        :returns: ``None`` when the page's users must be read after all (decode
            ``pending.content``).
        """
        ...

    def page_read(self, skeleton: dict[str, Any], pending: Any | None = None) -> Any | None:
        """Note that a page was read whole (every item a user).

        :param skeleton: that page as decoded, its list of users emptied.
        :param pending: the page recognised and then read after all, or ``None``
            for the page :meth:`recall` last saw.
        :returns: an item to hand on after the page's users, or ``None``.
        """
        ...


def decode_json(response: requests.Response) -> Any:
    """Return *response*'s body decoded as JSON, decoding it only once.

    Every part that reads a body (an error parser checking Slack's ``ok``, the
    client, a paginator) calls this, so a page is decoded once however many
    look at it (:func:`oomnitza_connect.decoding.response_json`; orjson when
    it is installed).

    :raises ValueError: the body is not JSON.
    """
    return response_json(response)


def default_error_parser(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code < 400:
        return None
    return VendorErrorInfo(message=response.reason or f"HTTP {response.status_code}")


@runtime_checkable
class RefreshableAuth(Protocol):
    """An auth that can replace an access token the vendor refused."""

    def token_rejected(self, sent_authorization: str | None) -> bool:
        """Get a fresh token after the vendor refused *sent_authorization*.

        Return True when a request sent again would carry a different token.
        """
        ...


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


REQUEST_ID_HEADERS = (
    "X-Request-Id",
    "X-Slack-Req-Id",
    "TrackingID",
    "X-Intercom-Request-Id",
    "Request-Id",
    "X-Amzn-RequestId",
    "X-Correlation-Id",
)
"""Headers vendors put their request id in; a body that cannot be parsed still has these."""


def request_id_of(response: requests.Response) -> str | None:
    """Return the vendor's request id from *response*'s headers, if it sent one."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def _header_number(response: requests.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


INSECURE_HTTP_ENV = "OOMNITZA_CONNECT_ALLOW_INSECURE_HTTP"
"""Set to ``1`` to allow plain http:// to other hosts (the CLI's explicit opt-in)."""


def is_loopback(host: str | None) -> bool:
    """Whether *host* is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url_problem(url: str) -> str | None:
    """Say what is wrong with an API root a user typed (never a request), or ``None``.

    Only ``https://`` URLs with a host pass, and ``http://`` to this machine (an
    emulator) or, with ``$OOMNITZA_CONNECT_ALLOW_INSECURE_HTTP=1``, to any host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{url!r} is not an https:// URL with a host"
    insecure_allowed = os.environ.get(INSECURE_HTTP_ENV) == "1"
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not insecure_allowed:
        return (
            f"{url!r} is plain http:// to another machine (only loopback may be http, "
            f"unless ${INSECURE_HTTP_ENV}=1)"
        )
    return None


def check_transport_security(url: str, *, vendor: str, allow_insecure_http: bool) -> None:
    """Refuse plain http:// to a host other than this machine, unless explicitly allowed.

    :raises ConfigurationError: naming the URL's host and the option that allows it.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or is_loopback(parts.hostname):
        return
    if allow_insecure_http or os.environ.get(INSECURE_HTTP_ENV) == "1":
        return
    raise ConfigurationError(
        f"{vendor}: refusing plain http:// to {parts.hostname}: the credential would travel "
        "unencrypted. Use https://, or opt in explicitly with "
        f"ClientOptions(allow_insecure_http=True) or ${INSECURE_HTTP_ENV}=1",
        value=f"{parts.scheme}://{parts.netloc}",
    )


class _RetryableFailure(Exception):
    """One attempt failed in a way worth another try."""

    def __init__(
        self,
        reason: str,
        error: Exception,
        *,
        wait: float | None = None,
        rate_limited: bool = False,
        token_renewed: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.wait = wait
        """The vendor's requested wait; ``None`` means exponential backoff."""
        self.rate_limited = rate_limited
        self.token_renewed = token_renewed
        """The auth renewed its token; the retry does not count against max_retries."""


_BODY_CHUNK = 64 * 1024


class _DeadlineExceeded(Exception):
    """The body did not arrive within the total time-out."""


class _ExtraTrustAdapter(requests.adapters.HTTPAdapter):
    """An HTTPS adapter trusting the default CAs and the CAs of one extra PEM file."""

    def __init__(self, ca_bundle: str) -> None:
        self._context = ssl.create_default_context()
        try:
            self._context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"the CA bundle cannot be read ({exc.__class__.__name__}); give a PEM file "
                "of the private CA",
                key_path="ca_bundle",
                value=ca_bundle,
            ) from None
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **kwargs)


class _Session(requests.Session):
    """A session that drops the auth's own header when a redirect changes host.

    requests strips only ``Authorization``; a token sent in another header
    (``X-Api-Key``) would otherwise reach whatever host the redirect names.
    """

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        header = getattr(self.auth, "header_name", None)
        previous = response.request.url if response.request else None
        if (
            isinstance(header, str)
            and header in prepared_request.headers
            and previous is not None
            and prepared_request.url is not None
            and self.should_strip_auth(previous, prepared_request.url)  # type: ignore[no-untyped-call]
        ):
            del prepared_request.headers[header]
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]


@attrs.frozen
class JsonResponse:
    """A successful response and its decoded JSON body."""

    response: requests.Response
    data: Any


@attrs.frozen
class Wait:
    """A pause the client is about to take, told to :attr:`HttpClient.wait_listener`.

    :param kind: ``"pacing"`` (keeping to a rate budget or a reported quota),
        ``"retry-after"`` (the vendor asked to wait) or ``"retry"`` (backing
        off after a failure).
    :param reason: why, in words (``paced to users.list's budget of 240/min``).
    """

    vendor: str
    endpoint: str
    seconds: float
    kind: str
    reason: str


class HttpClient:
    """A connection-reusing, retrying, rate-aware HTTP client for one vendor.

    :param sleep: how to wait between retries and for pacing; tests pass a
        recorder so that no test sleeps for real.

    ``wait_listener``, when set, hears every pause before it is taken (a
    :class:`Wait`; called from whichever thread sends the request), so that a
    progress display can say why a run stands still.
    """

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        options: ClientOptions | None = None,
        rate_budgets: tuple[RateBudget, ...] = (),
        error_parser: ErrorParser = default_error_parser,
        plugin_version: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Scripts may build a client without ever loading the plugin manager or
        # the CLI; the log scrubbing must hold for them too (it is idempotent).
        install_log_redaction()
        self.vendor = vendor
        self.options = options or ClientOptions()
        self.base_url = (self.options.base_url or base_url).rstrip("/") + "/"
        self.error_parser = error_parser
        self.rate_budgets = merge_budgets(rate_budgets, self.options.rate_budgets)
        self.sleep = sleep
        self.wait_listener: Callable[[Wait], None] | None = self.options.wait_listener
        self._sending = threading.local()  # the endpoint a pacing pause is for
        self.pacer = make_pacer(
            vendor,
            self.options.budget_account,
            self.rate_budgets if self.options.pace_requests else (),
            sleep=self._pace,
            max_wait=self.options.max_single_wait,
        )
        self.session: requests.Session = _Session()
        self.session.auth = auth
        # Always verify TLS. A private CA is trusted besides the default ones (a
        # proxy's CA must not make the vendor's public certificate fail), and is
        # never a way to turn the checks off.
        self.session.verify = True
        if self.options.ca_bundle:
            self.session.mount("https://", _ExtraTrustAdapter(self.options.ca_bundle))
        agent = f"oomnitza-connect/{__version__}"
        if plugin_version:
            agent += f" oomnitza-connect-{vendor}/{plugin_version}"
        if self.options.user_agent_extra:
            agent += f" {self.options.user_agent_extra}"
        self.session.headers["User-Agent"] = agent
        self.session.headers["Accept"] = "application/json"
        if default_headers:
            self.session.headers.update(default_headers)

    def _pace(self, seconds: float) -> None:
        listener = self.wait_listener
        if listener is not None:
            endpoint = getattr(self._sending, "endpoint", "")
            budget = next(
                (b for b in self.rate_budgets if b.endpoint == endpoint),
                next((b for b in self.rate_budgets if b.endpoint == FALLBACK_ENDPOINT), None),
            )
            if budget is not None and self.options.pace_requests:
                reason = (
                    f"paced to {self.vendor}'s rate budget for {endpoint} "
                    f"({budget.requests_per_minute:g}/min)"
                )
            else:
                reason = f"paced: {self.vendor} reported its rate-limit quota nearly used"
            listener(Wait(self.vendor, endpoint, seconds, "pacing", reason))
        self.sleep(seconds)

    @property
    def auth(self) -> requests.auth.AuthBase | None:
        auth = self.session.auth
        return auth if isinstance(auth, requests.auth.AuthBase) else None

    # -- URLs ---------------------------------------------------------------

    def url_for(self, path_or_url: str) -> str:
        """Resolve *path_or_url* against the base URL (absolute URLs pass through)."""
        if urlsplit(path_or_url).scheme:
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    @property
    def base_host(self) -> str:
        return urlsplit(self.base_url).netloc

    # -- requests -----------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | str | Callable[[], str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request (retrying as the policy allows) and return the successful response.

        :param endpoint: the rate-budget name of the call (``users.list``);
            defaults to the path.
        :param idempotent: whether a retry is safe; defaults to True for
            GET/HEAD/PUT/DELETE/OPTIONS and False otherwise.
        :param data: a form body, or a function building it anew for every
            attempt (a signed JWT client assertion must carry a fresh ``jti``
            each time it is sent).
        :raises VendorAPIError: the vendor answered with an error.
        :raises RateLimitError: the vendor kept rate limiting past the retry caps.
        :raises AuthenticationError: the vendor refused the credential (401).
        :raises TransportError: the vendor could not be reached.
        """
        return self._send(
            method,
            path_or_url,
            endpoint=endpoint,
            params=params,
            json=json,
            data=data,
            headers=headers,
            idempotent=idempotent,
            decode=False,
        ).response

    def request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        memo: PageMemo | None = None,
    ) -> JsonResponse:
        """Like :meth:`request`, also decoding the body as JSON.

        A body that is not JSON is retried like a 5xx for idempotent requests
        (proxies truncate bodies), then raises :class:`MalformedResponseError`.

        :param memo: asked first about a 2xx body; what it recalls is the
            response's data, and the body is neither decoded nor given to the
            error parser (the same bytes passed it before).
        """
        return self._send(
            method,
            path_or_url,
            endpoint=endpoint,
            params=params,
            json=json,
            data=data,
            headers=headers,
            idempotent=idempotent,
            decode=True,
            memo=memo,
        )

    def get_json(self, path_or_url: str, **kwargs: Any) -> Any:
        """GET *path_or_url* and return its decoded JSON body."""
        return self.request_json("GET", path_or_url, **kwargs).data

    def post_json(self, path_or_url: str, **kwargs: Any) -> Any:
        """POST and return the decoded JSON body (retried on 5xx only with ``idempotent=True``)."""
        return self.request_json("POST", path_or_url, **kwargs).data

    def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        endpoint: str | None,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | str | Callable[[], str] | None,
        headers: Mapping[str, str] | None,
        idempotent: bool | None,
        decode: bool,
        memo: PageMemo | None = None,
    ) -> JsonResponse:
        method = method.upper()
        url = self.url_for(path_or_url)
        path = urlsplit(url).path
        endpoint_name = endpoint or path
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        refreshed = False

        def attempt() -> JsonResponse:
            nonlocal refreshed
            if self.wait_listener is not None:
                self._sending.endpoint = endpoint_name
            self.pacer.wait_for_turn(endpoint_name)
            body = data() if callable(data) else data
            response = self._transmit(method, url, path, safe, params, json, body, headers)
            self._observe_quota(response)
            if memo is not None and 200 <= response.status_code < 300 and response.content:
                known = memo.recall(response.content)
                if known is not None:
                    return JsonResponse(response, known)
            try:
                info = self.error_parser(response)
            except ValueError:
                # The parser read the body as JSON and it was not.
                if response.status_code < 400:
                    raise self._malformed(response, method, endpoint_name, safe) from None
                # An error page that is not JSON (a proxy's HTML) is still the
                # error its status says.
                info = default_error_parser(response)
            if response.status_code == 401 or (info is not None and info.token_expired):
                sent = response.request.headers.get("Authorization") if response.request else None
                auth = self.auth
                if not refreshed and isinstance(auth, RefreshableAuth):
                    refreshed = True
                    if auth.token_rejected(sent):
                        raise _RetryableFailure(
                            "the access token was refused; it was refreshed",
                            self._auth_error(response, info, method, endpoint_name),
                            wait=0.0,
                            token_renewed=True,
                        )
                raise self._auth_error(response, info, method, endpoint_name)
            if info is not None and info.credential_refused:
                raise self._auth_error(response, info, method, endpoint_name)
            if response.status_code == 429 or (info is not None and info.retry_after is not None):
                wait = self._requested_wait(response, info)
                if wait:
                    self.pacer.pause(wait)
                raise _RetryableFailure(
                    f"rate limited (HTTP {response.status_code})",
                    self._api_error(
                        response, info, method, endpoint_name, RateLimitError, retry_after=wait
                    ),
                    wait=wait,
                    rate_limited=True,
                )
            if response.status_code in RETRYABLE_STATUSES:
                error = self._api_error(response, info, method, endpoint_name)
                if safe:
                    raise _RetryableFailure(
                        f"HTTP {response.status_code}",
                        error,
                        wait=parse_retry_after(response.headers.get("Retry-After")),
                    )
                raise error
            if info is not None:
                raise self._api_error(response, info, method, endpoint_name)
            if not decode:
                return JsonResponse(response, None)
            if not response.content:
                return JsonResponse(response, None)  # 204 No Content
            try:
                body = decode_json(response)
            except ValueError:
                raise self._malformed(response, method, endpoint_name, safe) from None
            return JsonResponse(response, body)

        # Most requests succeed at once: the retry machinery (tenacity, which
        # imports tornado and asyncio where they are installed: 30 ms) is set up
        # on the first failure, and given that failure as its own first attempt.
        try:
            return attempt()
        except _RetryableFailure as failure:
            first: list[_RetryableFailure] = [failure]

        def again() -> JsonResponse:
            if first:
                raise first.pop()
            return attempt()

        import tenacity

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_RetryableFailure),
            wait=self._wait_for,
            stop=self._should_stop,
            sleep=self.sleep,
            before_sleep=lambda state: self._log_retry(state, method, path),
            retry_error_callback=self._give_up,
            reraise=False,
        )
        result: JsonResponse = retrying(again)
        return result

    def _transmit(
        self,
        method: str,
        url: str,
        path: str,
        safe: bool,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | str | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        check_transport_security(
            url, vendor=self.vendor, allow_insecure_http=self.options.allow_insecure_http
        )
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=(self.options.connect_timeout, self.options.read_timeout),
                stream=True,
            )
            self._read_body(response, time.monotonic() + self.options.total_timeout)
            remember_decoding(response)
            return response
        except _DeadlineExceeded:
            error = TransportError(
                f"{method} {path} failed: the answer took longer than the total time-out "
                f"({self.options.total_timeout:g} s) to arrive.",
                vendor=self.vendor,
            )
            if safe:
                raise _RetryableFailure("total time-out", error) from None
            raise error from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(_tls_problem(exc, url), vendor=self.vendor) from None
        except requests.exceptions.ConnectTimeout:
            # Nothing reached the vendor, so even a POST is safe to send again.
            raise _RetryableFailure(
                "connect time-out",
                TransportError(
                    f"{method} {path} failed: connecting to {urlsplit(url).netloc} timed out "
                    f"after {self.options.connect_timeout} s.",
                    vendor=self.vendor,
                ),
            ) from None
        except requests.exceptions.RequestException as exc:
            error = TransportError(
                f"{method} {path} failed: {_transport_reason(exc, url)}.", vendor=self.vendor
            )
            if safe:
                raise _RetryableFailure(_transport_reason(exc, url), error) from None
            raise error from None

    @staticmethod
    def _read_body(response: requests.Response, deadline: float) -> None:
        """Read the body before *deadline*; each read still obeys the read time-out.

        requests has no total time-out: a server that sends one byte per second
        never trips a read time-out of two seconds. The body is read here, in
        chunks, against the deadline, and kept as the response's content.
        """
        chunks: list[bytes] = []
        raw = response.raw
        try:
            if isinstance(raw, urllib3.response.HTTPResponse):
                # read1 returns what has arrived (up to the chunk size) instead of
                # waiting for the whole chunk, so the deadline is checked often.
                reads: Iterator[bytes] = iter(
                    lambda: raw.read1(_BODY_CHUNK, decode_content=True), b""
                )
            else:  # a stand-in response (vcrpy replaying a cassette)
                reads = response.iter_content(_BODY_CHUNK)
            for chunk in reads:
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _DeadlineExceeded
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
            response.close()
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        except urllib3.exceptions.ReadTimeoutError as exc:
            response.close()
            raise requests.exceptions.ReadTimeout(exc) from None
        except urllib3.exceptions.SSLError as exc:
            response.close()
            raise requests.exceptions.SSLError(exc) from None
        except BaseException:
            response.close()
            raise
        response._content = b"".join(chunks)  # what requests' own .content does
        response._content_consumed = True  # type: ignore[attr-defined]

    def _observe_quota(self, response: requests.Response) -> None:
        remaining = _header_number(response, "X-RateLimit-Remaining")
        if remaining is None:
            return
        limit = _header_number(response, "X-RateLimit-Limit")
        self.pacer.observe_quota(
            int(remaining),
            None if limit is None else int(limit),
            _header_number(response, "X-RateLimit-Reset"),
        )

    def _requested_wait(
        self, response: requests.Response, info: VendorErrorInfo | None
    ) -> float | None:
        if info is not None and info.retry_after is not None:
            # The parser read the headers already and applied the vendor's own
            # rule (Webex waits at least 1 s, 15 s when Retry-After is missing).
            return info.retry_after
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            reset = _header_number(response, "X-RateLimit-Reset")
            if reset is not None:
                wait = max(reset - time.time(), 0.0)
        if wait is None and info is not None:
            wait = info.retry_after
        return wait

    # -- the retry policy -----------------------------------------------------

    def _wait_for(self, state: tenacity.RetryCallState) -> float:
        failure = _failure_of(state)
        if failure is None:
            return 0.0
        if failure.wait is not None:
            return failure.wait
        ceiling = min(
            _BACKOFF_BASE * 2.0 ** (state.attempt_number - 1), self.options.max_single_wait
        )
        # Jitter spreads the retries of concurrent callers apart.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _should_stop(self, state: tenacity.RetryCallState) -> bool:
        failure = _failure_of(state)
        if failure is not None and failure.token_renewed:
            return False  # renewing happens at most once per request
        if state.attempt_number > self.options.max_retries:
            return True
        upcoming = state.upcoming_sleep
        if upcoming > self.options.max_single_wait:
            return True
        return state.idle_for + upcoming > self.options.max_total_wait

    def _log_retry(self, state: tenacity.RetryCallState, method: str, path: str) -> None:
        failure = _failure_of(state)
        reason = failure.reason if failure else "unknown failure"
        listener = self.wait_listener
        if listener is not None and state.upcoming_sleep > 0:
            seconds = state.upcoming_sleep
            if failure is not None and failure.rate_limited:
                kind, why = "retry-after", f"{self.vendor} asked to wait {seconds:.0f} s ({reason})"
            else:
                kind, why = "retry", f"retrying {method} {path} in {seconds:.1f} s after {reason}"
            listener(Wait(self.vendor, path, seconds, kind, why))
        log.info(
            "%s: retrying %s %s in %.2f s (attempt %d of %d): %s",
            self.vendor,
            method,
            path,
            state.upcoming_sleep,
            state.attempt_number + 1,
            self.options.max_retries + 1,
            reason,
        )

    def _give_up(self, state: tenacity.RetryCallState) -> Any:
        failure = _failure_of(state)
        if failure is None:  # pragma: no cover - tenacity only stops after a failure
            raise RuntimeError("retrying stopped without a failure")
        error = failure.error
        if failure.rate_limited and isinstance(error, RateLimitError):
            asked = failure.wait
            if asked is not None and asked > self.options.max_single_wait:
                why = (
                    f"the vendor asked to wait {asked:.0f} s, longer than "
                    f"max_single_wait ({self.options.max_single_wait:.0f} s)"
                )
            else:
                why = (
                    f"still rate limited after {state.attempt_number} attempt(s) and "
                    f"{state.idle_for:.1f} s of waiting"
                )
            raise RateLimitError(
                f"{error.vendor_message}; {why}",
                retry_after=asked,
                vendor=self.vendor,
                status=error.status,
                code=error.code,
                request_id=error.request_id,
                method=error.method,
                endpoint=error.endpoint,
            )
        raise error

    # -- errors ---------------------------------------------------------------

    def _api_error(
        self,
        response: requests.Response,
        info: VendorErrorInfo | None,
        method: str,
        endpoint: str,
        kind: type[VendorAPIError] = VendorAPIError,
        **extra: Any,
    ) -> VendorAPIError:
        info = (
            info
            or default_error_parser(response)
            or VendorErrorInfo(message=f"HTTP {response.status_code}")
        )
        return kind(
            info.message,
            vendor=self.vendor,
            status=response.status_code,
            code=info.code,
            request_id=info.request_id,
            method=method,
            endpoint=endpoint,
            **extra,
        )

    def _auth_error(
        self, response: requests.Response, info: VendorErrorInfo | None, method: str, endpoint: str
    ) -> CredentialRefusedError:
        message = info.message if info else "the vendor refused the credential"
        return CredentialRefusedError(
            message,
            vendor=self.vendor,
            status=response.status_code,
            code=info.code if info else None,
            request_id=info.request_id if info else None,
            method=method,
            endpoint=endpoint,
        )

    def _malformed(
        self, response: requests.Response, method: str, endpoint: str, safe: bool
    ) -> Exception:
        error = MalformedResponseError(
            "the response body is not valid JSON",
            vendor=self.vendor,
            status=response.status_code,
            request_id=request_id_of(response),
            method=method,
            endpoint=endpoint,
        )
        if safe:
            return _RetryableFailure("malformed JSON body", error)
        return error

    def raise_for_error(self, response: requests.Response, *, method: str, endpoint: str) -> None:
        """Raise the error *response* carries according to the error parser, if any."""
        info = self.error_parser(response)
        if info is None:
            return
        raise self._api_error(response, info, method, endpoint)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HttpClient vendor={self.vendor!r} base_url={self.base_url!r}>"


def _failure_of(state: tenacity.RetryCallState) -> _RetryableFailure | None:
    if state.outcome is None or not state.outcome.failed:
        return None
    exc = state.outcome.exception()
    return exc if isinstance(exc, _RetryableFailure) else None


def _transport_reason(exc: requests.exceptions.RequestException, url: str) -> str:
    # The exception text can hold the full URL (and a token in its query), so
    # only the kind of failure is reported, with the host and port it was for
    # (never the URL's user or password): a wrong base URL shows at once.
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "the vendor did not answer in time (read time-out)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port that is not a number: no place to name
            return "the connection failed"
        where = f"{parts.hostname}:{port}"
        text = str(exc).lower()
        if "reset" in text or "aborted" in text or "remotedisconnected" in text:
            return f"the connection to {where} was reset"
        if "refused" in text:
            return f"the connection to {where} was refused"
        return f"the connection to {where} failed"
    return exc.__class__.__name__


# What OpenSSL says when the "TLS" answer is an HTTP response (a plain-http port).
_PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "wrong version number", "http request")


def _tls_problem(exc: requests.exceptions.SSLError, url: str) -> str:
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 443}"
    if any(sign in str(exc) for sign in _PLAIN_HTTP_SIGNS):
        # No certificate was ever seen, so a CA bundle would not help.
        return (
            f"the server at {where} answered in plain HTTP, not TLS; is the URL's scheme "
            "right (http:// rather than https://, or the server's TLS port)?"
        )
    return (
        f"TLS verification failed for {parts.netloc} ({_tls_reason(exc)}). If the server "
        "uses a private CA, set 'ca_bundle' on the credential (or ClientOptions.ca_bundle) "
        "to a PEM file of that CA."
    )


def _tls_reason(exc: requests.exceptions.SSLError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate verify failed"
    if "hostname" in text.lower():
        return "the certificate does not match the host name"
    return "TLS handshake failed"
