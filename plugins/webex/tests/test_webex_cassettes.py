"""Recorded Webex traffic, replayed without a server: the plugin's parsing of real answers.

The cassettes under ``cassettes/`` were recorded against the emulator and are
replayed with ``record_mode="none"``: a request that is not in the cassette
fails loudly instead of reaching the network. Requests match on method, path
and query; the emulator's address in ``Link`` headers is rewritten to the
replay address while recording, so the next links still lead to the same host.

To re-record (after changing what the plugin sends), delete the cassette and run::

    OOMNITZA_RECORD_CASSETTES=1 .venv/bin/pytest plugins/webex/tests/test_webex_cassettes.py

Secrets are scrubbed while recording: the Authorization header, the
``client_secret``, ``refresh_token`` and ``code`` form fields, and the tokens
in ``/v1/access_token`` answers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import vcr
from oomnitza_connect_webex.emulator import PEOPLE_READ, ROLES_READ, WebexEmulator
from oomnitza_connect_webex.people import RoleNames, user_role
from vcr.errors import CannotOverwriteExistingCassetteException

from oomnitza_connect.connectors import Connector
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.transport.http import ClientOptions

CASSETTES = Path(__file__).parent / "cassettes"
RECORD_ENV = "OOMNITZA_RECORD_CASSETTES"
REPLAY_SERVER = "http://127.0.0.1:9"  # nothing listens there: replay only
REPLAY_BASE_URL = REPLAY_SERVER + "/v1"
CLIENT_SECRET = "cassette-client-secret-7c2d"
TOKEN_PATTERN = re.compile(r"emu-(?:pat|at|rt|bot)-[A-Za-z0-9_-]{8}")
SCRUBBED = "SCRUBBED"
_TOKEN_KEYS = ("access_token", "refresh_token")


def _scrub_body(body: Any) -> Any:
    if isinstance(body, dict):
        return {
            key: SCRUBBED if key in _TOKEN_KEYS and value else _scrub_body(value)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [_scrub_body(item) for item in body]
    return body


def _recorder(server_url: str | None) -> vcr.VCR:
    def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
        raw = response["body"]["string"]
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        try:
            text = json.dumps(_scrub_body(json.loads(text)))
        except ValueError:
            text = TOKEN_PATTERN.sub(SCRUBBED, text)
        response["body"]["string"] = text.encode("utf-8")
        if server_url:
            response["headers"] = {
                name: [value.replace(server_url, REPLAY_SERVER) for value in values]
                for name, values in response["headers"].items()
            }
        return response

    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        match_on=["method", "path", "query"],
        filter_headers=["authorization", "cookie"],
        filter_post_data_parameters=["client_secret", "refresh_token", "code", "code_verifier"],
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )


@contextmanager
def _target(
    name: str,
    prepare: Callable[[WebexEmulator], Any] | None = None,
    **emulator_options: Any,
) -> Iterator[tuple[str, Any]]:
    """Yield the base URL to talk to and what *prepare* gave (``None`` on replay)."""
    cassette = CASSETTES / f"{name}.yaml"
    if cassette.exists():
        with _recorder(None).use_cassette(cassette.name, record_mode="none"):
            yield REPLAY_BASE_URL, None
        return
    if not os.environ.get(RECORD_ENV):
        pytest.fail(f"cassette {cassette} is missing; record it with {RECORD_ENV}=1")
    with WebexEmulator(
        enforce_rate_limits=False, client_secret=CLIENT_SECRET, **emulator_options
    ) as emulator:
        prepared = prepare(emulator) if prepare is not None else emulator
        with _recorder(emulator.server_url).use_cassette(cassette.name, record_mode="once"):
            yield emulator.base_url, prepared


def _options(base_url: str) -> ClientOptions:
    return ClientOptions(
        base_url=base_url, connect_timeout=2.0, read_timeout=5.0, pace_requests=False,
        max_retries=0,
    )  # fmt: skip


def test_listing_and_user_role_replay(connector: Connector) -> None:
    with _target("people_and_roles", users=15, seed=42, bool_style="mixed") as (base, emulator):
        token = emulator.token if emulator is not None else "replayed-token"
        credential = Credential(name="replay", vendor="webex", kind=AuthKind.API_KEY,
                                token=token, base_url=base)  # fmt: skip
        settings = {"Webex.PageSize": "4"}
        with connector.authenticate(credential, settings, options=_options(base)) as session:
            records = list(connector.list_users(session))
            identity = dict(session.identity)
            admin = user_role(session, records[0].id, RoleNames(session.http))
    assert len(records) == 15
    assert len({record.id for record in records}) == 15
    assert records[1].fields["type"] == "bot"
    assert records[2].fields["type"] == "appuser"
    flags = {record.fields["login_enabled"] for record in records}
    assert flags <= {True, False}  # strings and booleans on the wire, booleans here
    assert identity["type"] == "person"
    assert admin.role_names == ("Full Administrator",)


def test_token_refresh_replays(connector: Connector) -> None:
    with _target("oauth_refresh_and_list", _login, users=6, seed=43) as (base, refresh):
        credential = Credential(
            name="rotating",
            vendor="webex",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id=WebexEmulator(users=0, seed=43).client_id,
            client_secret=CLIENT_SECRET,
            client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST,
            refresh_token=refresh or "replayed-refresh",
            token_url=f"{base}/access_token",
            base_url=base,
        )
        with connector.authenticate(credential, {}, options=_options(base)) as session:
            ids = [record.id for record in connector.list_users(session)]
            assert session.http.auth.refresh_count == 1
    assert len(ids) == 6


def _login(emulator: WebexEmulator) -> str:
    """Grant a refresh token directly, as if an admin had consented (before the recording)."""
    return emulator.grant_refresh_token(emulator.client_id, scopes=(PEOPLE_READ, ROLES_READ))


def test_no_secret_appears_in_any_cassette() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 2, "the cassettes are committed"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not TOKEN_PATTERN.search(text), f"{path.name} holds a token"
        assert CLIENT_SECRET not in text, f"{path.name} holds the client secret"
        assert not re.search(r"(?im)^\s*authorization:", text), f"{path.name} keeps auth headers"
        for parameter in ("client_secret=", "refresh_token=", "code="):
            assert not re.search(rf"[?&\s']{parameter}[^&'\s]", text), (
                f"{path.name} keeps a {parameter[:-1]} parameter"
            )
        assert "127.0.0.1:9/" in text or "Link" not in text


def test_a_request_missing_from_a_cassette_fails_loudly(connector: Connector) -> None:
    credential = Credential(name="replay", vendor="webex", kind=AuthKind.API_KEY,
                            token="replayed-token", base_url=REPLAY_BASE_URL)  # fmt: skip
    with _target("people_and_roles") as (base_url, emulator):
        assert emulator is None, "the cassette is committed, so this is a replay"
        session = connector.authenticate(
            credential, {"Webex.PageSize": "3"}, options=_options(base_url)
        )
        with session, pytest.raises(CannotOverwriteExistingCassetteException):
            list(connector.list_users(session))
