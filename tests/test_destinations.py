"""One destination conformance suite: SQLite and the Oomnitza REST API (its emulator) agree.

The same vendor records and integration give the same created / updated /
unchanged / skipped / failed / vanished counts and the same final people in
both; against the Oomnitza emulator every fault ends with the exact final
table, no batch applied twice and the portion finalized.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sync_support import (
    TOKEN,
    AcmeEmulator,
    AcmePlugin,
    credential,
    make_user,
    write_integration,
)

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.config import unstructure
from oomnitza_connect.models import SyncStatus
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.testing.emulator import Fault
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

COMPARED = ("username", "email", "first_name", "last_name", "role", "Acme User Id")


def oomnitza_table(oomnitza: OomnitzaEmulator, *, named: bool = True, **extra: Any) -> str:
    """The integration's Oomnitza table; *named*: ``[destination.fields]`` names Acme User Id."""
    lines = [
        "\n[destination]",
        'type = "oomnitza"',
        f'url = "{oomnitza.base_url}"',
        'credential = "oomnitza-test"',
        'connector_name = "acme-main"',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    lines += ["[destination.roles]", "Employee = 25"]
    if named:
        lines += ["[destination.fields]", '"Acme User Id" = "acme_user_id"']
    return "\n".join(lines) + "\n"


@pytest.fixture
def oomnitza(monkeypatch):
    with OomnitzaEmulator(unique_fields=("acme_user_id",)) as emulator:
        data = {
            k: (v.value if hasattr(v, "value") else v)
            for k, v in unstructure(emulator.test_credential("oomnitza-test")).items()
            if v not in (None, [], ())
        }
        monkeypatch.setenv(credential_env_name("oomnitza-test"), json.dumps(data))
        yield emulator


@pytest.fixture
def acme():
    with register_plugin(AcmePlugin(per_page=7), name="acme-test"), AcmeEmulator(25) as emulator:
        emulator.users[3]["active"] = False  # left out by the default filter
        emulator.users[8]["active"] = False
        yield emulator


class Target:
    """One destination under test: runs a sync, reads the final people back."""

    def __init__(self, kind: str, tmp_path: Path, acme: AcmeEmulator, oomnitza: OomnitzaEmulator):
        self.kind = kind
        self.tmp_path = tmp_path
        self.acme = acme
        self.oomnitza = oomnitza
        self.ledger = tmp_path / f"{kind}.db"

    def settings(self, **extra: Any) -> Any:
        table = oomnitza_table(self.oomnitza, **extra) if self.kind == "oomnitza" else ""
        return load_integration(
            write_integration(self.tmp_path, table, base_url=self.acme.base_url)
        )

    def sync(self, *, test_run: bool = False, **extra: Any) -> Any:
        with SQLiteStore(self.ledger) as ledger:
            return run_sync(
                self.settings(**extra),
                credential=credential(),
                store=ledger,
                test_run=test_run,
                batch_size=10,
            )

    def people(self) -> dict[str, dict[str, Any]]:
        if self.kind == "oomnitza":
            users = self.oomnitza.users_by("email")
            roles = {25: "Employee"}
            return {
                email: {
                    "username": u.get("username"),
                    "email": u.get("email"),
                    "first_name": u.get("first_name"),
                    "last_name": u.get("last_name"),
                    "role": roles.get(u.get("role"), u.get("role")),
                    "Acme User Id": u.get("acme_user_id"),
                }
                for email, u in users.items()
            }
        with SQLiteStore(self.ledger) as store:
            return {
                p.fields["email"]: {k: p.fields.get(k) for k in COMPARED}
                for p in store.iter_people()
            }


@pytest.fixture(params=["sqlite", "oomnitza"])
def target(request, tmp_path, acme, oomnitza) -> Target:
    return Target(request.param, tmp_path, acme, oomnitza)


def counts(session) -> tuple[int, ...]:
    c = session.counts
    return (c.created, c.updated, c.unchanged, c.skipped, c.failed, c.vanished)


def change_the_vendor(acme: AcmeEmulator) -> None:
    acme.users[2]["full_name"] = "Renamed Person"  # an update
    del acme.users[5]  # vanishes
    acme.users.append(make_user(90, mail="user1@example.com"))  # the sync key repeats: fails
    acme.users.append(make_user(91, login="user2"))  # a username another person has: fails
    acme.users.append(make_user(92))  # new


def test_both_destinations_give_the_same_counts_and_people(target, acme):
    first = target.sync()
    assert first.status == SyncStatus.SUCCEEDED, first.message
    assert counts(first) == (23, 0, 0, 2, 0, 0)
    again = target.sync()
    assert counts(again) == (0, 0, 23, 2, 0, 0)

    change_the_vendor(acme)
    third = target.sync()
    assert third.status == SyncStatus.COMPLETED_WITH_ERRORS
    assert counts(third) == (1, 1, 21, 2, 2, 1)
    people = target.people()
    assert len(people) == 24
    assert people["user3@example.com"]["first_name"] == "Renamed"
    assert people["user92@example.com"] == {
        "username": "user92",
        "email": "user92@example.com",
        "first_name": "First92",
        "last_name": "Last92",
        "role": "Employee",
        "Acme User Id": "A000092",
    }
    assert people["user1@example.com"]["username"] == "user1"
    assert people["user2@example.com"]["Acme User Id"] == "A000002"


def test_the_final_people_are_the_same_in_both(tmp_path, acme, oomnitza):
    finals = []
    for kind in ("sqlite", "oomnitza"):
        target = Target(kind, tmp_path / kind, acme, oomnitza)
        target.tmp_path.mkdir()
        target.sync()
        finals.append(target.people())
    change_the_vendor(acme)
    for kind, final in zip(("sqlite", "oomnitza"), finals, strict=True):
        target = Target(kind, tmp_path / kind, acme, oomnitza)
        target.sync()
        final.clear()
        final.update(target.people())
    assert finals[0] == finals[1]


@pytest.mark.parametrize(
    ("preference", "expected"),
    [("create_only", (1, 0, 0, 25, 0)), ("update_only", (0, 23, 0, 3, 0))],
)
def test_the_preference_means_the_same_in_both(target, acme, preference, expected):
    target.sync()
    for user in acme.users:
        user["job_title"] = "Changed"
        user["full_name"] = "Changed Name"
    acme.users.append(make_user(93))
    path = write_integration(
        target.tmp_path,
        (oomnitza_table(target.oomnitza) if target.kind == "oomnitza" else ""),
        base_url=acme.base_url,
    )
    path.write_text(
        path.read_text().replace(
            'default_role = "Employee"', f'default_role = "Employee"\npreference = "{preference}"'
        )
    )
    with SQLiteStore(target.ledger) as ledger:
        session = run_sync(load_integration(path), credential=credential(), store=ledger)
    assert counts(session)[:5] == expected


def test_a_test_run_plans_without_writing_in_both(target, acme):
    target.sync()
    acme.users[2]["full_name"] = "Renamed Person"
    before = target.people()
    session = target.sync(test_run=True)
    assert session.test_run
    assert counts(session)[:5] == (0, 1, 22, 2, 0)
    assert target.people() == before
    with SQLiteStore(target.ledger) as ledger:
        plan = list(ledger.iter_plan(session.id))
    actions = sorted(entry["action"] for entry in plan)
    assert actions.count("update") == 1
    assert actions.count("unchanged") == 22
    update = next(entry for entry in plan if entry["action"] == "update")
    assert update["changes"]["first_name"] == {"old": "First3", "new": "Renamed"}


def test_users_plus_saas_users_reach_oomnitza_as_saas_users(tmp_path, acme, oomnitza):
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    path = write_integration(tmp_path, oomnitza_table(oomnitza), base_url=acme.base_url)
    path.write_text(
        path.read_text().replace(
            'sync_key = "email"', 'sync_key = "email"\nselection = "users+saas"'
        )
    )
    with SQLiteStore(target.ledger) as ledger:
        first = run_sync(load_integration(path), credential=credential(), store=ledger)
        again = run_sync(load_integration(path), credential=credential(), store=ledger)
    assert first.counts.created == 23
    assert again.counts.unchanged == 23
    saas = oomnitza.saas_users()
    assert len(saas) == 23
    assert saas[("acme", "user1")] == {"user_external_id": "A000001", "roles": ["Employee"]}


def test_vanished_people_get_the_integrations_field_in_oomnitza(tmp_path, acme, oomnitza):
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    target.sync(vanished_field="removed_from_acme", vanished_value="yes")
    gone = acme.users.pop(0)
    session = target.sync(vanished_field="removed_from_acme", vanished_value="yes")
    assert session.counts.vanished == 1
    with SQLiteStore(target.ledger) as ledger:
        assert [v.vendor_user_id for v in ledger.iter_vanished(session.id)] == [gone["id"]]
    marked = [u for u in oomnitza.users.values() if u.get("removed_from_acme") == "yes"]
    assert [u["email"] for u in marked] == ["user1@example.com"]


# -- the safeguard on vanished people --------------------------------------------------


def sync_with(target: Target, changes: dict[str, Any], **extra: Any) -> Any:
    """A sync with these integration settings changed (*extra*: the destination table)."""
    import attrs

    with SQLiteStore(target.ledger) as ledger:
        return run_sync(
            attrs.evolve(target.settings(**extra), **changes),
            credential=credential(),
            store=ledger,
            batch_size=10,
        )


def sync_with_limit(target: Target, limit: int, **extra: Any) -> Any:
    return sync_with(target, {"vanish_limit_percent": limit}, **extra)


def test_an_empty_listing_marks_nobody_vanished(target, acme):
    extra = {"vanished_field": "removed_from_acme"} if target.kind == "oomnitza" else {}
    assert target.sync(**extra).counts.created == 23
    acme.users.clear()  # a token that suddenly sees nobody
    session = target.sync(**extra)
    assert session.status == SyncStatus.COMPLETED_WITH_ERRORS  # not failed: Oomnitza is fine
    assert session.counts.vanished == 0
    assert "the vendor listed nobody, so all 23 people" in (session.message or "")
    assert "vanish_limit_percent = 100" in (session.message or "")
    if target.kind == "oomnitza":
        assert not any("removed_from_acme" in u for u in target.oomnitza.users.values())
    # Told that they all left, it marks them.
    assert sync_with_limit(target, 100, **extra).counts.vanished == 23
    if target.kind == "oomnitza":
        assert sum("removed_from_acme" in u for u in target.oomnitza.users.values()) == 23


def test_most_people_vanishing_at_once_is_held_back(target, acme):
    target.sync()
    del acme.users[10:]  # 10 listed (2 of them inactive), 15 active people gone
    session = target.sync()
    assert session.status == SyncStatus.COMPLETED_WITH_ERRORS
    assert session.counts.vanished == 0
    assert "15 of the 23 people this integration knew (65%)" in (session.message or "")
    assert "more than vanish_limit_percent = 50" in (session.message or "")
    assert sync_with_limit(target, 70).counts.vanished == 15


def test_a_filter_that_leaves_most_people_out_is_held_back(target, acme):
    target.sync()  # 23 active people
    # Left out by the filter: skipped, not counted as people still here.
    session = sync_with(target, {"filters": ("active", "login == 'user1'")})
    assert session.counts.vanished == 0
    assert "22 of the 23 people this integration knew (96%)" in (session.message or "")


def test_another_tenant_of_the_same_size_is_held_back(target, acme):
    target.sync()
    for index, user in enumerate(acme.users):  # the credential now reads other people
        user.update(make_user(500 + index, active=user["active"]))
    session = target.sync()
    assert session.counts.created == 23
    assert session.counts.vanished == 0
    assert "23 of the 23 people this integration knew (100%)" in (session.message or "")


def test_a_few_leavers_are_marked_whatever_their_share(target, acme):
    target.sync()
    del acme.users[2:]  # 2 listed, 21 gone (91%), but with the limit at 95
    assert sync_with_limit(target, 95).counts.vanished == 21
    acme.users.extend(make_user(index) for index in (30, 31))
    target.sync()
    del acme.users[2:]  # 2 more leave: 50% of 4, under the minimum count
    assert target.sync().counts.vanished == 2


def test_a_run_oomnitza_does_not_confirm_marks_nobody_vanished(tmp_path, acme, oomnitza):
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    target.sync(vanished_field="removed_from_acme")
    acme.users.pop(0)
    oomnitza.faults.add(Fault.server_error(400), endpoint="bulk.finalize", times=-1)
    session = target.sync(vanished_field="removed_from_acme")
    assert session.status == SyncStatus.FAILED
    assert session.counts.vanished == 0
    assert not any("removed_from_acme" in u for u in oomnitza.users.values())


def test_an_empty_account_syncs_into_oomnitza_without_a_portion(tmp_path, acme, oomnitza):
    acme.users.clear()
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    for test_run in (True, False):
        session = target.sync(test_run=test_run)
        assert session.status == SyncStatus.SUCCEEDED, session.message
        assert counts(session) == (0, 0, 0, 0, 0, 0)
    assert oomnitza.portions == {}  # nothing to send: nothing opened, nothing finalized


def test_the_vanish_limit_is_checked_where_it_is_typed(tmp_path, acme):
    from oomnitza_connect.errors import ConfigurationError

    path = write_integration(tmp_path)
    path.write_text(path.read_text().replace("[settings]", "vanish_limit_percent = 0\n[settings]"))
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    assert "key 'vanish_limit_percent': 0 is not a percentage" in str(caught.value)
    assert "1 to 100" in str(caught.value)


NOT_IN_OOMNITZA = ("connector_sync_time", "last_login", "full_name")
"""Person fields Oomnitza has no user field for: not sent, so not read back."""


@pytest.mark.parametrize("named", [True, False], ids=["[destination.fields]", "external ids"])
def test_people_read_back_carry_the_same_field_names_and_values_in_both(
    tmp_path, acme, oomnitza, named
):
    # Presets and `people` read people back through the destination: the same
    # names (a custom field as 'Acme User Id', not its external id acme_user_id,
    # the role by name) and values whichever destination holds them.
    from oomnitza_connect.sync.engine import destination_of

    read: dict[str, dict[str, dict[str, Any]]] = {}
    found: dict[str, Any] = {}
    for kind in ("sqlite", "oomnitza"):
        target = Target(kind, tmp_path / kind, acme, oomnitza)
        target.tmp_path.mkdir()
        extra = {"named": named} if kind == "oomnitza" else {}
        settings = target.settings(**extra)
        with SQLiteStore(target.ledger) as ledger:
            run_sync(settings, credential=credential(), store=ledger, batch_size=10)
            people = destination_of(settings, ledger)
            try:
                read[kind] = {
                    p.fields["email"]: {
                        k: v for k, v in p.fields.items() if k not in NOT_IN_OOMNITZA
                    }
                    for p in people.iter_people()
                }
                person = people.find_person("Acme User Id", "A000002")
                found[kind] = person.fields["email"] if person else None
            finally:
                if people is not ledger:
                    people.close()
    assert read["oomnitza"] == read["sqlite"]
    assert read["oomnitza"]["user2@example.com"] == {
        "username": "user2",
        "email": "user2@example.com",
        "first_name": "First2",
        "last_name": "Last2",
        "role": "Employee",
        "Acme User Id": "A000002",
    }
    assert found == {"sqlite": "user2@example.com", "oomnitza": "user2@example.com"}


# -- faults against the Oomnitza emulator ---------------------------------------------


def exact_table(oomnitza: OomnitzaEmulator) -> dict[str, tuple[Any, ...]]:
    return {
        u["email"]: (u["username"], u["first_name"], u["last_name"], u["role"], u["acme_user_id"])
        for u in oomnitza.users.values()
    }


def clean_table(tmp_path: Path, acme: AcmeEmulator) -> dict[str, tuple[Any, ...]]:
    with OomnitzaEmulator(unique_fields=("acme_user_id",)) as clean:
        target = Target("oomnitza", tmp_path / "clean", acme, clean)
        target.tmp_path.mkdir()
        settings = target.settings()
        from oomnitza_connect.destinations.oomnitza import OomnitzaDestination

        with (
            SQLiteStore(target.ledger) as ledger,
            OomnitzaDestination(settings.destination, clean.test_credential()) as destination,
        ):
            run_sync(settings, credential=credential(), store=ledger, destination=destination)
        return exact_table(clean)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param((Fault.rate_limited(retry_after=1), "bulk"), id="429 on a bulk POST"),
        pytest.param((Fault.server_error(502), "bulk"), id="502 on a bulk POST"),
        pytest.param((Fault.server_error(503), "bulk"), id="503 on a bulk POST"),
        pytest.param((Fault.slow_after(2.5), "bulk"), id="slow answer after applying"),
        pytest.param((Fault.server_error(503), "bulk.finalize"), id="failed finalize"),
    ],
)
def test_every_fault_ends_with_the_exact_table_once_and_finalized(tmp_path, acme, oomnitza, fault):
    planned, endpoint = fault
    # Let the first bulk POST through; the single finalize fails twice at once.
    after = 0 if endpoint == "bulk.finalize" else 1
    oomnitza.faults.add(planned, endpoint=endpoint, after=after, times=2)
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    settings = target.settings(batch_size=5)
    from oomnitza_connect.destinations.oomnitza import OomnitzaDestination
    from oomnitza_connect.transport.http import ClientOptions

    options = ClientOptions(read_timeout=1.0, pace_requests=False, max_single_wait=2)
    with (
        SQLiteStore(target.ledger) as ledger,
        OomnitzaDestination(
            settings.destination, oomnitza.test_credential("oomnitza-test"), options=options
        ) as destination,
    ):
        session = run_sync(settings, credential=credential(), store=ledger, destination=destination)
    assert session.status == SyncStatus.SUCCEEDED, session.message
    assert counts(session) == (23, 0, 0, 2, 0, 0)
    assert oomnitza.faults.pending() == 0
    (portion,) = oomnitza.portions.values()
    assert portion.finalized
    digests = [digest for _, digest in oomnitza.applied_batches]
    assert len(digests) == len(set(digests)) == 5
    assert exact_table(oomnitza) == clean_table(tmp_path, acme)


def test_the_bulk_posts_follow_the_portion_protocol(tmp_path, acme, oomnitza):
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    target.sync()
    posts = [r.json() for r in oomnitza.requests if r.endpoint == "bulk"]
    assert {p["portion"] for p in posts} == {next(iter(oomnitza.portions))}
    first = posts[0]
    assert first["sync_field"] == ["EMAIL"]
    assert first["data_type"] == "users"
    assert first["connector_name"] == "acme-main"
    assert (first["insert_only"], first["update_only"], first["test_run"]) == (False, False, False)
    record = first["records"][0]
    assert record["USER"] == "user1"
    assert record["PERMISSIONS_ID"] == 25
    assert record["acme_user_id"] == "A000001"
    assert max(len(p["records"]) for p in posts) <= 100
    assert all(r.header("Authorization2") == oomnitza.api_token for r in oomnitza.requests)


def test_a_login_and_password_credential_gets_a_token(tmp_path, acme, oomnitza):
    from oomnitza_connect.destinations.oomnitza import OomnitzaDestination

    target = Target("oomnitza", tmp_path, acme, oomnitza)
    settings = target.settings()
    with (
        SQLiteStore(target.ledger) as ledger,
        OomnitzaDestination(settings.destination, oomnitza.password_credential()) as destination,
    ):
        session = run_sync(settings, credential=credential(), store=ledger, destination=destination)
        person = destination.find_person("email", "user7@example.com")
    assert session.counts.created == 23
    assert person is not None
    assert person.fields["username"] == "user7"
    tokens = {r.header("Authorization2") for r in oomnitza.requests if r.endpoint == "bulk"}
    assert len(tokens) == 1
    assert oomnitza.api_token not in tokens


def test_a_refused_token_fails_the_run_before_the_vendor_is_read(tmp_path, acme, oomnitza):
    import attrs

    from oomnitza_connect.destinations.oomnitza import OomnitzaDestination
    from oomnitza_connect.errors import StoreError

    target = Target("oomnitza", tmp_path, acme, oomnitza)
    settings = target.settings()
    refused = attrs.evolve(oomnitza.test_credential("oomnitza-test"), token="not-the-token")
    with (
        SQLiteStore(target.ledger) as ledger,
        OomnitzaDestination(settings.destination, refused) as destination,
    ):
        with pytest.raises(StoreError) as caught:
            run_sync(settings, credential=credential(), store=ledger, destination=destination)
        assert ledger.list_sessions() == []  # no run began
    text = str(caught.value)
    assert f"the Oomnitza destination at {oomnitza.base_url} cannot be used" in text
    assert "HTTP 401" in text
    assert "not-the-token" not in text
    assert not acme.requests  # the vendor was never asked
    assert [r.endpoint for r in oomnitza.requests] == ["users"]


def test_an_unreachable_oomnitza_fails_the_run_at_once_naming_host_and_port(tmp_path, acme):
    import socket

    from oomnitza_connect.destinations.oomnitza import OomnitzaDestination
    from oomnitza_connect.errors import StoreError
    from oomnitza_connect.models import DestinationSettings

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with OomnitzaEmulator() as oomnitza:
        token = oomnitza.test_credential("oomnitza-test")
    settings = load_integration(write_integration(tmp_path, "", base_url=acme.base_url))
    table = DestinationSettings(type="oomnitza", url=url, credential="oomnitza-test")
    with (
        SQLiteStore(tmp_path / "ledger.db") as ledger,
        OomnitzaDestination(table, token) as destination,
        pytest.raises(StoreError) as caught,
    ):
        run_sync(settings, credential=credential(), store=ledger, destination=destination)
    assert f"127.0.0.1:{port} was refused" in str(caught.value)
    assert not acme.requests


def test_a_fatal_vendor_error_is_sent_then_the_portion_is_finalized(tmp_path, acme, oomnitza):
    acme.fail_after_page = 1
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    session = target.sync()
    assert session.status == SyncStatus.FAILED
    (portion,) = oomnitza.portions.values()
    assert portion.finalized
    assert "HTTP 500" in portion.logs["Fatal Error"][0]
    assert portion.status == "Failed"
    assert session.counts.vanished == 0


def test_a_bad_destination_table_names_the_file_and_key(tmp_path, acme):
    from oomnitza_connect.errors import ConfigurationError

    path = write_integration(tmp_path, '\n[destination]\ntype = "oomnitza"\nbatch_size = 500\n')
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    text = str(caught.value)
    assert "acme.toml" in text
    assert "destination.url" in text
    assert "destination.batch_size" in text
    assert "500 is not 1 to 100" in text


@pytest.mark.parametrize(
    "url",
    ["http://localhost.example.com", "http://127.0.0.1@example.com", "ftp://127.0.0.1", "http://"],
)
def test_a_destination_url_that_only_looks_local_is_refused(url):
    from oomnitza_connect.destinations import destination_problems
    from oomnitza_connect.models import DestinationKind, DestinationSettings

    settings = DestinationSettings(type=DestinationKind.OOMNITZA, url=url, credential="oz")
    ((key, message),) = destination_problems(settings)
    assert key == "destination.url"
    assert repr(url) in message


def test_opening_a_bad_destination_table_names_every_problem_at_once():
    from oomnitza_connect.destinations import open_destination
    from oomnitza_connect.errors import ConfigurationError
    from oomnitza_connect.models import DestinationKind, DestinationSettings

    settings = DestinationSettings(type=DestinationKind.OOMNITZA, batch_size=0, concurrency=0)
    with pytest.raises(ConfigurationError) as caught:
        open_destination(settings)
    assert caught.value.key_path == "destination"
    problems = "\n".join(caught.value.problems)
    for key in ("url", "credential", "batch_size", "concurrency"):
        assert f"key 'destination.{key}'" in problems


# -- the whole test-run plan ------------------------------------------------------------


def test_the_whole_plan_is_kept_and_pages_in_both(target, acme):
    acme.users.extend(make_user(index) for index in range(100, 260))  # 183 active users
    target.sync()
    acme.users[2]["full_name"] = "Renamed Person"
    gone = acme.users.pop(10)
    acme.users.append(make_user(300))
    session = target.sync(test_run=True)
    assert counts(session) == (1, 1, 181, 2, 0, 1)
    with SQLiteStore(target.ledger) as ledger:
        plan = list(ledger.iter_plan(session.id))
        page = list(ledger.iter_plan(session.id, offset=100, limit=50))
        tail = list(ledger.iter_plan(session.id, offset=180))
    assert len(plan) == 1 + 1 + 181 + 2 + 1  # every person's action, far past 100
    assert page == plan[100:150]
    assert tail == plan[180:]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in plan:
        by_action.setdefault(entry["action"], []).append(entry)
    assert by_action["create"][0]["sync_value"] == "user300@example.com"
    assert by_action["create"][0]["fields"]["username"] == "user300"
    assert by_action["update"][0]["changes"]["first_name"] == {"old": "First3", "new": "Renamed"}
    assert [e["vendor_user_id"] for e in by_action["vanish"]] == [gone["id"]]
    assert len(by_action["unchanged"]) == 181


def test_sync_test_run_writes_the_whole_plan_to_a_file(target, acme, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from oomnitza_connect.cli import main

    acme.users.extend(make_user(index) for index in range(100, 220))
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        credential_env_name("acme"),
        json.dumps({"vendor": "acme", "kind": "api_key", "token": TOKEN}),
    )
    path = write_integration(
        target.tmp_path,
        oomnitza_table(target.oomnitza) if target.kind == "oomnitza" else "",
        base_url=acme.base_url,
    )
    out = tmp_path / "plan.jsonl"
    runner = CliRunner()
    result = runner.invoke(
        main, ["sync", str(path), "--test-run", "--db", str(target.ledger), "--plan-output",
               str(out)], catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 143 + 2  # 143 creates and the two left out by the filters
    assert sum(1 for e in lines if e["action"] == "create") == 143
    assert "Wrote the plan (145 entries)" in result.output
    session_id = re.search(r"Test run (\S+) of", result.output).group(1)
    paged = runner.invoke(
        main, ["sessions", "plan", session_id, "--db", str(target.ledger), "--offset", "140"]
    )
    assert paged.exit_code == 0, paged.output
    assert [json.loads(line) for line in paged.output.splitlines()] == lines[140:]
    refused = runner.invoke(main, ["sync", str(path), "--plan-output", str(out)])
    assert refused.exit_code == 2
    assert "--test-run" in refused.output


def _plan_of(ledger_path: Path, session_id: str) -> list[tuple[Any, ...]]:
    with SQLiteStore(ledger_path) as ledger:
        return sorted(
            (
                e["action"],
                e.get("vendor_user_id"),
                e.get("sync_value"),
                json.dumps(e.get("changes"), sort_keys=True),
            )
            for e in ledger.iter_plan(session_id)
        )


@pytest.mark.parametrize("preference", ["create_update", "update_only", "create_only"])
def test_without_oomnitzas_test_run_answer_the_plan_is_worked_out_the_same(
    tmp_path, acme, oomnitza, preference
):
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    target.sync()
    change_the_vendor(acme)
    acme.users[4]["full_name"] = "Changed Name"
    path = write_integration(tmp_path, oomnitza_table(oomnitza), base_url=acme.base_url)
    path.write_text(
        path.read_text().replace(
            'default_role = "Employee"', f'default_role = "Employee"\npreference = "{preference}"'
        )
    )

    def test_run() -> Any:
        with SQLiteStore(target.ledger) as ledger:
            return run_sync(
                load_integration(path), credential=credential(), store=ledger, test_run=True
            )

    before = exact_table(oomnitza)
    answered = test_run()
    oomnitza.test_run_answer = False
    worked_out = test_run()
    assert exact_table(oomnitza) == before  # neither wrote anything
    assert counts(worked_out) == counts(answered)
    server_plan = _plan_of(target.ledger, answered.id)
    local_plan = _plan_of(target.ledger, worked_out.id)
    assert local_plan == server_plan
    assert all(vendor_user_id is not None for _, vendor_user_id, _, _ in local_plan)
    actions = [action for action, *_ in local_plan]
    if preference == "create_update":
        assert actions.count("create") == 1
        assert actions.count("update") == 2
    else:
        assert "skip" in actions
    lookups = [r for r in oomnitza.requests if r.endpoint == "users" and "filter" in r.query]
    assert lookups  # the local plan looked each sent record up


@pytest.mark.parametrize("answer", [True, False], ids=["server's answer", "worked out"])
def test_the_plan_names_the_same_fields_and_values_in_both(tmp_path, acme, oomnitza, answer):
    oomnitza.test_run_answer = answer
    plans = {}
    for kind in ("sqlite", "oomnitza"):
        target = Target(kind, tmp_path / kind, acme, oomnitza)
        target.tmp_path.mkdir()
        # No [destination.fields]: 'Acme User Id' goes as acme_user_id and must come back named.
        table = oomnitza_table(oomnitza).split("[destination.fields]")[0]
        path = write_integration(
            target.tmp_path, table if kind == "oomnitza" else "", base_url=acme.base_url
        )
        with SQLiteStore(target.ledger) as ledger:
            run_sync(load_integration(path), credential=credential(), store=ledger)
            original = acme.users[2]["full_name"]
            acme.users[2]["full_name"] = "Renamed Person"
            session = run_sync(
                load_integration(path), credential=credential(), store=ledger, test_run=True
            )
            acme.users[2]["full_name"] = original
            plans[kind] = list(ledger.iter_plan(session.id))
    for kind, plan in plans.items():
        (update,) = [entry for entry in plan if entry["action"] == "update"]
        assert update["vendor_user_id"] == acme.users[2]["id"], kind
        assert update["changes"]["first_name"] == {"old": "First3", "new": "Renamed"}, kind
    # A first test run into empty destinations: every create names the same fields.
    creates = {}
    for kind in ("sqlite", "oomnitza"):
        target = Target(kind, tmp_path / f"empty-{kind}", acme, oomnitza)
        target.tmp_path.mkdir()
        with OomnitzaEmulator(
            token=oomnitza.api_token, unique_fields=("acme_user_id",), test_run_answer=answer
        ) as empty:
            target.oomnitza = empty
            session = target.sync(test_run=True)
        with SQLiteStore(target.ledger) as ledger:
            creates[kind] = {
                entry["sync_value"]: {k: entry["fields"].get(k) for k in COMPARED}
                for entry in ledger.iter_plan(session.id)
                if entry["action"] == "create"
            }
    assert len(creates["sqlite"]) == 23
    assert creates["oomnitza"] == creates["sqlite"]
    assert creates["oomnitza"]["user1@example.com"]["role"] == "Employee"


def test_a_run_oomnitza_never_confirms_fails_and_counts_what_it_sent(
    tmp_path, acme, oomnitza, monkeypatch
):
    # The token is revoked once the run has begun (the check at its start passed):
    # no batch arrives, and the run says so instead of "completed".
    from oomnitza_connect.destinations.oomnitza import OomnitzaDestination

    checked = OomnitzaDestination.check_access

    def check_then_revoke(destination: OomnitzaDestination) -> None:
        checked(destination)
        oomnitza.api_token = "not-the-token-7"

    monkeypatch.setattr(OomnitzaDestination, "check_access", check_then_revoke)
    target = Target("oomnitza", tmp_path, acme, oomnitza)
    session = target.sync()
    assert session.status == SyncStatus.FAILED
    assert "did not confirm the run (23 records" in (session.message or "")
    assert "HTTP 401" in (session.message or "")
    assert (session.counts.created, session.counts.failed, session.counts.skipped) == (0, 23, 2)
    assert oomnitza.users == {}
