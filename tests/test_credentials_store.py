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
    assert "key 'credentials.slack-prod.kind'" in text
    assert raised.value.key_path == "credentials.slack-prod.kind"
    assert "'api_key'" in text
    assert "'oauth2_authorization_code'" in text


def write_document(store: CredentialStore, text: str) -> None:
    store.home.mkdir(parents=True, exist_ok=True)
    store.file.write_text(text)
    store.file.chmod(0o600)


def test_every_problem_names_the_credential_and_its_key_from_the_root(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    write_document(
        store,
        json.dumps(
            {"credentials": {"c1": {"vendor": "slack", "kind": "api_key", "tokn": "x-secret-99"}}}
        ),
    )
    with pytest.raises(ConfigurationError) as raised:
        store.get("c1")
    text = str(raised.value)
    assert text.startswith(f"{store.file}: key 'credentials.c1.tokn': unknown key")
    # The table is keyed by the name: 'name' inside it is not required.
    assert "'name'" not in text.split("(allowed")[0]
    assert "required key is missing" not in text
    assert "x-secret-99" not in text


def test_several_problems_are_each_under_the_credential(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    write_document(
        store, json.dumps({"credentials": {"c1": {"kind": "magic", "tokn": "x", "vendor": 3}}})
    )
    with pytest.raises(ConfigurationError) as raised:
        store.get("c1")
    assert "3 problems in credential 'c1'" in str(raised.value)
    assert len(raised.value.problems) == 3
    assert all(p.startswith("key 'credentials.c1.") for p in raised.value.problems)


def test_a_name_inside_the_table_must_match_its_key(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    entry = {"name": "other", "vendor": "slack", "kind": "api_key", "token": "xoxb-1234"}
    write_document(store, json.dumps({"credentials": {"c1": entry}}))
    with pytest.raises(ConfigurationError) as raised:
        store.get("c1")
    assert raised.value.key_path == "credentials.c1.name"
    assert "names credential 'other' but is stored as 'c1'" in str(raised.value)


def test_invalid_json_says_where(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    write_document(store, '{"credentials": {\n  "c1": {"token": "leak-me-not-1",}}}')
    with pytest.raises(ConfigurationError) as raised:
        store.get("c1")
    text = str(raised.value)
    assert text.startswith(f"{store.file}: is not valid JSON: ")
    assert "at line 2, column 35" in text
    assert "leak-me-not-1" not in text


def test_list_checked_keeps_the_good_credentials_and_names_the_bad_one(tmp_path: Path) -> None:
    good = {"vendor": "slack", "kind": "api_key", "token": "xoxb-good-1234"}
    bad = {"vendor": "slack", "kind": "api_key", "tokn": "x"}
    store = CredentialStore(tmp_path, keyring_backend=False, environ={})
    write_document(store, json.dumps({"credentials": {"good": good, "c1": bad}}))
    found, problems = store.list_checked()
    assert [c.name for c in found] == ["good"]
    assert [p.key_path for p in problems] == ["credentials.c1.tokn"]


def test_a_broken_file_does_not_hide_environment_credentials(tmp_path: Path) -> None:
    environ = {
        credential_env_name("envy"): json.dumps(
            {"vendor": "slack", "kind": "api_key", "token": "xoxb-envy-1234"}
        )
    }
    store = CredentialStore(tmp_path, keyring_backend=False, environ=environ)
    write_document(store, "{not json")
    found, problems = store.list_checked()
    assert [c.name for c in found] == ["envy"]
    assert len(problems) == 1
    assert "is not valid JSON: " in str(problems[0])
    assert "line 1, column 2" in str(problems[0])


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
    assert "line 1, column 2" in str(raised.value)
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
