"""docs/vendors/talkdesk.md stays true: its Python examples run against the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "vendors" / "talkdesk.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_python_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_documented_example_runs(example: str, talkdesk_plugin_registered: None) -> None:
    exec(compile(example, str(DOC), "exec"), {"__name__": "docs_example"})


def test_the_documented_command_lines_use_real_options() -> None:
    from oomnitza_connect_talkdesk.cli import main as talkdesk_main

    from oomnitza_connect.cli import main

    text = DOC.read_text(encoding="utf-8")
    commands = {
        "credentials add": main.commands["credentials"].commands["add"],
        "presets run": main.commands["presets"].commands["run"],
        "oomnitza-connect-talkdesk import-installation": talkdesk_main.commands[
            "import-installation"
        ],
        "emulator talkdesk": main.commands["emulator"],
    }
    for line in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        joined = line.replace("\\\n", " ")
        for name, command in commands.items():
            if name not in joined:
                continue
            known = {opt for param in command.params for opt in param.opts}
            used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", joined))
            assert used <= known, f"{name}: unknown options {sorted(used - known)}"
