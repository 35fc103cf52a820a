"""The Webex presets through ``oomnitza-connect presets run``: the same engine as Python."""

from __future__ import annotations

import json

from click.testing import CliRunner
from oomnitza_connect_webex.emulator import SPECIAL_KINDS, WebexFault
from oomnitza_connect_webex.people import create_user
from oomnitza_connect_webex.workflows import run_user_role
from webex_support import fast_options

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.cli import main


def _cli(monkeypatch, tmp_path, org, *args: str):
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    CredentialStore(home=tmp_path, keyring_backend=False).save(org.test_credential("webex-cli"))
    return CliRunner().invoke(main, ["presets", "run", "webex", *args, "--credential", "webex-cli"])


def _calls(org, endpoint: str) -> int:
    return sum(1 for r in org.requests if r.endpoint == endpoint)


def test_create_user_on_the_cli_finds_the_person_a_false_400_created(
    webex_plugin_registered, emulator, tmp_path, monkeypatch
) -> None:
    emulator.faults.add(WebexFault.created_but_400(), endpoint="people.create")
    new = ["--var", "email=false.400@example.com", "--var", "first_name=Fal", "--var",
           "last_name=Se", "--db", str(tmp_path / "people.db"), "--json"]  # fmt: skip
    first = _cli(monkeypatch, tmp_path, emulator, "Create User", *new)
    assert first.exit_code == 0, first.output
    result = json.loads(first.output)
    assert result["ok"] is True
    assert result["existing"] is False
    assert "400" in result["despite_error"]
    person_id = result["mapped"]["Webex User Id"]
    assert emulator.person(emulator.index_of(person_id))["emails"] == ["false.400@example.com"]
    assert _calls(emulator, "people.create") == 1
    # Looked up before the POST and again after its 400.
    assert _calls(emulator, "people.list") == 2

    again = _cli(monkeypatch, tmp_path, emulator, "Create User", *new)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["existing"] is True
    assert json.loads(again.output)["mapped"]["Webex User Id"] == person_id
    assert _calls(emulator, "people.create") == 1  # never sent twice

    shown = _cli(monkeypatch, tmp_path, emulator, "Create User", *new[:-1])
    assert "exists already" in shown.output
    assert "POST was not sent" in shown.output


def test_create_user_in_python_goes_through_the_same_look_up(emulator, session) -> None:
    emulator.faults.add(WebexFault.created_but_400(), endpoint="people.create")
    made = create_user(session, email="py.400@example.com", first_name="Py", last_name="Thon")
    assert made.created
    assert "400" in (made.despite_error or "")
    assert made.id == emulator.person_ids()[-1]
    assert _calls(emulator, "people.create") == 1


def test_a_create_that_really_failed_is_reported_failed(
    webex_plugin_registered, emulator, tmp_path, monkeypatch
) -> None:
    bad = ["--var", "email=not-an-address", "--var", "first_name=", "--var", "last_name="]
    ran = _cli(monkeypatch, tmp_path, emulator, "Create User", *bad, "--db", str(tmp_path / "p.db"))
    assert ran.exit_code == 1, ran.output
    assert "400" in ran.output
    assert "exists" not in ran.output


def test_the_user_role_preset_stores_role_names_as_the_workflow_does(
    connector, tmp_path, monkeypatch
) -> None:
    from oomnitza_connect_webex.emulator import WebexEmulator
    from test_webex_workflows import NOW  # the workflow tests' synced org

    from oomnitza_connect.models import IntegrationSettings, SyncStatus, UserSelection
    from oomnitza_connect.store.sqlite import SQLiteStore
    from oomnitza_connect.sync.engine import run_sync

    with WebexEmulator(users=30, seed=3, now=NOW, enforce_rate_limits=False) as org:
        settings = IntegrationSettings(
            name="webex-roles",
            vendor="webex",
            credential="webex-cli",
            selection=UserSelection.USERS_AND_SAAS,
            sync_key="Webex User Id",
            default_role="Employee",
        )
        db = tmp_path / "roles.db"
        with SQLiteStore(db) as store:
            done = run_sync(
                settings, credential=org.test_credential(), store=store, options=fast_options(org)
            )
            assert done.status is SyncStatus.SUCCEEDED, done.message
        admin_email = org.person(0)["emails"][0]
        user_admin = SPECIAL_KINDS.index("user_admin")
        ran = _cli(monkeypatch, tmp_path, org, "User Role", "--where", "true", "--linked-only",
                   "--db", str(db))  # fmt: skip
        assert ran.exit_code == 0, ran.output
        assert _calls(org, "roles.list") == 1  # once for the whole run
        with SQLiteStore(db) as store:
            by_preset = {a.vendor_user_id: a for a in store.iter_saas_users(vendor="webex")}
            with connector.authenticate(
                org.test_credential(), {}, options=fast_options(org)
            ) as session:
                run_user_role(session, store)
            by_workflow = {a.vendor_user_id: a for a in store.iter_saas_users(vendor="webex")}
    admin = by_preset[org.person_id(0)]
    assert admin.role == "Full Administrator"
    assert admin.fields["role_names"] == ["Full Administrator"]
    assert admin.fields["role_ids"] == [org.role_id("full_admin")]
    assert by_preset[org.person_id(user_admin)].role == "User and Device Administrator"
    assert admin_email in ran.output
    # The workflow stores the very same values.
    for person_id, account in by_preset.items():
        assert by_workflow[person_id].role == account.role
        assert by_workflow[person_id].fields == account.fields


READ_ONLY = ("id", "created", "lastModified", "status", "lastActivity", "type", "invitePending")


def _last_put(org) -> dict:
    return [r for r in org.requests if r.endpoint == "people.update"][-1].json()


def test_update_user_sends_only_writable_fields_from_the_cli_and_from_python(
    webex_plugin_registered, emulator, session, tmp_path, monkeypatch
) -> None:
    from oomnitza_connect_webex.emulator import WRITABLE_FIELDS
    from oomnitza_connect_webex.people import update_user

    person_id = emulator.person_ids()[16]
    department = emulator.person(16)["department"]
    user = ["--var", f"webex_user_id={person_id}", "--db", str(tmp_path / "p.db")]
    names = ["--var", "first_name=Cli", "--var", "last_name=Named"]
    ran = _cli(monkeypatch, tmp_path, emulator, "Update User", *user, *names)
    assert ran.exit_code == 0, ran.output
    from_cli = _last_put(emulator)
    update_user(session, person_id, {"firstName": "Py", "lastName": "Named", "displayName": "Py N"})
    from_python = _last_put(emulator)
    for body in (from_cli, from_python):
        assert not set(body) & set(READ_ONLY), body
        assert set(body) <= set(WRITABLE_FIELDS)
        assert isinstance(body["loginEnabled"], bool)
        assert body["department"] == department  # read and merged, not lost
    # One path: the same fields go back whichever way the update was asked for.
    assert set(from_cli) == set(from_python)
    assert emulator.person(16)["displayName"] == "Py N"


def test_update_user_explains_webex_400_on_the_cli_as_in_python(
    webex_plugin_registered, emulator, tmp_path, monkeypatch
) -> None:
    person_id = emulator.person_ids()[17]
    emulator.update_person(person_id, displayName=None)
    user = ["--var", f"webex_user_id={person_id}", "--db", str(tmp_path / "p.db")]
    body = ["--override-body", '{"title": "Lead"}']
    ran = _cli(monkeypatch, tmp_path, emulator, "Update User", *user, *body)
    assert ran.exit_code == 1, ran.output
    assert "displayName" in ran.output
    assert "replaces the whole person" in ran.output


def test_user_role_runs_by_webex_user_id_or_email_on_the_cli_and_in_python(
    connector, tmp_path, monkeypatch
) -> None:
    from oomnitza_connect_webex.emulator import WebexEmulator

    from oomnitza_connect.models import IntegrationSettings, SyncStatus, UserSelection
    from oomnitza_connect.presets.engine import get_preset, run_preset
    from oomnitza_connect.store.sqlite import SQLiteStore
    from oomnitza_connect.sync.engine import run_sync

    with WebexEmulator(users=20, seed=8, enforce_rate_limits=False) as org:
        settings = IntegrationSettings(
            name="webex-one", vendor="webex", credential="webex-cli",
            selection=UserSelection.USERS_AND_SAAS, sync_key="Webex User Id",
            default_role="Employee",
        )  # fmt: skip
        db = tmp_path / "one.db"
        with SQLiteStore(db) as store:
            done = run_sync(
                settings, credential=org.test_credential(), store=store, options=fast_options(org)
            )
            assert done.status is SyncStatus.SUCCEEDED, done.message
        admin_id = org.person_id(0)
        user_admin = SPECIAL_KINDS.index("user_admin")
        by_id = _cli(monkeypatch, tmp_path, org, "User Role", "--var", f"webex_user_id={admin_id}",
                     "--db", str(db), "--json")  # fmt: skip
        assert by_id.exit_code == 0, by_id.output
        assert json.loads(by_id.output)["mapped"]["role"] == "Full Administrator"
        email = org.person(user_admin)["emails"][0]
        by_email = _cli(monkeypatch, tmp_path, org, "User Role", "--var", f"email={email}",
                        "--db", str(db))  # fmt: skip
        assert by_email.exit_code == 0, by_email.output
        with SQLiteStore(db) as store:
            accounts = {a.vendor_user_id: a for a in store.iter_saas_users(vendor="webex")}
            assert accounts[admin_id].role == "Full Administrator"
            assert accounts[org.person_id(user_admin)].role == "User and Device Administrator"
            runs = [r for r in store.iter_workflow_runs() if r.preset == "User Role"]
            assert {r.person_id for r in runs} == {
                accounts[admin_id].person_id,
                accounts[org.person_id(user_admin)].person_id,
            }
            # Python: the same call, the same stored values.
            readonly = SPECIAL_KINDS.index("readonly_admin")
            with connector.authenticate(
                org.test_credential(), {}, options=fast_options(org)
            ) as session:
                preset = get_preset("webex", "User Role")
                result = run_preset(
                    session, preset, variables={"webex_user_id": org.person_id(readonly)},
                    store=store,
                )  # fmt: skip
                assert result.ok, result.error
                stored = {a.vendor_user_id: a for a in store.iter_saas_users(vendor="webex")}
                assert stored[org.person_id(readonly)].role == "Readonly Administrator"
                # Without a store the values are only reported.
                alone = run_preset(session, preset, variables={"webex_user_id": admin_id})
                assert alone.ok, alone.error
                assert alone.mapped["role_names"] == ["Full Administrator"]
