"""A credential from Talkdesk's app.installed event: in Python and on the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from oomnitza_connect_talkdesk.cli import main as talkdesk_main
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator
from oomnitza_connect_talkdesk.installation import credential_from_app_installed
from talkdesk_support import fast_options

from oomnitza_connect.auth.credentials import default_credential_store
from oomnitza_connect.connectors import Connector
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import ClientAuthMethod


@pytest.mark.parametrize("method", ["jwt", "basic"])
def test_a_credential_from_the_event_signs_in(connector: Connector, tmp_path, method: str) -> None:
    with TalkdeskEmulator(users=7, subdomain="acme", region="CA", key_algorithm="ES384") as emu:
        path = tmp_path / "app-installed.json"
        path.write_text(json.dumps(emu.app_installed_event()), encoding="utf-8")
        credential = credential_from_app_installed(
            path, name="from-event", method=method, token_url=emu.token_url
        )
        assert credential.base_url == emu.base_url  # _links.root.href
        if method == "jwt":
            assert credential.client_auth_method is ClientAuthMethod.PRIVATE_KEY_JWT
            assert (credential.key_id, credential.signing_algorithm) == (emu.key_id, "ES384")
        else:
            assert credential.client_auth_method is ClientAuthMethod.CLIENT_SECRET_BASIC
        with connector.authenticate(
            credential, emu.test_settings(), options=fast_options(emu)
        ) as session:
            assert len(list(connector.list_users(session))) == 7
        assert emu.private_key not in repr(credential)


def test_a_bad_event_names_the_file_and_the_key_but_no_secret(tmp_path) -> None:
    with TalkdeskEmulator() as emu:
        event = emu.app_installed_event()
    event["data"]["private_key"] = "bm90IGEga2V5"  # base64 of "not a key"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    with pytest.raises(ConfigurationError) as refused:
        credential_from_app_installed(path)
    assert refused.value.file == str(path)
    assert refused.value.key_path == "data.private_key"
    assert "bm90IGEga2V5" not in str(refused.value)
    del event["data"]["client_id"]
    with pytest.raises(ConfigurationError) as missing:
        credential_from_app_installed(event)
    assert missing.value.key_path == "data.client_id"
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not JSON"):
        credential_from_app_installed(tmp_path / "broken.json")


def test_the_command_saves_the_credential_without_printing_secrets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    with TalkdeskEmulator(subdomain="acme") as emu:
        event = emu.app_installed_event()
    path = tmp_path / "app-installed.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(talkdesk_main, ["import-installation", str(path), "--name", "td"])
    assert result.exit_code == 0, result.output
    assert "Saved credential 'td'" in result.output
    assert 'Talkdesk.Subdomain = "acme"' in result.output
    for secret in (event["data"]["private_key"], event["data"]["client_secret"]):
        assert secret not in result.output
    saved = default_credential_store().get("td")
    assert saved.client_id == event["data"]["client_id"]
    assert saved.private_key is not None
    assert saved.private_key.reveal() == event["data"]["private_key"]
    again = runner.invoke(talkdesk_main, ["import-installation", str(path), "--name", "td"])
    assert again.exit_code == 2
    assert "--force" in again.output
