"""Issue 14, defects 7 and 8 and the ca_bundle semantics: plain http is refused except to
this machine, every attempt has a total deadline, and ca_bundle adds to the default CAs."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import STATIC_TOKEN, DirectoryEmulator
from test_tls import credential, self_signed

from oomnitza_connect.errors import ConfigurationError, TransportError
from oomnitza_connect.models import AuthKind, Credential, VendorInfo
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import (
    INSECURE_HTTP_ENV,
    ClientOptions,
    HttpClient,
    is_loopback,
)
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://api.directory.invalid",
    auth_kinds=(AuthKind.API_KEY,),
)


class Listener:
    """A TCP listener on a non-loopback address of this machine that counts connections."""

    def __init__(self, host: str) -> None:
        self.socket = socket.create_server((host, 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


def non_loopback_address() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        address = probe.getsockname()[0]
    except OSError:
        pytest.skip("this machine has no non-loopback IPv4 address")
    finally:
        probe.close()
    if is_loopback(address):
        pytest.skip("this machine has no non-loopback IPv4 address")
    return str(address)


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener(non_loopback_address())
    try:
        yield running
    finally:
        running.close()


def token_credential(base_url: str) -> Credential:
    return Credential(
        name="dir", vendor="directory", kind=AuthKind.API_KEY, token=STATIC_TOKEN, base_url=base_url
    )


def test_plain_http_to_another_host_is_refused_before_connecting(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(INSECURE_HTTP_ENV, raising=False)
    base_url = f"http://{listener.socket.getsockname()[0]}:{listener.port}/api"
    session = open_session(INFO, token_credential(base_url), {}, ClientOptions())
    with session, pytest.raises(ConfigurationError) as refused:
        session.http.get_json("users")
    message = str(refused.value)
    assert "plain http://" in message
    assert "allow_insecure_http" in message
    assert INSECURE_HTTP_ENV in message
    assert STATIC_TOKEN not in message
    assert listener.connections == 0


def test_plain_http_to_another_host_is_sent_only_when_opted_in(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(INSECURE_HTTP_ENV, raising=False)
    base_url = f"http://{listener.socket.getsockname()[0]}:{listener.port}/api"
    options = ClientOptions(allow_insecure_http=True, max_retries=0)
    session = open_session(INFO, token_credential(base_url), {}, options)
    with session, pytest.raises(TransportError):
        session.http.get_json("users")  # the listener hangs up: it was reached
    assert listener.connections == 1
    monkeypatch.setenv(INSECURE_HTTP_ENV, "1")
    session = open_session(INFO, token_credential(base_url), {}, ClientOptions(max_retries=0))
    with session, pytest.raises(TransportError):
        session.http.get_json("users")
    assert listener.connections == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "localhost", "[::1]"])
def test_loopback_hosts_count_as_this_machine(host: str) -> None:
    assert is_loopback(host.strip("[]"))


def test_a_next_link_to_plain_http_elsewhere_is_refused_too() -> None:
    with DirectoryEmulator() as emulator:
        client = HttpClient("directory", emulator.base_url, options=ClientOptions())
        with pytest.raises(ConfigurationError, match="plain http"):
            client.get_json("http://192.0.2.1/api/users")


def test_a_trickled_body_ends_at_the_total_deadline() -> None:
    with DirectoryEmulator() as emulator:
        emulator.faults.add(Fault.trickle(0.5), endpoint="echo", times=-1)
        options = ClientOptions(read_timeout=2.0, total_timeout=1.5, max_retries=0)
        client = HttpClient("directory", emulator.base_url, options=options)
        started = time.monotonic()
        with pytest.raises(TransportError, match="total time-out"):
            client.get_json("/echo")
        elapsed = time.monotonic() - started
    # The deadline, plus at most one read that was already waiting.
    assert elapsed < 1.5 + 2.0 + 1.0


def test_a_trickled_body_is_retried_for_an_idempotent_request() -> None:
    with DirectoryEmulator() as emulator:
        emulator.faults.add(Fault.trickle(0.5), endpoint="echo", times=1)
        options = ClientOptions(read_timeout=2.0, total_timeout=1.0, max_retries=2)
        cred = token_credential(emulator.base_url)
        with open_session(INFO, cred, {}, options, sleep=lambda _: None) as session:
            assert "headers" in session.http.get_json("/echo")
        assert len([r for r in emulator.requests if r.endpoint == "echo"]) == 2


def test_ca_bundle_adds_to_the_default_trust_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's CA stands in for a public one: it is in the default store
    # ($REQUESTS_CA_BUNDLE); the credential's ca_bundle names another, private CA.
    server_dir, private_dir = tmp_path / "server", tmp_path / "private"
    server_dir.mkdir()
    private_dir.mkdir()
    cert_file, key_file = self_signed(server_dir)
    private_ca, _ = self_signed(private_dir, "a private CA")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with DirectoryEmulator(ssl_context=context) as emulator:
        cred = credential(emulator.base_url, ca_bundle=str(private_ca))
        with open_session(INFO, cred, {}, ClientOptions()) as session:
            assert "headers" in session.http.get_json("/echo")


def test_an_unreadable_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("hello")
    with pytest.raises(ConfigurationError, match="ca_bundle"):
        HttpClient("directory", "https://x.invalid", options=ClientOptions(ca_bundle=str(bad)))
