"""The Python API for scripts and notebooks, as imported from the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

import oomnitza_connect as oc
import oomnitza_connect.plugins
from oomnitza_connect.api import to_rows


@pytest.fixture
def acme():
    with register(), AcmeEmulator(users=9) as emulator:
        yield emulator


def register():
    return oc.plugins.register_plugin(AcmePlugin(per_page=4), name="acme-test")


def test_list_users_streams_records(acme):
    records = list(oc.list_users("acme", credential(acme.base_url), {"Acme.Tenant": "t"}))
    assert [r.id for r in records] == [f"A{i:06d}" for i in range(1, 10)]
    assert records[0].fields["login"] == "user1"


def test_list_users_takes_an_integration_for_its_base_url(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    first = next(oc.list_users(oc.get_connector("acme"), credential(), settings))
    assert first.fields["mail"] == "User1@Example.com"


def test_run_sync_and_read_back_through_open_store(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    with oc.open_store(tmp_path / "api.db") as store:
        session = oc.run_sync(settings, credential=credential(), store=store)
        assert session.status.value == "succeeded"
        assert [s.id for s in store.list_sessions()] == [session.id]
        people = list(store.iter_people(vendor="acme"))
    assert len(people) == 9
    rows = list(to_rows(people))
    assert rows[0]["email"] == "user1@example.com"
    assert rows[0]["sync_key"] == "email"
    session_row = next(to_rows([session]))
    assert (session_row["created"], session_row["status"]) == (9, "succeeded")


def test_open_store_defaults_to_oomnitza_connect_home(tmp_path, monkeypatch):
    monkeypatch.delenv("OOMNITZA_CONNECT_DB", raising=False)
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    with oc.open_store() as store:
        assert store.path == str(tmp_path / "oomnitza-connect.db")
    monkeypatch.setenv("OOMNITZA_CONNECT_DB", str(tmp_path / "elsewhere.db"))
    assert oc.default_db_path() == tmp_path / "elsewhere.db"


def test_to_dataframe_needs_the_pandas_extra(monkeypatch):
    records = [oc.VendorRecord(vendor="acme", id="1", fields={"login": "a"})]
    # A None entry in sys.modules makes `import pandas` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(oc.MissingExtraError, match=r"pip install oomnitza-connect\[pandas\]"):
        oc.to_dataframe(records)


def test_records_become_dataframes():
    # pandas is in the dev dependencies, so this runs the real conversion.
    records = [
        oc.VendorRecord(vendor="acme", id="1", fields={"login": "a", "mail": "a@x.test"}),
        oc.VendorRecord(vendor="acme", id="2", fields={"login": "b", "mail": "b@x.test"}),
    ]
    frame = oc.to_dataframe(records)
    assert list(frame["id"]) == ["1", "2"]
    assert list(frame["login"]) == ["a", "b"]
    assert set(frame["vendor"]) == {"acme"}


def test_suggest_mapping_is_exported(acme):
    assert {s.source: s.target for s in oc.suggest_mapping("acme")}["mail"] == "email"


TESTS = Path(__file__).parent


def _sync_in_a_script(tmp_path, base_url, *, configure_logging):
    """Run sync_support.py's one sync in a fresh interpreter, as a user's script would."""
    setup = "import logging; logging.basicConfig()\n" if configure_logging else ""
    script = (
        f"{setup}import runpy, sys\n"
        f"sys.argv = ['sync_support.py', *sys.argv[1:]]\n"
        f"runpy.run_path({str(TESTS / 'sync_support.py')!r}, run_name='__main__')\n"
    )
    integration = write_integration(tmp_path, base_url=base_url)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    env["OOMNITZA_CONNECT_LOAD_ENTRY_POINTS"] = "0"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "script.db"),
            base_url,
            str(integration),
            "50",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )


def test_a_script_that_configured_no_logging_hears_of_a_failed_run_only_from_the_session(
    tmp_path,
):
    with AcmeEmulator(users=3) as emulator:
        emulator.fail_after_page = 0
        quiet = _sync_in_a_script(tmp_path, emulator.base_url, configure_logging=False)
        logged = _sync_in_a_script(tmp_path, emulator.base_url, configure_logging=True)
    reason = "Internal Server Error on GET users (HTTP 500)"
    assert quiet.stdout.split() == ["failed"]
    # Python's last-resort handler would print the engine's error line here.
    assert reason not in quiet.stderr, quiet.stderr
    # A script that configures logging still gets the SDK's records.
    assert logged.stdout.split() == ["failed"]
    assert reason in logged.stderr, logged.stderr
