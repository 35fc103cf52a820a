"""A base for vendor emulators: real HTTP servers on 127.0.0.1.

A vendor plugin subclasses :class:`Emulator`, declares routes with
:func:`route`, and gets for free: a threaded server on an ephemeral port,
context-manager and fixture life cycle, bearer-token bookkeeping, per-endpoint
rate limits and on-demand faults (429 with Retry-After, 5xx, connection reset,
slow responses, malformed JSON, expired tokens).

>>> with SlackEmulator(users=500) as emulator:
...     emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", after=1)
...     run_sync(base_url=emulator.base_url)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import email.utils
import inspect
import itertools
import json
import re
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import attrs

from ..models import AuthKind, Credential

__all__ = [
    "AccessProblem",
    "Emulator",
    "EmulatorRequest",
    "EmulatorResponse",
    "Fault",
    "FaultPlan",
    "IssuedToken",
    "Refusal",
    "decode_cursor",
    "encode_cursor",
    "route",
]


# ---------------------------------------------------------------------------
# Requests and responses
# ---------------------------------------------------------------------------


@attrs.frozen
class EmulatorRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    path_params: Mapping[str, str] = attrs.field(factory=dict)
    endpoint: str = ""

    @property
    def raw_query(self) -> Mapping[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    query_string: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    def params(self) -> dict[str, str]:
        """Query string and form body together (RPC-style APIs accept both)."""
        merged = dict(self.query)
        content_type = (self.header("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" in content_type:
            merged.update(self.form())
        elif "application/json" in content_type and self.body:
            data = self.json()
            if isinstance(data, dict):
                merged.update({k: str(v) for k, v in data.items()})
        return merged

    def bearer_token(self) -> str | None:
        value = self.header("Authorization") or ""
        if value.lower().startswith("bearer "):
            return value[7:].strip()
        return None


@attrs.define
class EmulatorResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)
    raw_body: bytes | None = None
    send_delay: float = 0.0
    """Seconds to wait, after the request was handled, before answering."""
    trickle_interval: float | None = None
    """Send the body one byte at a time, this many seconds apart."""

    def encoded(self) -> bytes:
        if self.raw_body is not None:
            return self.raw_body
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


def json_response(body: Any, status: int = 200, **headers: str) -> EmulatorResponse:
    return EmulatorResponse(status=status, body=body, headers=dict(headers))


class Refusal(Exception):
    """Raise from a handler (or a check it calls) to answer with *response* at once.

    A vendor's token and scope checks raise it deep inside a handler, so each
    handler need not test and return their answer itself.
    """

    def __init__(self, response: EmulatorResponse) -> None:
        super().__init__(response.body)
        self.response = response


def encode_cursor(position: str) -> str:
    """An opaque cursor for *position* (Base64, as Slack's and many vendors' look)."""
    return base64.b64encode(position.encode()).decode()


def decode_cursor(cursor: str) -> str | None:
    """The position :func:`encode_cursor` hid in *cursor*; ``None`` for a forged one."""
    try:
        return base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------


@attrs.frozen
class Fault:
    """Something to go wrong on a matching request. Build with the class methods."""

    kind: str
    status: int = 500
    retry_after: float | None = None
    retry_after_as_date: bool = False
    delay: float = 0.0
    headers: Mapping[str, str] = attrs.field(factory=dict)
    records: tuple[Any, ...] = ()

    @classmethod
    def rate_limited(
        cls, retry_after: float = 1, *, as_http_date: bool = False, status: int = 429
    ) -> Fault:
        """Answer 429 (or *status*) with Retry-After in seconds or as an HTTP date."""
        return cls(
            "rate_limited", status=status, retry_after=retry_after, retry_after_as_date=as_http_date
        )

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        return cls("server_error", status=status)

    @classmethod
    def connection_reset(cls) -> Fault:
        """Close the connection with a TCP RST before answering."""
        return cls("connection_reset")

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Answer normally after *delay* seconds (exercise read time-outs)."""
        return cls("slow", delay=delay)

    @classmethod
    def slow_after(cls, delay: float) -> Fault:
        """Do the work, then answer only after *delay* seconds (a client that times
        out does not know its request was applied)."""
        return cls("slow_after", delay=delay)

    @classmethod
    def malformed_json(cls) -> Fault:
        """Answer 200 with a body that is not valid JSON."""
        return cls("malformed_json")

    @classmethod
    def answer_late(cls, delay: float) -> Fault:
        """Handle the request at once (its effects happen), then wait *delay* s to answer.

        What a client killed or timed out while waiting sees: the vendor did
        the work (rotated a refresh token) but the answer never arrived.
        """
        return cls("answer_late", delay=delay)

    @classmethod
    def trickle(cls, interval: float = 1.0) -> Fault:
        """Answer normally, but send the body one byte every *interval* seconds."""
        return cls("trickle", delay=interval)

    @classmethod
    def repeat_answer(cls) -> Fault:
        """Answer with the previous answer of the same endpoint again (a repeated cursor
        or next link, as a vendor with a caching bug sends)."""
        return cls("repeat_answer")

    @classmethod
    def corrupt_records(cls, *replacements: Any) -> Fault:
        """Answer normally, but with the first users of the page replaced by *replacements*
        (any JSON values: ``None``, a list, an object without ``id``...).

        The ids replaced are kept in :attr:`Emulator.corrupted_ids`. A replacement that is
        a callable is given the original user and returns the value to send.
        """
        return cls("corrupt_records", records=tuple(replacements))

    @classmethod
    def duplicate_record(cls) -> Fault:
        """Answer normally, but send the page's first user twice."""
        return cls("duplicate_record")

    @classmethod
    def expire_tokens(cls) -> Fault:
        """Expire every access token issued so far, then answer the request normally.

        The request fails the way the vendor fails an expired token; a client
        that refreshes and retries succeeds.
        """
        return cls("expire_tokens")


@attrs.define
class _PlannedFault:
    fault: Fault
    endpoint: str | None
    method: str | None
    after: int
    times: int
    seen: int = 0
    fired: int = 0


class FaultPlan:
    """The faults an emulator will inject, matched in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[_PlannedFault] = []

    def add(
        self,
        fault: Fault,
        *,
        endpoint: str | None = None,
        method: str | None = None,
        after: int = 0,
        times: int = 1,
    ) -> None:
        """Inject *fault* on matching requests.

        :param endpoint: the route's endpoint name or path; ``None`` matches all.
        :param after: let this many matching requests through first.
        :param times: how many requests get the fault (``-1``: every one).
        """
        with self._lock:
            self._planned.append(_PlannedFault(fault, endpoint, method, after, times))

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()

    def plans(self, kind: str) -> bool:
        """Whether a fault of *kind* may still fire."""
        with self._lock:
            return any(
                p.fault.kind == kind and (p.times < 0 or p.fired < p.times) for p in self._planned
            )

    def pending(self) -> int:
        with self._lock:
            return sum(1 for p in self._planned if p.times < 0 or p.fired < p.times)

    def take(self, request: EmulatorRequest) -> Fault | None:
        with self._lock:
            for planned in self._planned:
                if planned.endpoint not in (None, request.endpoint, request.path):
                    continue
                if planned.method not in (None, request.method):
                    continue
                if 0 <= planned.times <= planned.fired:
                    continue
                planned.seen += 1
                if planned.seen <= planned.after:
                    continue
                planned.fired += 1
                return planned.fault
        return None


# ---------------------------------------------------------------------------
# Tokens and rate limits
# ---------------------------------------------------------------------------


@attrs.define
class IssuedToken:
    value: str
    scopes: frozenset[str]
    expires_at: float | None
    subject: str = ""
    kind: str = "access"

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


@attrs.frozen
class AccessProblem:
    """Why :meth:`Emulator.check_access` refused a request.

    :param reason: ``"missing"`` (no token sent), ``"revoked"``, ``"unknown"``,
        ``"expired"`` or ``"scope"`` (valid, but without :attr:`scope`).
    :param scope: the scope the request needed.
    :param token: the token that was sent, when the emulator knows it.
    """

    reason: str
    scope: str = ""
    token: IssuedToken | None = None


class _SlidingWindow:
    """Counts requests in the last 60 seconds for one endpoint."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.per_minute = per_minute
        self.burst = max(burst, 1)
        self.calls: deque[float] = deque()
        self.lock = threading.Lock()

    def admit(self, now: float | None = None) -> float | None:
        """Record a call; return seconds to wait instead when over the limit.

        :param now: when the call came (``time.monotonic()`` when not given).
        """
        if now is None:
            now = time.monotonic()
        with self.lock:
            while self.calls and now - self.calls[0] >= 60:
                self.calls.popleft()
            # Allow the declared rate per minute, and at most `burst` + the
            # rate's share of the last interval in any short stretch.
            interval = 60.0 / self.per_minute
            recent = sum(1 for t in self.calls if now - t < interval)
            if len(self.calls) >= self.per_minute or recent >= self.burst:
                oldest = self.calls[0] if len(self.calls) >= self.per_minute else self.calls[-1]
                horizon = 60.0 if len(self.calls) >= self.per_minute else interval
                return max(horizon - (now - oldest), 0.01)
            self.calls.append(now)
            return None


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------


Handler = Callable[["Emulator", EmulatorRequest], EmulatorResponse]
# Bound to Callable[..., ...] so that a subclass's methods (whose `self` is the
# subclass, not Emulator) keep their own type through the decorator.
HandlerT = TypeVar("HandlerT", bound=Callable[..., EmulatorResponse])


def route(
    method: str | tuple[str, ...], path: str, *, endpoint: str | None = None
) -> Callable[[HandlerT], HandlerT]:
    """Declare an emulator method as the handler of ``method path``.

    ``method`` is one method or a tuple of them (Slack takes GET and POST alike).
    ``path`` may hold ``{name}`` placeholders, passed in ``request.path_params``.
    ``endpoint`` names the route for faults and rate limits (defaults to the path).
    Stack decorators to serve one handler on several paths.
    """
    methods = (method,) if isinstance(method, str) else method

    def decorate(func: HandlerT) -> HandlerT:
        specs = tuple((name.upper(), path, endpoint or path) for name in methods)
        func.__emulator_routes__ = (*getattr(func, "__emulator_routes__", ()), *specs)  # type: ignore[attr-defined]
        return func

    return decorate


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    handler: Handler


def _compile_path(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


class Emulator:
    """A vendor emulator: subclass, add routes, and use as a context manager."""

    vendor: ClassVar[str] = "generic"
    _routes: ClassVar[tuple[_Route, ...]] = ()
    rate_limits: ClassVar[Mapping[str, tuple[float, int]]] = {}
    """endpoint -> (requests per minute, burst) enforced with 429s."""
    request_id_header: ClassVar[str | None] = None
    """A header that carries a fresh request id on every answer (``X-Slack-Req-Id``)."""
    request_id_format: ClassVar[str] = "emu-{number}"
    """How :meth:`next_request_id` writes an id; ``{emulator}`` is the emulator."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        routes: list[_Route] = []
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                for method, path, endpoint in getattr(value, "__emulator_routes__", ()):
                    routes.append(_Route(method, _compile_path(path), endpoint, value))
        for method, path, endpoint, handler in cls.configured_routes():
            routes.append(_Route(method, _compile_path(path), endpoint, handler))
        cls._routes = tuple(routes)

    @classmethod
    def configured_routes(cls) -> Iterable[tuple[str, str, str, Handler]]:
        """Routes whose paths a subclass sets as class attributes (``method, path,
        endpoint, handler``), as the OAuth mixin's token and authorize endpoints are."""
        return ()

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        rate_limits: Mapping[str, tuple[float, int]] | None = None,
        enforce_rate_limits: bool = True,
        log_requests: int = 1000,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.faults = FaultPlan()
        self.enforce_rate_limits = enforce_rate_limits
        limits = dict(self.rate_limits)
        limits.update(rate_limits or {})
        self._windows = {name: _SlidingWindow(*limit) for name, limit in limits.items()}
        self._tokens: dict[str, IssuedToken] = {}
        self._revoked_tokens: set[str] = set()
        self._tokens_lock = threading.Lock()
        self.requests: deque[EmulatorRequest] = deque(maxlen=log_requests)
        self.rate_limited_count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        """Set by stop(), so a trickling answer ends instead of holding a thread."""
        self._last_answers: dict[str, EmulatorResponse] = {}
        self.corrupted_ids: set[str] = set()
        """Ids of the users a ``corrupt_records`` fault replaced."""
        self.corrupted_count = 0
        """How many replacements a ``corrupt_records`` fault made (a short page takes fewer)."""
        self._request_numbers = itertools.count(1)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build an emulator from caller options, ignoring the ones it does not take.

        The CLI, the demo and the conformance suite pass the same options
        (``users``, ``seed``, ``port``, ``token``, ``max_page_size``) to every vendor.
        """
        accepted: set[str] = set()
        takes_any = False
        for klass in cls.__mro__:
            init = vars(klass).get("__init__")
            if init is None:
                continue
            for parameter in inspect.signature(init).parameters.values():
                if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    takes_any = True
                elif parameter.name != "self":
                    accepted.add(parameter.name)
            if not takes_any:
                break
            takes_any = False
        chosen = {k: v for k, v in options.items() if k in accepted and v is not None}
        return cls(**chosen)

    # -- life cycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where clients point; a vendor whose API lives below a path overrides it."""
        return self._root_url()

    @property
    def server_url(self) -> str:
        """The server's root, whatever :attr:`base_url` adds to it."""
        return self._root_url()

    def _root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; use it as a context manager")
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        self.stopping.clear()
        handler = _make_handler(self)
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        # The handler writes headers and body separately; without TCP_NODELAY
        # (inherited by accepted sockets) Nagle's algorithm and delayed ACKs
        # stall every response by about 40 ms.
        server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll interval makes stop() return quickly (the default is 0.5 s,
        # paid by every test that starts an emulator).
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.vendor}-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @classmethod
    def fixture(cls, *, name: str | None = None, **options: Any) -> Any:
        """Return a pytest fixture that yields a running emulator of this class.

        In a ``conftest.py``: ``acme_emulator = AcmeEmulator.fixture(users=10)``.
        The emulator starts before the test and stops after it. The fixture is
        called ``<vendor>_emulator`` unless *name* is given.
        """
        import pytest  # the test kit's only pytest dependency; runtime code never calls this

        def running_emulator() -> Any:
            with cls(**options) as emulator:
                yield emulator

        running_emulator.__name__ = name or f"{cls.vendor}_emulator"
        return pytest.fixture(name=name)(running_emulator)

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (``oomnitza-connect emulator``)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- tokens -------------------------------------------------------------

    def issue_token(
        self,
        *,
        scopes: Iterable[str] = (),
        ttl: float | None = None,
        prefix: str = "emu-",
        subject: str = "",
        kind: str = "access",
        value: str | None = None,
    ) -> IssuedToken:
        token = IssuedToken(
            value=value or prefix + secrets.token_urlsafe(24),
            scopes=frozenset(scopes),
            expires_at=None if ttl is None else time.time() + ttl,
            subject=subject,
            kind=kind,
        )
        with self._tokens_lock:
            self._tokens[token.value] = token
        return token

    def lookup_token(self, value: str | None, kind: str = "access") -> IssuedToken | None:
        if not value:
            return None
        with self._tokens_lock:
            token = self._tokens.get(value)
        return token if token is not None and token.kind == kind else None

    def test_credential(self, name: str = "") -> Credential:
        """A credential for the ready-made token (``self.token``), pointing at this emulator
        (named ``<vendor>-emulator`` unless *name* says otherwise).

        An emulator with another kind of ready-made credential overrides it.
        """
        token = getattr(self, "token", None)
        if not isinstance(token, str):
            raise NotImplementedError(f"{type(self).__name__} has no ready-made token")
        return Credential(
            name=name or f"{self.vendor}-emulator",
            vendor=self.vendor,
            kind=AuthKind.API_KEY,
            token=token,
            base_url=self.base_url,
        )

    def revoke_token(self, value: str) -> None:
        """Forget *value*: from now on it is a token this emulator never issued."""
        with self._tokens_lock:
            self._tokens.pop(value, None)

    def revoke(self, value: str) -> None:
        """Make *value* answer "revoked" (not "unknown") from now on, as vendors tell them apart."""
        with self._tokens_lock:
            self._revoked_tokens.add(value)

    def check_access(
        self, request: EmulatorRequest, scope: str = "", *, value: str | None = None
    ) -> IssuedToken:
        """The valid access token of *request* (its bearer token, or *value*), with *scope*.

        Anything else raises :class:`Refusal` with :meth:`access_refused`'s answer,
        so a handler reads ``token = self.check_access(request, "users:read")``.
        """
        value = request.bearer_token() if value is None else value
        token = self.lookup_token(value)
        with self._tokens_lock:
            revoked = bool(value) and value in self._revoked_tokens
        reason = (
            "missing" if not value
            else "revoked" if revoked
            else "unknown" if token is None
            else "expired" if token.expired()
            else "scope" if scope and scope not in token.scopes
            else ""
        )  # fmt: skip
        if reason:
            raise Refusal(self.access_refused(AccessProblem(reason, scope, token), request))
        assert token is not None
        return token

    def expire_all_tokens(self) -> None:
        now = time.time()
        with self._tokens_lock:
            for token in self._tokens.values():
                if token.kind == "access":
                    token.expires_at = now - 1

    # -- hooks for subclasses -----------------------------------------------

    def expected_user_ids(self) -> set[str]:
        """Return the id of every user this emulator serves (the conformance suite's truth).

        A vendor emulator overrides this; ``list_users`` must return exactly these ids.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement expected_user_ids() for the conformance suite"
        )

    def access_refused(self, problem: AccessProblem, request: EmulatorRequest) -> EmulatorResponse:
        """How the vendor refuses a token (override for the vendor's codes and body)."""
        status = 403 if problem.reason == "scope" else 401
        return self.error_response(status, problem.reason, request)

    def error_response(self, status: int, code: str, request: EmulatorRequest) -> EmulatorResponse:
        """The vendor's error envelope; the fault answers below are built with it, so a
        vendor that overrides this (and names its codes in :attr:`fault_codes`) gets
        them in its own shape."""
        body: dict[str, Any] = {"error": code}
        if status == 404:
            body["path"] = request.path
        return json_response(body, status=status)

    fault_codes: ClassVar[Mapping[str, str]] = {}
    """The vendor's codes for ``rate_limited``, ``internal_error`` and ``not_found``."""

    def rate_limited_response(
        self, retry_after: float, request: EmulatorRequest
    ) -> EmulatorResponse:
        """How the vendor says "slow down": its error with a ``Retry-After``."""
        code = self.fault_codes.get("rate_limited", "rate_limited")
        response = self.error_response(429, code, request)
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
        return response

    def server_error_response(self, status: int, request: EmulatorRequest) -> EmulatorResponse:
        code = self.fault_codes.get("internal_error", "internal_error")
        return self.error_response(status, code, request)

    def not_found_response(self, request: EmulatorRequest) -> EmulatorResponse:
        return self.error_response(404, self.fault_codes.get("not_found", "not_found"), request)

    def next_request_id(self) -> str:
        """A fresh request id, numbered from 1, written as :attr:`request_id_format` says."""
        return self.request_id_format.format(emulator=self, number=next(self._request_numbers))

    # -- dispatch -----------------------------------------------------------

    def dispatch(self, request: EmulatorRequest) -> EmulatorResponse | None:
        """Answer *request*; ``None`` means drop the connection with a reset."""
        try:
            response = self._answer(request)
        except Refusal as refusal:
            response = refusal.response
        if response is not None and self.request_id_header:
            response.headers.setdefault(self.request_id_header, self.next_request_id())
        return response

    def _answer(self, request: EmulatorRequest) -> EmulatorResponse | None:
        for candidate in self._routes:
            if candidate.method != request.method:
                continue
            match = candidate.pattern.match(request.path)
            if match is None:
                continue
            request = attrs.evolve(
                request, path_params=match.groupdict(), endpoint=candidate.endpoint
            )
            self.requests.append(request)
            fault = self.faults.take(request)
            if fault is not None and fault.kind == "slow_after":
                response = candidate.handler(self, request)
                time.sleep(fault.delay)
                return response
            if fault is not None:
                answer = self._apply_fault(fault, request)
                if answer is not _CONTINUE:
                    return answer  # type: ignore[no-any-return]
            if self.enforce_rate_limits:
                window = self._windows.get(candidate.endpoint)
                if window is not None:
                    wait = window.admit()
                    if wait is not None:
                        self.rate_limited_count += 1
                        return self.rate_limited_response(wait, request)
            handled: EmulatorResponse | None = candidate.handler(self, request)
            if handled is not None and fault is not None:
                if fault.kind == "answer_late":
                    handled.send_delay = fault.delay
                elif fault.kind == "trickle":
                    handled.trickle_interval = fault.delay
                elif fault.kind in ("corrupt_records", "duplicate_record"):
                    self._rewrite_records(handled, fault)
            if handled is not None and handled.status == 200 and self.faults.plans("repeat_answer"):
                # Kept only while a repeat is planned: copying every answer costs.
                self._last_answers[candidate.endpoint] = copy.deepcopy(handled)
            return handled
        self.requests.append(request)
        return self.not_found_response(request)

    def _rewrite_records(self, response: EmulatorResponse, fault: Fault) -> None:
        if response.body is None and response.raw_body is not None:
            # An emulator that encodes its answer itself (entry by entry, to stay lean).
            try:
                response.body = json.loads(response.raw_body)
            except ValueError:
                return
            response.raw_body = None
        users = _user_list(response.body)
        if users is None or not users:
            return
        if fault.kind == "duplicate_record":
            users.append(copy.deepcopy(users[0]))
            return
        for index, replacement in enumerate(fault.records[: len(users)]):
            self.corrupted_count += 1
            original = users[index]
            if isinstance(original, Mapping) and original.get("id") is not None:
                self.corrupted_ids.add(str(original["id"]))
            users[index] = replacement(original) if callable(replacement) else replacement

    def _apply_fault(self, fault: Fault, request: EmulatorRequest) -> Any:
        if fault.kind == "rate_limited":
            response = self.rate_limited_response(fault.retry_after or 1, request)
            response.status = fault.status
            if fault.retry_after_as_date:
                when = time.time() + (fault.retry_after or 1)
                response.headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
            return response
        if fault.kind == "server_error":
            return self.server_error_response(fault.status, request)
        if fault.kind == "connection_reset":
            return None
        if fault.kind == "malformed_json":
            return EmulatorResponse(
                status=200,
                raw_body=b'{"ok": true, "members": [{"id": ',
                headers={"Content-Type": "application/json"},
            )
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return _CONTINUE
        if fault.kind == "expire_tokens":
            self.expire_all_tokens()
            return _CONTINUE
        if fault.kind == "repeat_answer":
            previous = self._last_answers.get(request.endpoint or request.path)
            return copy.deepcopy(previous) if previous is not None else _CONTINUE
        if fault.kind in ("answer_late", "trickle", "corrupt_records", "duplicate_record"):
            return _CONTINUE  # applied to the answer, in dispatch
        raise ValueError(f"unknown fault kind {fault.kind!r}")


_CONTINUE = object()


def _user_list(body: Any, depth: int = 0) -> list[Any] | None:
    """The list of user objects in a list answer (``members``, ``data``, ``items``...)."""
    if isinstance(body, list):
        return body if any(isinstance(item, Mapping) and "id" in item for item in body) else None
    if isinstance(body, Mapping) and depth < 3:
        for value in body.values():
            found = _user_list(value, depth + 1)
            if found is not None:
                return found
    return None


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"{emulator.vendor}-emulator"

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines would carry tokens passed in query strings.
            return

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            request = EmulatorRequest(
                method=self.command,
                path=parts.path,
                query=query,
                headers=dict(self.headers.items()),
                body=body,
                query_string=parts.query,
            )
            try:
                response = emulator.dispatch(request)
            except Exception as exc:  # an emulator bug must surface as a 500, not a hang
                response = json_response(
                    {"error": "emulator_bug", "detail": f"{exc.__class__.__name__}: {exc}"}, 500
                )
            if response is None:
                self._reset()
                return
            if response.send_delay:
                time.sleep(response.send_delay)
            payload = response.encoded()
            self.send_response(
                response.status,
                HTTPStatus(response.status).phrase
                if response.status in HTTPStatus._value2member_map_
                else None,
            )
            headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if response.trickle_interval is None:
                self.wfile.write(payload)
                return
            for index in range(len(payload)):
                if emulator.stopping.is_set():
                    return
                try:
                    self.wfile.write(payload[index : index + 1])
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up
                time.sleep(response.trickle_interval)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST, which the
            # client sees as "connection reset by peer".
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.close_connection = True
            self.connection.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return _Handler
