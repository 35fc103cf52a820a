"""A tiny vendor ("acme") and its emulator, so sync tests need no real plugin.

The emulator serves ``GET /api/users?page=N&per_page=M`` (page/per_page
pagination), ``GET /api/me`` (the credential check) and ``GET /api/logins``
(last logins) over real HTTP on 127.0.0.1. Its users are plain dicts in
``emulator.users``: tests change, add or remove them between runs.

Run as a script it performs one sync (used by the kill -9 test):
``python sync_support.py DB BASE_URL INTEGRATION_FILE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from oomnitza_connect.errors import AuthenticationError, VendorAPIError
from oomnitza_connect.models import (
    AuthKind,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    VendorInfo,
    VendorRecord,
)
from oomnitza_connect.plugins import register_plugin
from oomnitza_connect.testing.emulator import Emulator, EmulatorRequest, EmulatorResponse, route
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors import Vendor
from oomnitza_connect.vendors.session import VendorSession, open_session

VENDOR = "acme"
TOKEN = "acme-test-token-1234"

ACME = VendorInfo(
    name=VENDOR,
    display_name="Acme",
    base_url="https://api.acme.example",
    auth_kinds=(AuthKind.API_KEY,),
    api_version="2024-01",
    global_settings=(
        GlobalSetting("Acme.Tenant", "Your Acme tenant name.", required=True),
        GlobalSetting("Acme.Region", "The data region.", default="us", choices=("us", "eu")),
    ),
    fields=(
        FieldSpec("id", "User Id", unique=True),
        FieldSpec("login", "Login", unique=True),
        FieldSpec("mail", "Mail"),
        FieldSpec("full_name", "Full Name"),
        FieldSpec("is_admin", "Is Admin?", FieldType.BOOLEAN),
        FieldSpec("active", "Active", FieldType.BOOLEAN),
        FieldSpec("hired", "Hired", FieldType.STRING, description="epoch seconds as text"),
        FieldSpec("groups", "Groups", FieldType.STRING, description="comma-separated"),
        FieldSpec("phone", "Phone"),
        FieldSpec("job_title", "Job Title"),
    ),
    standard_mapping=(
        FieldMapping(target="username", source="login"),
        FieldMapping(target="email", source="mail", converter="email"),
        FieldMapping(target="first_name", source="full_name", converter="first_name"),
        FieldMapping(target="last_name", source="full_name", converter="last_name"),
        FieldMapping(target="Acme User Id", source="id", unique=True),
        FieldMapping(target="connector_sync_time", expression="{{ sync_time }}"),
    ),
    default_filters=("active",),
)


def make_user(index: int, **overrides: Any) -> dict[str, Any]:
    user = {
        "id": f"A{index:06d}",
        "login": f"user{index}",
        "mail": f"User{index}@Example.com",
        "full_name": f"First{index} Last{index}",
        "is_admin": index % 10 == 0,
        "active": True,
        "hired": str(1_600_000_000 + index * 86_400),
        "groups": "staff, eng" if index % 2 else "staff",
        "phone": f"+1555{index:07d}",
        "job_title": "Engineer",
    }
    user.update(overrides)
    return user


class AcmeEmulator(Emulator):
    vendor = VENDOR

    def __init__(self, users: int = 10, *, page_delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.users: list[dict[str, Any]] = [make_user(i) for i in range(1, users + 1)]
        self.logins: dict[str, datetime] = {}
        self.page_delay = page_delay
        self.fail_after_page: int | None = None

    def _authorized(self, request: EmulatorRequest) -> bool:
        return request.bearer_token() == TOKEN

    @route("GET", "/api/me", endpoint="me")
    def me(self, request: EmulatorRequest) -> EmulatorResponse:
        if not self._authorized(request):
            return EmulatorResponse(401, {"error": "bad token"})
        return EmulatorResponse(200, {"tenant": "test"})

    @route("GET", "/api/users", endpoint="users")
    def list_users(self, request: EmulatorRequest) -> EmulatorResponse:
        if not self._authorized(request):
            return EmulatorResponse(401, {"error": "bad token"})
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "50"))
        if self.fail_after_page is not None and page > self.fail_after_page:
            return EmulatorResponse(500, {"error": "backend down"})
        if self.page_delay:
            time.sleep(self.page_delay)
        start = (page - 1) * per_page
        chunk = self.users[start : start + per_page]
        total_pages = max(1, -(-len(self.users) // per_page))
        return EmulatorResponse(
            200, {"users": chunk, "page": page, "per_page": per_page, "total_pages": total_pages}
        )

    @route("GET", "/api/logins", endpoint="logins")
    def list_logins(self, request: EmulatorRequest) -> EmulatorResponse:
        if not self._authorized(request):
            return EmulatorResponse(401, {"error": "bad token"})
        return EmulatorResponse(
            200,
            {"logins": [{"user": k, "at": v.isoformat()} for k, v in self.logins.items()]},
        )


def credential(base_url: str | None = None) -> Credential:
    return Credential(
        name="acme", vendor=VENDOR, kind=AuthKind.API_KEY, token=TOKEN, base_url=base_url
    )


class AcmePlugin(Vendor):
    """The acme vendor as a hand-written vendor object (register with ``register_plugin``)."""

    name = VENDOR

    def __init__(self, *, per_page: int = 50, with_logins: bool = True) -> None:
        self.per_page = per_page
        self.with_logins = with_logins

    @property
    def info(self) -> VendorInfo:
        return ACME

    def authenticate(
        self,
        credential: Credential,
        settings: Mapping[str, str],
        options: ClientOptions,
    ) -> VendorSession:
        # No retries and no pacing: tests want failures fast.
        options = ClientOptions(base_url=options.base_url, max_retries=0, pace_requests=False)
        session = open_session(ACME, credential, settings, options, credential_store=None)
        try:
            session.http.get_json("/api/me", endpoint="me")
        except VendorAPIError as exc:
            session.close()
            raise AuthenticationError(
                "Acme refused the token.", vendor=VENDOR, status=exc.status
            ) from None
        return session

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord]:
        page = 1
        while True:
            body = session.http.get_json(
                "/api/users", params={"page": page, "per_page": self.per_page}, endpoint="users"
            )
            for user in body["users"]:
                yield VendorRecord(vendor=VENDOR, id=user["id"], fields=user, raw=user)
            if page >= body["total_pages"]:
                return
            page += 1

    def last_logins(self, session: VendorSession) -> Iterator[Mapping[str, Any]] | None:
        if not self.with_logins:
            return None
        body = session.http.get_json("/api/logins", endpoint="logins")
        return iter(
            {"vendor_user_id": item["user"], "last_login": datetime.fromisoformat(item["at"])}
            for item in body["logins"]
        )

    def create_emulator(self, options: Mapping[str, Any]) -> Emulator:
        return AcmeEmulator(users=int(options.get("users", 10)))


INTEGRATION_TOML = """\
name = "acme-main"
vendor = "acme"
credential = "acme"
sync_key = "email"
default_role = "Employee"
contacts = ["it@example.com"]

[settings]
"Acme.Tenant" = "test"
"""


def write_integration(directory: Path, extra: str = "", *, base_url: str | None = None) -> Path:
    path = directory / "acme.toml"
    text = INTEGRATION_TOML
    if base_url:
        text = text.replace("contacts = ", f'base_url = "{base_url}"\ncontacts = ', 1)
    path.write_text(text + extra)
    return path


def recent(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def _main(argv: list[str]) -> int:
    """Run one sync in this process (the kill -9 test's child)."""
    from oomnitza_connect.plugins import register_plugin
    from oomnitza_connect.store.sqlite import SQLiteStore
    from oomnitza_connect.sync.engine import run_sync
    from oomnitza_connect.sync.integrations import load_integration

    db, base_url, integration_file, batch_size = argv[1], argv[2], argv[3], int(argv[4])
    with register_plugin(AcmePlugin(per_page=20), name="acme-test"):
        settings = load_integration(integration_file)
        with SQLiteStore(db) as store:
            session = run_sync(
                settings,
                credential=credential(base_url),
                store=store,
                batch_size=batch_size,
            )
    print(session.status.value)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))


@contextlib.contextmanager
def acme_for_the_cli(
    home: Path, monkeypatch: Any, *, users: int, per_page: int
) -> Iterator[AcmeEmulator]:
    """Register acme, serve it, and store its credential where the CLI looks it up.

    The home directory and the credential are set through *monkeypatch*, so
    they are undone after the test.
    """
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(home))
    monkeypatch.delenv("OOMNITZA_CONNECT_DB", raising=False)
    monkeypatch.delenv("OOMNITZA_CONNECT_SMTP_HOST", raising=False)
    with (
        register_plugin(AcmePlugin(per_page=per_page), name="acme-test"),
        AcmeEmulator(users=users) as emulator,
    ):
        monkeypatch.setenv(
            "OOMNITZA_CONNECT_CREDENTIAL_ACME",
            json.dumps({"vendor": "acme", "kind": "api_key", "token": TOKEN}),
        )
        yield emulator


def cli_in_a_child(*args: Any) -> subprocess.CompletedProcess[str]:
    """Run ``oomnitza-connect ARGS`` in a child process with acme registered.

    Its logging is the real command's (under pytest, the root logger's capture
    handlers keep the CLI's from being installed, so a CliRunner never shows a
    log line); the environment is this process's, as ``acme_for_the_cli`` set it.
    """
    tests = Path(__file__).parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]),
        "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS": "0",
    }
    return subprocess.run(
        [sys.executable, str(tests / "cli_child.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
