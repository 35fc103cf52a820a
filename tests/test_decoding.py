"""The one decoding point: orjson when installed, json otherwise, the same values."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import requests

from oomnitza_connect import decoding

PAGE = b'{"ok":true,"members":[{"id":"U1","name":"ana","profile":{"email":"a@x.io"}}]}'


@pytest.fixture
def without_orjson(monkeypatch: pytest.MonkeyPatch):
    """The decoding module as it is where orjson is not installed."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    reloaded = importlib.reload(decoding)
    yield reloaded
    monkeypatch.delitem(sys.modules, "orjson")
    importlib.reload(decoding)


def test_the_fast_decoder_is_used_when_installed():
    pytest.importorskip("orjson")
    assert decoding.DECODER == "orjson"


def test_json_is_used_without_orjson(without_orjson):
    assert without_orjson.DECODER == "json"
    assert without_orjson.loads is json.loads
    assert without_orjson.loads(PAGE) == json.loads(PAGE)


@pytest.mark.parametrize(
    "document",
    [PAGE, b'{"a": NaN, "b": Infinity}', b'{"name": "\\ud800"}', '{"text": "\\u00e9t\\u00e9"}'],
)
def test_both_decoders_give_what_json_gives(document, without_orjson):
    expected = json.loads(document)
    got = without_orjson.loads(document)
    importlib.reload(decoding)
    fast = decoding.loads(document)
    assert repr(got) == repr(expected)
    assert repr(fast) == repr(expected)


@pytest.mark.parametrize("document", [b"{not json", b"", b"[1,"])
def test_what_is_not_json_raises_value_error(document):
    with pytest.raises(ValueError, match=r"."):  # json's and orjson's messages differ
        decoding.loads(document)


def _response(body: bytes, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    return response


def test_a_response_is_decoded_once_however_it_is_read(monkeypatch):
    calls: list[bytes] = []
    loads = decoding.loads
    monkeypatch.setattr(decoding, "loads", lambda content: calls.append(content) or loads(content))
    response = _response(PAGE)
    decoding.remember_decoding(response)
    first = decoding.response_json(response)
    assert response.json() is first
    assert decoding.response_json(response) is first
    assert calls == [PAGE]
    assert isinstance(response, requests.Response)
    assert type(response).__name__ == "Response"
    decoding.remember_decoding(response)  # a second time changes nothing
    assert response.json() is first


def test_decoding_options_still_reach_requests():
    response = _response(b'{"price": 1.5}')
    decoding.remember_decoding(response)
    assert response.json(parse_float=str) == {"price": "1.5"}


def test_an_empty_body_is_not_json():
    with pytest.raises(ValueError, match="empty body"):
        decoding.response_json(_response(b""))
