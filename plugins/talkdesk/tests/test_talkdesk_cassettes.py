"""Recorded Talkdesk traffic, replayed without a server: the plugin's reading of real answers.

The cassettes under ``cassettes/`` were recorded against the emulator and are
replayed with ``record_mode="none"``: a request that is not in the cassette
fails loudly instead of reaching the network. The emulator's address in the
answers' absolute HAL links is rewritten to the replay address. Emulator ports differ per run,
so requests match on method, path and query only (the path names the token
host or API host, as the emulator mirrors them).

To re-record (after changing what the plugin sends), delete the cassette and run::

    OOMNITZA_RECORD_CASSETTES=1 .venv/bin/pytest plugins/talkdesk/tests/test_talkdesk_cassettes.py

Scrubbed while recording: the Authorization header (Bearer tokens and Basic
secrets), the ``client_assertion`` (a JWT signed with the private key) and
``client_secret`` form fields, and every ``access_token`` in token answers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import vcr
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator, generate_key_pair
from vcr.errors import CannotOverwriteExistingCassetteException

from oomnitza_connect.connectors import Connector
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.presets.engine import get_preset, run_preset
from oomnitza_connect.testing.cassettes import response_scrubber
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.transport.http import ClientOptions

CASSETTES = Path(__file__).parent / "cassettes"
RECORD_ENV = "OOMNITZA_RECORD_CASSETTES"
REPLAY_ROOT = "http://127.0.0.1:9"  # nothing listens there: replay only
SUBDOMAIN = "cassette"
SETTINGS = {"Talkdesk.Subdomain": SUBDOMAIN, "Talkdesk.Region": "US"}


_RECORDING: dict[str, str] = {}
"""The running emulator's root -> REPLAY_ROOT while recording: HAL links are absolute,
and on replay they must point where the replay runs."""


RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    match_on=["method", "path", "query"],
    filter_headers=["authorization", "cookie"],
    filter_post_data_parameters=["client_assertion", "client_secret"],
    before_record_response=response_scrubber(
        token_keys=("access_token", "refresh_token"), addresses=_RECORDING
    ),
    decode_compressed_response=True,
)


@contextmanager
def _target(name: str, **emulator_options: Any) -> Iterator[TalkdeskEmulator | None]:
    """Yield a running emulator while recording, or ``None`` while replaying."""
    cassette = CASSETTES / f"{name}.yaml"
    if cassette.exists():
        with RECORDER.use_cassette(cassette.name, record_mode="none"):
            yield None
        return
    if not os.environ.get(RECORD_ENV):
        pytest.fail(f"cassette {cassette} is missing; record it with {RECORD_ENV}=1")
    with TalkdeskEmulator(
        subdomain=SUBDOMAIN, enforce_rate_limits=False, **emulator_options
    ) as emu:
        _RECORDING[emu.server_url] = REPLAY_ROOT
        try:
            with RECORDER.use_cassette(cassette.name, record_mode="once"):
                yield emu
        finally:
            _RECORDING.clear()


def _credential(emulator: TalkdeskEmulator | None) -> Credential:
    if emulator is not None:
        return emulator.test_credential("cassette")
    # On replay the assertion is not compared, so any key signs it.
    private_key, _ = generate_key_pair("ES256")
    return Credential(
        name="cassette",
        vendor="talkdesk",
        kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        client_id="replayed-client",
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=private_key,
        key_id="replayed-kid",
        signing_algorithm="ES256",
        scopes=("apps:read", "contacts:read", "users:read"),
        token_url=f"{REPLAY_ROOT}/{SUBDOMAIN}.talkdeskid.com/oauth/token",
        base_url=f"{REPLAY_ROOT}/api.talkdeskapp.com",
    )


def _options(credential: Credential) -> ClientOptions:
    return ClientOptions(base_url=credential.base_url, connect_timeout=2.0, read_timeout=5.0,
                         pace_requests=False, max_retries=0)  # fmt: skip


def test_listing_with_a_token_expiring_mid_run_replays(connector: Connector) -> None:
    with _target("list_users_token_expiry", users=11, seed=42, max_page_size=4) as emulator:
        if emulator is not None:
            emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=2)
        credential = _credential(emulator)
        with connector.authenticate(credential, SETTINGS, options=_options(credential)) as session:
            records = list(connector.list_users(session))
            renewals = session.http.auth.refresh_count
    assert len(records) == 11
    assert len({record.id for record in records}) == 11
    assert records[1].fields["active"] is False
    assert renewals == 2  # the first token, and one after the 401 in the middle


def test_presets_replay(connector: Connector) -> None:
    with _target("presets", users=5, seed=43, contacts=6) as emulator:
        credential = _credential(emulator)
        ids = (
            {"app_id": emulator.app_id, "installation_id": emulator.installation_id}
            if emulator is not None
            else _recorded_ids()
        )
        with connector.authenticate(credential, SETTINGS, options=_options(credential)) as session:
            app = run_preset(session, get_preset("talkdesk", "Get App Information"), variables=ids)
            subscription = run_preset(
                session, get_preset("talkdesk", "Get Installation Subscription"), variables=ids
            )
            missing = run_preset(
                session, get_preset("talkdesk", "Get Contact"), variables={"contact_id": "x0"}
            )
    assert app.mapped["Talkdesk Subscription Type"] == "paid"
    assert subscription.mapped["Talkdesk Total Licenses"] == 4
    assert missing.status == 400
    assert "Contact not found" in (missing.error or "")


def _recorded_ids() -> dict[str, str]:
    # The ids are part of the recorded paths; the emulator derives them from seed 43.
    with TalkdeskEmulator(seed=43) as emu:
        return {"app_id": emu.app_id, "installation_id": emu.installation_id}


def test_no_secret_or_key_material_appears_in_any_cassette() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files, "no cassettes are committed"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "PRIVATE KEY" not in text, f"{path.name} holds a PEM key"
        # Base64 PKCS#8 keys (EC "MIG…", RSA "MII…") and JWTs ("eyJ…").
        assert not re.search(r"MI[GI][A-Za-z0-9+/]{40,}", text), f"{path.name} holds a key"
        assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text), f"{path.name} holds a JWT"
        assert "emu-at-" not in text, f"{path.name} holds an access token"
        assert not re.search(r"(?im)^\s*authorization:", text), f"{path.name} keeps auth headers"
        assert not re.search(r"client_(assertion|secret)=[^&'\s]", text), path.name


def test_a_request_missing_from_a_cassette_fails_loudly(connector: Connector) -> None:
    with _target("presets") as emulator:
        assert emulator is None, "the cassette is committed, so this is a replay"
        credential = _credential(None)
        session = connector.authenticate(credential, SETTINGS, options=_options(credential))
        with session, pytest.raises(CannotOverwriteExistingCassetteException):
            run_preset(session, get_preset("talkdesk", "Get User Details"),
                       variables={"talkdesk_user_id": "never-recorded"})  # fmt: skip
