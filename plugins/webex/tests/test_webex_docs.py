"""docs/vendors/webex.md stays true: its Python runs, its commands and options exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from oomnitza_connect.cli import main

PAGE = Path(__file__).resolve().parents[3] / "docs" / "vendors" / "webex.md"


def _blocks(language: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _command_lines() -> list[list[str]]:
    lines = []
    for block in _blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("oomnitza-connect "):
                lines.append(shlex.split(line)[1:])
    return lines


def test_the_page_has_examples() -> None:
    assert len(_blocks("python")) == 2
    assert len(_command_lines()) >= 8


def test_the_python_example_runs(webex_plugin_registered, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    # The login example saves its tokens in the default credential store: this test's own.
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    for block in _blocks("python"):
        exec(compile(block, str(PAGE), "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"^\d+ SaaS users updated; \d+ inactive$", printed, flags=re.MULTILINE)
    assert re.search(r"^logged in as \S+@webex-0\.example\.com$", printed, flags=re.MULTILINE)


@pytest.mark.parametrize("words", _command_lines(), ids=lambda words: " ".join(words[:2]))
def test_every_documented_command_and_option_exists(webex_plugin_registered, words) -> None:
    path = [word for word in words if not word.startswith("-")]
    # Walk the command path as far as click knows it, then ask that command for --help.
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
