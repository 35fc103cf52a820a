"""Recorded Intercom traffic, replayed without a server: the plugin's reading of real answers.

The cassettes under ``cassettes/`` were recorded against the emulator and are
replayed with ``record_mode="none"``: a request that is not in the cassette
fails loudly instead of reaching the network. Emulator ports differ per run,
so requests match on method, path and query only.

To re-record (after changing what the plugin sends), delete the cassette and run::

    OOMNITZA_RECORD_CASSETTES=1 .venv/bin/pytest plugins/intercom/tests/test_intercom_cassettes.py

Secrets are scrubbed while recording: the Authorization header, the ``code``,
``client_secret`` and ``code_verifier`` of the token exchange, and every token
in response bodies (``token``, ``access_token``).
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
import requests
import vcr
from oomnitza_connect_intercom import vendor
from oomnitza_connect_intercom.emulator import IntercomEmulator
from oomnitza_connect_intercom.vendor import NOT_AN_ADMIN
from vcr.errors import CannotOverwriteExistingCassetteException

from oomnitza_connect.auth.oauth import (
    AuthorizationRequest,
    complete_authorization,
    start_authorization,
)
from oomnitza_connect.connectors import Connector
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.transport.http import ClientOptions

parse_token_response = vendor.parse_token_response

CASSETTES = Path(__file__).parent / "cassettes"
RECORD_ENV = "OOMNITZA_RECORD_CASSETTES"
REPLAY_BASE_URL = "http://127.0.0.1:9"  # nothing listens there: replay only
CLIENT_ID = "cassette-client"
CLIENT_SECRET = "cassette-client-secret-8c2d71"
API_TOKEN = "dG9rOmNhc3NldHRlLXRva2VuLTQ0"
REDIRECT_URI = "http://127.0.0.1:8765/intercom/callback"
# The emulator's tokens: the ready-made one and those the token endpoint issues.
TOKEN_PATTERN = re.compile(r"dG9rOm[A-Za-z0-9]|emu-at-[A-Za-z0-9]")
SCRUBBED = "SCRUBBED"
_TOKEN_KEYS = ("access_token", "refresh_token", "token")


def _scrub_body(body: Any) -> Any:
    if isinstance(body, dict):
        return {
            key: SCRUBBED if key in _TOKEN_KEYS and value else _scrub_body(value)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [_scrub_body(item) for item in body]
    return body


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    raw = response["body"]["string"]
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        text = json.dumps(_scrub_body(json.loads(text)))
    except ValueError:
        text = TOKEN_PATTERN.sub(SCRUBBED, text)
    response["body"]["string"] = text.encode("utf-8")
    return response


RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    match_on=["method", "path", "query"],
    filter_headers=["authorization", "cookie"],
    filter_query_parameters=["code", "client_secret"],
    filter_post_data_parameters=["code", "client_secret", "code_verifier", "client_id"],
    before_record_response=_scrub_response,
    decode_compressed_response=True,
)


@contextmanager
def _target(
    name: str, prepare: Callable[[IntercomEmulator], Any] | None = None, **emulator_options: Any
) -> Iterator[tuple[str, Any]]:
    """Yield the base URL to talk to and what *prepare* gave (``None`` on replay).

    When recording, *prepare* runs against the emulator before the cassette
    starts (an approval in the browser that is not part of the recorded run).
    """
    cassette = CASSETTES / f"{name}.yaml"
    if cassette.exists():
        with RECORDER.use_cassette(cassette.name, record_mode="none"):
            yield REPLAY_BASE_URL, None
        return
    if not os.environ.get(RECORD_ENV):
        pytest.fail(f"cassette {cassette} is missing; record it with {RECORD_ENV}=1")
    with IntercomEmulator(
        enforce_rate_limits=False,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token=API_TOKEN,
        **emulator_options,
    ) as emulator:
        prepared = prepare(emulator) if prepare is not None else emulator
        with RECORDER.use_cassette(cassette.name, record_mode="once"):
            yield emulator.base_url, prepared


def _options(base_url: str) -> ClientOptions:
    return ClientOptions(
        base_url=base_url, connect_timeout=2.0, read_timeout=5.0, pace_requests=False,
        max_retries=0,
    )  # fmt: skip


def _api_credential(base_url: str) -> Credential:
    return Credential(name="replay", vendor="intercom", kind=AuthKind.API_KEY,
                      token=API_TOKEN, base_url=base_url)  # fmt: skip


def test_me_and_the_admin_list_replay(connector: Connector) -> None:
    with _target("me_and_admins_legacy_version", users=12, seed=42) as (base_url, _):
        settings = {"Intercom.Version": "1.4", "Intercom.Region": "US"}
        with connector.authenticate(
            _api_credential(base_url), settings, options=_options(base_url)
        ) as session:
            records = list(connector.list_users(session))
            identity = dict(session.identity)
            skipped = dict(session.skipped)
    admins = [r for r in records if r.fields["type"] == "admin"]
    assert len(admins) == len(records) == 12
    # Version 1.4 lists teams among the admins: skipped and counted, never records.
    assert skipped == {NOT_AN_ADMIN: 4}
    assert identity["region"] == "US"
    assert identity["workspace"] == "Emulated Workspace 42"
    assert admins[1].fields["job_title"] is None  # the admin without one
    assert admins[2].fields["avatar"] is None  # "avatar": null
    assert admins[3].fields["primary_team_ids"] == []  # null team fields
    assert {r.fields["intercom_version"] for r in records} == {"1.4"}


def _approve(emulator: IntercomEmulator) -> tuple[AuthorizationRequest, str]:
    """Approve the app (outside the recording) and return the pending login and redirect."""
    pending = start_authorization(
        _oauth_app(emulator.base_url), authorize_url=emulator.authorize_url,
        redirect_uri=REDIRECT_URI,
    )  # fmt: skip
    answer = requests.get(pending.url, allow_redirects=False, timeout=5)
    return pending, answer.headers["Location"]


def _oauth_app(base_url: str) -> Credential:
    return Credential(
        name="intercom-oauth",
        vendor="intercom",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST,
        base_url=base_url,
    )


def test_the_code_exchange_and_listing_replay(connector: Connector) -> None:
    with _target("oauth_exchange_and_admins", _approve, users=5, seed=43) as (base_url, got):
        if got is None:  # replay: a login whose redirect carries its own state
            pending = start_authorization(
                _oauth_app(base_url), authorize_url=f"{base_url}/oauth", redirect_uri=REDIRECT_URI
            )
            redirect = f"{REDIRECT_URI}?code=replayed-code&state={pending.state}"
        else:
            pending, redirect = got
        credential = complete_authorization(
            _oauth_app(base_url),
            pending,
            redirect,
            token_url=f"{base_url}/auth/eagle/token",
            token_response_parser=parse_token_response,
        )
        with connector.authenticate(credential, {}, options=_options(base_url)) as session:
            ids = [record.id for record in connector.list_users(session)]
    assert credential.access_token is not None
    assert credential.refresh_token is None
    assert len(ids) == 5


def test_no_secret_appears_in_any_cassette() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 2, "the cassettes are committed"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not TOKEN_PATTERN.search(text), f"{path.name} holds an Intercom token"
        assert API_TOKEN not in text
        assert CLIENT_SECRET not in text, f"{path.name} holds the client secret"
        assert not re.search(r"(?im)^\s*authorization:", text), f"{path.name} keeps auth headers"
        for parameter in ("code=", "client_secret=", "code_verifier="):
            assert not re.search(rf"[?&\s']{parameter}[^&'\s]", text), (
                f"{path.name} keeps a {parameter[:-1]} parameter"
            )


def test_a_request_missing_from_a_cassette_fails_loudly(connector: Connector) -> None:
    with _target("me_and_admins_legacy_version") as (base_url, emulator):
        assert emulator is None, "the cassette is committed, so this is a replay"
        # The recording listed without display_avatar=false... and never asked for one admin.
        session = connector.authenticate(
            _api_credential(base_url), {"Intercom.Version": "1.4"}, options=_options(base_url)
        )
        with session, pytest.raises(CannotOverwriteExistingCassetteException):
            session.http.get_json("admins/991000001", endpoint="admins.retrieve")
