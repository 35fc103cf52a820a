"""Issue 14, defects 4 and 5: one malformed Slack member fails alone, with its reason."""

from __future__ import annotations

from typing import Any

import pytest
from oomnitza_connect_slack.emulator import SlackEmulator
from slack_support import fast_options

from oomnitza_connect.models import IntegrationSettings, SyncStatus
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync

BAD_MEMBERS: dict[str, Any] = {
    "lone surrogate in a name": {"real_name": "lone\ud800x", "profile": {"last_name": "\udfff"}},
    "updated is not a number": {"updated": "abc"},
    "updated out of range": {"updated": 1e20},
    "no id": {"id": None},
}


def test_each_malformed_member_fails_alone_and_the_rest_sync(
    slack_plugin_registered: None, tmp_path: Any
) -> None:
    with SlackEmulator(users=30, seed=3, enforce_rate_limits=False) as emulator:
        people_ids = [
            uid
            for uid in emulator.user_ids()
            if not emulator.user(uid)["is_bot"] and uid != "USLACKBOT"  # type: ignore[index]
        ]
        broken = dict(zip(BAD_MEMBERS, people_ids[1:], strict=False))
        for case, uid in broken.items():
            changes = dict(BAD_MEMBERS[case])
            profile = changes.pop("profile", None)
            if profile:
                changes["profile"] = profile
            emulator.update_user(uid, **changes)
        null_member, not_an_object = people_ids[-1], people_ids[-2]
        emulator.serve_raw_user(null_member, None)
        emulator.serve_raw_user(not_an_object, ["U0", "surprise"])
        settings = IntegrationSettings(
            name="slack-bad",
            vendor="slack",
            credential="unused",
            settings={"Slack.PageSize": "7"},
            sync_key="Slack User Id",
            default_role="Employee",
        )
        with SQLiteStore(tmp_path / "bad.db") as store:
            session = run_sync(
                settings,
                credential=emulator.test_credential(),
                store=store,
                options=fast_options(emulator),
            )
            synced = {person.sync_value for person in store.iter_people(vendor="slack")}
            errors = list(session.errors)

    assert session.status is SyncStatus.COMPLETED_WITH_ERRORS, session.message
    bad_count = len(broken) + 2
    assert session.counts.failed == bad_count
    assert synced == set(people_ids) - set(broken.values()) - {null_member, not_an_object}
    reasons = {error.vendor_user_id: error.reason for error in errors}
    assert "not valid Unicode" in reasons[broken["lone surrogate in a name"]]
    assert "abc" in reasons[broken["updated is not a number"]]
    assert "updated" in reasons[broken["updated out of range"]]
    assert "id" in reasons[None]
    assert len(errors) == bad_count


@pytest.mark.parametrize("raw", [None, 17, "text", {"id": 5, "updated": {}}])
def test_list_users_reports_an_unreadable_member_as_a_mapping_error(
    slack_plugin_registered: None, raw: Any
) -> None:
    from oomnitza_connect.connectors import get_connector
    from oomnitza_connect.errors import MappingError

    with SlackEmulator(users=3, seed=3, enforce_rate_limits=False) as emulator:
        emulator.serve_raw_user(emulator.user_ids()[0], raw)
        connector = get_connector("slack")
        with (
            connector.authenticate(
                emulator.test_credential(), {}, options=fast_options(emulator)
            ) as session,
            pytest.raises(MappingError),
        ):
            list(connector.list_users(session))
