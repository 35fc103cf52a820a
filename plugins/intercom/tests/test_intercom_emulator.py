"""The emulator behaves as Intercom's fact sheet says, and stays cheap at 100,000 admins."""

from __future__ import annotations

import time

import pytest
import requests
from oomnitza_connect_intercom.emulator import (
    KNOWN_VERSIONS,
    REGIONS,
    SPECIAL_KINDS,
    IntercomEmulator,
)

from oomnitza_connect.testing.emulator import Fault


def _get(
    emulator: IntercomEmulator, path: str, *, base_url: str | None = None, **headers: str
) -> requests.Response:
    sent = {"Authorization": f"Bearer {emulator.token}", "Accept": "application/json", **headers}
    return requests.get(f"{base_url or emulator.base_url}{path}", headers=sent, timeout=5)


def test_admins_are_deterministic_by_seed() -> None:
    first, again, other = (IntercomEmulator(users=30, seed=s) for s in (1, 1, 2))
    assert [first.admin(a) for a in first.admin_ids()] == [
        again.admin(a) for a in again.admin_ids()
    ]
    assert first.admin_ids() != other.admin_ids()


def test_even_a_small_workspace_has_every_odd_kind() -> None:
    with IntercomEmulator(users=len(SPECIAL_KINDS), enforce_rate_limits=False) as emulator:
        admins = _get(emulator, "/admins?display_avatar=true").json()["admins"]
    by_kind = dict(zip(SPECIAL_KINDS, admins, strict=True))
    assert "job_title" not in by_kind["no_job_title"]
    assert by_kind["null_avatar"]["avatar"] is None
    assert by_kind["null_teams"]["team_ids"] is None
    assert by_kind["null_teams"]["team_priority_level"] is None
    assert by_kind["null_priority"]["team_priority_level"] == {
        "primary_team_ids": None,
        "secondary_team_ids": None,
    }
    assert by_kind["away"]["away_mode_enabled"] is by_kind["away"]["away_mode_reassign"] is True
    assert by_kind["no_inbox_seat"]["has_inbox_seat"] is False
    assert by_kind["owner"]["avatar"]["image_url"].startswith("https://")
    larger = IntercomEmulator(users=2000, seed=9)
    kinds = {larger.kind_of(i) for i in range(len(SPECIAL_KINDS), 2000)}
    assert kinds == {*SPECIAL_KINDS, "person"} - {"owner"}


def test_avatars_come_only_with_display_avatar() -> None:
    with IntercomEmulator(users=4, enforce_rate_limits=False) as emulator:
        plain = _get(emulator, "/admins").json()["admins"]
        with_avatar = _get(emulator, "/admins?display_avatar=true").json()["admins"]
    assert all("avatar" not in admin for admin in plain)
    assert all("avatar" in admin for admin in with_avatar)


def test_legacy_versions_list_teams_among_the_admins() -> None:
    with IntercomEmulator(users=6, enforce_rate_limits=False) as emulator:
        current = _get(emulator, "/admins", **{"Intercom-Version": "2.11"}).json()["admins"]
        legacy = _get(emulator, "/admins", **{"Intercom-Version": "1.4"}).json()["admins"]
        always = IntercomEmulator(users=6, teams_in_list=True)
    assert {entry["type"] for entry in current} == {"admin"}
    teams = [entry for entry in legacy if entry["type"] == "team"]
    assert teams
    assert all("admin_ids" in team for team in teams)
    assert {entry["id"] for entry in legacy} - {t["id"] for t in teams} == set(emulator.admin_ids())
    assert set(always.team_ids()) == {team["id"] for team in teams}


def test_an_unknown_version_answers_400_and_no_header_means_the_app_version() -> None:
    with IntercomEmulator(users=3, enforce_rate_limits=False, app_version="1.4") as emulator:
        bad = _get(emulator, "/me", **{"Intercom-Version": "9.99"})
        defaulted = _get(emulator, "/admins")
    assert bad.status_code == 400
    body = bad.json()
    assert body["type"] == "error.list"
    assert body["errors"][0]["code"] == "intercom_version_invalid"
    assert body["request_id"] == bad.headers["X-Request-Id"]
    # The app's own version (1.4 here) lists teams, so the default was applied.
    assert any(entry["type"] == "team" for entry in defaulted.json()["admins"])
    assert {"2.11", "2.16", "1.0", "Preview"} <= KNOWN_VERSIONS


def test_retrieve_and_me() -> None:
    with IntercomEmulator(users=5, seed=4, enforce_rate_limits=False) as emulator:
        wanted = emulator.admin_ids()[3]
        found = _get(emulator, f"/admins/{wanted}").json()
        missing = _get(emulator, "/admins/1")
        me = _get(emulator, "/me").json()
    assert found["id"] == wanted
    assert found["type"] == "admin"
    assert missing.status_code == 404
    assert missing.json()["errors"] == [{"code": "admin_not_found", "message": "Admin not found"}]
    assert me["id"] == emulator.admin_ids()[0]
    assert me["app"]["region"] == "US"
    assert me["app"]["name"] == emulator.app_name
    assert me["avatar"]["type"] == "avatar"


@pytest.mark.parametrize("home", REGIONS)
def test_a_token_works_only_on_its_own_regions_host(home: str) -> None:
    with IntercomEmulator(users=3, region=home, enforce_rate_limits=False) as emulator:
        urls = emulator.region_urls
        answers = {region: _get(emulator, "/me", base_url=url) for region, url in urls.items()}
        me = answers[home].json()
        refused_elsewhere = len(emulator.foreign_requests())
        home_url = emulator.base_url
    assert set(urls) == set(REGIONS)
    assert len(set(urls.values())) == 3
    assert urls[home] == home_url
    assert me["app"]["region"] == home
    for region, answer in answers.items():
        if region != home:
            assert answer.status_code == 401
            assert answer.json()["errors"][0]["code"] == "unauthorized"
            assert answer.json()["request_id"]
    assert refused_elsewhere == 2


def test_tokens_are_checked() -> None:
    with IntercomEmulator(users=3, enforce_rate_limits=False) as emulator:
        unknown = requests.get(
            f"{emulator.base_url}/admins", headers={"Authorization": "Bearer nope"}, timeout=5
        )
        missing = requests.get(f"{emulator.base_url}/admins", timeout=5)
        emulator.revoke(emulator.token)
        revoked = _get(emulator, "/admins")
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (401, "unauthorized")
    assert missing.status_code == 401
    assert (revoked.status_code, revoked.json()["errors"][0]["code"]) == (401, "token_revoked")


def test_plan_restricted_endpoints_answer_403() -> None:
    with IntercomEmulator(
        users=3, plan_restricted=("admins.retrieve",), enforce_rate_limits=False
    ) as emulator:
        answer = _get(emulator, f"/admins/{emulator.admin_ids()[0]}")
        listing = _get(emulator, "/admins")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "api_plan_restricted"
    assert listing.status_code == 200


def test_ten_second_windows_with_rate_limit_headers() -> None:
    # 60 per minute is 10 per 10-second window.
    with IntercomEmulator(users=2, requests_per_minute=60) as emulator:
        # 21: a burst this short spans at most two windows, which admit 20 (with 12, a
        # boundary after the second answer let all of them through: seen in CI).
        answers = [_get(emulator, "/me") for _ in range(21)]
    limited = [a for a in answers if a.status_code == 429]
    assert 1 <= len(limited) <= 11  # 11 when the whole burst falls in one window
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "10"
        reset = int(answer.headers["X-RateLimit-Reset"])
        assert time.time() - 1 <= reset <= time.time() + 10
        assert reset % 10 == 0
    assert limited[0].json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert limited[0].headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in limited[0].headers
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers[:3]]
    assert remaining == sorted(remaining, reverse=True) or 9 in remaining
    assert emulator.rate_limited_count == len(limited)


def test_the_test_kit_faults_answer_the_intercom_way() -> None:
    with IntercomEmulator(users=2, enforce_rate_limits=False) as emulator:
        emulator.faults.add(Fault.rate_limited(retry_after=3), endpoint="admins.list")
        emulator.faults.add(Fault.server_error(503), endpoint="admins.list")
        limited = _get(emulator, "/admins")
        failed = _get(emulator, "/admins")
        fine = _get(emulator, "/admins")
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert int(limited.headers["X-RateLimit-Reset"]) >= time.time() + 1
    assert failed.status_code == 503
    assert failed.json()["type"] == "error.list"
    assert fine.status_code == 200


def test_a_hundred_thousand_admins_cost_nothing_until_listed() -> None:
    started = time.perf_counter()
    with IntercomEmulator(users=100_000, seed=1, enforce_rate_limits=False) as emulator:
        created = time.perf_counter() - started
        last = emulator.admin_ids()[-1]
        found = _get(emulator, f"/admins/{last}").json()
        me = _get(emulator, "/me").json()
        emulator.user_count = 3_000  # listing is one answer: keep it small under test
        listing = _get(emulator, "/admins").json()
    assert created < 1.0
    assert found["id"] == last
    assert me["type"] == "admin"
    assert len(listing["admins"]) == 3_000
    assert len({admin["id"] for admin in listing["admins"]}) == 3_000


def test_changes_and_removals_show_in_the_next_answers() -> None:
    with IntercomEmulator(users=4, enforce_rate_limits=False) as emulator:
        first, second = emulator.admin_ids()[:2]
        emulator.update_admin(first, job_title="Head of Support")
        emulator.remove_admin(second)
        listing = _get(emulator, "/admins").json()["admins"]
        gone = _get(emulator, f"/admins/{second}")
    assert listing[0]["job_title"] == "Head of Support"
    assert second not in {admin["id"] for admin in listing}
    assert gone.status_code == 404
