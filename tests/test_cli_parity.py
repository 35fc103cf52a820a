"""Every command has a Python call and the reverse, in one table of docs/cli.md; the
Python calls the CLI lacked (integration_template, launch_integration, login, plugins)
do what their commands do."""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from http_support import DirectoryEmulator
from sync_support import acme_for_the_cli, write_integration
from test_cli_conventions import LEAVES

import oomnitza_connect
from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.cli import main
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import AuthKind, Credential, SyncStatus
from oomnitza_connect.redaction import Secret
from oomnitza_connect.store.sqlite import SQLiteStore

PAGE = Path(__file__).parents[1] / "docs" / "cli.md"


def _table(heading: str) -> list[list[str]]:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows: list[list[str]] = []
    for line in section.splitlines():
        if line.startswith("|"):
            if not line.startswith("|---"):
                rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            break  # the first table only
    return rows[1:]  # without the header


COMMANDS_TABLE = _table("## Every command and its Python call")


def _command_of(cell: str) -> str:
    words = cell.strip("`").split()
    return " ".join(w for w in words if re.fullmatch(r"[a-z][a-z-]*", w))


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def test_every_command_is_in_the_table_once() -> None:
    listed = [_command_of(row[0]) for row in COMMANDS_TABLE]
    assert len(listed) == len(set(listed)), "a command is in the table twice"
    assert sorted(listed) == LEAVES


@pytest.mark.parametrize("row", COMMANDS_TABLE, ids=lambda row: _command_of(row[0]))
def test_every_reference_resolves(row: list[str]) -> None:
    references = re.findall(r"`([\w.]+)`", row[2])
    assert references, row
    for dotted in references:
        assert callable(_resolve(dotted)) or _resolve(dotted) is not None, dotted


def test_every_exported_function_is_on_the_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    functions = [
        name for name in oomnitza_connect.__all__
        if inspect.isfunction(getattr(oomnitza_connect, name))
    ]  # fmt: skip
    missing = [name for name in functions if f"{name}(" not in text and name != "hookimpl"]
    assert not missing, f"docs/cli.md does not say which command {missing} match"
    assert "`hookimpl`" in text


def test_the_login_port_is_the_same_for_the_command_and_python() -> None:
    from oomnitza_connect import api
    from oomnitza_connect.cli import credentials_commands

    assert credentials_commands.DEFAULT_LOGIN_PORT == api.DEFAULT_LOGIN_PORT


@pytest.fixture
def acme(tmp_path, monkeypatch):
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=7, per_page=5) as emulator:
        yield emulator


def test_integration_template_is_what_integrations_init_prints(acme) -> None:
    printed = CliRunner().invoke(main, ["integrations", "init", "acme", "--name", "x"]).stdout
    assert oomnitza_connect.integration_template("acme", name="x") == printed
    assert 'name = "x"' in printed


def test_launch_integration_marks_it_active_and_runs_it(tmp_path, acme) -> None:
    path = write_integration(tmp_path, base_url=acme.base_url)
    with SQLiteStore(tmp_path / "launch.db") as store:
        assert oomnitza_connect.launch_integration(path, store, run=False) is None
        (entry,) = store.list_integrations()
        assert (entry.name, entry.active, entry.source) == ("acme-main", True, str(path))
        assert store.list_sessions() == []
        session = oomnitza_connect.launch_integration(path, store)
        assert session is not None
        assert session.status is SyncStatus.SUCCEEDED
        assert store.count_people() == 7
    draft = tmp_path / "draft.toml"
    draft.write_text(path.read_text().replace('default_role = "Employee"\n', ""))
    with SQLiteStore(tmp_path / "draft.db") as store, pytest.raises(ConfigurationError) as caught:
        oomnitza_connect.launch_integration(draft, store)
    assert "is a draft" in str(caught.value)
    assert caught.value.problems


def test_login_runs_the_loopback_flow_and_saves_the_tokens(tmp_path) -> None:
    opened: list[str] = []

    def browser(url: str) -> None:
        opened.append(url)
        # The user's browser follows the vendor's redirect back to the loopback listener.
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5}).start()

    store = CredentialStore(tmp_path / "home", keyring_backend=False, environ={})
    with DirectoryEmulator() as emulator:
        emulator.register_client("app", client_secret="app-secret-1")
        store.save(
            Credential(
                name="dir",
                vendor="directory",
                kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
                client_id="app",
                client_secret=Secret("app-secret-1"),
                token_url=emulator.base_url + "/oauth/token",
                authorize_url=emulator.base_url + "/oauth/authorize",
            )
        )
        updated = oomnitza_connect.login(
            "dir", open_url=browser, port=0, timeout=10, credential_store=store
        )
        assert opened
        assert opened[0].startswith(emulator.base_url + "/oauth/authorize?")
        assert updated.refresh_token is not None
        saved = store.get("dir")
        assert saved.refresh_token is not None
        assert emulator.lookup_token(saved.refresh_token.reveal(), kind="refresh") is not None
    with pytest.raises(ConfigurationError, match="needs an oauth2_authorization_code"):
        oomnitza_connect.login(
            Credential(name="k", vendor="x", kind=AuthKind.API_KEY, token=Secret("t")),
            credential_store=store,
        )


def test_plugins_in_python_give_distribution_version_and_load_errors() -> None:
    from oomnitza_connect.plugins import register_plugin
    from oomnitza_connect.testing import generic

    with register_plugin(generic.vendor):
        described = oomnitza_connect.describe_plugins()
        shown = CliRunner().invoke(main, ["plugins", "--json"]).stdout
    assert [d.name for d in described] == ["oomnitza_connect.testing.generic"]
    assert described[0].vendors == ("generic",)
    assert '"oomnitza_connect.testing.generic"' in shown
    assert oomnitza_connect.failed_plugins() == []
    assert {"name", "distribution", "error"} <= set(
        inspect.signature(oomnitza_connect.FailedPlugin).parameters
    )
