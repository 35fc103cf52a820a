"""The credential store: environment, keyring, private file."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend

from oomnitza_connect.auth.credentials import (
    CredentialStore,
    credential_env_name,
    default_credential_store,
)
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.values[(service, username)]


def sample(name: str = "slack-prod") -> Credential:
    return Credential(
        name=name,
        vendor="slack",
        kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
        client_id="123.456",
        client_secret="client-secret-abc",
        client_auth_method=ClientAuthMethod.CLIENT_SECRET_POST,
        refresh_token="xoxe-1-refresh",
        access_token="xoxe.xoxb-1-access",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        scopes=("users:read", "users:read.email"),
    )


def test_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "home", keyring_backend=False, environ={})
    store.save(sample())
    assert store.get("slack-prod") == sample()
    assert stat.S_IMODE(store.file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.file.parent.stat().st_mode) == 0o700
    assert [c.name for c in store.list()] == ["slack-prod"]
    assert store.source_of("slack-prod") == "file"
    assert list(store.home.glob(".credentials-*")) == []  # no temporary file left behind


def test_group_readable_file_is_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    store.save(sample())
    os.chmod(store.file, 0o640)
    with pytest.raises(ConfigurationError) as raised:
        store.get("slack-prod")
    assert str(store.file) in str(raised.value)
    assert f"chmod 600 {store.file}" in str(raised.value)


def test_save_replaces_atomically_and_keeps_others(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    store.save(sample("a"))
    store.save(sample("b"))
    store.save(Credential(name="a", vendor="intercom", kind=AuthKind.API_KEY, token="tok-1234"))
    assert store.get("a").vendor == "intercom"
    assert store.get("b").vendor == "slack"
    store.remove("b")
    assert [c.name for c in store.list()] == ["a"]
    with pytest.raises(ConfigurationError):
        store.remove("b")


def test_unknown_credential_names_the_known_ones(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    store.save(sample("a"))
    with pytest.raises(ConfigurationError) as raised:
        store.get("nope")
    assert "no credential named 'nope' (known: a)" in str(raised.value)
    assert "OOMNITZA_CONNECT_CREDENTIAL_NOPE" in str(raised.value)


def test_bad_file_names_file_key_and_allowed_values(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    store.save(sample())
    document = json.loads(store.file.read_text())
    document["credentials"]["slack-prod"]["kind"] = "magic"
    store.file.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError) as raised:
        store.get("slack-prod")
    text = str(raised.value)
    assert str(store.file) in text
    assert "key 'kind'" in text
    assert "'api_key'" in text
    assert "'oauth2_authorization_code'" in text


def test_secrets_in_a_bad_file_are_not_echoed(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    store.save(sample())
    document = json.loads(store.file.read_text())
    document["credentials"]["slack-prod"]["client_secret"] = ["leaky-secret-value"]
    store.file.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError) as raised:
        store.get("slack-prod")
    assert "leaky-secret-value" not in str(raised.value)


def test_keyring_backend_holds_the_secrets(tmp_path: Path) -> None:
    keyring = MemoryKeyring()
    store = CredentialStore(tmp_path, keyring_backend=keyring, environ={})
    store.save(sample())
    assert store.get("slack-prod") == sample()
    assert store.source_of("slack-prod") == "keyring"
    assert "client-secret-abc" not in store.file.read_text()
    assert "client-secret-abc" in keyring.values[("oomnitza-connect", "slack-prod")]
    store.remove("slack-prod")
    assert keyring.values == {}


def test_environment_json_and_toml(tmp_path: Path) -> None:
    environ = {
        credential_env_name("intercom-eu"): json.dumps(
            {
                "vendor": "intercom",
                "kind": "api_key",
                "token": "dG9rOmV1",
                "base_url": "https://api.eu.intercom.io",
            }
        ),
        credential_env_name("talkdesk"): (
            'vendor = "talkdesk"\nkind = "oauth2_client_credentials"\nclient_id = "c1"\n'
            'client_secret = "td-secret-1"\nclient_auth_method = "client_secret_basic"\n'
        ),
    }
    assert credential_env_name("intercom-eu") == "OOMNITZA_CONNECT_CREDENTIAL_INTERCOM_EU"
    store = CredentialStore(tmp_path, keyring_backend=False, environ=environ)
    intercom = store.get("intercom-eu")
    assert intercom.token is not None
    assert intercom.token.reveal() == "dG9rOmV1"
    assert store.get("talkdesk").client_id == "c1"
    assert store.source_of("talkdesk") == "environment"
    with pytest.raises(ConfigurationError) as raised:
        store.remove("talkdesk")
    assert "unset that variable" in str(raised.value)


def test_bad_environment_value_names_the_variable_without_echoing(tmp_path: Path) -> None:
    environ = {credential_env_name("x"): "{not json secret-in-here"}
    store = CredentialStore(tmp_path, keyring_backend=False, environ=environ)
    with pytest.raises(ConfigurationError) as raised:
        store.get("x")
    assert "$OOMNITZA_CONNECT_CREDENTIAL_X" in str(raised.value)
    assert "secret-in-here" not in str(raised.value)


def test_rotated_tokens_overlay_an_environment_credential(tmp_path: Path) -> None:
    environ = {
        credential_env_name("slack-prod"): json.dumps(
            {
                "vendor": "slack",
                "kind": "oauth2_authorization_code",
                "client_id": "1",
                "refresh_token": "xoxe-1-original",
            }
        )
    }
    store = CredentialStore(tmp_path, keyring_backend=False, environ=environ)
    rotated = store.get("slack-prod")
    store.save(Credential(**{**_fields(rotated), "refresh_token": "xoxe-1-rotated"}))
    again = store.get("slack-prod")
    assert again.refresh_token is not None
    assert again.refresh_token.reveal() == "xoxe-1-rotated"


def _fields(credential: Credential) -> dict[str, object]:
    import attrs

    return attrs.asdict(credential, recurse=False)


def test_default_store_lives_under_oomnitza_connect_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    store = default_credential_store()
    store.save(sample())
    assert (tmp_path / "cfg" / "credentials.json").exists()


def test_invalid_name_is_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    with pytest.raises(ConfigurationError):
        store.save(Credential(name="../evil", vendor="x", kind=AuthKind.API_KEY, token="abcd"))


def test_usable_keyring_skips_fail_and_null_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends import fail, null

    from oomnitza_connect.auth.credentials import usable_keyring

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    assert usable_keyring() is None
    monkeypatch.setattr(keyring, "get_keyring", lambda: null.Keyring())
    assert usable_keyring() is None
    memory = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: memory)
    assert usable_keyring() is memory
    store = CredentialStore(Path("/nonexistent-home"), environ={})
    assert store.keyring is memory
    disabled = CredentialStore(Path("/nonexistent-home"), environ={"OOMNITZA_CONNECT_KEYRING": "0"})
    assert disabled.keyring is None
