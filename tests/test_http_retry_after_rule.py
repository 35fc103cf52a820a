"""An error parser's retry_after wins over Retry-After: a vendor's own rule applies."""

from __future__ import annotations

import requests
from http_support import STATIC_TOKEN, DirectoryEmulator

from oomnitza_connect.auth.oauth import HeaderTokenAuth
from oomnitza_connect.models import Secret
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions, HttpClient, VendorErrorInfo


def _at_least_two_seconds(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code != 429:
        return None if response.status_code < 400 else VendorErrorInfo(message="refused")
    header = float(response.headers.get("Retry-After") or 0)
    return VendorErrorInfo(message="slow down", retry_after=max(2.0, header))


def _client(emulator: DirectoryEmulator, parser, waits: list[float]) -> HttpClient:
    return HttpClient(
        "directory",
        emulator.base_url,
        auth=HeaderTokenAuth(Secret(STATIC_TOKEN)),
        options=ClientOptions(pace_requests=False, max_single_wait=10.0),
        error_parser=parser,
        sleep=waits.append,
    )


def test_the_parsers_wait_wins_over_the_header() -> None:
    with DirectoryEmulator(users=3) as emulator:
        emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint=None)
        waits: list[float] = []
        with _client(emulator, _at_least_two_seconds, waits) as client:
            client.get_json("v1/people", params={"max": 5})
    assert waits == [2.0]


def test_without_a_parser_wait_the_header_is_used() -> None:
    with DirectoryEmulator(users=3) as emulator:
        emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint=None)
        waits: list[float] = []
        with _client(emulator, lambda r: None, waits) as client:
            client.get_json("v1/people", params={"max": 5})
    assert waits == [1.0]
