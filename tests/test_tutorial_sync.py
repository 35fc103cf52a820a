"""The plugin tutorial's "sync the emulator end to end" section, step by step.

A freshly rendered plugin, its emulator, and exactly the commands
docs/plugins/tutorial.md gives: integrations init, validate, sync, people.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.cli import main
from oomnitza_connect.cli.emulator_commands import _credential_data
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.scaffold import render_plugin

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "tutorial.md"


@pytest.fixture
def rendered_vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    target = render_plugin("tutorial-hr", tmp_path)
    monkeypatch.syspath_prepend(str(target / "src"))
    module = importlib.import_module("oomnitza_connect_tutorial_hr")
    yield module.vendor
    for name in [m for m in sys.modules if m.startswith("oomnitza_connect_tutorial_hr")]:
        del sys.modules[name]


def test_the_tutorial_commands_sync_the_rendered_plugins_emulator(
    rendered_vendor: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TUTORIAL.read_text()
    for step in (
        "oomnitza-connect integrations init acme_hr -o acme_hr.toml",
        "sed -i 's/^# default_role = /default_role = /' acme_hr.toml",
        "oomnitza-connect integrations validate acme_hr.toml",
        "oomnitza-connect sync acme_hr.toml --db acme.db",
        "oomnitza-connect people --db acme.db",
    ):
        assert step in text, f"the tutorial no longer says: {step}"
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    with (
        register_plugin(rendered_vendor),
        rendered_vendor.create_emulator({"users": 50}) as emulator,  # type: ignore[attr-defined]
    ):
        credential = emulator.test_credential()
        assert credential.name == "tutorial_hr"  # what `integrations init` writes
        # The `export ...` line `oomnitza-connect emulator` prints, pasted.
        monkeypatch.setenv(
            credential_env_name(credential.name), json.dumps(_credential_data(credential))
        )
        result = runner.invoke(
            main, ["integrations", "init", "tutorial_hr", "-o", "tutorial_hr.toml"]
        )
        assert result.exit_code == 0, result.output
        # The tutorial's sed line: the file is a draft until a default role is set.
        integration = tmp_path / "tutorial_hr.toml"
        integration.write_text(
            integration.read_text().replace("# default_role = ", "default_role = ", 1)
        )
        for command in (
            ["integrations", "validate", "tutorial_hr.toml"],
            ["sync", "tutorial_hr.toml", "--db", "tutorial.db", "--json"],
        ):
            result = runner.invoke(main, command)
            assert result.exit_code == 0, f"{command}: {result.output}"
        session = json.loads(result.output[result.output.index("{") :])  # after the summary line
        active = sum(1 for user in emulator.users.values() if user["active"])
        assert session["status"] == "succeeded"
        assert session["counts"]["created"] == active == 45
        people = runner.invoke(main, ["people", "--db", "tutorial.db", "--vendor", "tutorial_hr"])
        assert people.exit_code == 0, people.output
        assert "user2@example.com" in people.output
        # The rendered presets run on the people the first sync brought in.
        assert 'presets run acme_hr "Get User Details" --person user1@example.com' in text
        preset_run = ["presets", "run", "tutorial_hr", "--db", "tutorial.db"]
        preset_run += ["--credential", "tutorial_hr"]
        details = runner.invoke(
            main, [*preset_run, "Get User Details", "--person", "user1@example.com", "--json"]
        )
        assert details.exit_code == 0, details.output
        assert emulator.requests[-1].path == "/api/users/u0001"
        assert '"Tutorial Hr Role": "admin"' in details.output
        off = runner.invoke(main, [*preset_run, "Deactivate User", "--person", "user2@example.com"])
        assert off.exit_code == 0, off.output
        assert emulator.users["u0002"]["active"] is False
