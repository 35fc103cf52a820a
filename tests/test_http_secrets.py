"""No secret reaches a log line, an exception message or a repr, even at DEBUG with faults."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from http_support import STATIC_TOKEN, DirectoryEmulator, Recorder

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import auth_for_credential
from oomnitza_connect.errors import OomnitzaConnectError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential, VendorInfo
from oomnitza_connect.redaction import Secret
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.transport.pagination import iter_cursor_pages
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://api.directory.invalid",
    auth_kinds=tuple(AuthKind),
)
CLIENT_SECRET = "client-secret-never-logged"


class EveryRecord(logging.Handler):
    """Formats every record, with its traceback, the way a real handler would."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[EveryRecord]:
    handler = EveryRecord()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("urllib3", "oomnitza_connect", "oauthlib", "requests"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    import http.client

    http.client.HTTPConnection.debuglevel = 0  # prints to stdout, not logging
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def private_key_pem() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_no_secret_in_logs_exceptions_or_reprs(captured: EveryRecord, tmp_path: Path) -> None:
    private, public = private_key_pem()
    texts: list[str] = []
    with DirectoryEmulator(users=30, page_size=10) as emulator:
        emulator.register_client("app", client_secret=CLIENT_SECRET)
        emulator.register_client("jwt-app", public_key=public, key_id="k1")
        refresh = emulator.grant_refresh_token("app")
        store = CredentialStore(tmp_path, keyring_backend=False, environ={})
        code_flow = Credential(
            name="code",
            vendor="directory",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id="app",
            client_secret=CLIENT_SECRET,
            refresh_token=refresh,
            token_url=emulator.base_url + "/oauth/token",
            base_url=emulator.base_url,
        )
        jwt_flow = Credential(
            name="jwt",
            vendor="directory",
            kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
            client_id="jwt-app",
            client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
            private_key=private,
            key_id="k1",
            token_url=emulator.base_url + "/oauth/token",
            base_url=emulator.base_url,
        )
        static = Credential(
            name="static",
            vendor="directory",
            kind=AuthKind.API_KEY,
            token=STATIC_TOKEN,
            base_url=emulator.base_url,
        )
        emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", after=1)
        emulator.faults.add(Fault.server_error(503), endpoint="users.list", after=2)
        emulator.faults.add(Fault.connection_reset(), endpoint="users.list", after=3)
        emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=4)
        for cred in (code_flow, jwt_flow, static):
            emulator.issue_token(value=STATIC_TOKEN)  # expire_tokens expires it too
            texts.append(repr(cred))
            texts.append(repr(auth_for_credential(cred, credential_store=store)))
            session = open_session(
                INFO, cred, {}, ClientOptions(), credential_store=store, sleep=Recorder()
            )
            texts.append(repr(session))
            with session:
                pages = iter_cursor_pages(session.http, "/api/users.list", params={"limit": 10})
                assert sum(len(p["members"]) for p in pages) == 30
        # Failures carry exception text: a refused secret, a refused assertion, a refused token.
        bad_secret = Credential(
            name="bad",
            vendor="directory",
            kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
            client_id="app",
            client_secret="wrong-" + CLIENT_SECRET,
            token_url=emulator.base_url + "/oauth/token",
            base_url=emulator.base_url,
        )
        bad_jwt = Credential(
            name="badjwt",
            vendor="directory",
            kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
            client_id="jwt-app",
            client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
            private_key=private,
            key_id="wrong-kid",
            token_url=emulator.base_url + "/oauth/token",
            base_url=emulator.base_url,
        )
        emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="echo", times=-1)
        for cred in (bad_secret, bad_jwt, static):
            session = open_session(
                INFO,
                cred,
                {},
                ClientOptions(max_retries=1),
                credential_store=store,
                sleep=Recorder(),
            )
            with session, pytest.raises(OomnitzaConnectError) as raised:
                session.http.get_json("/echo", endpoint="echo")
            texts.append(str(raised.value))
            texts.append(repr(raised.value))
        issued = [r.bearer_token() for r in emulator.requests if r.bearer_token()]
        assertions = [
            r.form().get("client_assertion", "")
            for r in emulator.requests
            if r.endpoint == "oauth.token"
        ]
        refresh_tokens = [e.old_refresh_token for e in emulator.refresh_events] + [
            e.new_refresh_token or "" for e in emulator.refresh_events
        ]
    secrets = {STATIC_TOKEN, CLIENT_SECRET, private, *issued, *assertions, *refresh_tokens}
    secrets |= {line for line in private.splitlines() if "PRIVATE KEY" not in line and line}
    secrets.discard("")
    assert any("retrying" in line for line in captured.lines)  # the faults were logged
    assert any(line.startswith("urllib3") for line in captured.lines)
    assert len([a for a in assertions if a]) >= 2
    haystack = "\n".join(captured.lines + texts)
    leaked = sorted(s[:12] + "…" for s in secrets if s in haystack)
    assert leaked == []


class _RedirectServer:
    """A plain HTTP server on 127.0.0.1 that records headers and may redirect."""

    def __init__(self, location: str | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(dict(self.headers.items()))
                if location is not None:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_custom_token_header_is_not_sent_along_a_redirect_to_another_host() -> None:
    # requests drops only "Authorization" on a cross-host redirect; an api_key
    # in X-Api-Key would be handed to whatever host the vendor redirects to.
    elsewhere = _RedirectServer()
    vendor = _RedirectServer(location=elsewhere.url.replace("127.0.0.1", "localhost") + "/x")
    try:
        credential = Credential(
            name="directory",
            vendor="directory",
            kind=AuthKind.API_KEY,
            token=Secret("api-key-never-forwarded"),
            header_name="X-Api-Key",
            header_prefix="",
        )
        with open_session(
            INFO, credential, {}, ClientOptions(base_url=vendor.url, max_retries=0)
        ) as session:
            assert session.http.get_json("/api/users") == {"ok": True}
        assert vendor.seen[0].get("X-Api-Key") == "api-key-never-forwarded"
        assert elsewhere.seen
        for headers in elsewhere.seen:
            assert "api-key-never-forwarded" not in str(headers)
    finally:
        vendor.close()
        elsewhere.close()
