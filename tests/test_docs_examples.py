"""Every fenced Python example in the docs and the README runs, as a reader would run it.

Each ```python block runs on its own, in a fresh interpreter, in an empty working
directory with its own OOMNITZA_CONNECT_HOME, with every installed plugin loaded.
Examples that talk to a vendor start the vendor's local emulator themselves (see
docs/emulators.md). A block that is deliberately not a runnable program (a hook
signature, a fragment continuing the prose) says so on the line before its fence::

    <!-- docs-test: skip (why) -->

and is counted: a new one must be added to EXPECTED_SKIPPED on purpose.

A block that goes on from the ones before it (a page that builds a plugin hook by
hook, each block with the prose that explains it) says so instead::

    <!-- docs-test: continue -->

and runs as one program with the page's blocks before it, back to the last block
that does not continue (the way a reader pastes them one after the other). A block
that is a test module (a plugin's tests) says::

    <!-- docs-test: pytest -->

and is run by pytest as ``test_example.py``, whose tests must pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from oomnitza_connect.plugins import ALLOW_ENV, BLOCK_ENV, LOAD_ENTRY_POINTS_ENV

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP_MARKER = re.compile(r"<!--\s*docs-test:\s*skip\b[^>]*-->")
CONTINUE_MARKER = re.compile(r"<!--\s*docs-test:\s*continue\s*-->")
PYTEST_MARKER = re.compile(r"<!--\s*docs-test:\s*pytest\s*-->")

EXPECTED_SKIPPED = 14
"""Blocks marked as not runnable. Lower it when you make one run; never raise it lightly."""


def _python_blocks(page: Path) -> list[tuple[int, str, bool]]:
    """(line, code, skipped) for each ```python block of *page*.

    The code of a block marked to continue is the program it ends: the blocks
    before it, back to the last one that does not continue, then its own.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    program: list[str] = []
    for token in MarkdownIt().parse("\n".join(lines)):
        if token.type != "fence" or token.info.strip().split(" ")[0] != "python":
            continue
        assert token.map is not None
        start = token.map[0]
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        skipped = bool(SKIP_MARKER.search(before))
        code = token.content
        if CONTINUE_MARKER.search(before):
            assert program, f"{page.name} line {start + 1} continues no block before it"
            code = program[-1] + "\n\n" + code
        if not skipped:
            program.append(code)
        blocks.append((start + 1, code, skipped))
    return blocks


def _is_test_module(page: Path, line: int) -> bool:
    lines = page.read_text(encoding="utf-8").splitlines()[: line - 1]
    before = next((text for text in reversed(lines) if text.strip()), "")
    return bool(PYTEST_MARKER.search(before))


ALL_BLOCKS = [
    pytest.param(page, line, code, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for line, code, skipped in _python_blocks(page)
    if not skipped
]


def test_skipped_examples_are_counted():
    skipped = [
        f"{page.relative_to(ROOT)}:{line}"
        for page in PAGES
        for line, _, is_skipped in _python_blocks(page)
        if is_skipped
    ]
    assert len(skipped) == EXPECTED_SKIPPED, skipped
    assert len(ALL_BLOCKS) >= 15  # the extraction itself works


@pytest.mark.parametrize(("page", "line", "code"), ALL_BLOCKS)
def test_documented_python_runs(page, line, code, tmp_path):
    env = {**os.environ, LOAD_ENTRY_POINTS_ENV: "1", "OOMNITZA_CONNECT_HOME": str(tmp_path)}
    env.pop("OOMNITZA_CONNECT_DB", None)
    for name in (ALLOW_ENV, BLOCK_ENV):
        env.pop(name, None)
    work = tmp_path / "work"
    work.mkdir()
    command = [sys.executable, "-c", code]
    if _is_test_module(page, line):
        (work / "test_example.py").write_text(code, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", "no:xdist", "test_example.py"]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    where = f"{page.relative_to(ROOT)} line {line}"
    output = result.stderr[-3000:] or result.stdout[-3000:]
    assert result.returncode == 0, f"the example at {where} fails:\n{output}"
