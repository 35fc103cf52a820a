"""A whole sync of the emulated workspace, at DEBUG logging, with faults on the way.

The run meets a 429, a 503 and an access token that expires mid-pagination
(OAuth with rotation, so it is refreshed); every user except the filtered
bots lands exactly once, last logins are written, and no secret appears in
any log line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import requests
from oomnitza_connect_slack.auth import parse_token_response
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import complete_authorization, start_authorization
from oomnitza_connect.models import (
    AuthKind,
    Credential,
    IntegrationSettings,
    SyncStatus,
    UserSelection,
)
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.testing.emulator import Fault

REDIRECT_URI = "http://127.0.0.1:8765/callback"


def _oauth_credential(emulator: SlackEmulator) -> Credential:
    app = Credential(
        name="slack-e2e",
        vendor="slack",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        token_url=emulator.token_url,
        base_url=emulator.base_url,
    )
    pending = start_authorization(app, authorize_url=emulator.authorize_url,
                                  redirect_uri=REDIRECT_URI)  # fmt: skip
    # Last logins need a user token with the admin scope.
    url = pending.url + "&user_scope=users:read,users:read.email,admin"
    location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    return complete_authorization(
        app, pending, location, token_url=emulator.token_url,
        token_response_parser=parse_token_response,
    )  # fmt: skip


def test_a_whole_sync_survives_faults_and_leaks_no_secret(
    slack_plugin_registered, tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    with SlackEmulator(users=80, seed=11, enforce_rate_limits=False) as emulator:
        credential = _oauth_credential(emulator)
        CredentialStore(home=tmp_path, keyring_backend=False).save(credential)
        emulator.faults.add(Fault.rate_limited(retry_after=1), endpoint="users.list", after=1)
        emulator.faults.add(Fault.server_error(503), endpoint="users.list", after=3)
        emulator.faults.add(Fault.expire_tokens(), endpoint="users.list", after=5)
        settings = IntegrationSettings(
            name="slack-e2e",
            vendor="slack",
            credential="slack-e2e",
            settings={"Slack.PageSize": "9"},
            selection=UserSelection.USERS_AND_SAAS,
            sync_key="Slack User Id",
            default_role="Employee",
        )
        with SQLiteStore(tmp_path / "e2e.db") as store, caplog.at_level(logging.DEBUG):
            session = run_sync(
                settings, credential=credential, store=store, options=fast_options(emulator)
            )
            people = list(store.iter_people(vendor="slack"))
        assert emulator.faults.pending() == 0, "every planned fault fired"
        secrets = {t for t in emulator._tokens} | {emulator.client_secret, emulator.token}
        expected_logins = emulator.expected_last_logins()
        all_ids = emulator.user_ids()
        bots = {uid for uid in all_ids if emulator.user(uid)["is_bot"]} | {"USLACKBOT"}
        capitalised = {
            uid: emulator.user(uid)["profile"]["email"]
            for uid in set(all_ids) - bots
            if emulator.user(uid)["profile"]["email"]
            != emulator.user(uid)["profile"]["email"].lower()
        }

    assert session.status is SyncStatus.SUCCEEDED, session.message
    synced = [person.sync_value for person in people]
    assert len(synced) == len(set(synced)), "a user landed twice"
    assert set(synced) == set(all_ids) - bots
    assert session.counts.created == len(all_ids) - len(bots)
    assert session.counts.skipped == len(bots)
    assert session.counts.failed == 0

    by_id = {person.sync_value: person for person in people}
    installer = by_id[all_ids[0]]
    assert installer.fields["role"] == "Employee"
    assert installer.fields["username"] == installer.fields["email"].split("@")[0]
    assert installer.fields["last_login"] == datetime.fromtimestamp(
        expected_logins[all_ids[0]], UTC
    )
    assert capitalised, "the emulator serves some addresses with capitals"
    for uid, email in capitalised.items():
        assert by_id[uid].fields["email"] == email.lower()

    lines = [record.getMessage() for record in caplog.records]
    assert any("retrying" in line for line in lines), "the faults were retried at DEBUG/INFO"
    assert any("new access token" in line for line in lines), "the token was refreshed"
    leaked = {secret for secret in secrets for line in lines if secret in line}
    assert not leaked, f"{len(leaked)} secret(s) appear in log lines"
