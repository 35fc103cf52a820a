"""The Slack plugin's presets through the preset engine, against the Slack emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from oomnitza_connect_slack import vendor as slack_plugin
from oomnitza_connect_slack.emulator import SlackEmulator
from presets_support import add_people

from oomnitza_connect.connectors import get_connector
from oomnitza_connect.models import VendorRecord
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.presets.engine import get_preset, run_preset, run_preset_bulk
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import VendorSession


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, VendorSession, list[VendorRecord]]]:
    with (
        register_plugin(slack_plugin),
        SlackEmulator(users=12, seed=3, enforce_rate_limits=False) as emulator,
    ):
        connector = get_connector("slack")
        options = ClientOptions(base_url=emulator.base_url, pace_requests=False)
        with connector.authenticate(emulator.test_credential(), options=options) as session:
            people = [
                record
                for record in connector.list_users(session)
                if record.raw.get("profile", {}).get("email")
                and not record.raw.get("is_bot")
                and not record.raw.get("deleted")
            ]
            yield emulator, session, people[:4]


def test_get_user_details_for_every_linked_person(
    slack: tuple[SlackEmulator, VendorSession, list[VendorRecord]], tmp_path: Path
) -> None:
    emulator, session, people = slack
    assert len(people) >= 2
    store = SQLiteStore(tmp_path / "store.db")
    try:
        add_people(
            store,
            "slack",
            [(p.id, {"email": p.raw["profile"]["email"]}) for p in people],
        )
        results = run_preset_bulk(
            session, get_preset("slack", "Get User Details"), store, where="true", concurrency=3
        )
        assert [r.ok for r in results] == [True] * len(people), [r.error for r in results]
        for record in people:
            found = store.find_person("email", record.raw["profile"]["email"])
            assert found is not None
            assert found.fields["Slack User Id"] == record.id
        runs = list(store.iter_workflow_runs(vendor="slack"))
        assert len(runs) == len(people)
        assert emulator.token not in json.dumps([r.request for r in runs])
    finally:
        store.close()


def test_find_user_by_email_maps_the_slack_id(
    slack: tuple[SlackEmulator, VendorSession, list[VendorRecord]],
) -> None:
    _, session, people = slack
    target = people[1]
    result = run_preset(
        session,
        get_preset("slack", "Find User By Email"),
        variables={"email": target.raw["profile"]["email"]},
    )
    assert result.ok, result.error
    assert result.mapped["Slack User Id"] == target.id
