"""A Slack users.list server for benchmarks: every member encoded once, before the clock.

The plugin's own emulator (``SlackEmulator``) generates and encodes each user on
request, which is right for tests and wrong for a benchmark: it would be the
slowest part of the measurement. This server builds the same users (the Slack
emulator's generator, so the payloads match what the tests see), encodes each
one to JSON bytes at start-up, and answers a page by joining bytes. It serves
``auth.test`` and ``users.list`` (cursor paging, ``limit`` up to 1000) over
HTTP/1.1 keep-alive on loopback, in its own process.

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

TOKEN = "xoxp-benchmark-token"
"""The one token the server accepts (a benchmark needs no secrets)."""
SCOPES = "users:read,users:read.email"
"""No ``admin``: the SDK skips team.accessLogs, as the hand-written script does."""
MAX_LIMIT = 1000


def encoded_members(users: int, seed: int = 0, cache: Path | None = None) -> list[bytes]:
    """Return the JSON of every member of an emulated workspace of *users* users.

    Generating 300,000 users takes a minute or more, so with *cache* (a
    directory) the encoded members are kept in a file and read back next time.
    """
    cached = None if cache is None else cache / f"slack-members-{users}-{seed}.jsonl"
    if cached is not None and cached.exists():
        return cached.read_bytes().splitlines()
    from oomnitza_connect_slack.emulator import SlackEmulator

    emulator = SlackEmulator(users=users, seed=seed, short_pages=False)
    encode = json.JSONEncoder(separators=(",", ":")).encode
    members = [encode(emulator._user_at(index)).encode() for index in range(users)]
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_bytes(b"\n".join(members))
        partial.replace(cached)
    return members


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, members: list[bytes], port: int = 0) -> None:
        self.members = members
        self.auth_test = json.dumps(
            {"ok": True, "team": "Benchmark", "team_id": "T0BENCH", "user_id": "U000000000",
             "user": "bench", "url": "https://bench.slack.com/"}
        ).encode()  # fmt: skip
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # Accepted sockets inherit TCP_NODELAY: headers and body leave together.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

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
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
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

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
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
    args = parser.parse_args()
    server = PageServer(encoded_members(args.users, cache=args.cache), args.port)
    print(server.server_address[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
