"""A local Slack Web API for tests, demos and benchmarks.

It serves ``users.list``, ``users.info``, ``users.lookupByEmail``,
``team.accessLogs``, ``auth.test`` and ``oauth.v2.access`` (plus an
auto-approving ``/oauth/v2/authorize``) the way Slack does: errors as HTTP 200
with ``ok: false``, 429 with ``Retry-After`` over a tier's rate, scope checks,
single-use refresh tokens and an ``X-Slack-Req-Id`` on every answer.

Users are not stored: user *i* is computed from the seed when a page needs it,
so a workspace of 100,000 users costs nothing until it is listed. The first
nine users are one of each special kind (see :data:`SPECIAL_KINDS`); the rest
are mostly people, with deleted users, bots, app users, guests, invitees and
sparse profiles sprinkled in.

>>> with SlackEmulator(users=500, seed=1) as slack:
...     credential = slack.test_credential()
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from oomnitza_connect.testing.emulator import (
    AccessProblem,
    EmulatorRequest,
    EmulatorResponse,
    IssuedToken,
    decode_cursor,
    encode_cursor,
    json_response,
    route,
)
from oomnitza_connect.testing.fakes import FakePeople
from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin, TokenGrant, TokenRefused
from oomnitza_connect.testing.users import GeneratedUsers, pick_kind

from .vendor import SLACKBOT_USER_ID

__all__ = ["SPECIAL_KINDS", "SlackEmulator"]

FULL_SCOPES = ("users:read", "users:read.email", "admin")
ACCESS_TOKEN_TTL = 43200.0
"""Slack's rotating access tokens live 12 hours."""

SPECIAL_KINDS = (
    "installer",
    "slackbot",
    "bot",
    "app_user",
    "deleted",
    "restricted",
    "ultra_restricted",
    "invited",
    "sparse",
)
"""The kinds of users 0 to 8, so that even a tiny workspace has one of each."""
_KIND_SHARES = (
    ("deleted", 0.02), ("bot", 0.03), ("app_user", 0.04), ("restricted", 0.07),
    ("ultra_restricted", 0.08), ("invited", 0.09), ("sparse", 0.13),
)  # fmt: skip
"""The kinds of the other users, by cumulative share; the rest are people."""

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INDEX_WIDTH = 6
_LOGIN_EPOCH = 1_763_000_000
"""The newest access-log entry's time; fixed so that runs are reproducible."""
_LOGIN_STEP = 60
_ACCESS_ERRORS = {
    "missing": "not_authed", "revoked": "token_revoked", "unknown": "invalid_auth",
    "expired": "token_expired",
}  # fmt: skip


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


class SlackEmulator(GeneratedUsers, OAuthTokenEndpointMixin):
    """An emulated Slack workspace with *users* generated users.

    :param users: how many users ``users.list`` returns (change
        :attr:`user_count` later to grow or shrink the workspace).
    :param seed: makes names, ids and kinds reproducible.
    :param token: the value of the ready-made token (default: a fresh ``xoxp-``).
    :param scopes: the ready-made token's scopes.
    :param paid_plan: ``False`` makes ``team.accessLogs`` answer ``paid_only``.
    :param short_pages: return fewer users than ``limit`` on some pages, as Slack may.
    :param token_rotation: OAuth installs get 12-hour tokens and refresh tokens.
    :param access_token_ttl: the lifetime of rotated access tokens, in seconds.
    :param logins_per_user: access-log entries per user who has signed in.
    :param max_page_size: the most users one page holds, whatever ``limit`` asks
        (Slack's own cap is 1000; tests lower it to exercise pagination).
    :param options: passed to :class:`~oomnitza_connect.testing.emulator.Emulator`
        (``port``, ``rate_limits``, ``enforce_rate_limits`` …).
    """

    vendor = "slack"
    rate_limits = {
        "users.list": (20, 3),
        "users.info": (100, 10),
        "users.lookupByEmail": (50, 5),
        "team.accessLogs": (20, 3),
    }
    """Slack's tiers: Tier 2 is 20/min, Tier 3 50/min, Tier 4 100/min."""
    request_id_header = "X-Slack-Req-Id"
    request_id_format = "emu{emulator.seed}-{number}"
    fault_codes = {
        "rate_limited": "ratelimited", "internal_error": "service_unavailable",
        "not_found": "unknown_method",
    }  # fmt: skip
    merged_fields = ("profile",)
    refresh_token_prefix = "xoxe-1-"
    token_path, token_endpoint = "/api/oauth.v2.access", "oauth.v2.access"
    authorize_path, authorize_endpoint = "/oauth/v2/authorize", "oauth.v2.authorize"
    code_parameters = ("user_scope",)
    infer_grant_type = True
    _REFUSALS = {
        "unknown_client": "invalid_client_id", "malformed": "invalid_client_id",
        "bad_secret": "bad_client_secret", "bad_code": "invalid_code",
        "bad_redirect": "bad_redirect_uri", "bad_verifier": "invalid_code_verifier",
        "bad_refresh": "invalid_refresh_token", "bad_grant": "invalid_grant_type",
    }  # fmt: skip
    """The test kit's refusal reasons in Slack's words."""

    def __init__(
        self,
        *,
        users: int = 100,
        seed: int = 0,
        token: str | None = None,
        scopes: Iterable[str] = FULL_SCOPES,
        paid_plan: bool = True,
        short_pages: bool = True,
        token_rotation: bool = True,
        access_token_ttl: float = ACCESS_TOKEN_TTL,
        logins_per_user: int = 2,
        max_page_size: int = 1000,
        client_id: str | None = None,
        client_secret: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.user_count = users
        self.seed = seed
        self.paid_plan = paid_plan
        self.short_pages = short_pages
        self.token_rotation = token_rotation
        self.access_token_ttl = access_token_ttl
        self.logins_per_user = max(1, logins_per_user)
        self.max_page_size = max(1, min(max_page_size, 1000))
        self.team_id = "T" + _base36(seed % 36**9 + 36**8, 9)
        self.team_name = f"Emulated Workspace {seed}"
        self.team_domain = f"emulated-{seed}"
        self.email_domain = f"emulated-{seed}.example.com"
        self.people = FakePeople(seed=seed, email_domain=self.email_domain)
        self._id_prefix = _base36(seed % 36**2, 2)
        self.client_id = client_id or f"{1000 + seed % 9000}.{seed % 1_000_000:06d}"
        self.client_secret = client_secret or secrets.token_hex(16)
        self.register_client(self.client_id, client_secret=self.client_secret)
        self._lock = threading.Lock()
        self._refresh_kinds: dict[str, str] = {}
        self.token = self.issue_slack_token(
            kind="user", scopes=scopes, value=token, subject=self.user_id(0)
        ).value

    # -- addresses and credentials -------------------------------------------

    @property
    def base_url(self) -> str:
        """The Web API root, like ``https://slack.com/api``."""
        return self.server_url + "/api"

    def issue_slack_token(
        self,
        *,
        kind: str = "bot",
        scopes: Iterable[str] = FULL_SCOPES,
        ttl: float | None = None,
        value: str | None = None,
        subject: str | None = None,
    ) -> IssuedToken:
        """Issue a ``xoxb-`` (bot) or ``xoxp-`` (user) token; with *ttl* it is a rotating one."""
        prefix = ("xoxe." if ttl is not None else "") + ("xoxb-" if kind == "bot" else "xoxp-")
        return self.issue_token(
            scopes=scopes,
            ttl=ttl,
            prefix=prefix + f"{1000 + self.seed % 9000}-",
            subject=subject or (self.bot_user_id if kind == "bot" else self.user_id(0)),
            value=value,
        )

    # -- generated users ------------------------------------------------------

    def user_id(self, index: int) -> str:
        if index == 1:
            return SLACKBOT_USER_ID
        return "U" + self._id_prefix + _base36(index, _INDEX_WIDTH)

    @property
    def bot_user_id(self) -> str:
        return self.user_id(2)

    def index_of(self, user_id: str) -> int | None:
        index = self._number_in(user_id)
        return index if index is not None and self.exists(index) else None

    def _number_in(self, user_id: str) -> int | None:
        if user_id == SLACKBOT_USER_ID:
            return 1
        if not user_id.startswith("U" + self._id_prefix) or len(user_id) != 3 + _INDEX_WIDTH:
            return None
        try:
            return int(user_id[3:], 36)
        except ValueError:
            return None

    def kind_of(self, index: int) -> str:
        """Return the kind of user *index*: one of :data:`SPECIAL_KINDS` or ``person``."""
        return pick_kind(index, self.people[index].roll, SPECIAL_KINDS, _KIND_SHARES)

    def generate_user(self, index: int) -> dict[str, Any]:
        """User *index* as Slack would send it with every scope (changes aside)."""
        person = self.people[index]
        bits, first, zone = person.bits, person.first_name, person.time_zone
        kind = pick_kind(index, person.roll, SPECIAL_KINDS, _KIND_SHARES)
        handle = person.handle
        uid = self.user_id(index)
        # Some addresses carry capitals, as real ones do, to exercise lower-casing.
        email = person.email_as_typed if index % 7 == 3 else person.email
        profile: dict[str, Any] = {
            "avatar_hash": person.avatar_hash,
            "status_text": "",
            "status_emoji": "",
            "real_name": person.full_name,
            "real_name_normalized": person.full_name,
            "display_name": handle,
            "display_name_normalized": handle,
            "email": email,
            "first_name": first,
            "last_name": person.last_name,
            "title": person.title,
            "phone": person.phone,
            "skype": handle.replace(".", "_"),
            "image_24": f"https://avatars.example.com/{uid}_24.png",
            "image_192": f"https://avatars.example.com/{uid}_192.png",
            "team": self.team_id,
        }
        user: dict[str, Any] = {
            "id": uid,
            "team_id": self.team_id,
            "name": handle,
            "deleted": False,
            "color": person.color,
            "real_name": person.full_name,
            "tz": zone.name,
            "tz_label": zone.label,
            "tz_offset": zone.offset,
            "profile": profile,
            "is_admin": index == 0 or (bits >> 144) % 100 < 3,
            "is_owner": index == 0,
            "is_primary_owner": index == 0,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": person.created_at,
            "has_2fa": bool((bits >> 190) & 1),
        }
        if kind == "slackbot":
            user.update(
                name="slackbot", real_name="Slackbot", tz=None, is_admin=False, color="757575",
                updated=0, deleted=False,
            )  # fmt: skip
            user["profile"] = {
                "real_name": "Slackbot", "real_name_normalized": "Slackbot",
                "display_name": "Slackbot", "display_name_normalized": "Slackbot",
                "first_name": "slackbot", "last_name": "", "title": "", "phone": "",
                "skype": "", "email": None, "always_active": True, "team": self.team_id,
            }  # fmt: skip
        elif kind == "bot":
            bot_name = f"{first.lower()}bot{index}"
            user.update(name=bot_name, real_name=f"{first} Bot", is_bot=True, is_admin=False)
            user["profile"] = {
                "real_name": f"{first} Bot", "display_name": "", "bot_id": "B" + uid[1:],
                "api_app_id": "A" + uid[1:], "always_active": True, "first_name": f"{first} Bot",
                "last_name": "", "team": self.team_id, "status_text": "",
            }  # fmt: skip
        elif kind == "app_user":
            user["is_app_user"] = True
        elif kind == "deleted":
            user.update(deleted=True, is_admin=False)
        elif kind == "restricted":
            user.update(is_restricted=True, is_admin=False)
        elif kind == "ultra_restricted":
            user.update(is_restricted=True, is_ultra_restricted=True, is_admin=False)
        elif kind == "invited":
            user.update(is_invited_user=True, is_admin=False, real_name="")
            profile.update(real_name="", real_name_normalized="", display_name="", title="")
            for key in ("first_name", "last_name", "phone", "skype"):
                profile.pop(key)
        elif kind == "sparse":
            # Slack: unfilled data "may not be present at all, may be null or may be empty".
            for key in ("first_name", "last_name", "skype"):
                profile.pop(key)
            profile.update(title=None, phone="", display_name=None)
            user.pop("tz")
        return user

    def email_of(self, user: dict[str, Any]) -> str | None:
        return (user.get("profile") or {}).get("email")

    # -- access logs ------------------------------------------------------------

    def _login_users(self) -> list[int]:
        """Users with access-log entries: everyone who has signed in (not invitees)."""
        return self.derived(
            "logins", lambda: [i for i in self.listed_indexes() if i != 1 and not self._invited(i)]
        )

    def _login_entry(self, ordinal: int, eligible: list[int]) -> dict[str, Any]:
        index = eligible[ordinal % len(eligible)]
        user = self.user_at(index)
        date_last = _LOGIN_EPOCH - ordinal * _LOGIN_STEP
        return {
            "user_id": user["id"],
            "username": user["name"],
            "date_first": date_last - 3600 * (1 + ordinal % 5),
            "date_last": date_last,
            "count": 1 + ordinal % 7,
            "ip": f"10.{ordinal % 250}.{(ordinal // 250) % 250}.{index % 250}",
            "user_agent": "SlackWeb/4.0" if ordinal % 2 else "Slack/4.41 (Mac OS)",
            "isp": "Example ISP",
            "country": "US",
            "region": "CA",
        }

    def _invited(self, index: int) -> bool:
        if index in self.overrides:
            return bool(self.user_at(index).get("is_invited_user"))
        return self.kind_of(index) == "invited"

    def expected_last_logins(self) -> dict[str, int]:
        """Return user id -> the newest ``date_last`` in the access logs."""
        eligible = self._login_users()
        return {
            self.user_id(index): _LOGIN_EPOCH - position * _LOGIN_STEP
            for position, index in enumerate(eligible)
        }

    # -- Slack conventions --------------------------------------------------------

    def error_response(self, status: int, code: str, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"ok": False, "error": code}, status=status)

    @staticmethod
    def _error(code: str, **extra: Any) -> EmulatorResponse:
        return json_response({"ok": False, "error": code, **extra})

    def _authorize(self, request: EmulatorRequest, needed: str) -> IssuedToken:
        """The caller's token (a header or a ``token`` parameter, as Slack takes both)."""
        value = request.bearer_token() or request.params().get("token") or ""
        return self.check_access(request, needed, value=value)

    def access_refused(self, problem: AccessProblem, request: EmulatorRequest) -> EmulatorResponse:
        # Slack refuses with HTTP 200 and ``ok: false``.
        if problem.reason == "scope" and problem.token is not None:
            provided = ",".join(sorted(problem.token.scopes))
            return self._error("missing_scope", needed=problem.scope, provided=provided)
        return self._error(_ACCESS_ERRORS[problem.reason])

    @staticmethod
    def _ok(token: IssuedToken, body: dict[str, Any]) -> EmulatorResponse:
        response = json_response({"ok": True, **body})
        # Slack names the token's scopes on every answer.
        response.headers["X-OAuth-Scopes"] = ",".join(sorted(token.scopes))
        return response

    def _visible(self, user: dict[str, Any], token: IssuedToken) -> dict[str, Any]:
        if "users:read.email" not in token.scopes and isinstance(user.get("profile"), dict):
            user["profile"].pop("email", None)
        return user

    # -- methods ----------------------------------------------------------------

    @route(("GET", "POST"), "/api/auth.test", endpoint="auth.test")
    def auth_test(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authorize(request, "")
        subject = token.subject or self.user_id(0)
        index = self.index_of(subject)
        name = self.user_at(index)["name"] if index is not None else "unknown"
        body: dict[str, Any] = {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": name,
            "team_id": self.team_id,
            "user_id": subject,
            "is_enterprise_install": False,
        }
        if subject == self.bot_user_id:
            body["bot_id"] = "B" + subject[1:]
        return self._ok(token, body)

    @route(("GET", "POST"), "/api/users.list", endpoint="users.list")
    def users_list(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authorize(request, "users:read")
        params = request.params()
        cursor = params.get("cursor") or ""
        start = self._decode_cursor(cursor) if cursor else 0
        if start is None:
            return self._error("invalid_cursor")
        raw_limit = params.get("limit") or ""
        if not raw_limit and self.user_count > self.max_page_size:
            return self._error("limit_required")
        try:
            limit = min(max(int(raw_limit or self.max_page_size), 1), self.max_page_size)
        except ValueError:
            return self._error("invalid_arg_name")
        size = limit
        if self.short_pages and limit > 1 and (start // limit) % 3 == 1:
            size = limit // 2
        members: list[dict[str, Any]] = []
        index = start
        while index < self.user_count and len(members) < size:
            if index in self.raw_records:
                members.append(self.raw_records[index])
            elif index not in self.removed:
                members.append(self._visible(self.user_at(index), token))
            index += 1
        next_cursor = (
            encode_cursor(f"user:{self.user_id(index)}") if index < self.user_count else ""
        )
        return self._ok(
            token,
            {
                "members": members,
                "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": next_cursor},
            },
        )

    def _decode_cursor(self, cursor: str) -> int | None:
        text = decode_cursor(cursor) or ""
        return self._number_in(text[5:]) if text.startswith("user:") else None

    @route(("GET", "POST"), "/api/users.info", endpoint="users.info")
    def users_info(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authorize(request, "users:read")
        user_id = request.params().get("user")
        if not user_id:
            return self._error("missing_argument")
        index = self.index_of(user_id)
        if index is None:
            return self._error("user_not_found")
        return self._ok(token, {"user": self._visible(self.user_at(index), token)})

    @route(("GET", "POST"), "/api/users.lookupByEmail", endpoint="users.lookupByEmail")
    def users_lookup_by_email(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authorize(request, "users:read.email")
        email = request.params().get("email")
        if not email:
            return self._error("missing_argument")
        index = self.index_of_email(email)
        if index is None:
            return self._error("users_not_found")
        return self._ok(token, {"user": self._visible(self.user_at(index), token)})

    @route("GET", "/api/team.accessLogs", endpoint="team.accessLogs")
    def team_access_logs(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authorize(request, "admin")
        if not self.paid_plan:
            return self._error("paid_only")
        params = request.params()
        try:
            count = min(max(int(params.get("count") or 100), 1), 1000)
            page = max(int(params.get("page") or 1), 1)
            before = int(params["before"]) if params.get("before") else None
        except ValueError:
            return self._error("invalid_arg_name")
        if page > 100:
            # Slack caps paging at 100 pages; older entries are reached with `before`.
            return self._error("invalid_paging")
        eligible = self._login_users()
        total_entries = len(eligible) * self.logins_per_user if eligible else 0
        first_ordinal = 0
        if before is not None:
            # Entries are newest first; skip those newer than `before` (inclusive bound).
            first_ordinal = max(0, -(-(_LOGIN_EPOCH - before) // _LOGIN_STEP))
        total = max(total_entries - first_ordinal, 0)
        start = first_ordinal + (page - 1) * count
        end = min(start + count, total_entries)
        logins = [self._login_entry(o, eligible) for o in range(start, end)]
        pages = max(1, -(-total // count))
        return self._ok(
            token,
            {
                "logins": logins,
                "paging": {"count": count, "total": total, "page": page, "pages": pages},
            },
        )

    # -- OAuth (the test kit's endpoint, answering in Slack's shape) -----------

    def issue_code(
        self,
        *,
        scopes: Iterable[str] = ("users:read", "users:read.email"),
        user_scopes: Iterable[str] = (),
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str = "plain",
    ) -> str:
        """Return an authorization code, as if a user had approved the install."""
        return self.issue_authorization_code(
            self.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            extras={"user_scope": ",".join(user_scopes)},
        )

    def parse_scopes(self, value: str | None) -> frozenset[str]:
        # Slack writes scopes comma-separated; OAuth libraries send them space-separated.
        return frozenset((value or "").replace(",", " ").split())

    def authorize_error(self, error: str) -> EmulatorResponse:
        code = "bad_redirect_uri" if error == "invalid_redirect_uri" else "invalid_client_id"
        return json_response({"ok": False, "error": code}, status=400)

    def token_refused(self, refused: TokenRefused) -> EmulatorResponse:
        return self._error(self._REFUSALS.get(refused.reason, refused.error))

    def grant_tokens(self, grant: TokenGrant) -> EmulatorResponse:
        body: dict[str, Any] = {
            "app_id": "A" + self.team_id[1:],
            "team": {"name": self.team_name, "id": self.team_id},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if grant.refreshed is not None:
            with self._lock:
                kind = self._refresh_kinds.pop(grant.refreshed.value, "bot")
            body.update(self._token_fields(kind, grant.scopes, grant.refresh_token))
            if kind == "bot":
                body["bot_user_id"] = self.bot_user_id
            else:
                body["user_id"] = self.user_id(0)
            return json_response({"ok": True, **body})
        if grant.refresh_token is not None:
            self.revoke_token(grant.refresh_token)  # each token below gets its own
        if grant.scopes:
            body.update(self._token_fields("bot", grant.scopes))
            body["bot_user_id"] = self.bot_user_id
        authed_user: dict[str, Any] = {"id": self.user_id(0)}
        user_scopes = self.parse_scopes(grant.extras.get("user_scope"))
        if user_scopes:
            authed_user.update(self._token_fields("user", user_scopes))
        body["authed_user"] = authed_user
        return json_response({"ok": True, **body})

    def _token_fields(
        self, kind: str, scopes: frozenset[str], refresh: str | None = None
    ) -> dict[str, Any]:
        ttl = self.access_token_ttl if self.token_rotation else None
        access = self.issue_slack_token(kind=kind, scopes=scopes, ttl=ttl)
        fields: dict[str, Any] = {
            "access_token": access.value,
            "token_type": kind,
            "scope": ",".join(sorted(scopes)),
        }
        if self.token_rotation:
            refresh = refresh or self.grant_refresh_token(self.client_id, scopes=scopes)
            with self._lock:
                self._refresh_kinds[refresh] = kind
            fields.update(expires_in=int(self.access_token_ttl), refresh_token=refresh)
        elif refresh is not None:
            self.revoke_token(refresh)
        return fields
