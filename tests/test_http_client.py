"""HttpClient against a real emulator over 127.0.0.1: retries, errors, pacing."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from http_support import STATIC_TOKEN, DirectoryEmulator, Recorder

from oomnitza_connect import __version__
from oomnitza_connect.errors import (
    AuthenticationError,
    RateLimitError,
    TransportError,
    VendorAPIError,
)
from oomnitza_connect.models import RateBudget
from oomnitza_connect.testing.emulator import EmulatorRequest, EmulatorResponse, Fault
from oomnitza_connect.testing.pacing import RecordingPacer, refused_by_rate_limit
from oomnitza_connect.transport.http import (
    ClientOptions,
    HttpClient,
    MalformedResponseError,
    VendorErrorInfo,
    Wait,
    parse_retry_after,
)


class BearerAuth(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {STATIC_TOKEN}"
        return request


@pytest.fixture
def emulator() -> Iterator[DirectoryEmulator]:
    with DirectoryEmulator() as emu:
        yield emu


def make_client(
    emulator: DirectoryEmulator, sleep: Recorder | None = None, **options: object
) -> HttpClient:
    return HttpClient(
        "directory",
        emulator.base_url,
        auth=BearerAuth(),
        options=ClientOptions(**options),  # type: ignore[arg-type]
        plugin_version="9.9.9",
        sleep=sleep or Recorder(),
    )


def test_user_agent_names_sdk_and_plugin(emulator: DirectoryEmulator) -> None:
    with make_client(emulator) as client:
        echoed = client.get_json("/echo")
    assert echoed["headers"]["User-Agent"].startswith(
        f"oomnitza-connect/{__version__} oomnitza-connect-directory/9.9.9"
    )


def test_connection_is_reused(emulator: DirectoryEmulator) -> None:
    with make_client(emulator) as client:
        for _ in range(3):
            client.get_json("/echo")
        adapter = client.session.get_adapter(client.base_url)
        pools = adapter.poolmanager.pools  # type: ignore[attr-defined]
        opened = sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118
    assert opened == 1


def test_503_then_success_is_retried_with_backoff(
    emulator: DirectoryEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.faults.add(Fault.server_error(503), endpoint="echo", times=2)
    sleep = Recorder()
    with (
        caplog.at_level(logging.INFO, logger="oomnitza_connect.transport.http"),
        make_client(emulator, sleep) as client,
    ):
        assert client.get_json("/echo", endpoint="echo")["query"] == {}
    assert len(sleep.waits) == 2
    # Exponential with jitter: the second wait's ceiling is twice the first's.
    assert 0.25 <= sleep.waits[0] <= 0.5
    assert 0.5 <= sleep.waits[1] <= 1.0
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "HTTP 503" in retries[0]
    assert "GET /echo" in retries[0]


def test_post_is_not_retried_on_503_unless_declared_idempotent(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.server_error(503), endpoint="echo.post", times=1)
    with make_client(emulator) as client:
        with pytest.raises(VendorAPIError) as raised:
            client.post_json("/echo", data={"a": "1"})
        assert raised.value.status == 503
        emulator.faults.add(Fault.server_error(503), endpoint="echo.post", times=1)
        assert client.post_json("/echo", data={"a": "1"}, idempotent=True) == {
            "received": {"a": "1"}
        }


def test_post_is_retried_on_429(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=2), endpoint="echo.post", times=1)
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        assert client.post_json("/echo", data={"a": "1"}) == {"received": {"a": "1"}}
    assert sleep.waits == [2.0]


def test_burst_of_429s_honours_retry_after(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=3), endpoint="echo", times=4)
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        client.get_json("/echo", endpoint="echo")
    assert sleep.waits == [3.0, 3.0, 3.0, 3.0]


def test_retry_after_as_http_date(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=5, as_http_date=True), endpoint="echo")
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        client.get_json("/echo", endpoint="echo")
    assert len(sleep.waits) == 1
    # An HTTP date has one-second resolution.
    assert 3.0 <= sleep.waits[0] <= 6.0


def test_parse_retry_after_forms() -> None:
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(
        email.utils.formatdate(now + 30, usegmt=True), now=now
    ) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_x_ratelimit_reset_sets_the_wait(emulator: DirectoryEmulator) -> None:
    reset = int(time.time()) + 4
    emulator.faults.add(Fault.rate_limited(), endpoint="echo")
    original = emulator.rate_limited_response

    def reset_header_only(retry_after: float, request: EmulatorRequest) -> EmulatorResponse:
        # Intercom's way: no Retry-After, an epoch in X-RateLimit-Reset.
        response = original(retry_after, request)
        del response.headers["Retry-After"]
        response.headers["X-RateLimit-Reset"] = str(reset)
        return response

    emulator.rate_limited_response = reset_header_only  # type: ignore[method-assign]
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        client.get_json("/echo", endpoint="echo")
    assert len(sleep.waits) == 1
    assert 2.0 <= sleep.waits[0] <= 4.5


def test_total_wait_cap_raises_rate_limit_error(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=10), endpoint="echo", times=-1)
    sleep = Recorder()
    client = make_client(emulator, sleep, max_total_wait=25, max_single_wait=30)
    with client, pytest.raises(RateLimitError) as raised:
        client.get_json("/echo", endpoint="echo")
    assert sleep.waits == [10.0, 10.0]
    assert raised.value.status == 429
    assert raised.value.retry_after == 10.0
    assert raised.value.vendor == "directory"
    assert "still rate limited after 3 attempt(s)" in str(raised.value)


def test_single_wait_cap_gives_up_at_once(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.rate_limited(retry_after=120), endpoint="echo", times=-1)
    sleep = Recorder()
    client = make_client(emulator, sleep, max_single_wait=60)
    with client, pytest.raises(RateLimitError) as raised:
        client.get_json("/echo", endpoint="echo")
    assert sleep.waits == []
    assert raised.value.retry_after == 120.0
    assert "longer than max_single_wait" in str(raised.value)


def test_max_retries_caps_attempts(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.server_error(502), endpoint="echo", times=-1)
    sleep = Recorder()
    client = make_client(emulator, sleep, max_retries=3)
    with client, pytest.raises(VendorAPIError) as raised:
        client.get_json("/echo", endpoint="echo")
    assert raised.value.status == 502
    assert len(sleep.waits) == 3
    assert sum(1 for r in emulator.requests if r.endpoint == "echo") == 4


def test_other_4xx_is_not_retried_and_carries_details(emulator: DirectoryEmulator) -> None:
    def parser(response: requests.Response) -> VendorErrorInfo | None:
        if response.status_code < 400:
            return None
        body = response.json()
        return VendorErrorInfo(
            message="The user was not found.",
            code=body["error"],
            request_id=response.headers.get("X-Request-Id"),
        )

    client = HttpClient("directory", emulator.base_url, error_parser=parser, sleep=Recorder())
    with client, pytest.raises(VendorAPIError) as raised:
        client.get_json("/missing")
    error = raised.value
    assert (error.vendor, error.status, error.code, error.request_id) == (
        "directory",
        404,
        "not_found",
        "req-77",
    )
    assert str(error) == (
        "directory: The user was not found. on GET /missing "
        "(HTTP 404, code not_found, request id req-77)"
    )
    assert sum(1 for r in emulator.requests if r.endpoint == "missing") == 1


def test_error_in_a_200_body(emulator: DirectoryEmulator) -> None:
    def slack_like(response: requests.Response) -> VendorErrorInfo | None:
        body = response.json()
        if body.get("ok"):
            return None
        if body["error"] == "ratelimited":
            return VendorErrorInfo(message="Rate limited.", code="ratelimited", retry_after=1.5)
        return VendorErrorInfo(message=f"Slack said {body['error']}.", code=body["error"])

    sleep = Recorder()
    client = HttpClient(
        "directory",
        emulator.base_url,
        error_parser=slack_like,
        sleep=sleep,
        options=ClientOptions(max_retries=2),
    )
    with client:
        with pytest.raises(VendorAPIError) as raised:
            client.post_json("/api/rpc.fail", data={"error": "admin_not_found"})
        assert raised.value.code == "admin_not_found"
        assert raised.value.status == 200
        with pytest.raises(RateLimitError):
            client.post_json("/api/rpc.fail", data={"error": "ratelimited"})
    assert sleep.waits == [1.5, 1.5]


def test_connection_reset_is_retried(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.connection_reset(), endpoint="echo")
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        assert "headers" in client.get_json("/echo", endpoint="echo")
    assert len(sleep.waits) == 1


def test_connection_reset_on_post_is_not_retried(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.connection_reset(), endpoint="echo.post")
    with make_client(emulator) as client, pytest.raises(TransportError) as raised:
        client.post_json("/echo", data={"a": "1"})
    assert "POST /echo failed" in str(raised.value)


def test_read_timeout_is_retried(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.slow(0.6), endpoint="echo")
    sleep = Recorder()
    with make_client(emulator, sleep, read_timeout=0.2) as client:
        assert "headers" in client.get_json("/echo", endpoint="echo")
    assert len(sleep.waits) == 1


def _refused(base_url: str, **params: str) -> str:
    """The error text of a GET to *base_url* (a ``{port}`` of nothing listening)."""
    client = HttpClient(
        "directory", base_url, sleep=Recorder(), options=ClientOptions(max_retries=1)
    )
    with client, pytest.raises(TransportError) as raised:
        client.get_json("/echo", params=params or None)
    return str(raised.value)


def test_unreachable_vendor_is_a_transport_error() -> None:
    with socket_free_port() as port:
        pass
    text = _refused(f"http://127.0.0.1:{port}")
    assert f"the connection to 127.0.0.1:{port} was refused" in text


def test_an_unreachable_vendor_is_named_by_host_and_port_never_its_user_or_password() -> None:
    with socket_free_port() as port:
        pass
    text = _refused(f"http://robot:hunter2-secret@localhost:{port}/base", token="query-secret")
    assert f"the connection to localhost:{port} was refused" in text
    for secret in ("hunter2", "robot", "query-secret"):
        assert secret not in text


def test_a_client_built_with_a_wait_listener_in_its_options_hears_its_first_retry() -> None:
    # A plugin's authenticate builds the client and sends the credential check at
    # once: the options are the only way for a sync to hear that request's retries.
    with socket_free_port() as port:
        pass
    heard: list[Wait] = []
    options = ClientOptions(max_retries=1, wait_listener=heard.append)
    assert options == ClientOptions(max_retries=1)  # a listener is no setting
    client = HttpClient("directory", f"http://127.0.0.1:{port}", sleep=Recorder(), options=options)
    with client, pytest.raises(TransportError):
        client.get_json("/echo")
    assert [wait.kind for wait in heard] == ["retry"]
    assert heard[0].reason.startswith("retrying GET /echo in ")
    assert heard[0].reason.endswith(f"after the connection to 127.0.0.1:{port} was refused")


def test_malformed_json_is_retried_then_reported(emulator: DirectoryEmulator) -> None:
    emulator.faults.add(Fault.malformed_json(), endpoint="echo")
    with make_client(emulator) as client:
        assert "headers" in client.get_json("/echo", endpoint="echo")
        emulator.faults.add(Fault.malformed_json(), endpoint="echo", times=-1)
        with pytest.raises(MalformedResponseError) as raised:
            client.get_json("/echo", endpoint="echo")
    assert isinstance(raised.value, VendorAPIError)
    assert str(raised.value) == (
        "directory: the response body is not valid JSON on GET echo (HTTP 200)"
    )


def test_401_without_refreshable_auth_is_an_authentication_error(
    emulator: DirectoryEmulator,
) -> None:
    client = HttpClient("directory", emulator.base_url, sleep=Recorder())
    with client, pytest.raises(AuthenticationError) as raised:
        client.get_json("/echo")
    assert raised.value.status == 401


def test_base_url_override(emulator: DirectoryEmulator) -> None:
    client = HttpClient(
        "directory",
        "https://api.example.invalid",
        auth=BearerAuth(),
        options=ClientOptions(base_url=emulator.base_url + "/"),
    )
    with client:
        assert client.url_for("/echo") == emulator.base_url + "/echo"
        assert "headers" in client.get_json("echo")


# -- pacing ---------------------------------------------------------------------


def test_paced_client_keeps_to_an_emulator_with_the_same_limit() -> None:
    limit = (300.0, 2)
    budget = RateBudget("echo", requests_per_minute=limit[0], burst=limit[1])
    pacer = RecordingPacer((budget,))
    with DirectoryEmulator(rate_limits={"echo": limit}) as emulator:
        client = HttpClient(
            "directory",
            emulator.base_url,
            auth=BearerAuth(),
            rate_budgets=(budget,),
            # A retry only if the machine's load delays requests into a 429.
            options=ClientOptions(max_retries=2),
        )
        client.pacer = pacer
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(3):
                    client.get_json("/echo", endpoint="echo")
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        client.close()
    assert errors == []
    # Three threads, one queue: when the pacer let each of the 9 requests go
    # keeps the emulator's own rule. (Its 429 count would also measure how late
    # each request arrived, which the machine's load decides, not the pacer.)
    slots = pacer.slots["echo"]
    assert len(slots) == 9 + emulator.rate_limited_count
    assert refused_by_rate_limit(limit, slots) == []
    # 9 requests at 5/s less the margin, with a burst of 2, need about 1.6 s.
    assert slots[-1] - slots[0] >= 1.5
    assert elapsed >= 1.5


def test_unpaced_client_is_throttled_by_the_same_emulator() -> None:
    with DirectoryEmulator(rate_limits={"echo": (600.0, 2)}) as emulator:
        client = HttpClient(
            "directory",
            emulator.base_url,
            auth=BearerAuth(),
            rate_budgets=(RateBudget("echo", requests_per_minute=600.0, burst=2),),
            options=ClientOptions(max_retries=0, pace_requests=False),
        )
        with client:
            outcomes = []
            for _ in range(6):
                try:
                    client.get_json("/echo", endpoint="echo")
                    outcomes.append("ok")
                except RateLimitError:
                    outcomes.append("429")
    assert "429" in outcomes
    assert emulator.rate_limited_count >= 1


def test_fallback_budget_paces_every_endpoint(emulator: DirectoryEmulator) -> None:
    sleep = Recorder()
    client = HttpClient(
        "directory",
        emulator.base_url,
        auth=BearerAuth(),
        sleep=sleep,
        rate_budgets=(RateBudget("*", requests_per_minute=60, burst=1),),
    )
    with client:
        client.get_json("/echo", endpoint="echo")
        client.get_json("/echo", endpoint="echo")
    assert len(sleep.waits) == 1
    assert 1.0 <= sleep.waits[0] <= 1.2  # 60/min, kept 10 % under


def test_low_x_ratelimit_remaining_slows_down(emulator: DirectoryEmulator) -> None:
    emulator.quota = (1000, 0, time.time() + 5)
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        client.get_json("/echo")
        client.get_json("/echo")
    assert len(sleep.waits) == 1
    assert 3.0 <= sleep.waits[0] <= 5.5


def test_plenty_of_x_ratelimit_remaining_does_not_slow_down(emulator: DirectoryEmulator) -> None:
    emulator.quota = (1000, 900, time.time() + 5)
    sleep = Recorder()
    with make_client(emulator, sleep) as client:
        client.get_json("/echo")
        client.get_json("/echo")
    assert sleep.waits == []


class socket_free_port:
    """Find a port nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_html_error_page_is_the_error_its_status_says(emulator: DirectoryEmulator) -> None:
    def json_only_parser(response: requests.Response) -> VendorErrorInfo | None:
        body = response.json()  # raises on HTML
        return None if response.ok else VendorErrorInfo(message=str(body))

    sleep = Recorder()
    client = HttpClient(
        "directory",
        emulator.base_url,
        error_parser=json_only_parser,
        sleep=sleep,
        options=ClientOptions(max_retries=2),
    )
    with client:
        with pytest.raises(VendorAPIError) as raised:
            client.get_json("/html-error", params={"status": 404})
        assert not isinstance(raised.value, MalformedResponseError)
        assert raised.value.status == 404
        with pytest.raises(VendorAPIError) as raised:
            client.get_json("/html-error", params={"status": 502})
    assert raised.value.status == 502
    assert len(sleep.waits) == 2  # a 502 is retried even with an HTML body


def test_no_content_decodes_to_none(emulator: DirectoryEmulator) -> None:
    with make_client(emulator) as client:
        result = client.request_json("DELETE", "/things/42")
    assert result.response.status_code == 204
    assert result.data is None
