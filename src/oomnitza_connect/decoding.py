"""The one place response bodies are decoded from JSON.

orjson, when installed (the ``fast`` extra: ``pip install 'oomnitza-connect[fast]'``),
decodes vendor pages about twice as fast as the standard ``json`` module; what
orjson refuses and ``json`` accepts (NaN, Infinity, a lone surrogate escape)
still decodes, through ``json``. An integer wider than 64 bits reads as a float
with orjson.

The HTTP client decodes each body once and keeps the result on the response:
an error parser that reads the body (``response.json()`` or
:func:`response_json`) and the client that returns it share that one decode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

__all__ = ["DECODER", "loads", "remember_decoding", "response_json"]


def _orjson_loads() -> Callable[[bytes | str], Any] | None:
    try:
        import orjson
    except ImportError:
        return None
    fast = orjson.loads
    refused = orjson.JSONDecodeError

    def loads(content: bytes | str) -> Any:
        try:
            return fast(content)
        except refused:
            # NaN, Infinity, lone surrogates: json reads them (or raises the same ValueError).
            return json.loads(content)

    return loads


_fast = _orjson_loads()
loads: Callable[[bytes | str], Any] = _fast or json.loads
"""Decode one JSON document (bytes or text); :class:`ValueError` when it is not JSON."""

DECODER = "orjson" if _fast is not None else "json"
"""The decoder :func:`loads` uses."""

_UNDECODED = object()
_MEMO = "_oomnitza_json"


def response_json(response: requests.Response) -> Any:
    """Return *response*'s body decoded as JSON, decoding it only once.

    :raises ValueError: the body is empty or not JSON.
    """
    cached = response.__dict__.get(_MEMO, _UNDECODED)
    if cached is not _UNDECODED:
        return cached
    content = response.content
    if not content:
        raise ValueError("empty body")
    body = loads(content)
    response.__dict__[_MEMO] = body
    return body


def remember_decoding(response: requests.Response) -> None:
    """Make ``response.json()`` share :func:`response_json`'s one decode.

    Called by the HTTP client on every response it receives, before its error
    parser sees it, so a plugin's parser that calls ``response.json()`` costs
    no second decode. (The response's class is swapped rather than a function
    stored on it: a function holding the response would make a reference cycle
    and keep every page's body alive until the garbage collector ran.)
    """
    response.__class__ = _memoizing_class(type(response))


_MEMOIZING: dict[type, type] = {}


def _memoizing_class(cls: type[requests.Response]) -> type[requests.Response]:
    found = _MEMOIZING.get(cls)
    if found is None:
        if getattr(cls, "_oomnitza_memoizes", False):
            return cls

        class Memoizing(cls):  # type: ignore[valid-type,misc]
            _oomnitza_memoizes = True

            def json(self, **kwargs: Any) -> Any:
                if kwargs:  # a caller's own decoding options: requests decodes
                    return super().json(**kwargs)
                return response_json(self)

        Memoizing.__name__ = Memoizing.__qualname__ = cls.__name__
        found = _MEMOIZING[cls] = Memoizing
    return found
