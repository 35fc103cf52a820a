"""The Intercom presets run through the core's preset runner against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime

from oomnitza_connect_intercom.emulator import IntercomEmulator

from oomnitza_connect.models import Person
from oomnitza_connect.presets.engine import get_preset, run_preset


def _person(**fields) -> Person:
    return Person(id=1, sync_key="Intercom ID", sync_value=str(fields.get("Intercom ID")),
                  fields=fields, created_at=datetime.now(UTC))  # fmt: skip


def test_get_admin_details_maps_the_admin(session, emulator: IntercomEmulator) -> None:
    admin_id = emulator.admin_ids()[5]
    preset = get_preset("intercom", "Get Admin Details")
    assert preset.endpoint == "admins.retrieve"
    result = run_preset(session, preset, variables={"intercom_admin_id": admin_id})
    assert result.ok, result.error
    expected = emulator.admin(admin_id, display_avatar=False)
    assert result.mapped["Intercom ID"] == admin_id
    assert result.mapped["Intercom Job Title"] == expected.get("job_title")
    assert result.mapped["Intercom Away Mode"] is expected["away_mode_enabled"]
    assert result.mapped["Intercom Has Inbox Seat"] is expected["has_inbox_seat"]
    sent = [r for r in emulator.requests if r.endpoint == "admins.retrieve"][-1]
    assert sent.path == f"/admins/{admin_id}"
    assert sent.header("Intercom-Version") == "2.11"


def test_the_admin_id_comes_from_the_persons_intercom_id(session, emulator) -> None:
    admin_id = emulator.admin_ids()[1]  # the admin without a job title
    person = _person(**{"Intercom ID": admin_id, "email": "x@example.com"})
    result = run_preset(session, get_preset("intercom", "Get Admin Details"), person=person)
    assert result.ok, result.error
    assert result.mapped["Intercom ID"] == admin_id
    assert result.mapped["Intercom Job Title"] is None


def test_a_caller_variable_wins_over_the_persons_field(session, emulator) -> None:
    first, other = emulator.admin_ids()[:2]
    person = _person(**{"Intercom ID": first})
    result = run_preset(
        session,
        get_preset("intercom", "Get Admin Details"),
        person=person,
        variables={"intercom_admin_id": other},
    )
    assert result.ok, result.error
    assert result.mapped["Intercom ID"] == other


def test_an_unknown_admin_fails_with_intercoms_code_and_request_id(session) -> None:
    result = run_preset(session, get_preset("intercom", "Get Admin Details"),
                        variables={"intercom_admin_id": "12345"})  # fmt: skip
    assert not result.ok
    assert result.status == 404
    assert "code admin_not_found" in (result.error or "")
    assert "request id " in (result.error or "")


def test_identify_current_admin_maps_the_workspace(session, emulator) -> None:
    result = run_preset(session, get_preset("intercom", "Identify Current Admin"))
    assert result.ok, result.error
    assert result.mapped == {
        "Intercom Workspace": emulator.app_name,
        "Intercom Region": "US",
        "Intercom Current Admin ID": emulator.admin_ids()[0],
    }
