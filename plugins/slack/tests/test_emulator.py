"""The emulator behaves as Slack's fact sheet says, and stays cheap at 100,000 users."""

from __future__ import annotations

import time

import requests
from oomnitza_connect_slack.emulator import SPECIAL_KINDS, SlackEmulator


def _get(emulator: SlackEmulator, method: str, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    return requests.get(f"{emulator.base_url}/{method}", params=params, headers=headers, timeout=5)


def test_users_are_deterministic_by_seed() -> None:
    first, again, other = (SlackEmulator(users=30, seed=s) for s in (1, 1, 2))
    assert [first.user(u) for u in first.user_ids()] == [again.user(u) for u in again.user_ids()]
    assert first.user_ids() != other.user_ids()


def test_even_a_small_workspace_has_every_special_kind() -> None:
    emulator = SlackEmulator(users=len(SPECIAL_KINDS))
    assert [emulator.kind_of(i) for i in range(len(SPECIAL_KINDS))] == list(SPECIAL_KINDS)
    larger = SlackEmulator(users=2000, seed=9)
    kinds = {larger.kind_of(i) for i in range(len(SPECIAL_KINDS), 2000)}
    assert kinds == {*SPECIAL_KINDS, "person"} - {"installer", "slackbot"}


def test_a_hundred_thousand_users_cost_nothing_until_listed() -> None:
    started = time.perf_counter()
    with SlackEmulator(users=100_000, seed=1, enforce_rate_limits=False) as emulator:
        last = emulator.user_ids()[-1]
        page = _get(emulator, "users.list", limit=999).json()
        info = _get(emulator, "users.info", user=last).json()
        email = info["user"]["profile"]["email"]
        found = _get(emulator, "users.lookupByEmail", email=email).json()
    assert len(page["members"]) == 999
    assert page["response_metadata"]["next_cursor"]
    assert info["ok"] is True
    assert found["user"]["id"] == last
    assert time.perf_counter() - started < 3


def test_the_token_is_accepted_as_bearer_query_or_form() -> None:
    with SlackEmulator(users=5, enforce_rate_limits=False) as emulator:
        url = f"{emulator.base_url}/auth.test"
        as_query = requests.get(url, params={"token": emulator.token}, timeout=5).json()
        as_form = requests.post(url, data={"token": emulator.token}, timeout=5).json()
        as_bearer = _get(emulator, "auth.test").json()
        missing = requests.get(url, timeout=5).json()
    assert [as_query["ok"], as_form["ok"], as_bearer["ok"]] == [True, True, True]
    assert as_bearer["user_id"] == emulator.user_id(0)
    assert missing == {"ok": False, "error": "not_authed"}


def test_errors_are_http_200_with_ok_false_and_a_request_id() -> None:
    with SlackEmulator(users=5, enforce_rate_limits=False) as emulator:
        answer = _get(emulator, "users.info", user="UNOBODY")
        no_scope = emulator.issue_slack_token(scopes=("users:read",)).value
        lookup = requests.get(
            f"{emulator.base_url}/users.lookupByEmail",
            params={"email": "x@example.com"},
            headers={"Authorization": f"Bearer {no_scope}"},
            timeout=5,
        )
        unknown = _get(emulator, "users.nothing")
    assert answer.status_code == 200
    assert answer.json() == {"ok": False, "error": "user_not_found"}
    assert answer.headers["X-Slack-Req-Id"]
    assert lookup.json() == {
        "ok": False, "error": "missing_scope", "needed": "users:read.email",
        "provided": "users:read",
    }  # fmt: skip
    assert unknown.json()["error"] == "unknown_method"


def test_tier_limits_answer_429_with_retry_after() -> None:
    with SlackEmulator(users=5, rate_limits={"users.info": (60, 1)}) as emulator:
        uid = emulator.user_id(0)
        answers = [_get(emulator, "users.info", user=uid) for _ in range(2)]
    assert answers[0].status_code == 200
    assert answers[1].status_code == 429
    assert answers[1].json() == {"ok": False, "error": "ratelimited"}
    assert int(answers[1].headers["Retry-After"]) >= 1


def test_updates_and_removals_show_in_listings() -> None:
    with SlackEmulator(users=12, enforce_rate_limits=False) as emulator:
        gone, changed = emulator.user_id(10), emulator.user_id(11)
        emulator.remove_user(gone)
        emulator.update_user(changed, deleted=True, profile={"title": "Alumnus"})
        members = _get(emulator, "users.list", limit=50).json()["members"]
    by_id = {member["id"]: member for member in members}
    assert gone not in by_id
    assert by_id[changed]["deleted"] is True
    assert by_id[changed]["profile"]["title"] == "Alumnus"
    assert emulator.expected_user_ids() == set(by_id)
