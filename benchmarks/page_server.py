"""A users server for benchmarks (Slack or Webex): every user encoded once, before the clock.

The plugin's own emulator (``SlackEmulator``) generates and encodes each user on
request, which is right for tests and wrong for a benchmark: it would be the
slowest part of the measurement. This server builds the same users (the Slack
emulator's generator, so the payloads match what the tests see), encodes each
one to JSON bytes at start-up, and answers a page by joining bytes. It serves
``auth.test`` and ``users.list`` (cursor paging, ``limit`` up to 1000) over
HTTP/1.1 keep-alive on loopback, in its own process. With ``--vendor webex``
it serves Webex's ``GET /v1/people`` instead (``max`` up to 1000, the next
page in a ``Link`` header) and ``/v1/people/me``, from the Webex emulator's
generator.

    python benchmarks/page_server.py --users 100000     # prints the port, then serves
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "xoxp-fake-benchmark-token"  # a test value the local emulator accepts
"""The one token the server accepts (a benchmark needs no secrets)."""
SCOPES = "users:read,users:read.email"
"""No ``admin``: the SDK skips team.accessLogs, as the hand-written script does."""
MAX_LIMIT = 1000


def encoded_members(
    users: int, seed: int = 0, cache: Path | None = None, vendor: str = "slack"
) -> list[bytes]:
    """Return the JSON of every user of an emulated account of *users* users.

    Generating 300,000 users takes a minute or more, so with *cache* (a
    directory) the encoded users are kept in a file and read back next time.
    """
    cached = None if cache is None else cache / f"{vendor}-members-{users}-{seed}.jsonl"
    if cached is not None and cached.exists():
        return cached.read_bytes().splitlines()
    encode = json.JSONEncoder(separators=(",", ":")).encode
    if vendor == "webex":
        from oomnitza_connect_webex.emulator import WebexEmulator

        webex = WebexEmulator(users=users, seed=seed)
        members = [encode(webex.person(index)).encode() for index in range(users)]
    else:
        from oomnitza_connect_slack.emulator import SlackEmulator

        slack = SlackEmulator(users=users, seed=seed, short_pages=False)
        members = [encode(slack.user_at(index)).encode() for index in range(users)]
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_bytes(b"\n".join(members))
        partial.replace(cached)
    return members


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, members: list[bytes], port: int = 0, vendor: str = "slack") -> None:
        self.members = members
        self.vendor = vendor
        self.auth_test = json.dumps(
            {"ok": True, "team": "Benchmark", "team_id": "T0BENCH", "user_id": "U000000000",
             "user": "bench", "url": "https://bench.slack.com/"}
        ).encode()  # fmt: skip
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # Accepted sockets inherit TCP_NODELAY: headers and body leave together.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

    def people_page(self, start: int, limit: int) -> tuple[bytes, int | None]:
        """A Webex ``/v1/people`` page and where the next one starts (``None``: the last)."""
        end = min(start + limit, len(self.members))
        body = b"".join((b'{"items":[', b",".join(self.members[start:end]), b"]}"))
        return body, (end if end < len(self.members) else None)

    def page(self, start: int, limit: int) -> bytes:
        end = min(start + limit, len(self.members))
        cursor = f"i{end}" if end < len(self.members) else ""
        return b"".join(
            (
                b'{"ok":true,"members":[',
                b",".join(self.members[start:end]),
                b'],"cache_ts":1700000000,"response_metadata":{"next_cursor":"',
                cursor.encode(),
                b'"}}',
            )
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PageServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if self.server.vendor == "webex":
            self._webex(url)
        elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(200, b'{"ok":false,"error":"invalid_auth"}')
        elif url.path == "/api/auth.test":
            self._send(200, self.server.auth_test)
        elif url.path == "/api/users.list":
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            cursor = query.get("cursor") or ""
            start = int(cursor[1:]) if cursor.startswith("i") else 0
            limit = min(max(int(query.get("limit") or 200), 1), MAX_LIMIT)
            self._send(200, self.server.page(start, limit))
        else:
            self._send(404, b'{"ok":false,"error":"unknown_method"}')

    do_POST = do_GET

    def _webex(self, url: Any) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, b'{"message":"The request requires a valid access token."}')
        elif url.path == "/v1/people/me":
            self._send(200, self.server.members[0])
        elif url.path == "/v1/people":
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            cursor = query.get("cursor") or ""
            start = int(cursor[1:]) if cursor.startswith("i") else 0
            limit = min(max(int(query.get("max") or 100), 1), MAX_LIMIT)
            body, following = self.server.people_page(start, limit)
            link = None
            if following is not None:
                host = f"http://127.0.0.1:{self.server.server_address[1]}"
                link = f'<{host}/v1/people?max={limit}&cursor=i{following}>; rel="next"'
            self._send(200, body, link=link)
        else:
            self._send(404, b'{"message":"not found"}')

    def _send(self, status: int, body: bytes, link: str | None = None) -> None:
        self.send_response(status)
        if link is not None:
            self.send_header("Link", link)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-OAuth-Scopes", SCOPES)
        self.send_header("X-Slack-Req-Id", "bench")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="a directory to keep the encoded users in")
    parser.add_argument("--vendor", choices=["slack", "webex"], default="slack")
    args = parser.parse_args()
    members = encoded_members(args.users, cache=args.cache, vendor=args.vendor)
    server = PageServer(members, args.port, vendor=args.vendor)
    print(server.server_address[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
