"""``oomnitza-connect credentials …`` and ``auth test|login`` end to end."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_support import DirectoryEmulator

from oomnitza_connect.auth.credentials import OOMNITZA_VENDOR, CredentialStore
from oomnitza_connect.cli import main
from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import AuthKind, VendorInfo
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.testing import generic

TOKEN = "cli-token-value-123"


class BareVendors:
    """Vendors with nothing but a name: `credentials add` takes only installed ones."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def register_vendors(self, register: Any) -> None:
        for name in self.names:
            register(
                VendorInfo(
                    name=name,
                    display_name=name.title(),
                    base_url=f"https://{name}.example",
                    auth_kinds=tuple(AuthKind),
                )
            )


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def vendors_the_tests_name() -> Iterator[None]:
    # None of them has OAuth URLs: the login tests rely on the credential's own.
    vendors = BareVendors("intercom", "talkdesk", "webex", "directory", "v")
    with register_plugin(vendors, name="vendors-the-tests-name"):
        yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def store(home: Path) -> CredentialStore:
    return CredentialStore(home, keyring_backend=False, environ={})


def test_add_list_show_remove(runner: CliRunner, home: Path) -> None:
    added = runner.invoke(
        main,
        [
            "credentials",
            "add",
            "intercom-eu",
            "--vendor",
            "intercom",
            "--kind",
            "api_key",
            "--token-stdin",
            "--base-url",
            "https://api.eu.intercom.io",
        ],
        input=TOKEN + "\n",
    )
    assert added.exit_code == 0, added.output
    assert "Saved credential 'intercom-eu'" in added.output
    saved = store(home).get("intercom-eu")
    assert saved.token is not None
    assert saved.token.reveal() == TOKEN

    listed = runner.invoke(main, ["credentials", "list", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output) == [
        {
            "name": "intercom-eu",
            "vendor": "intercom",
            "kind": "api_key",
            "source": "file",
            "expires_at": None,
        }
    ]
    table = runner.invoke(main, ["credentials", "list"])
    assert "intercom-eu" in table.output

    shown = runner.invoke(main, ["credentials", "show", "intercom-eu", "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["token"] == "**********"
    assert json.loads(shown.output)["base_url"] == "https://api.eu.intercom.io"
    for output in (added.output, listed.output, table.output, shown.output):
        assert TOKEN not in output

    removed = runner.invoke(main, ["credentials", "remove", "intercom-eu"])
    assert removed.exit_code == 0
    assert runner.invoke(main, ["credentials", "list", "--json"]).output.strip() == "[]"


def test_list_shows_the_good_credentials_and_names_the_bad_one(
    runner: CliRunner, home: Path
) -> None:
    home.mkdir(parents=True)
    credentials = {
        "good": {"vendor": "slack", "kind": "api_key", "token": "xoxb-good-1234"},
        "c1": {"vendor": "slack", "kind": "api_key", "tokn": "bad-secret-77"},
    }
    (home / "credentials.json").write_text(json.dumps({"credentials": credentials}))
    (home / "credentials.json").chmod(0o600)
    listed = runner.invoke(main, ["credentials", "list", "--json"])
    assert listed.exit_code == 2
    assert [row["name"] for row in json.loads(listed.stdout)] == ["good"]
    assert listed.stderr.startswith(
        f"Error: {home / 'credentials.json'}: key 'credentials.c1.tokn': unknown key"
    )
    assert "required key" not in listed.stderr
    assert "bad-secret-77" not in listed.output
    table = runner.invoke(main, ["credentials", "list"])
    assert table.exit_code == 2
    assert "good" in table.stdout
    assert "credentials.c1.tokn" in table.stderr


def test_add_refuses_to_overwrite_without_force(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    args = [
        "credentials",
        "add",
        "x",
        "--vendor",
        "v",
        "--kind",
        "api_key",
        "--token-env",
        "MY_TOKEN",
    ]
    assert runner.invoke(main, args).exit_code == 0
    again = runner.invoke(main, args)
    assert again.exit_code == 2
    assert "use --force" in again.output
    assert runner.invoke(main, [*args, "--force"]).exit_code == 0


def test_add_private_key_jwt(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem)
    result = runner.invoke(
        main,
        [
            "credentials",
            "add",
            "td",
            "--vendor",
            "talkdesk",
            "--kind",
            "oauth2_client_credentials",
            "--client-id",
            "cid",
            "--private-key-file",
            str(key_file),
            "--key-id",
            "k1",
            "--algorithm",
            "ES256",
            "--token-url",
            "https://{{Talkdesk.Account}}.talkdeskid.com/oauth/token",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = store(home).get("td")
    assert saved.client_auth_method.value == "private_key_jwt"
    assert saved.private_key is not None
    assert saved.private_key.reveal() == pem
    shown = runner.invoke(main, ["credentials", "show", "td"])
    assert "BEGIN" not in shown.output


def _pem(key: Any, encryption: Any = None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def _add_with_key(runner: CliRunner, key_file: Path, *extra: str) -> Any:
    return runner.invoke(
        main,
        [
            "credentials", "add", "td", "--vendor", "talkdesk",
            "--kind", "oauth2_client_credentials", "--client-id", "cid",
            "--private-key-file", str(key_file), *extra,
        ],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "algorithm", "expected"),
    [
        (b"not a key at all SECRETSECRET-1", None, "the private key could not be read"),
        (
            _pem(
                ec.generate_private_key(ec.SECP256R1()),
                serialization.BestAvailableEncryption(b"pw"),
            ),
            None,
            "an encrypted one",
        ),
        (_pem(ed25519.Ed25519PrivateKey.generate()), None, "a key of type Ed25519"),
        (_pem(ec.generate_private_key(ec.SECP256K1())), None, "the curve secp256k1"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "ES256", "signs ES384, not ES256"),
        (_pem(ec.generate_private_key(ec.SECP256R1())), "RS256", "'RS256' is not supported"),
        (b"\xff\xfe\x00binary", None, "is not a PEM or base64 text file"),
    ],
    ids=["garbage", "encrypted", "ed25519", "secp256k1", "wrong-curve", "rs256", "binary"],
)
def test_add_checks_the_private_key_file(
    runner: CliRunner,
    home: Path,
    tmp_path: Path,
    content: bytes,
    algorithm: str | None,
    expected: str,
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(content)
    result = _add_with_key(runner, key_file, *(["--algorithm", algorithm] if algorithm else []))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {key_file}: ")
    assert expected in result.stderr
    assert "(allowed: " in result.stderr
    # Nothing of the key is echoed, and nothing was saved.
    for line in content.decode("ascii", "replace").splitlines():
        if "-----" not in line and len(line) > 8:
            assert line not in result.output
    assert "SECRETSECRET" not in result.output
    assert store(home).list() == []


def test_add_accepts_a_base64_pkcs8_key_as_talkdesk_delivers_it(
    runner: CliRunner, home: Path, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = tmp_path / "key.txt"
    key_file.write_text(base64.b64encode(der).decode() + "\n")
    result = _add_with_key(runner, key_file, "--key-id", "k1")
    assert result.exit_code == 0, result.output
    assert store(home).get("td").private_key is not None


def test_an_uninstalled_vendor_is_refused_naming_the_allowed_ones(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", TOKEN)
    add = ["credentials", "add", "s", "--kind", "api_key", "--token-env", "T"]
    with register_plugin(BareVendors("slack"), name="slack"):
        result = runner.invoke(main, [*add, "--vendor", "slakc"])
    assert result.exit_code == 2, result.output
    assert (
        "Invalid value for '--vendor': no installed plugin provides the vendor 'slakc'; "
        "did you mean 'slack'? (allowed: directory, intercom, oomnitza, slack, talkdesk, "
        "v, webex). For a vendor whose plugin is not installed yet, add "
        "--allow-uninstalled-vendor." in result.output
    )
    assert "Traceback" not in result.output
    assert not store(home).list()  # nothing saved
    # No suggestion when nothing is close; oomnitza (the destination) is always allowed.
    far = runner.invoke(main, [*add, "--vendor", "zzzz"])
    assert far.exit_code == 2
    assert "did you mean" not in far.output
    assert runner.invoke(main, [*add, "--vendor", OOMNITZA_VENDOR]).exit_code == 0


def test_oomnitza_is_the_destination_credentials_vendor() -> None:
    from oomnitza_connect.destinations import oomnitza

    assert oomnitza.VENDOR == OOMNITZA_VENDOR


def test_an_uninstalled_vendor_is_refused_before_the_secret_is_read(runner: CliRunner) -> None:
    # Refused before the prompt: the user would type a token for nothing.
    result = runner.invoke(
        main, ["credentials", "add", "s", "--vendor", "slakc", "--kind", "api_key", "--token-stdin"]
    )
    assert result.exit_code == 2
    assert "--vendor" in result.output
    assert "stdin held no" not in result.output


def test_a_vendor_hidden_by_plugin_selection_is_named(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_PLUGINS", "intercom")
    result = runner.invoke(
        main, ["credentials", "add", "s", "--vendor", "slack", "--kind", "api_key"]
    )
    assert result.exit_code == 2
    assert "$OOMNITZA_CONNECT_PLUGINS='intercom' may leave it out" in result.output


def test_allow_uninstalled_vendor_stores_a_credential_for_a_plugin_to_come(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", TOKEN)
    add = ["credentials", "add", "later", "--vendor", "okta", "--kind", "api_key"]
    result = runner.invoke(main, [*add, "--token-env", "T", "--allow-uninstalled-vendor"])
    assert result.exit_code == 0, result.output
    assert store(home).get("later").vendor == "okta"
    # --force replaces a credential; it does not let a misspelling through.
    forced = runner.invoke(main, [*add, "--token-env", "T", "--force"])
    assert forced.exit_code == 2
    assert "--allow-uninstalled-vendor" in forced.output


def test_missing_secret_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["credentials", "add", "x", "--vendor", "v", "--kind", "api_key"])
    assert result.exit_code == 2
    assert "--token-stdin or --token-env" in result.output


def test_show_unknown_credential_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(main, ["credentials", "show", "nope"])
    assert result.exit_code == 2
    assert "no credential named 'nope'" in result.output


@pytest.fixture
def generic_emulator() -> Iterator[generic.GenericEmulator]:
    with register_plugin(generic.vendor), generic.GenericEmulator(token=TOKEN) as emulator:
        yield emulator


def test_auth_test_prints_the_identity(
    runner: CliRunner, generic_emulator: generic.GenericEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEN_TOKEN", TOKEN)
    runner.invoke(
        main,
        [
            "credentials",
            "add",
            "gen",
            "--vendor",
            "generic",
            "--kind",
            "api_key",
            "--token-env",
            "GEN_TOKEN",
            "--base-url",
            generic_emulator.base_url,
        ],
    )
    result = runner.invoke(main, ["auth", "test", "gen"])
    assert result.exit_code == 0, result.output
    assert "Credential 'gen' works with Generic SaaS." in result.output
    assert TOKEN not in result.output


def test_auth_test_with_a_refused_token_exits_1(
    runner: CliRunner, generic_emulator: generic.GenericEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEN_TOKEN", "wrong-token-value")
    runner.invoke(
        main,
        [
            "credentials",
            "add",
            "gen",
            "--vendor",
            "generic",
            "--kind",
            "api_key",
            "--token-env",
            "GEN_TOKEN",
            "--base-url",
            generic_emulator.base_url,
        ],
    )
    result = runner.invoke(main, ["auth", "test", "gen"])
    assert result.exit_code == 1
    assert "refused" in result.output
    assert "wrong-token-value" not in result.output


def test_auth_login_through_the_loopback(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def fake_browser(url: str) -> bool:
        opened.append(url)
        # The user's browser follows the vendor's redirect back to the loopback listener.
        thread = threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5})
        thread.start()
        return True

    monkeypatch.setattr("webbrowser.open", fake_browser)
    monkeypatch.setenv("APP_SECRET", "app-secret-1")
    with DirectoryEmulator() as emulator:
        emulator.register_client("app", client_secret="app-secret-1")
        added = runner.invoke(
            main,
            [
                "credentials",
                "add",
                "dir",
                "--vendor",
                "directory",
                "--kind",
                "oauth2_authorization_code",
                "--client-id",
                "app",
                "--client-secret-env",
                "APP_SECRET",
                "--token-url",
                emulator.base_url + "/oauth/token",
                "--authorize-url",
                emulator.base_url + "/oauth/authorize",
            ],
        )
        assert added.exit_code == 0, added.output
        result = runner.invoke(main, ["auth", "login", "dir", "--port", "0", "--timeout", "10"])
        assert result.exit_code == 0, result.output
        assert "Logged in." in result.output
        assert opened[0] in result.output
        saved = store(home).get("dir")
        assert saved.refresh_token is not None
        assert emulator.lookup_token(saved.refresh_token.reveal(), kind="refresh") is not None


def test_auth_login_rejects_other_kinds(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", TOKEN)
    runner.invoke(
        main, ["credentials", "add", "k", "--vendor", "v", "--kind", "api_key", "--token-env", "T"]
    )
    result = runner.invoke(main, ["auth", "login", "k"])
    assert result.exit_code == 2
    assert "needs an oauth2_authorization_code credential" in result.output


def test_auth_login_without_oauth_urls_says_how_to_add_them(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S", TOKEN)
    added = runner.invoke(
        main,
        [
            "credentials",
            "add",
            "wx",
            "--vendor",
            "webex",
            "--kind",
            "oauth2_authorization_code",
            "--client-id",
            "cid",
            "--client-secret-env",
            "S",
        ],
    )
    assert added.exit_code == 0, added.output
    result = runner.invoke(main, ["auth", "login", "wx", "--no-browser"])
    assert result.exit_code == 2
    assert "needs token_url and authorize_url" in result.output
    assert "--token-url URL --authorize-url URL --force" in result.output


def test_a_base_url_that_would_leak_the_token_is_refused_when_added(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OOMNITZA_CONNECT_ALLOW_INSECURE_HTTP", raising=False)
    monkeypatch.setenv("T", TOKEN)
    add = ["credentials", "add", "k", "--vendor", "v", "--kind", "api_key", "--token-env", "T"]
    result = runner.invoke(main, [*add, "--base-url", "http://example.com/api"])
    assert result.exit_code == 2, result.output
    assert "--base-url" in result.output
    assert "plain http:// to another machine" in result.output
    assert TOKEN not in result.output
    assert runner.invoke(main, ["credentials", "show", "k"]).exit_code == 2  # nothing saved
    loopback = runner.invoke(main, [*add, "--base-url", "http://127.0.0.1:9/api"])
    assert loopback.exit_code == 0, loopback.output
