"""A whole sync of the emulated org, then the User Role and inactive-user workflows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from oomnitza_connect_webex.emulator import SPECIAL_KINDS, WebexEmulator
from oomnitza_connect_webex.workflows import (
    delete_inactive_users,
    find_inactive_users,
    run_user_role,
)
from webex_support import fast_options

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.cli import main
from oomnitza_connect.models import IntegrationSettings, SyncStatus, UserSelection
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def org():
    with WebexEmulator(users=60, seed=21, now=NOW, enforce_rate_limits=False) as running:
        yield running


@pytest.fixture
def synced(webex_plugin_registered, org, tmp_path):
    settings = IntegrationSettings(
        name="webex-e2e",
        vendor="webex",
        credential="webex-e2e",
        settings={"Webex.PageSize": "9"},
        selection=UserSelection.USERS_AND_SAAS,
        sync_key="Webex User Id",
        default_role="Employee",
    )
    store = SQLiteStore(tmp_path / "webex.db")
    session = run_sync(
        settings, credential=org.test_credential(), store=store, options=fast_options(org)
    )
    assert session.status is SyncStatus.SUCCEEDED, session.message
    yield store
    store.close()


def _plain_people(org: WebexEmulator) -> list[int]:
    """Indexes of ordinary people (not one of the special kinds, not bots)."""
    return [
        i
        for i in range(len(SPECIAL_KINDS), org.generated)
        if org.kind_of(i) == "person" and org.person(i)["type"] == "person"
    ]


def _kind_index(kind: str) -> int:
    return SPECIAL_KINDS.index(kind)


def test_the_sync_lands_everyone_but_bots(org, synced) -> None:
    people = {p.sync_value: p for p in synced.iter_people(vendor="webex")}
    bots = {pid for i, pid in enumerate(org.person_ids()) if org.person(i)["type"] == "bot"}
    assert bots
    assert set(people) == set(org.person_ids()) - bots
    admin = people[org.person_id(0)]
    assert admin.fields["email"] == admin.fields["username"] == org.person(0)["emails"][0]
    guest = org.person_id(_kind_index("appuser"))
    assert guest in people  # guests (appuser) are kept


def test_user_role_gives_saas_users_role_names_status_and_activity(connector, org, synced) -> None:
    session = connector.authenticate(org.test_credential(), {}, options=fast_options(org))
    with session:
        report = run_user_role(session, synced)
    accounts = {a.vendor_user_id: a for a in synced.iter_saas_users(vendor="webex")}
    assert report.updated == len(accounts)
    assert report.not_listed == 0
    admin = accounts[org.person_id(0)]
    assert admin.role == "Full Administrator"
    assert admin.fields["role_names"] == ["Full Administrator"]
    assert admin.fields["status"] == "active"
    hidden = accounts[org.person_id(_kind_index("status_hidden"))]
    assert hidden.fields["status"] is None
    assert hidden.fields["last_activity"] is None
    assert sum(1 for r in org.requests if r.endpoint == "roles.list") == 1
    runs = list(synced.iter_workflow_runs())
    assert sum(1 for run in runs if run.preset == "User Role") == len(accounts)


def test_inactive_users_are_a_dry_run_unless_confirmed(connector, org, synced) -> None:
    session = connector.authenticate(org.test_credential(), {}, options=fast_options(org))
    with session:
        run_user_role(session, synced)
        picked = list(find_inactive_users(synced, days=365, now=NOW))
        reasons = {u.vendor_user_id: u.reason for u in picked}
        assert reasons[org.person_id(_kind_index("long_inactive"))] == "inactive"
        assert reasons[org.person_id(_kind_index("never_signed_in"))] == "never"
        assert org.person_id(_kind_index("status_hidden")) not in reasons
        assert org.person_id(0) not in reasons
        cutoff = NOW - timedelta(days=365)
        assert all(u.last_activity is None or u.last_activity < cutoff for u in picked)

        dry = delete_inactive_users(session, synced, picked)
        assert all(r.dry_run and r.ok for r in dry)
        assert set(org.person_ids()) >= set(reasons)  # nobody was deleted

        done = delete_inactive_users(session, synced, picked, confirm=True)
    assert all(r.ok and not r.dry_run for r in done), [r.error for r in done]
    assert not set(reasons) & org.expected_user_ids()
    deletions = [r for r in synced.iter_workflow_runs() if r.preset == "Delete User"]
    assert sum(1 for r in deletions if not r.dry_run) == len(picked)
    assert sum(1 for r in deletions if r.dry_run) == len(picked)
    unknown = list(find_inactive_users(synced, days=365, now=NOW, include_unknown=True))
    assert org.person_id(_kind_index("status_hidden")) in {u.vendor_user_id for u in unknown}


def test_the_inactive_users_command_deletes_only_with_yes(org, synced, tmp_path, monkeypatch):
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    CredentialStore(home=tmp_path, keyring_backend=False).save(org.test_credential("webex-cli"))
    db = str(tmp_path / "webex.db")
    victim = org.person_id(_kind_index("long_inactive"))
    # The plugin is registered by the `synced` fixture.
    dry = CliRunner().invoke(
        main,
        ["webex", "inactive-users", "--days", "365", "--credential", "webex-cli", "--db", db],
    )
    assert dry.exit_code == 0, dry.output
    assert "Dry run" in dry.output
    assert org.person(_kind_index("long_inactive"))["emails"][0] in dry.output
    assert victim in org.expected_user_ids()
    real = CliRunner().invoke(
        main,
        ["webex", "inactive-users", "--days", "365", "--credential", "webex-cli",
         "--db", db, "--yes"],
    )  # fmt: skip
    role = CliRunner().invoke(main, ["webex", "user-role", "--credential", "webex-cli", "--db", db])
    assert real.exit_code == 0, real.output
    assert "Deleted" in real.output
    assert victim not in org.expected_user_ids()
    assert role.exit_code == 0, role.output
    assert "Webex SaaS users updated" in role.output


def test_user_role_isolates_a_bad_person_and_completes_the_rest(
    connector, org, synced, tmp_path, monkeypatch
) -> None:
    from oomnitza_connect.testing.emulator import Fault

    accounts = {a.vendor_user_id: a for a in synced.iter_saas_users(vendor="webex")}
    # One person Webex now sends malformed, and one the listing lacks whose look-up fails.
    malformed, unlisted = (org.person_id(i) for i in _plain_people(org)[:2])
    org.update_person(malformed, lastActivity="not a time")
    org.remove_person(unlisted)
    # After the who-am-I call (also people.get); a 403 is not retried.
    org.faults.add(Fault.server_error(status=403), endpoint="people.get", after=1, times=10)
    session = connector.authenticate(org.test_credential(), {}, options=fast_options(org))
    with session:
        report = run_user_role(session, synced)
    failed = {f.vendor_user_id: f for f in report.failed}
    assert set(failed) == {malformed, unlisted}
    assert "last_activity" in failed[malformed].reason
    assert "looking the person up failed" in failed[unlisted].reason
    assert failed[malformed].person_id == accounts[malformed].person_id
    assert report.not_listed == 0
    assert report.updated == len(accounts) - 2
    after = {a.vendor_user_id: a for a in synced.iter_saas_users(vendor="webex")}
    assert after[org.person_id(0)].role == "Full Administrator"
    runs = [r for r in synced.iter_workflow_runs() if r.preset == "User Role"]
    assert sum(1 for r in runs if r.ok) == report.updated
    assert {r.error for r in runs if not r.ok} == {f.reason for f in report.failed}


def test_a_person_deleted_at_webex_is_not_listed_not_failed(connector, org, synced) -> None:
    accounts = list(synced.iter_saas_users(vendor="webex"))
    org.remove_person(org.person_id(_plain_people(org)[0]))
    with connector.authenticate(org.test_credential(), {}, options=fast_options(org)) as session:
        report = run_user_role(session, synced)
    assert report.failed == ()
    assert report.not_listed == 1
    assert report.updated == len(accounts) - 1


def test_the_user_role_command_names_the_failed_person_and_exits_1(
    org, synced, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    CredentialStore(home=tmp_path, keyring_backend=False).save(org.test_credential("wx"))
    bad = org.person_id(_plain_people(org)[0])
    org.update_person(bad, lastActivity="not a time")
    db = str(tmp_path / "webex.db")  # the synced store's file
    ran = CliRunner().invoke(main, ["webex", "user-role", "--credential", "wx", "--db", db])
    assert ran.exit_code == 1, ran.output
    assert "1 failed" in ran.output
    assert f"failed: {bad}:" in ran.output


def test_the_inactive_users_command_prints_user_roles_failures_and_exits_1(
    org, synced, tmp_path, monkeypatch
) -> None:
    import json

    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    CredentialStore(home=tmp_path, keyring_backend=False).save(org.test_credential("wx"))
    bad = org.person_id(_plain_people(org)[0])
    org.update_person(bad, lastActivity="not a time")
    db = str(tmp_path / "webex.db")
    args = ["webex", "inactive-users", "--days", "365", "--credential", "wx", "--db", db]
    ran = CliRunner().invoke(main, args)
    assert ran.exit_code == 1, ran.output
    assert "User Role: 1 Webex SaaS users could not be updated" in ran.stderr
    assert f"failed: {bad}: its record could not be read or stored" in ran.stderr
    assert "Dry run" in ran.stdout  # the rest still ran
    as_json = CliRunner().invoke(main, [*args, "--json"])
    assert as_json.exit_code == 1
    [failure] = json.loads(as_json.stdout)["user_role_failed"]
    assert failure["webex_user_id"] == bad
    assert "last_activity" in failure["reason"]
    # With a failure, --yes deletes nobody: the list may be wrong.
    before = org.expected_user_ids()
    refused = CliRunner().invoke(main, [*args, "--yes"])
    assert refused.exit_code == 1
    assert "Nobody was deleted: User Role could not refresh 1 of them" in refused.stderr
    assert org.expected_user_ids() == before


def test_the_webex_commands_refuse_an_integration_into_oomnitza(
    webex_plugin_registered, tmp_path
) -> None:
    integration = tmp_path / "webex-oo.toml"
    integration.write_text(
        'name = "webex-oo"\nvendor = "webex"\ncredential = "wx"\n'
        'sync_key = "email"\ndefault_role = "Employee"\n'
        '[destination]\ntype = "oomnitza"\nurl = "https://acme.oomnitza.com"\n'
        'credential = "oz"\n[destination.roles]\nEmployee = 25\n'
    )
    for command in ("user-role", "inactive-users"):
        ran = CliRunner().invoke(main, ["webex", command, "--integration", str(integration)])
        assert ran.exit_code == 2, ran.output
        assert "syncs into Oomnitza, which keeps no fields of its own on a SaaS user" in (
            ran.output
        )
        assert 'presets run webex "User Role"' in ran.output
