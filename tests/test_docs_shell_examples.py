"""Every documented command-line example runs, as a reader would type it.

The ```bash / ```sh / ```console blocks of the docs and the README that call
``oomnitza-connect`` run in order, page by page, in one empty working directory
with its own ``HOME`` and ``OOMNITZA_CONNECT_HOME`` (no keyring), with every
installed plugin loaded. Each command (a line, with its ``\\`` continuations) runs
in ``bash -o pipefail`` and must exit 0, or with the code its comment names
(``# ... exit 2``). What a reader does by hand is done the same way here:

- ``pip install ...`` lines are not run: the workspace's packages are installed;
- ``cd DIR`` and ``export NAME=VALUE`` carry over to the next commands;
- ``oomnitza-connect emulator ...`` runs until Ctrl-C: it runs until it has said
  where it listens, then gets SIGINT and must exit 0;
- a block marked ``<!-- docs-test: runs until Ctrl-C -->`` (``schedule run``
  polling) must still be running after a few seconds, then gets SIGINT and must
  exit 130, quietly, as after a reader's Ctrl-C;
- ``$NAME`` secrets the examples read (``$SLACK_BOT_TOKEN``) are set, to a
  vendor emulator's token where the page uses one, else to a dummy.

A page that needs credentials a reader would have stored already (a sync, a
preset) says which, anywhere in the page::

    <!-- docs-test: credentials slack=slack td=talkdesk -->

(name=vendor): each is stored before the page runs, pointing at a freshly
started emulator of that vendor (``oomnitza-connect emulator VENDOR --json``), so
nothing reaches a real vendor. A block that cannot run (it needs a real vendor
account, a browser, Redis, or it is a synopsis with placeholders) says so on the
line before its fence, as the Python examples do::

    <!-- docs-test: skip (why) -->

and is counted: a new one must be added to EXPECTED_SKIPPED on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from oomnitza_connect.auth.credentials import CredentialStore, _from_data
from oomnitza_connect.plugins import ALLOW_ENV, BLOCK_ENV, LOAD_ENTRY_POINTS_ENV

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELLS = {"bash", "sh", "console", "shell"}
SKIP_MARKER = re.compile(r"<!--\s*docs-test:\s*skip\b[^>]*-->")
UNTIL_INTERRUPTED_MARKER = re.compile(r"<!--\s*docs-test:\s*runs until Ctrl-C\s*-->")
CREDENTIALS_MARKER = re.compile(r"<!--\s*docs-test:\s*credentials\s+([^>]*?)\s*-->")
EXPECTED_EXIT = re.compile(r"#.*\bexit (\d+)\b")
BIN = Path(sys.executable).parent

EXPECTED_SKIPPED = 27
"""Blocks marked as not runnable. Lower it when you make one run; never raise it lightly."""

# Secrets and ids the examples read from the environment, as a reader would have set them.
DUMMY_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "INTERCOM_TOKEN",
    "INTERCOM_CLIENT_ID",
    "INTERCOM_CLIENT_SECRET",
    "WEBEX_TOKEN",
    "WEBEX_CLIENT_ID",
    "WEBEX_CLIENT_SECRET",
    "TALKDESK_CLIENT_ID",
    "TALKDESK_CLIENT_SECRET",
    "TALKDESK_KEY_ID",
    "TD_CLIENT_ID",
    "TD_KEY_ID",
    "PW",
    "OOMNITZA_TOKEN",
    "OOMNITZA_PASSWORD",
)


def _commands(code: str) -> list[str]:
    """The commands of a block: continuation lines joined, comments and blank lines out."""
    commands: list[str] = []
    pending = ""
    for raw in code.splitlines():
        line = raw[2:] if raw.startswith("$ ") else raw
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1].rstrip()
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


CLI_CALL = re.compile(r"(?:^|[\s|/])oomnitza-connect(?:-[a-z]+)?(?=\s|$)")


def _calls_the_cli(code: str) -> bool:
    return any(
        CLI_CALL.search(command) and not command.startswith("pip ") for command in _commands(code)
    )


def _shell_blocks(page: Path) -> list[tuple[int, str, bool]]:
    """(line, code, skipped) for each shell block of *page* that calls the command line."""
    return [(line, code, mode == "skip") for line, code, mode in _marked_shell_blocks(page)]


def _marked_shell_blocks(page: Path) -> list[tuple[int, str, str]]:
    """(line, code, mode) for each shell block of *page* that calls the command line;
    mode is ``skip``, ``interrupt`` (runs until Ctrl-C) or ``run``."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    for token in MarkdownIt().parse("\n".join(lines)):
        if token.type != "fence" or token.info.strip().split(" ")[0] not in SHELLS:
            continue
        if not _calls_the_cli(token.content):
            continue
        assert token.map is not None
        start = token.map[0]
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        if SKIP_MARKER.search(before):
            mode = "skip"
        elif UNTIL_INTERRUPTED_MARKER.search(before):
            mode = "interrupt"
        else:
            mode = "run"
        blocks.append((start + 1, token.content, mode))
    return blocks


def _page_credentials(page: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in CREDENTIALS_MARKER.finditer(page.read_text(encoding="utf-8")):
        for pair in match.group(1).split():
            name, _, vendor = pair.partition("=")
            found[name] = vendor or name
    return found


RUNNABLE_PAGES = [
    pytest.param(page, id=str(page.relative_to(ROOT)))
    for page in PAGES
    if any(not skipped for _, _, skipped in _shell_blocks(page))
]


def test_skipped_shell_examples_are_counted():
    skipped = [
        f"{page.relative_to(ROOT)}:{line}"
        for page in PAGES
        for line, _, is_skipped in _shell_blocks(page)
        if is_skipped
    ]
    assert len(skipped) == EXPECTED_SKIPPED, skipped
    assert len(RUNNABLE_PAGES) >= 8  # the extraction itself works


def test_commands_are_split_as_bash_reads_them():
    code = "# a comment\noomnitza-connect a \\\n    --b c   # exit 2\n\n$ oomnitza-connect d\n"
    assert _commands(code) == ["oomnitza-connect a --b c   # exit 2", "oomnitza-connect d"]


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OOMNITZA_CONNECT_", "PYTEST_"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "HOME": str(tmp_path / "home"),
            "OOMNITZA_CONNECT_HOME": str(tmp_path / "oc-home"),
            "OOMNITZA_CONNECT_KEYRING": "0",
            LOAD_ENTRY_POINTS_ENV: "1",
            "NO_COLOR": "1",
        }
    )
    for name in (ALLOW_ENV, BLOCK_ENV):
        env.pop(name, None)
    for name in DUMMY_VARIABLES:
        env[name] = f"docs-test-{name.lower().replace('_', '-')}"
    (tmp_path / "home").mkdir()
    return env


def _start_emulator(vendor: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict]:
    process = subprocess.Popen(
        [str(BIN / "oomnitza-connect"), "emulator", vendor, "--users", "20", "--seed", "1",
         "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        return process, json.loads(process.stdout.readline())
    except ValueError:
        _stop(process)
        raise


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def _start(command: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A documented command as its own process (exec: the signals reach it, not bash)."""
    return subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_until_interrupted(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run a documented long-running command; it must outlive a few seconds, then Ctrl-C."""
    process = _start(command, cwd, env)
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        code = _stop(process)
    else:  # it ended by itself: not what the page promises
        code = process.returncode or 1
    out, errors = process.communicate(timeout=15)
    if "Traceback" in errors:  # a Ctrl-C must end it quietly
        code = 1
    return code, out + errors


def _run_emulator_command(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run a documented ``oomnitza-connect emulator`` until it listens, then Ctrl-C."""
    process = _start(command, cwd, env)
    assert process.stdout is not None
    first = process.stdout.readline()
    code = _stop(process)
    rest, errors = process.communicate(timeout=15)
    if not first:
        return code or 1, errors
    return code, first + rest + errors


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_documented_commands_run(page: Path, tmp_path: Path) -> None:
    env = _environment(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    emulators: list[subprocess.Popen[str]] = []
    try:
        credentials = CredentialStore(tmp_path / "oc-home", keyring_backend=False, environ={})
        for name, vendor in _page_credentials(page).items():
            process, described = _start_emulator(vendor, env)
            emulators.append(process)
            data = {**described["credential"], "name": name}
            credentials.save(_from_data(data, source="docs-test"))
            for variable in DUMMY_VARIABLES:  # a token the page reads, for this vendor
                if variable.startswith(vendor.upper()) and variable.endswith("TOKEN"):
                    env[variable] = data.get("token") or env[variable]
        cwd = work
        for line, code, mode in _marked_shell_blocks(page):
            if mode == "skip":
                continue
            for command in _commands(code):
                where = f"{page.relative_to(ROOT)} line {line}: {command}"
                words = shlex.split(command, comments=True)
                if words[:2] == ["pip", "install"]:
                    continue
                if words[0] == "cd" and len(words) == 2:
                    cwd = Path(os.path.expanduser(words[1].replace("~", env["HOME"], 1)))
                    continue
                if words[0] == "export" and len(words) == 2 and "=" in words[1]:
                    name, _, value = words[1].partition("=")
                    env[name] = value
                    continue
                expected = int(m.group(1)) if (m := EXPECTED_EXIT.search(command)) else 0
                if mode == "interrupt":
                    expected = 130
                    returncode, output = _run_until_interrupted(command, cwd, env)
                elif words[:2] == ["oomnitza-connect", "emulator"]:
                    returncode, output = _run_emulator_command(command, cwd, env)
                else:
                    result = subprocess.run(
                        ["bash", "-o", "pipefail", "-c", command],
                        cwd=cwd,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    returncode, output = result.returncode, result.stdout + result.stderr
                assert returncode == expected, (
                    f"the example at {where} exits {returncode}, not {expected}:\n{output[-3000:]}"
                )
    finally:
        for process in emulators:
            _stop(process)
