"""Issue 14, defect 11: last logins are aggregated on disk, so memory stays flat."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from oomnitza_connect_slack.vendor import SlackVendor

USERS = 60_000


def access_log_entries() -> Iterator[dict[str, Any]]:
    # Two entries per user (two devices), the newer one second for half of them.
    for round_number in range(2):
        for index in range(USERS):
            newer = (index % 2 == 0) == (round_number == 1)
            yield {"user_id": f"U{index:07d}", "date_last": 1_700_000_000 + (100 if newer else 0)}


def test_the_newest_login_per_user_is_found_without_holding_every_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SlackVendor, "iter_access_logs", lambda self, session: access_log_entries())

    class Session:
        settings: dict[str, str] = {}
        identity: dict[str, object] = {}

    tracemalloc.start()
    try:
        count = 0
        newest = datetime.fromtimestamp(1_700_000_100, UTC)
        for item in SlackVendor().last_logins(Session()) or ():  # type: ignore[arg-type]
            count += 1
            assert item["last_login"] == newest
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == USERS
    # A dict of 60,000 ids and floats alone takes about 7 MB.
    assert peak < 3_000_000, f"peak {peak / 1e6:.1f} MB"
