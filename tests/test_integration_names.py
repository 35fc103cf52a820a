"""One name, one integration per store: a second file under a launched (or synced) name
is refused, so two integrations cannot share sessions and mark each other's people
vanished; `integrations init` picks a name the store does not have."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sync_support import acme_for_the_cli, write_integration

from oomnitza_connect.api import launch_integration
from oomnitza_connect.cli import main
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import IntegrationSettings
from oomnitza_connect.store.base import IntegrationEntry
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.integrations import (
    free_integration_name,
    ledger_problems,
    render_integration_template,
)


@pytest.fixture
def acme(tmp_path, monkeypatch):
    with acme_for_the_cli(tmp_path / "home", monkeypatch, users=6, per_page=10) as emulator:
        yield emulator


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def two_files(tmp_path, base_url):
    one = write_integration(tmp_path, base_url=base_url)
    other = tmp_path / "other" / "acme.toml"
    other.parent.mkdir()
    other.write_text(one.read_text())
    return one, other


def test_launching_a_second_file_under_a_launched_name_needs_replace(tmp_path, acme):
    db = tmp_path / "names.db"
    one, other = two_files(tmp_path, acme.base_url)
    assert invoke("integrations", "launch", one, "--db", db, "--no-run").exit_code == 0

    result = invoke("integrations", "launch", other, "--db", db, "--no-run")
    assert result.exit_code == 2
    assert f"{other}: key 'name'" in result.output
    assert f"already launched from {one.resolve()}" in result.output
    assert "--replace" in result.output
    with SQLiteStore(db) as store:
        assert [e.source for e in store.list_integrations()] == [str(one.resolve())]

    # Launching the same file again is an update, not a conflict.
    assert invoke("integrations", "launch", one, "--db", db, "--no-run").exit_code == 0
    result = invoke("integrations", "launch", other, "--db", db, "--no-run", "--replace")
    assert result.exit_code == 0, result.output
    with SQLiteStore(db) as store:
        assert [e.source for e in store.list_integrations()] == [str(other.resolve())]


def test_syncing_a_second_file_under_a_synced_name_is_refused(tmp_path, acme):
    db = tmp_path / "names.db"
    one, other = two_files(tmp_path, acme.base_url)
    assert invoke("sync", one, "--db", db).exit_code == 0
    with SQLiteStore(db) as store:
        entries = store.list_integrations()
        assert [(e.name, e.active, e.source) for e in entries] == [
            ("acme-main", False, str(one.resolve()))
        ]
        sessions = len(store.list_sessions())

    result = invoke("sync", other, "--db", db)
    assert result.exit_code == 2
    assert f"already launched from {one.resolve()}" in result.output
    with SQLiteStore(db) as store:
        assert len(store.list_sessions()) == sessions  # nothing ran

    # The first file still syncs, and a launch of it makes the same entry active.
    assert invoke("sync", one, "--db", db).exit_code == 0
    assert invoke("integrations", "launch", one, "--db", db, "--no-run").exit_code == 0
    listed = json.loads(invoke("integrations", "list", "--json", "--db", db).output)
    assert [(e["name"], e["active"]) for e in listed] == [("acme-main", True)]


def test_a_copy_of_a_launched_file_may_test_run_under_its_name(tmp_path, acme):
    db = tmp_path / "names.db"
    one, other = two_files(tmp_path, acme.base_url)
    assert invoke("integrations", "launch", one, "--db", db, "--no-run").exit_code == 0
    assert invoke("sync", one, "--db", db).exit_code == 0
    with SQLiteStore(db) as store:
        people = store.count_people()

    # A change tried in a copy before it replaces the launched file: planned, not written.
    other.write_text(
        other.read_text().replace('default_role = "Employee"', 'default_role = "Staff"')
    )
    result = invoke("sync", other, "--db", db, "--test-run")
    assert result.exit_code == 0, result.output
    with SQLiteStore(db) as store:
        assert store.count_people() == people
        assert {p.fields.get("role") for p in store.iter_people()} == {"Employee"}
        # The launched file keeps the name; the copy claimed nothing.
        assert [e.source for e in store.list_integrations()] == [str(one.resolve())]
    # A real run of the copy is still refused.
    result = invoke("sync", other, "--db", db)
    assert result.exit_code == 2
    assert f"already launched from {one.resolve()}" in result.output


def test_a_name_the_store_has_for_another_vendor_is_refused(tmp_path):
    settings = IntegrationSettings(name="main", vendor="slack", credential="slack")
    with SQLiteStore(tmp_path / "v.db") as store:
        assert ledger_problems(settings, store) == []
        store.save_integration(
            IntegrationEntry(name="main", vendor="intercom", active=True, schedule="daily")
        )
        problems = ledger_problems(settings, store, replace=True)
    assert problems == [
        "the store already has an integration 'main' that syncs intercom, not slack: "
        'give this one another name (name = "...")'
    ]


def test_run_sync_refuses_a_name_the_store_has_for_another_vendor(tmp_path, acme):
    from sync_support import credential

    from oomnitza_connect.sync.engine import run_sync
    from oomnitza_connect.sync.integrations import load_integration

    settings = load_integration(write_integration(tmp_path, base_url=acme.base_url))
    with SQLiteStore(tmp_path / "run.db") as store:
        store.save_integration(
            IntegrationEntry(name="acme-main", vendor="slack", active=True, schedule="daily")
        )
        with pytest.raises(ConfigurationError) as raised:
            run_sync(settings, credential=credential(acme.base_url), store=store)
        assert "integration 'acme-main' that syncs slack, not acme" in str(raised.value)
        assert store.list_sessions(integration="acme-main") == []  # nothing ran


def test_launch_integration_in_python_has_the_same_check(tmp_path, acme):
    one, other = two_files(tmp_path, acme.base_url)
    with SQLiteStore(tmp_path / "py.db") as store:
        launch_integration(one, store, run=False)
        with pytest.raises(ConfigurationError) as raised:
            launch_integration(other, store, run=False)
        assert raised.value.key_path == "name"
        assert raised.value.file == str(other)
        launch_integration(other, store, run=False, replace=True)
        assert [e.source for e in store.list_integrations()] == [str(other.resolve())]


def test_init_picks_a_name_the_store_does_not_have(tmp_path, acme):
    db = tmp_path / "names.db"
    first = tmp_path / "first.toml"
    assert invoke("integrations", "init", "acme", "-o", first, "--db", db).exit_code == 0
    assert 'name = "acme-main"' in first.read_text()
    assert not db.exists()  # init reads a store, never creates one

    with SQLiteStore(db) as store:
        store.save_integration(
            IntegrationEntry(name="acme-main", vendor="acme", active=True, schedule="daily")
        )
    text = invoke("integrations", "init", "acme", "--db", db).stdout
    assert 'name = "acme-2"' in text
    named = invoke("integrations", "init", "acme", "--db", db, "--name", "acme-eu").stdout
    assert 'name = "acme-eu"' in named


def test_free_names_count_up_past_the_taken_ones():
    assert free_integration_name("slack", []) == "slack-main"
    assert free_integration_name("slack", ["slack-main", "slack-2", "x"]) == "slack-3"
    from sync_support import ACME

    text = render_integration_template(ACME, taken=["acme-main"])
    assert 'name = "acme-2"' in text


def test_integration_template_in_python_skips_the_store_s_names(tmp_path, acme):
    from oomnitza_connect.api import integration_template

    with SQLiteStore(tmp_path / "t.db") as store:
        store.save_integration(
            IntegrationEntry(name="acme-main", vendor="acme", active=False, schedule="daily")
        )
        assert 'name = "acme-2"' in integration_template("acme", store=store)
    assert 'name = "acme-main"' in integration_template("acme")


def test_sync_refuses_a_rate_budget_for_an_endpoint_the_vendor_lacks(tmp_path):
    from oomnitza_connect_slack import vendor as slack

    from oomnitza_connect.plugins import register_plugin

    path = tmp_path / "slack.toml"
    path.write_text(
        'name = "s"\nvendor = "slack"\ncredential = "slack"\n'
        'default_role = "Employee"\nsync_key = "email"\n'
    )
    with register_plugin(slack):
        result = invoke("sync", path, "--db", tmp_path / "s.db", "--rate-budget", "users.lst=5")
    assert result.exit_code == 2
    assert "key '--rate-budget[0]': Slack has no endpoint 'users.lst'" in result.output
    assert "did you mean 'users.list'?" in result.output
    assert not (tmp_path / "s.db").exists()
