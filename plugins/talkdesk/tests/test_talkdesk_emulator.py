"""The Talkdesk emulator on its own: its token host checks, HAL pages, contacts and apps."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt
import pytest
import requests
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator, generate_key_pair

from oomnitza_connect.auth.oauth import load_private_key
from oomnitza_connect.testing.emulator import Fault

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion(emulator: TalkdeskEmulator, **changes: Any) -> str:
    """A client assertion for *emulator*, with claims or header fields changed."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": emulator.client_id,
        "sub": emulator.client_id,
        "aud": emulator.token_url,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
    }
    key = changes.pop("key", emulator.private_key)
    kid = changes.pop("kid", emulator.key_id)
    algorithm = changes.pop("algorithm", emulator.key_algorithm)
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, load_private_key(key), algorithm=algorithm, headers={"kid": kid})


def ask_token(
    emulator: TalkdeskEmulator, signed: str, url: str | None = None, **form: str
) -> requests.Response:
    return requests.post(
        url or emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": signed,
            **form,
        },
        timeout=5,
    )


@pytest.fixture
def talkdesk() -> Any:
    with TalkdeskEmulator(users=12, seed=3, subdomain="acme", region="EU", max_page_size=5) as emu:
        yield emu


def test_a_well_formed_assertion_gets_a_token_without_refresh_token(talkdesk) -> None:
    answer = ask_token(talkdesk, assertion(talkdesk), scope="users:read apps:read")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == {"users:read", "apps:read"}
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "https://acme.talkdeskid.com/oauth/token"}, "aud"),
        ({"sub": "someone-else"}, "iss and sub"),
        ({"exp": int(time.time()) + 3600}, "five minutes"),
        ({"exp": int(time.time()) - 10, "iat": int(time.time()) - 100}, "expired"),
        ({"kid": "another-key"}, "kid"),
        ({"jti": None}, "bad assertion"),
    ],
)
def test_the_token_host_refuses_a_bad_assertion(
    talkdesk, changes: dict[str, Any], reason: str
) -> None:
    answer = ask_token(talkdesk, assertion(talkdesk, **changes))
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert reason in answer.json()["error_description"]


def test_a_signature_from_another_key_is_refused(talkdesk) -> None:
    stranger, _ = generate_key_pair("ES256")
    answer = ask_token(talkdesk, assertion(talkdesk, key=stranger))
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_a_jti_is_accepted_once(talkdesk) -> None:
    signed = assertion(talkdesk)
    assert ask_token(talkdesk, signed).status_code == 200
    again = ask_token(talkdesk, signed)
    assert again.status_code == 401
    assert "jti" in again.json()["error_description"]


@pytest.mark.parametrize("algorithm", ["ES384", "ES512", "PS256", "PS512"])
def test_every_talkdesk_key_algorithm_signs(algorithm: str) -> None:
    with TalkdeskEmulator(users=1, key_algorithm=algorithm) as emu:
        answer = ask_token(emu, assertion(emu))
        assert answer.status_code == 200, answer.text
        assert jwt.get_unverified_header(assertion(emu))["alg"] == algorithm


def test_the_token_host_belongs_to_the_account_and_region(talkdesk) -> None:
    assert talkdesk.token_url.endswith("/acme.talkdeskid.eu/oauth/token")
    for host in ("other.talkdeskid.eu", "acme.talkdeskid.com"):
        url = f"{talkdesk.server_url}/{host}/oauth/token"
        # An assertion for that URL, so only the host can be wrong.
        answer = ask_token(talkdesk, assertion(talkdesk, aud=url), url=url)
        assert answer.status_code == 404, host
    bare = ask_token(talkdesk, assertion(talkdesk), url=f"{talkdesk.server_url}/oauth/token")
    assert bare.status_code == 404


def test_http_basic_with_the_client_secret(talkdesk) -> None:
    good = requests.post(
        talkdesk.token_url,
        data={"grant_type": "client_credentials"},
        auth=(talkdesk.client_id, talkdesk.client_secret),
        timeout=5,
    )
    assert good.status_code == 200
    bad = requests.post(
        talkdesk.token_url,
        data={"grant_type": "client_credentials"},
        auth=(talkdesk.client_id, "wrong"),
        timeout=5,
    )
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"


def test_a_scope_added_minutes_ago_answers_401_until_it_propagates(talkdesk) -> None:
    talkdesk.add_scope("account:read", propagates_in=0.5)
    early = ask_token(talkdesk, assertion(talkdesk), scope="users:read account:read")
    assert early.status_code == 401
    assert "account:read" in early.json()["error_description"]
    assert ask_token(talkdesk, assertion(talkdesk), scope="users:read").status_code == 200
    time.sleep(0.6)
    later = ask_token(talkdesk, assertion(talkdesk), scope="users:read account:read")
    assert later.status_code == 200


def _token(
    emulator: TalkdeskEmulator, scope: str = "users:read contacts:read apps:read"
) -> dict[str, str]:
    body = ask_token(emulator, assertion(emulator), scope=scope).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_users_come_in_hal_pages_until_no_next_link(talkdesk) -> None:
    headers = _token(talkdesk)
    url: str | None = f"{talkdesk.base_url}/users"
    seen: list[str] = []
    pages = 0
    while url:
        page = requests.get(url, headers=headers, timeout=5).json()
        pages += 1
        seen += [user["id"] for user in page["_embedded"]["users"]]
        assert page["total"] == 12
        url = page["_links"].get("next", {}).get("href")
    assert pages == 3
    assert seen == talkdesk.user_ids()
    first = requests.get(f"{talkdesk.base_url}/users", headers=headers, timeout=5).json()
    user = first["_embedded"]["users"][0]
    assert user["_links"]["self"]["href"].endswith("/users/{user_id}")  # as in the sample
    assert first["_links"]["next"]["href"] == f"{talkdesk.base_url}/users?page=2"


def test_inactive_users_are_listed(talkdesk) -> None:
    assert not talkdesk.is_active(1)
    user = talkdesk.user(talkdesk.user_id(1))
    assert user is not None
    assert user["active"] is False


def test_a_big_account_is_generated_lazily() -> None:
    with TalkdeskEmulator(users=100_000, seed=5) as emu:
        headers = _token(emu)
        last = requests.get(
            f"{emu.base_url}/users", params={"page": 2000}, headers=headers, timeout=5
        ).json()
        # Only what pages asked for was computed: nothing is stored per user.
        assert not emu.overrides
        assert not emu.removed
    assert len(last["_embedded"]["users"]) == 50
    assert last["_embedded"]["users"][-1]["id"] == emu.user_id(99_999)
    assert "next" not in last["_links"]


def test_the_same_seed_gives_the_same_account() -> None:
    one, two = TalkdeskEmulator(users=5, seed=11), TalkdeskEmulator(users=5, seed=11)
    assert one.user_ids() == two.user_ids()
    with one, two:
        assert one.user(one.user_id(3))["name"] == two.user(two.user_id(3))["name"]
    assert TalkdeskEmulator(users=5, seed=12).user_ids() != one.user_ids()


def test_the_api_checks_token_region_and_scope(talkdesk) -> None:
    assert requests.get(f"{talkdesk.base_url}/users", timeout=5).status_code == 401
    users_only = _token(talkdesk, "users:read")
    forbidden = requests.get(f"{talkdesk.base_url}/contacts", headers=users_only, timeout=5)
    assert forbidden.status_code == 403
    assert set(forbidden.json()) >= {"code", "message", "description"}
    wrong_region = f"{talkdesk.server_url}/api.talkdeskapp.com/users"
    assert requests.get(wrong_region, headers=users_only, timeout=5).status_code == 401


def test_expired_tokens_answer_401_mid_run(talkdesk) -> None:
    headers = _token(talkdesk)
    talkdesk.faults.add(Fault.expire_tokens(), endpoint="users.list", after=1)
    assert requests.get(f"{talkdesk.base_url}/users", headers=headers, timeout=5).ok
    expired = requests.get(f"{talkdesk.base_url}/users?page=2", headers=headers, timeout=5)
    assert expired.status_code == 401
    assert "expired" in expired.json()["description"]


def test_contacts_filter_by_name_and_unknown_contacts_are_400(talkdesk) -> None:
    headers = _token(talkdesk)
    found = requests.get(
        f"{talkdesk.base_url}/contacts", params={"name": "Daniel Craig"}, headers=headers, timeout=5
    ).json()
    assert [c["name"] for c in found["_embedded"]["contacts"]] == ["Daniel Craig"]
    contact_id = found["_embedded"]["contacts"][0]["id"]
    one = requests.get(f"{talkdesk.base_url}/contacts/{contact_id}", headers=headers, timeout=5)
    assert one.json()["phones"][0]["number"].startswith("+1555")
    missing = requests.get(f"{talkdesk.base_url}/contacts/nope", headers=headers, timeout=5)
    assert missing.status_code == 400
    assert missing.json()["fields"] == [{"name": "contact_id", "description": "unknown id"}]


def test_apps_installations_and_subscription(talkdesk) -> None:
    headers = _token(talkdesk)
    base = f"{talkdesk.base_url}/apps/{talkdesk.app_id}"
    app = requests.get(base, headers=headers, timeout=5).json()
    assert app["subscription_types"][0]["type"] == "paid"
    installation = f"{base}/installations/{talkdesk.installation_id}"
    info = requests.get(installation, headers=headers, timeout=5).json()
    assert info["_embedded"]["state"]["state"] == "completed"
    users = requests.get(f"{installation}/users", headers=headers, timeout=5).json()
    assert users["total"] == len(talkdesk.installation_user_ids()) == 8
    assert users["_links"]["next"]["href"].endswith("/users?page=2")
    subscription = requests.get(f"{installation}/subscription", headers=headers, timeout=5).json()
    assert subscription["total_licenses"] == 8
    unknown = requests.get(f"{base}/installations/nope/subscription", headers=headers, timeout=5)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Installation not found"}
    assert (
        requests.get(f"{talkdesk.base_url}/apps/nope", headers=headers, timeout=5).status_code
        == 404
    )


def test_the_app_installed_event_carries_a_working_key(talkdesk) -> None:
    event = talkdesk.app_installed_event()
    data = event["data"]
    assert data["account_name"] == "acme"
    assert data["key_algorithm"] == "ES256"
    load_private_key(data["private_key"])  # Base64 PKCS#8, as Talkdesk delivers it
    assert b"BEGIN PUBLIC KEY" in base64.b64decode(data["public_key"])
    assert event["_links"]["root"]["href"] == talkdesk.base_url


def test_faults_answer_in_talkdesks_error_format(talkdesk) -> None:
    headers = _token(talkdesk)
    talkdesk.faults.add(Fault.rate_limited(retry_after=2), endpoint="users.list")
    limited = requests.get(f"{talkdesk.base_url}/users", headers=headers, timeout=5)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert set(limited.json()) == {"code", "message"}
    talkdesk.faults.add(Fault.server_error(503), endpoint="users.list")
    assert requests.get(f"{talkdesk.base_url}/users", headers=headers, timeout=5).status_code == 503
