"""Recorded Slack traffic, replayed without a server: the plugin's parsing of real answers.

The cassettes under ``cassettes/`` were recorded against the emulator and are
replayed with ``record_mode="none"``: a request that is not in the cassette
fails loudly instead of reaching the network. Emulator ports differ per run,
so requests match on method, path and query only.

To re-record (after changing what the plugin sends), delete the cassette and run::

    OOMNITZA_RECORD_CASSETTES=1 .venv/bin/pytest plugins/slack/tests/test_cassettes.py

Secrets are scrubbed while recording: the Authorization header, ``token``,
``client_secret``, ``refresh_token``, ``code`` and ``code_verifier``
parameters, and every token in response bodies (``oauth.v2.access``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import vcr
from oomnitza_connect_slack.emulator import SlackEmulator
from vcr.errors import CannotOverwriteExistingCassetteException

from oomnitza_connect.connectors import Connector
from oomnitza_connect.models import AuthKind, Credential
from oomnitza_connect.testing.cassettes import response_scrubber
from oomnitza_connect.transport.http import ClientOptions

CASSETTES = Path(__file__).parent / "cassettes"
RECORD_ENV = "OOMNITZA_RECORD_CASSETTES"
REPLAY_BASE_URL = "http://127.0.0.1:9/api"  # nothing listens there: replay only
CLIENT_SECRET = "cassette-client-secret-4f1e9a"
TOKEN_PATTERN = re.compile(r"xox[a-z]?[.-][A-Za-z0-9]")

RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    match_on=["method", "path", "query"],
    filter_headers=["authorization", "cookie"],
    filter_query_parameters=["token", "client_secret", "refresh_token", "code"],
    filter_post_data_parameters=[
        "token",
        "client_secret",
        "refresh_token",
        "code",
        "code_verifier",
    ],
    before_record_response=response_scrubber(token_pattern=TOKEN_PATTERN),
    decode_compressed_response=True,
)


@contextmanager
def _target(
    name: str,
    prepare: Callable[[SlackEmulator], Any] | None = None,
    **emulator_options: Any,
) -> Iterator[tuple[str, Any]]:
    """Yield the base URL to talk to and what *prepare* gave (``None`` on replay).

    When recording, *prepare* runs against the emulator before the cassette
    starts (a login that is not part of the recorded run).
    """
    cassette = CASSETTES / f"{name}.yaml"
    if cassette.exists():
        with RECORDER.use_cassette(cassette.name, record_mode="none"):
            yield REPLAY_BASE_URL, None
        return
    if not os.environ.get(RECORD_ENV):
        pytest.fail(f"cassette {cassette} is missing; record it with {RECORD_ENV}=1")
    with SlackEmulator(
        enforce_rate_limits=False, client_secret=CLIENT_SECRET, **emulator_options
    ) as emulator:
        prepared = prepare(emulator) if prepare is not None else emulator
        with RECORDER.use_cassette(cassette.name, record_mode="once"):
            yield emulator.base_url, prepared


def _options(base_url: str) -> ClientOptions:
    return ClientOptions(
        base_url=base_url, connect_timeout=2.0, read_timeout=5.0, pace_requests=False,
        max_retries=0,
    )  # fmt: skip


def test_listing_and_last_logins_replay(connector: Connector) -> None:
    with _target("list_users_and_last_logins", users=20, seed=42, short_pages=False) as (
        base_url,
        emulator,
    ):
        token = emulator.token if emulator is not None else "replayed-token"
        credential = Credential(name="replay", vendor="slack", kind=AuthKind.API_KEY,
                                token=token, base_url=base_url)  # fmt: skip
        settings = {"Slack.PageSize": "8", "Slack.AccessLogsPageSize": "15"}
        with connector.authenticate(credential, settings, options=_options(base_url)) as session:
            records = list(connector.list_users(session))
            logins = list(connector.list_last_logins(session) or ())
            identity = dict(session.identity)
    assert len(records) == 20
    assert len({record.id for record in records}) == 20
    assert records[1].id == "USLACKBOT"
    assert records[2].fields["is_bot"] is True
    assert identity["team_id"].startswith("T")
    assert {"users:read", "users:read.email", "admin"} <= set(identity["scopes"])
    assert len(logins) == len({item["vendor_user_id"] for item in logins}) > 10


def test_token_rotation_replays(connector: Connector) -> None:
    with _target("oauth_refresh_and_list", _login, users=6, seed=43) as (base_url, refresh):
        credential = Credential(
            name="rotating",
            vendor="slack",
            kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            client_id="1043.000043",
            client_secret=CLIENT_SECRET,
            refresh_token=refresh or "replayed-refresh",
            token_url=f"{base_url}/oauth.v2.access",
            base_url=base_url,
        )
        with connector.authenticate(credential, {}, options=_options(base_url)) as session:
            ids = [record.id for record in connector.list_users(session)]
            assert session.http.auth.refresh_count == 1
    assert len(ids) == 6


def _login(emulator: SlackEmulator) -> str:
    """Install the app and return the refresh token (before the recorded run)."""
    code = emulator.issue_code(scopes=("users:read", "users:read.email"))
    answer = requests.post(
        emulator.token_url,
        data={"code": code, "client_id": emulator.client_id, "client_secret": CLIENT_SECRET},
        timeout=5,
    )
    return str(answer.json()["refresh_token"])


def test_no_secret_appears_in_any_cassette() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files, "no cassettes are committed"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not TOKEN_PATTERN.search(text), f"{path.name} holds a Slack token"
        assert CLIENT_SECRET not in text, f"{path.name} holds the client secret"
        assert not re.search(r"(?im)^\s*authorization:", text), f"{path.name} keeps auth headers"
        for parameter in ("token=", "client_secret=", "refresh_token=", "code_verifier="):
            assert not re.search(rf"[?&\s']{parameter}[^&'\s]", text), (
                f"{path.name} keeps a {parameter[:-1]} parameter"
            )


def test_a_request_missing_from_a_cassette_fails_loudly(connector: Connector) -> None:
    credential = Credential(name="replay", vendor="slack", kind=AuthKind.API_KEY,
                            token="replayed-token", base_url=REPLAY_BASE_URL)  # fmt: skip
    with _target("list_users_and_last_logins") as (base_url, emulator):
        assert emulator is None, "the cassette is committed, so this is a replay"
        # A page size the recording never used: its query matches nothing.
        session = connector.authenticate(
            credential, {"Slack.PageSize": "3"}, options=_options(base_url)
        )
        with session, pytest.raises(CannotOverwriteExistingCassetteException):
            list(connector.list_users(session))
