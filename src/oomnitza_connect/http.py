"""The HTTP client every vendor plugin uses.

One :class:`HttpClient` (one ``requests.Session``) per connector session, so
connections are reused; a base URL that can be overridden everywhere; connect
and read timeouts; a User-Agent naming the SDK and the plugin; vendor errors
turned into :class:`~oomnitza_connect.errors.VendorAPIError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import attrs
import requests

from . import __version__
from .errors import TransportError, VendorAPIError
from .models import Credential, RateBudget

__all__ = [
    "ClientOptions",
    "HttpClient",
    "VendorErrorInfo",
    "VendorSession",
]

log = logging.getLogger(__name__)


@attrs.frozen
class ClientOptions:
    """Transport settings of a connector session.

    :param base_url: replaces the vendor's API root (region, proxy, emulator).
    :param ca_bundle: a PEM file of extra trusted CAs (a private CA); TLS is always verified.
    """

    base_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    ca_bundle: str | None = None
    max_retries: int = 6
    max_single_wait: float = 60.0
    max_total_wait: float = 300.0
    pace_requests: bool = True
    user_agent_extra: str | None = None


@attrs.frozen
class VendorErrorInfo:
    """What a plugin's error parser found in a vendor response."""

    message: str
    code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None


ErrorParser = Callable[[requests.Response], VendorErrorInfo | None]
"""Returns the error a response carries, or ``None`` for a success.

Called for every response: Slack reports errors with HTTP 200 and ``ok: false``.
"""


def default_error_parser(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code < 400:
        return None
    return VendorErrorInfo(message=response.reason or f"HTTP {response.status_code}")


class HttpClient:
    """A connection-reusing, retrying, rate-aware HTTP client for one vendor."""

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
    ) -> None:
        self.vendor = vendor
        self.options = options or ClientOptions()
        self.base_url = (self.options.base_url or base_url).rstrip("/") + "/"
        self.error_parser = error_parser
        self.rate_budgets = rate_budgets
        self.session = requests.Session()
        self.session.auth = auth
        # Always verify TLS; a private CA is added, never a way to turn checks off.
        self.session.verify = self.options.ca_bundle or True
        agent = f"oomnitza-connect/{__version__}"
        if plugin_version:
            agent += f" oomnitza-connect-{vendor}/{plugin_version}"
        if self.options.user_agent_extra:
            agent += f" {self.options.user_agent_extra}"
        self.session.headers["User-Agent"] = agent
        self.session.headers["Accept"] = "application/json"
        if default_headers:
            self.session.headers.update(default_headers)

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
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request and return the successful response.

        :param endpoint: the rate-budget name of the call (``users.list``);
            defaults to the path.
        :param idempotent: whether a retry is safe; defaults to True for
            GET/HEAD/PUT/DELETE/OPTIONS and False otherwise.
        :raises VendorAPIError: the vendor answered with an error.
        :raises TransportError: the vendor could not be reached.
        """
        url = self.url_for(path_or_url)
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=(self.options.connect_timeout, self.options.read_timeout),
            )
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS verification failed for {urlsplit(url).netloc}: {exc.__class__.__name__}. "
                "If the server uses a private CA, set 'ca_bundle' on the credential.",
                vendor=self.vendor,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(
                f"{method} {urlsplit(url).path} failed: {exc.__class__.__name__}",
                vendor=self.vendor,
            ) from None
        self.raise_for_error(response, method=method, endpoint=endpoint or urlsplit(url).path)
        return response

    def raise_for_error(self, response: requests.Response, *, method: str, endpoint: str) -> None:
        info = self.error_parser(response)
        if info is None:
            return
        raise VendorAPIError(
            info.message,
            vendor=self.vendor,
            status=response.status_code,
            code=info.code,
            request_id=info.request_id,
            method=method,
            endpoint=endpoint,
        )

    def get_json(self, path_or_url: str, **kwargs: Any) -> Any:
        return self.request("GET", path_or_url, **kwargs).json()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HttpClient vendor={self.vendor!r} base_url={self.base_url!r}>"


@attrs.define
class VendorSession:
    """An authenticated conversation with one vendor account.

    :param identity: what the vendor said about the credential's owner
        (team, admin, account), for display and for presets.
    """

    vendor: str
    http: HttpClient
    credential: Credential
    settings: Mapping[str, str] = attrs.field(factory=dict)
    identity: Mapping[str, Any] = attrs.field(factory=dict)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VendorSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
