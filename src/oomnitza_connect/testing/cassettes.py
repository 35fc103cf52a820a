"""Scrubbing secrets out of vcrpy cassettes recorded against an emulator (or a vendor).

vcrpy filters headers, query and form parameters itself; what it cannot see
are the tokens inside answers (an OAuth token answer, a who-am-I echoing the
token) and the recording server's address in absolute links, which must point
where the replay runs. :func:`response_scrubber` builds the
``before_record_response`` callback that handles both:

>>> scrub = response_scrubber(token_pattern=r"xox[a-z]?-\\w+", addresses={"http://127.0.0.1:5000": "http://replay"})
>>> answer = {"headers": {"Link": ["<http://127.0.0.1:5000/users?page=2>"]},
...           "body": {"string": b'{"ok": true, "access_token": "xoxb-1", "next": "http://127.0.0.1:5000/x"}'}}
>>> scrubbed = scrub(answer)
>>> scrubbed["body"]["string"]
b'{"ok": true, "access_token": "SCRUBBED", "next": "http://replay/x"}'
>>> scrubbed["headers"]["Link"]
['<http://replay/users?page=2>']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["SCRUBBED", "TOKEN_KEYS", "response_scrubber", "scrub_tokens"]

SCRUBBED = "SCRUBBED"
"""What a secret is replaced with."""
TOKEN_KEYS = ("access_token", "refresh_token", "token")
"""The JSON keys whose values are secrets in most vendors' answers."""

RecordedResponse = dict[str, Any]


def scrub_tokens(body: Any, keys: Iterable[str] = TOKEN_KEYS) -> Any:
    """*body* with every non-empty value of *keys*, at any depth, replaced by :data:`SCRUBBED`."""
    wanted = frozenset(keys)
    if isinstance(body, dict):
        return {
            key: SCRUBBED if key in wanted and value else scrub_tokens(value, wanted)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [scrub_tokens(item, wanted) for item in body]
    return body


def response_scrubber(
    *,
    token_keys: Iterable[str] = TOKEN_KEYS,
    token_pattern: str | re.Pattern[str] | None = None,
    addresses: Mapping[str, str] | None = None,
) -> Callable[[RecordedResponse], RecordedResponse]:
    """A vcrpy ``before_record_response`` that scrubs a recorded answer.

    :param token_keys: JSON keys whose values are replaced in a JSON body.
    :param token_pattern: what a token looks like, replaced in a body that is not JSON.
    :param addresses: recording address -> replay address, replaced in the body and
        the headers. Read at every answer, so a test can fill it once the emulator
        runs (its port is known only then) and clear it afterwards.
    """
    keys = tuple(token_keys)
    pattern = re.compile(token_pattern) if isinstance(token_pattern, str) else token_pattern

    def rewrite(text: str) -> str:
        for recorded, replayed in (addresses or {}).items():
            text = text.replace(recorded, replayed)
        return text

    def scrub(response: RecordedResponse) -> RecordedResponse:
        raw = response["body"]["string"]
        text = rewrite(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        try:
            text = json.dumps(scrub_tokens(json.loads(text), keys))
        except ValueError:
            if pattern is not None:
                text = pattern.sub(SCRUBBED, text)
        response["body"]["string"] = text.encode("utf-8")
        if addresses and "headers" in response:
            response["headers"] = {
                name: [rewrite(value) for value in values]
                for name, values in response["headers"].items()
            }
        return response

    return scrub
