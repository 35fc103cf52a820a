"""Issue 14, defect 1: a token with a control character is refused, and no exception
text of any type carries a secret to a session, a log or the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sync_support import TOKEN, AcmePlugin, acme_for_the_cli, write_integration

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import auth_for_credential
from oomnitza_connect.cli import main
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import AuthKind, Credential, VendorRecord
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.redaction import MASK, Secret, redact
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.vendors.session import VendorSession


def test_escaped_spellings_of_a_secret_are_redacted() -> None:
    token = "xoxp-ctl-token-\u00e9t\u00e9\n"
    Secret(token)
    raw_header = ("Bearer " + token).encode()
    texts = [
        f"Invalid header value {raw_header!r}",  # what requests raises
        f"token={token!r}",
        json.dumps({"token": token}),
        f"stripped {token.strip()} here",
    ]
    for text in texts:
        scrubbed = redact(text)
        assert "xoxp-ctl" not in scrubbed, scrubbed
        assert MASK in scrubbed


def test_extra_values_are_redacted_in_escaped_form_too() -> None:
    assert "not-registered" not in redact(repr(b"not-registered\t1"), ["not-registered\t1"])


@pytest.mark.parametrize(
    "bad",
    [
        "tok-abcdef\n",
        "tok abcdef",
        "tok-\x00abcdef",
        "\ttok-abcdef",
        "tok-abcdef\u20ac",
        "\u201ctok-abcdef",
    ],
)
def test_a_token_with_whitespace_a_control_or_a_non_ascii_character_is_refused_when_added(
    tmp_path: Any, bad: str
) -> None:
    store = CredentialStore(tmp_path, keyring_backend=False)
    credential = Credential(name="c", vendor="acme", kind=AuthKind.API_KEY, token=bad)
    with pytest.raises(ConfigurationError) as caught:
        store.save(credential)
    message = str(caught.value)
    assert "token" in message
    assert "tok-abcdef" not in message
    assert not store.file.exists()


def test_a_token_with_a_newline_is_refused_when_loaded_from_the_environment(tmp_path: Any) -> None:
    environ = {
        "OOMNITZA_CONNECT_CREDENTIAL_SLACK": json.dumps(
            {"vendor": "slack", "kind": "api_key", "token": "xoxp-loaded-secret\n"}
        )
    }
    store = CredentialStore(tmp_path, keyring_backend=False, environ=environ)
    with pytest.raises(ConfigurationError) as caught:
        store.get("slack")
    assert "whitespace" in str(caught.value)
    assert "$OOMNITZA_CONNECT_CREDENTIAL_SLACK" in str(caught.value)
    assert "xoxp-loaded" not in str(caught.value)


def test_a_credential_built_in_code_is_checked_before_any_request() -> None:
    credential = Credential(
        name="c", vendor="acme", kind=AuthKind.API_KEY, token="xoxp-in-code-token\r\n"
    )
    with pytest.raises(ConfigurationError, match="token") as caught:
        auth_for_credential(credential)
    assert "xoxp-in-code" not in str(caught.value)


def test_sync_with_a_newline_token_is_a_configuration_error_without_the_token(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=3, per_page=10) as emulator:
        monkeypatch.setenv(
            "OOMNITZA_CONNECT_CREDENTIAL_ACME",
            json.dumps({"vendor": "acme", "kind": "api_key", "token": TOKEN + "\n"}),
        )
        path = write_integration(tmp_path, base_url=emulator.base_url)
        result = CliRunner().invoke(main, ["sync", str(path), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert TOKEN not in result.output
    assert "whitespace" in result.output


class LeakyAcme(AcmePlugin):
    """An acme whose listing fails with a non-SDK error that quotes the token escaped."""

    @hookimpl
    def list_users(self, vendor: str, session: VendorSession) -> Iterator[VendorRecord] | None:
        if vendor != "acme":
            return None
        header = f"Bearer {session.credential.token.reveal()}".encode()  # type: ignore[union-attr]
        raise ValueError(f"Invalid header value {header!r}")


def test_any_exception_reaching_the_terminal_and_the_session_is_scrubbed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=3, per_page=10) as emulator:
        path = write_integration(tmp_path, base_url=emulator.base_url)
        db = tmp_path / "x.db"
        with register_plugin(LeakyAcme(), name="leaky-acme"):
            from oomnitza_connect.plugins import get_plugin_manager

            manager = get_plugin_manager()
            blocked = manager.unregister(name="acme-test")
            try:
                result = CliRunner().invoke(main, ["sync", str(path), "--db", str(db)])
            finally:
                manager.register(blocked, name="acme-test")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert TOKEN not in result.output
    assert "ValueError" in result.output
    assert MASK in result.output
    with SQLiteStore(db) as store:
        (session,) = store.list_sessions()
    assert session.message is not None
    assert TOKEN not in session.message


def test_one_bad_credential_in_the_environment_does_not_hide_the_others(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.setenv(
        "OOMNITZA_CONNECT_CREDENTIAL_ENVSL",
        json.dumps({"vendor": "slack", "kind": "api_key", "token": "xoxp-bad-secret\n"}),
    )
    monkeypatch.setenv(
        "OOMNITZA_CONNECT_CREDENTIAL_GOOD",
        json.dumps({"vendor": "slack", "kind": "api_key", "token": "xoxp-good-secret"}),
    )
    result = CliRunner().invoke(main, ["credentials", "list", "--json"])
    # The good one is listed; the bad one is named, and the listing fails (exit 2).
    assert result.exit_code == 2, result.output
    assert [row["name"] for row in json.loads(result.stdout)] == ["good"]
    assert "$OOMNITZA_CONNECT_CREDENTIAL_ENVSL" in result.stderr
    assert "xoxp-bad" not in result.output
    assert "xoxp-good" not in result.output
