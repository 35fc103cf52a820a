"""docs/vendors/intercom.md stays true: its Python runs, its commands and options exist,
and what it says about settings, fields and presets matches the plugin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from intercom_support import fast_options
from oomnitza_connect_intercom import vendor
from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.cli import main
from oomnitza_connect.connectors import Connector

PAGE = Path(__file__).resolve().parents[3] / "docs" / "vendors" / "intercom.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str, page: Path = PAGE) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _command_lines() -> list[list[str]]:
    lines = []
    for page in (PAGE, README):
        for block in _blocks("sh", page):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if line.startswith("oomnitza-connect "):
                    lines.append(shlex.split(re.sub(r"\[.*?\]", "", line))[1:])
    return lines


def test_the_page_has_examples() -> None:
    assert len(_blocks("python")) == 2
    assert len(_command_lines()) >= 8


def test_the_emulator_example_runs(intercom_plugin_registered, capsys) -> None:
    (example,) = [block for block in _blocks("python") if "IntercomEmulator" in block]
    exec(compile(example, str(PAGE), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Emulated Workspace 1 EU"
    assert printed[1] == "50 ['AU', 'EU', 'US']"


def test_the_readme_example_runs(intercom_plugin_registered) -> None:
    (example,) = _blocks("python", README)
    namespace: dict[str, object] = {}
    exec(compile(example, str(README), "exec"), namespace)
    assert str(namespace["eu_host"]).startswith("http://127.0.0.1:")
    assert namespace["credential"].vendor == "intercom"  # type: ignore[attr-defined]


def test_the_errors_example_runs(connector: Connector, capsys) -> None:
    (example,) = [block for block in _blocks("python") if "VendorAPIError" in block]
    with IntercomEmulator(users=3, enforce_rate_limits=False) as emulator:
        credential = emulator.test_credential()
        with connector.authenticate(credential, {}, options=fast_options(emulator)) as session:
            exec(compile(example, str(PAGE), "exec"), {"session": session})
    status, code, request_id = capsys.readouterr().out.split()
    assert (status, code) == ("404", "admin_not_found")
    assert len(request_id) == 36


@pytest.mark.parametrize("words", _command_lines(), ids=lambda words: " ".join(words[:3]))
def test_every_documented_command_and_option_exists(intercom_plugin_registered, words) -> None:
    path = [word for word in words if not word.startswith("-")]
    command_words: list[str] = []
    for word in path:
        probe = CliRunner().invoke(main, [*command_words, word, "--help"])
        if probe.exit_code != 0:
            break
        command_words.append(word)
    assert command_words, f"no command for {' '.join(words)}"
    help_text = CliRunner().invoke(main, [*command_words, "--help"]).output
    for option in (word.split("=")[0] for word in words if word.startswith("--")):
        assert option in help_text, f"'{' '.join(command_words)}' has no {option}"


def test_the_tables_name_every_setting_and_field(connector: Connector) -> None:
    text = PAGE.read_text(encoding="utf-8")
    for setting in connector.info.global_settings:
        assert f"| `{setting.key}` | `{setting.default}` |" in text
    for spec in vendor.fields:
        assert f"| `{spec.key}` | {spec.label} |" in text
    for preset in connector.presets():
        assert f"| {preset.name} |" in text
    assert connector.info.token_url in text
    assert connector.info.authorize_url in text
