"""Issue 14, defects 4 and 5, in the core: the sync engine reads each UnreadRecord inside
its per-record error handling, so a user no plugin code can read fails alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sync_support import VENDOR, AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.models import SyncStatus, UnreadRecord, VendorRecord
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.vendors.session import VendorSession


def read_acme_user(raw: Any) -> VendorRecord:
    # Written the way plugins are: it trusts the JSON, and fails on what it did not expect.
    hired = datetime.fromtimestamp(float(raw["hired"]), UTC)
    return VendorRecord(vendor=VENDOR, id=raw["id"], fields={**raw, "hired": hired}, raw=raw)


class LazyAcme(AcmePlugin):
    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:  # type: ignore[override]
        body = session.http.get_json("/api/users", params={"page": 1, "per_page": 100})
        return (UnreadRecord(VENDOR, user, read_acme_user) for user in body["users"])


def test_unreadable_and_unstorable_users_fail_alone(tmp_path: Any) -> None:
    with AcmeEmulator(users=8) as emulator, register_plugin(LazyAcme(), name="lazy-acme"):
        emulator.users[1]["hired"] = "1e20"  # OverflowError in datetime
        emulator.users[2]["hired"] = "soon"  # ValueError in float()
        del emulator.users[3]["id"]  # KeyError
        emulator.users[4]["full_name"] = "Lone \ud800 Surrogate"  # not storable as UTF-8
        settings = load_integration(write_integration(tmp_path))
        with SQLiteStore(tmp_path / "x.db") as store:
            session = run_sync(settings, credential=credential(emulator.base_url), store=store)
            synced = {p.fields["email"] for p in store.iter_people()}
    assert session.status is SyncStatus.COMPLETED_WITH_ERRORS
    assert session.counts.created == 4
    assert session.counts.failed == 4
    assert synced == {f"user{i}@example.com" for i in (1, 6, 7, 8)}
    reasons = {error.vendor_user_id: error.reason for error in session.errors}
    assert "OverflowError" in reasons["A000002"] or "out of range" in reasons["A000002"]
    assert "ValueError" in reasons["A000003"]
    assert "KeyError" in reasons[None]
    assert "not valid Unicode" in reasons["A000005"]


class ActiveAwareAcme(AcmePlugin):
    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:  # type: ignore[override]
        body = session.http.get_json("/api/users", params={"page": 1, "per_page": 100})
        return (
            VendorRecord(vendor=VENDOR, id=u["id"], fields=u, raw=u, active=u["active"])
            for u in body["users"]
        )


def rehire_integration(tmp_path: Any) -> Any:
    # The sync key is the vendor id; email is unique by the standard fields.
    text = write_integration(tmp_path).read_text()
    text = text.replace('sync_key = "email"', 'sync_key = "Acme User Id"\nfilters = []')
    (tmp_path / "acme.toml").write_text(text)
    return load_integration(tmp_path / "acme.toml")


@pytest.mark.parametrize("deleted_first", [True, False])
@pytest.mark.parametrize("batch_size", [1, 100])
def test_an_active_account_wins_a_unique_email_over_a_deactivated_one(
    tmp_path: Any, deleted_first: bool, batch_size: int
) -> None:
    with AcmeEmulator(users=6) as emulator, register_plugin(ActiveAwareAcme(), name="aa-acme"):
        old, new = (emulator.users[1], emulator.users[4])
        if not deleted_first:
            old, new = new, old
        old.update(active=False, login="rehired-old")
        new.update(mail=old["mail"], login="rehired")
        with SQLiteStore(tmp_path / "x.db") as store:
            session = run_sync(
                rehire_integration(tmp_path),
                credential=credential(emulator.base_url),
                store=store,
                batch_size=batch_size,
            )
            owner = store.find_person("email", old["mail"].lower())
            deactivated = store.find_person("Acme User Id", old["id"])
    assert owner is not None
    assert owner.fields["username"] == "rehired"
    # The deactivated account is still brought in, without the value it lost.
    assert deactivated is not None
    assert deactivated.fields["username"] == "rehired-old"
    assert deactivated.fields.get("email") is None
    assert session.errors == ()
    assert session.counts.created == 6


@pytest.mark.parametrize("gone", ["deactivated", "deleted from the vendor"])
def test_an_active_account_takes_a_unique_email_a_person_from_an_earlier_run_holds(
    tmp_path: Any, gone: str
) -> None:
    # Run 1 brought the old account in with the email; by run 2 it is deactivated
    # (or gone) and a re-hired person's new account, listed first, has the email.
    with AcmeEmulator(users=6) as emulator, register_plugin(ActiveAwareAcme(), name="aa-acme"):
        old = emulator.users[4]
        settings = rehire_integration(tmp_path)
        with SQLiteStore(tmp_path / "x.db") as store:
            first = run_sync(settings, credential=credential(emulator.base_url), store=store)
            assert first.counts.created == 6
            if gone == "deactivated":
                old.update(active=False)
            else:
                emulator.users.remove(old)
            emulator.users[0].update(mail=old["mail"], login="rehired")
            second = run_sync(settings, credential=credential(emulator.base_url), store=store)
            owner = store.find_person("email", old["mail"].lower())
            before = store.find_person("Acme User Id", old["id"])
            third = run_sync(settings, credential=credential(emulator.base_url), store=store)
    assert second.errors == ()
    assert owner is not None
    assert owner.fields["username"] == "rehired"
    assert before is not None
    assert before.fields.get("email") is None
    # Settled: the next run finds nothing to change and nothing to fail.
    assert third.errors == ()
    assert third.counts.updated == 0


def test_two_active_accounts_still_cannot_share_a_unique_email_across_runs(tmp_path: Any) -> None:
    with AcmeEmulator(users=4) as emulator, register_plugin(ActiveAwareAcme(), name="aa-acme"):
        settings = rehire_integration(tmp_path)
        with SQLiteStore(tmp_path / "x.db") as store:
            run_sync(settings, credential=credential(emulator.base_url), store=store)
            holder = emulator.users[3]
            emulator.users[0].update(mail=holder["mail"])
            second = run_sync(settings, credential=credential(emulator.base_url), store=store)
            owner = store.find_person("email", holder["mail"].lower())
    assert owner is not None
    assert owner.fields["Acme User Id"] == holder["id"]
    (error,) = second.errors
    assert error.vendor_user_id == emulator.users[0]["id"]
    assert "already belongs" in error.reason


class TeamListingAcme(AcmePlugin):
    """Lists two entries that are not users, as Intercom's old versions list teams."""

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:  # type: ignore[override]
        body = session.http.get_json("/api/users", params={"page": 1, "per_page": 100})
        session.skipped["a team, not a user"] += 2
        return (UnreadRecord(VENDOR, user, read_acme_user) for user in body["users"])


@pytest.mark.parametrize("test_run", [False, True])
def test_listed_entries_that_are_not_users_are_counted_as_skipped(
    tmp_path: Any, test_run: bool
) -> None:
    with AcmeEmulator(users=3) as emulator, register_plugin(TeamListingAcme(), name="team-acme"):
        settings = load_integration(write_integration(tmp_path))
        with SQLiteStore(tmp_path / "x.db") as store:
            reported: list[Any] = []
            session = run_sync(
                settings,
                credential=credential(emulator.base_url),
                store=store,
                test_run=test_run,
                progress=reported.append,
            )
            stored = store.get_session(session.id, with_payload=True)
    assert session.status is SyncStatus.SUCCEEDED, session.message
    assert (session.counts.skipped, session.counts.failed) == (2, 0)
    assert reported[-1].counts.skipped == 2  # the last progress report has them too
    assert not session.errors
    assert stored is not None
    skips = [entry for entry in stored.payload if entry["action"] == "skip"]
    assert skips == ([{"action": "skip", "vendor_user_id": None, "reason": "a team, not a user",
                       "count": 2}] if test_run else [])  # fmt: skip


def test_a_test_run_plans_the_release_of_a_unique_email(tmp_path: Any) -> None:
    with AcmeEmulator(users=4) as emulator, register_plugin(ActiveAwareAcme(), name="aa-acme"):
        old = emulator.users[3]
        settings = rehire_integration(tmp_path)
        with SQLiteStore(tmp_path / "x.db") as store:
            run_sync(settings, credential=credential(emulator.base_url), store=store)
            old.update(active=False)
            emulator.users[0].update(mail=old["mail"])
            planned = run_sync(
                settings, credential=credential(emulator.base_url), store=store, test_run=True
            )
            stored = store.get_session(planned.id, with_payload=True)
            untouched = store.find_person("Acme User Id", old["id"])
    assert stored is not None
    releases = [e for e in stored.payload if e.get("reason", "").startswith("an active account")]
    (release,) = releases
    assert release["changes"] == {"email": {"old": old["mail"].lower(), "new": None}}
    assert untouched is not None
    assert untouched.fields["email"] == old["mail"].lower()


def test_a_list_or_an_object_in_a_text_field_fails_alone(tmp_path: Any) -> None:
    # Slack's declared text fields: an address list or a name object is a malformed
    # record, not a sync key written as JSON text.
    pytest.importorskip("oomnitza_connect_slack")
    from oomnitza_connect_slack import vendor
    from oomnitza_connect_slack.emulator import SlackEmulator

    from oomnitza_connect import ClientOptions
    from oomnitza_connect.models import IntegrationSettings

    with register_plugin(vendor), SlackEmulator(users=30, enforce_rate_limits=False) as slack:
        victims = slack.user_ids()[10:12]
        bad_email = slack.user(victims[0])
        bad_name = slack.user(victims[1])
        assert bad_email is not None
        assert bad_name is not None
        bad_email["profile"]["email"] = ["a@example.com", "b@example.com"]
        bad_name["profile"]["real_name"] = {"x": 1}
        bad_name["real_name"] = {"x": 1}
        slack.serve_raw_user(victims[0], bad_email)
        slack.serve_raw_user(victims[1], bad_name)
        settings = IntegrationSettings(
            name="slack-bad",
            vendor="slack",
            credential="s",
            default_role="Employee",
            sync_key="email",
        )
        with SQLiteStore(tmp_path / "x.db") as store:
            session = run_sync(
                settings,
                credential=slack.test_credential(),
                store=store,
                options=ClientOptions(base_url=slack.base_url, pace_requests=False),
            )
            stored = [p.fields for p in store.iter_people()]
    reasons = {error.vendor_user_id: error.reason for error in session.errors}
    assert set(victims) <= set(reasons), session.errors
    assert "not a text value" in reasons[victims[0]]
    assert "not a text value" in reasons[victims[1]]
    assert not any("[" in str(fields.get("email")) for fields in stored)
    assert not any("{" in str(fields.get("username")) for fields in stored)
    assert session.counts.created >= 20


@pytest.mark.parametrize("lazy", [True, False])
def test_a_user_whose_id_is_not_valid_unicode_fails_alone(tmp_path: Any, lazy: bool) -> None:
    # Its id is the key of everything the run stores about it (links, fingerprints,
    # the run's seen members): as a bound parameter it cannot be stored at all.
    # The id mapped to no field, so that no check of the mapped fields sees it.
    extra = (
        '\n[[mapping]]\ntarget = "email"\nsource = "mail"\nconverter = "email"\n'
        '[[mapping]]\ntarget = "username"\nsource = "login"\n'
    )
    plugin = LazyAcme() if lazy else ActiveAwareAcme()
    with AcmeEmulator(users=3) as emulator, register_plugin(plugin, name="id-acme"):
        emulator.users[1]["id"] = "A\ud800"
        path = write_integration(tmp_path, extra)
        text = path.read_text().replace("[settings]", "use_standard_mapping = false\n\n[settings]")
        path.write_text(text)
        settings = load_integration(path)
        with SQLiteStore(tmp_path / "x.db") as store:
            session = run_sync(settings, credential=credential(emulator.base_url), store=store)
            synced = {p.fields["email"] for p in store.iter_people()}
    assert session.status is SyncStatus.COMPLETED_WITH_ERRORS
    assert (session.counts.created, session.counts.failed) == (2, 1)
    assert synced == {"user1@example.com", "user3@example.com"}
    (error,) = session.errors
    assert error.vendor_user_id == "A\\ud800"  # stored escaped, as an unstorable reason is
    assert "not valid Unicode" in error.reason
