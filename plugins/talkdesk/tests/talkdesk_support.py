"""Helpers of the Talkdesk plugin's tests (a uniquely named module: test helpers of
every package share one import namespace under pytest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator

from oomnitza_connect.transport.http import ClientOptions

SAMPLES = Path(__file__).parent / "samples"


def load_sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def fast_options(emulator: TalkdeskEmulator, **changes: Any) -> ClientOptions:
    """Client options for tests: no pacing, short waits."""
    settings: dict[str, Any] = {
        "base_url": emulator.base_url,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "max_single_wait": 3.0,
        "max_total_wait": 10.0,
        "pace_requests": False,
    }
    settings.update(changes)
    return ClientOptions(**settings)
