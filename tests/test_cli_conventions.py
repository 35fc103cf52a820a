"""Every command of the command line keeps one output convention (docs/cli.md, "Output"):
``--json`` where it prints data, short help lines that are never cut, plain output when
standard output is not a terminal, and a failed sync's reason said once."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sync_support import acme_for_the_cli, cli_in_a_child, write_integration

import oomnitza_connect.cli as cli_package
from oomnitza_connect.cli import declared_plugin_commands, main
from oomnitza_connect.plugins import LOAD_ENTRY_POINTS_ENV

SHORT_HELP_LIMIT = 50
"""Short help fits `--help` on an 80-column terminal beside the longest command name."""

NO_DATA = {
    "auth login": "prints the URL to open, then stores the tokens",
    "credentials add": "stores a credential",
    "credentials remove": "removes a credential",
    "integrations init": "prints an integration file (TOML) to edit, or writes it",
    "new-plugin": "creates a package directory",
    "worker": "runs a Celery worker (Celery's own output)",
    "beat": "runs Celery beat (Celery's own output)",
    "browse": "serves the store in a web browser (Datasette's own output)",
    "webex user-role": "updates the store and says how many",
}
"""Commands that print no data: what they do instead."""

JSON_ONLY = {"sessions plan": "a plan is JSON lines, whatever the terminal"}
"""Commands whose data is JSON already, so they need no --json."""


def _tree() -> dict[str, click.Command]:
    """Every command, by its path (``sessions list``), plugins' declared commands included."""
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        found[path] = command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    for name, command in main.commands.items():
        walk(command, name)
    # Under pytest entry points are off; the installed plugins' commands are read anyway.
    switch = os.environ.pop(LOAD_ENTRY_POINTS_ENV, None)
    try:
        declared = declared_plugin_commands()
    finally:
        if switch is not None:
            os.environ[LOAD_ENTRY_POINTS_ENV] = switch
    for name, (_, _, entry_point) in declared.items():
        walk(entry_point.load(), name)
    return found


TREE = _tree()
LEAVES = sorted(path for path, command in TREE.items() if not isinstance(command, click.Group))


def test_the_tree_is_walked_whole() -> None:
    assert {"sync", "sessions list", "schedule show", "people", "emulator", "demo"} <= set(LEAVES)
    assert "webex inactive-users" in LEAVES  # a plugin's declared commands too
    assert set(NO_DATA) <= set(LEAVES), "a command listed in NO_DATA no longer exists"


@pytest.mark.parametrize("path", sorted(TREE))
def test_short_help_is_short_and_never_cut(path: str) -> None:
    command = TREE[path]
    full = command.get_short_help_str(10_000)
    assert full, f"'{path}' has no help"
    assert len(full) <= SHORT_HELP_LIMIT, f"'{path}': {full!r} is longer than {SHORT_HELP_LIMIT}"
    assert command.get_short_help_str(SHORT_HELP_LIMIT) == full
    assert full.count("(") == full.count(")"), f"'{path}': {full!r}"
    assert not full.endswith("..."), f"'{path}': {full!r}"


_MARKUP = re.compile(r"``|:(?:class|func|meth|mod|attr|data|exc):`")


LEDGER_COMMANDS = sorted(
    p
    for p, c in TREE.items()
    if any(o.name == "ledger_url" or "--ledger" in getattr(o, "opts", ()) for o in c.params)
)


def test_ledger_help_keeps_the_password_off_the_command_line() -> None:
    assert {"people", "sessions list", "worker"} <= set(LEDGER_COMMANDS)
    for path in LEDGER_COMMANDS:
        command = TREE[path]
        shown = " ".join(command.get_help(click.Context(command, info_name=path)).split())
        assert not re.search(r"postgres(?:ql)?://[^@\s]*:[^@\s]*@", shown), path
        assert "$PGPASSWORD" in shown, path
        assert "~/.pgpass" in shown, path


@pytest.mark.parametrize("path", sorted(TREE))
def test_help_is_plain_text_without_rst_markup(path: str) -> None:
    command = TREE[path]
    shown = command.get_help(click.Context(command, info_name=path))
    assert shown.strip()
    assert not _MARKUP.search(shown), f"'{path} --help' shows reST markup:\n{shown}"


@pytest.mark.parametrize("path", LEAVES)
def test_a_command_that_prints_data_has_json(path: str) -> None:
    options = {
        opt: param
        for param in TREE[path].params
        if isinstance(param, click.Option)
        for opt in param.opts
    }
    if path in NO_DATA:
        return
    if path in JSON_ONLY:
        assert "JSON" in TREE[path].get_short_help_str(10_000)
        return
    assert "--json" in options, f"'{path}' prints data but has no --json"
    flag = options["--json"]
    assert flag.is_flag
    assert flag.name == "as_json"


def test_people_keeps_format_as_a_deprecated_alias() -> None:
    fmt = next(p for p in TREE["people"].params if "--format" in getattr(p, "opts", ()))
    assert "DEPRECATED" in (fmt.help or "")


def test_command_modules_draw_tables_only_through_the_output_module() -> None:
    # A table or console built elsewhere would keep borders and cut cells in a pipe.
    folder = Path(cli_package.__file__).parent
    for module in folder.glob("*.py"):
        if module.name in ("output.py", "progress.py"):
            continue
        text = module.read_text(encoding="utf-8")
        assert not re.search(r"\b(Table|Console)\(", text), module.name
        assert "rich.table" not in text, module.name


BOX_OR_CUT = re.compile("[\u2500-\u257f\u2026]|\x1b\\[")
"""Box-drawing characters, an ellipsis (a cut cell) or a terminal escape."""


@pytest.fixture
def synced(tmp_path, monkeypatch):
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=12, per_page=10) as emulator:
        path = write_integration(tmp_path, base_url=emulator.base_url)
        db = tmp_path / "cli.db"
        runner = CliRunner()
        ran = runner.invoke(main, ["sync", str(path), "--db", str(db)], catch_exceptions=False)
        assert ran.exit_code == 0, ran.output
        launched = runner.invoke(
            main, ["integrations", "launch", str(path), "--db", str(db), "--no-run"]
        )
        assert launched.exit_code == 0, launched.output
        yield emulator, path, db


def _piped(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_piped_tables_are_plain_and_their_json_parses(synced) -> None:
    _, path, db = synced
    long_name = "x" * 130  # wider than any terminal: must not be cut in a pipe
    file = path.with_name("long.toml")
    file.write_text(path.read_text().replace('name = "acme-main"', f'name = "{long_name}"'))
    assert _piped("integrations", "launch", str(file), "--db", str(db), "--no-run").exit_code == 0
    tables = [
        ("sessions", "list", "--db", str(db)),
        ("integrations", "list", "--db", str(db)),
        ("people", "--db", str(db)),
        ("mapping", "suggest", "acme"),
        ("schedule", "show", "--db", str(db)),
        ("credentials", "list"),
        ("plugins",),
    ]
    for args in tables:
        result = _piped(*args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout.strip(), args
        assert not BOX_OR_CUT.search(result.stdout), (args, result.stdout)
        assert all(line == line.rstrip() for line in result.stdout.splitlines()), args
        as_json = _piped(*args, "--json")
        assert as_json.exit_code == 0, (args, as_json.output)
        json.loads(as_json.stdout)
    listed = _piped("integrations", "list", "--db", str(db)).stdout
    assert long_name in listed
    assert "acme-main" in _piped("schedule", "show", "--db", str(db)).stdout
    shown = json.loads(_piped("schedule", "show", "--db", str(db), "--json").stdout)
    assert {row["integration"] for row in shown} == {"acme-main", long_name}
    assert all(
        set(row) == {"integration", "schedule", "last_run", "next_run", "due", "problem"}
        for row in shown
    )


def test_people_json_and_the_deprecated_format(synced) -> None:
    _, _, db = synced
    new = json.loads(_piped("people", "--db", str(db), "--json").stdout)
    old = _piped("people", "--db", str(db), "--format", "json")
    assert json.loads(old.stdout) == new
    assert len(new) == 12
    assert "--format is deprecated: use --json or --csv" in old.stderr
    assert "output_format" not in old.stderr  # the option typed, not the parameter
    assert _piped("people", "--db", str(db), "--json", "--csv").exit_code == 2


def test_schedule_run_json_is_one_line_per_run(synced) -> None:
    _, path, db = synced
    result = _piped("schedule", "run", str(path), "--db", str(db), "--once", "--json")
    lines = result.stdout.splitlines()
    runs = [json.loads(line) for line in lines]
    # acme-main synced minutes ago: a daily schedule is not due yet.
    assert runs == []
    assert "nothing is due" in result.stderr


def test_a_failed_sync_says_why_once(synced) -> None:
    emulator, path, db = synced
    emulator.fail_after_page = 0
    result = _piped("sync", str(path), "--db", str(db))
    assert result.exit_code == 1
    reason = "Internal Server Error on GET users (HTTP 500)"
    assert result.output.count(reason) == 1, result.output
    as_json = _piped("sync", str(path), "--db", str(db), "--json")
    assert as_json.exit_code == 1
    session = json.loads(as_json.stdout)
    assert session["status"] == "failed"
    assert reason in session["message"]
    assert as_json.output.count(reason) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["sync"],
        ["sync", "--json"],
        ["schedule", "run", "--once"],
        ["schedule", "run", "--once", "--json"],
    ],
    ids=" ".join,
)
def test_a_failed_run_says_why_once_in_the_real_command(tmp_path, monkeypatch, command) -> None:
    # In a child process the engine's log line would show, as it does for a user.
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=3, per_page=10) as emulator:
        emulator.fail_after_page = 0
        path = write_integration(tmp_path, base_url=emulator.base_url)
        result = cli_in_a_child(*command, path, "--db", tmp_path / "store.db")
        verbose = cli_in_a_child("--verbose", *command, path, "--db", tmp_path / "verbose.db")
    assert result.returncode == 1, result.stderr
    reason = "Internal Server Error on GET users (HTTP 500)"
    said = result.stdout + result.stderr
    assert said.count(reason) == 1, said
    assert reason in result.stdout  # in the run's summary, not in a log line
    if "--json" in command:
        # sync prints one document; schedule run one line per run.
        run = json.loads(result.stdout if command[0] == "sync" else result.stdout.splitlines()[-1])
        assert reason in run["message"]
    # --verbose keeps the engine's own line, for whoever reads the log.
    assert f"failed: acme: {reason}" in verbose.stderr


def test_demo_json_lists_every_run(tmp_path) -> None:
    # Under pytest no vendor plugin is loaded: the demo uses the test kit's generic vendor.
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--users", "6", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["store"] == str(db)
    assert summary["succeeded"] is True
    runs = [(r["destination"], r["run"], r["status"]) for r in summary["runs"]]
    assert runs == [
        ("sqlite", "1st sync", "succeeded"),
        ("sqlite", "2nd, unchanged", "succeeded"),
        ("oomnitza", "1st sync", "succeeded"),
        ("oomnitza", "2nd, unchanged", "succeeded"),
    ]
    assert summary["runs"][1]["counts"]["created"] == 0
    piped = CliRunner().invoke(main, ["demo", "--users", "6", "--db", str(db)])
    assert piped.exit_code == 0, piped.output
    assert not BOX_OR_CUT.search(piped.stdout), piped.stdout
    assert max(len(line) for line in piped.stdout.splitlines()) < 400
    assert "People from Generic SaaS (first 6 of " in piped.stdout  # table titles stay


def test_emulator_json_is_one_line_that_works(tmp_path) -> None:
    import signal
    import subprocess
    import sys

    import requests

    command = [
        sys.executable, "-c", "from oomnitza_connect.cli import main; main()",
        "emulator", "oomnitza", "--json",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
        assert described["vendor"] == "oomnitza"
        credential = described["credential"]
        answer = requests.get(
            f"{described['base_url']}/api/v2/mappings",
            headers={credential["header_name"]: credential["token"]},
            timeout=5,
        )
        assert answer.status_code == 200
        assert described["login"]["username"]  # Oomnitza's login and password too
        (variable,) = described["credential_env"]
        assert variable.startswith("OOMNITZA_CONNECT_CREDENTIAL_")
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors


@pytest.mark.parametrize(
    "extra",
    [(), ("--json",), ("--csv",), ("plugins",)],
    ids=["table", "json", "csv", "plugins"],
)
def test_a_closed_pipe_ends_the_command_quietly(synced, extra) -> None:
    """``oomnitza-connect people | head -1``: no traceback, no error line, exit 141."""
    import subprocess
    import sys

    _, _, db = synced
    # A reader that has gone already, as `head` has once it has its line: the first
    # write meets a closed pipe whatever the size of the output.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from oomnitza_connect.cli import main; main()",
             *(extra if extra and not extra[0].startswith("-") else
               ("people", "--db", str(db), *extra))],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141


def test_the_emulator_says_how_to_stop_it_after_everything_there_is_to_copy() -> None:
    # Oomnitza's login and password came after "Press Ctrl-C to stop.".
    import signal
    import subprocess
    import sys

    command = [
        sys.executable, "-u", "-c", "from oomnitza_connect.cli import main; main()",
        "emulator", "oomnitza",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # Generous: on a loaded CI machine 10 s once ran out (what the test checks
            # is the order of the lines, not how fast the emulator stops).
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert lines[-1] == "Press Ctrl-C to stop."
    assert any(line.startswith("login: ") for line in lines[:-1])
