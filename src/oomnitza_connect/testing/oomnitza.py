"""An Oomnitza emulator: the REST API the Oomnitza destination talks to, on 127.0.0.1.

It speaks ``../shared/oomnitza-api.md``: ``Authorization2`` tokens and
``POST /api/request_token``; the bulk portion protocol (``POST /api/v3/bulk``
with strict validation, ``POST /api/v3/bulk/{portion}/finalize``); run logs
(``GET /api/v3/connector_run_logs/...``); the users read API with offset
paging, ``filter`` and ``X-Total-Count``; ``PATCH /api/v3/users/{ident}``;
SaaS apps and their users. It keeps its state (``emulator.users``,
``emulator.saas_users()``) so tests check exactly what Oomnitza received.

What the fact sheet leaves open is decided here, and the destination relies
on nothing more: a bulk POST is processed at once and answers
``{"portion", "accepted"}``; the same records POSTed again to the same
portion are acknowledged and not applied twice; errors are
``{"errors": {key: message}}``; ``SAAS`` is ``{"sync_key": vendor user id,
"name": app name, "role": role}``.

>>> with OomnitzaEmulator() as oomnitza:
...     oomnitza.faults.add(Fault.rate_limited(retry_after=1), endpoint="bulk")
...     run_sync(settings, destination=OomnitzaDestination(...))
...     oomnitza.users_by("email")["a@x.io"]["username"]
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..models import AuthKind, Credential
from .emulator import Emulator, EmulatorRequest, EmulatorResponse, json_response, route

__all__ = ["BULK_FIELDS", "OomnitzaEmulator"]

BULK_FIELDS: Mapping[str, str] = {
    "USER": "username",
    "EMAIL": "email",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "POSITION": "position",
    "PHONE": "phone_number",
    "PERMISSIONS_ID": "role",
    "ADDRESS": "address",
    "EXTERNAL_ID": "external_id",
}
"""Bulk record field ids (upper case) and the v3 user keys they land in."""

MAX_RECORDS = 100
FATAL_ERROR = "Fatal Error"
_UNIQUE = ("username", "email", "external_id")
_BULK_KEYS: Mapping[str, tuple[type, ...]] = {
    "portion": (str,),
    "records": (list,),
    "data_type": (str,),
    "sync_field": (list,),
    "insert_only": (bool,),
    "update_only": (bool,),
    "test_run": (bool,),
}
_OPTIONAL_KEYS: Mapping[str, tuple[type, ...]] = {
    "connector_version": (str,),
    "connector_name": (str,),
    "connector_id": (str, int),
    "error": (str, type(None)),
    "error_type": (str,),
    "multi_str_input_value": (str, int, float, bool, list, dict, type(None)),
}
# One `key eq value` term, in parentheses or not, then `and` or the end; a quoted
# value may hold anything (' and ' too), a quote doubled.
_FILTER_TERM = re.compile(
    r"\s*(\()?\s*(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|\"([^\"]*)\"|(-?\d+))\s*(?(1)\))\s*"
    r"(?:and\b|$)",
    re.I,
)


def _error(status: int, key: str, message: str) -> EmulatorResponse:
    return json_response({"errors": {key: message}}, status=status)


@attrs.define
class _Portion:
    correlation_id: str
    portion_id: int
    connector: str
    sync_field: tuple[str, ...]
    insert_only: bool
    update_only: bool
    test_run: bool
    start_time: float = attrs.field(factory=time.time)
    end_time: float | None = None
    finalized: bool = False
    digests: set[str] = attrs.field(factory=set)
    objects: dict[str, int] = attrs.field(
        factory=lambda: dict.fromkeys(
            ("added", "updated", "unchanged", "skipped", "failed", "canceled", "processing"), 0
        )
    )
    logs: dict[str, list[str]] = attrs.field(factory=dict)
    test_run_payload: list[dict[str, Any]] = attrs.field(factory=list)
    claims: dict[tuple[str, str], str] = attrs.field(factory=dict)
    """Unique values a test run's would-be users hold (nothing is written)."""

    def log(self, outcome: str, message: str, *, keep: int = 1000) -> None:
        entries = self.logs.setdefault(outcome, [])
        # Success logs are capped like a UI shows the latest; failures are all kept.
        if outcome in ("failed", FATAL_ERROR) or len(entries) < keep:
            entries.append(message)

    @property
    def status(self) -> str:
        if not self.finalized:
            return "Processing"
        if self.logs.get(FATAL_ERROR):
            return "Failed"
        return "Completed with errors" if self.objects["failed"] else "Finished"

    def summary(self) -> dict[str, Any]:
        return {
            "portion_id": self.portion_id,
            "portion_correlation_id": self.correlation_id,
            "connector": self.connector,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "status": self.status,
            "test_run": self.test_run,
            "deployment": "on-premise",
            "is_media_storage_service": False,
            "ipv4_address": "127.0.0.1",
            "added_records_count": self.objects["added"],
            "updated_records_count": self.objects["updated"],
            "skipped_records_count": self.objects["skipped"],
            "error_logs_count": self.objects["failed"] + len(self.logs.get(FATAL_ERROR, [])),
        }


class OomnitzaEmulator(Emulator):
    """Oomnitza's REST API, with its state in memory.

    :param token: the API token accepted in ``Authorization2`` (default: a fresh one).
    :param login: with *password*, an account ``POST /api/request_token`` accepts.
    :param unique_fields: v3 keys (besides username, email, external_id) whose
        values are unique per user, like a custom field set up as unique.
    :param stored_sync_field: what an empty ``sync_field`` means (the
        server's stored mapping); ``None`` makes an empty one a 400.
    :param test_run_answer: the run log of a test run carries
        ``test_run_payload`` (what each record would do); ``False`` leaves it
        out, like a server that gives none (``emulator.test_run_answer`` too).
    """

    vendor = "oomnitza"

    def __init__(
        self,
        *,
        token: str | None = None,
        login: str = "admin",
        password: str | None = None,
        unique_fields: Iterable[str] = (),
        stored_sync_field: tuple[str, ...] | None = None,
        test_run_answer: bool = True,
        **options: Any,
    ) -> None:
        options.setdefault("log_requests", 200)
        super().__init__(**options)
        self.api_token = token or "oomnitza-emu-" + secrets.token_hex(16)
        self.login = login
        self.password = password or "pw-" + secrets.token_hex(8)
        self.unique = (*_UNIQUE, *unique_fields)
        self.stored_sync_field = stored_sync_field
        self.test_run_answer = test_run_answer
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        """user_id -> the user as ``GET /api/v3/users/{user_id}`` returns it."""
        self._index: dict[str, dict[str, str]] = {name: {} for name in self.unique}
        self.saas: dict[str, dict[str, Any]] = {}
        """saas_id -> the SaaS app."""
        self._saas_users: dict[tuple[str, str], dict[str, Any]] = {}
        self.portions: dict[str, _Portion] = {}
        self._uids = itertools.count(1)
        self._portion_ids = itertools.count(1001)
        self.applied_batches: list[tuple[str, str]] = []
        """``(portion, digest)`` of every batch applied, in order (a retry is not applied)."""
        self.duplicate_batches = 0
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def test_credential(self, name: str = "oomnitza-emulator") -> Credential:
        return Credential(
            name=name,
            vendor="oomnitza",
            kind=AuthKind.API_KEY,
            token=self.api_token,
            header_name="Authorization2",
            header_prefix="",
            base_url=self.base_url,
        )

    def password_credential(self, name: str = "oomnitza-login") -> Credential:
        return Credential(
            name=name,
            vendor="oomnitza",
            kind=AuthKind.BASIC,
            username=self.login,
            password=self.password,
            base_url=self.base_url,
        )

    # -- what tests read ----------------------------------------------------------

    def users_by(self, key: str) -> dict[Any, dict[str, Any]]:
        """Every user keyed by one of its v3 fields (``email``, ``username``)."""
        with self.lock:
            return {user.get(key): dict(user) for user in self.users.values()}

    def saas_users(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(app name, user's username) -> {user_external_id, roles}``."""
        with self.lock:
            return {
                (self.saas[saas_id]["saas_name"], self.users[user_id]["username"]): dict(entry)
                for (saas_id, user_id), entry in self._saas_users.items()
            }

    def portion(self, correlation_id: str) -> _Portion:
        return self.portions[correlation_id]

    def add_user(self, fields: Mapping[str, Any], *, saas: Mapping[str, Any] | None = None) -> str:
        """Add a user as if an administrator had (v3 keys); return its ``user_id``.

        :param saas: ``{"name": app, "sync_key": vendor user id, "role": role}``
            makes the user a SaaS user of that app.
        :raises ValueError: a unique value already belongs to another user.
        """
        with self.lock:
            for name in self.unique:
                value = fields.get(name)
                if value not in (None, "") and str(value) in self._index[name]:
                    raise ValueError(f"the value {value!r} of {name} already belongs to a user")
            uid = next(self._uids)
            user_id = f"u{uid:08d}"
            user: dict[str, Any] = {"user_id": user_id, "uid": uid, **fields}
            user.setdefault("creation_date", int(time.time()))
            self.users[user_id] = user
            self._reindex(user_id, {}, user)
            if saas is not None:
                self._link(user_id, saas)
            return user_id

    # -- auth -------------------------------------------------------------------------

    def _authorized(self, request: EmulatorRequest) -> EmulatorResponse | None:
        token = request.header("Authorization2")
        if token and (token == self.api_token or self.lookup_token(token) is not None):
            return None
        return _error(401, "Authorization2", "a valid API token is required in Authorization2")

    @route("POST", "/api/request_token", endpoint="request_token")
    def request_token(self, request: EmulatorRequest) -> EmulatorResponse:
        if "application/x-www-form-urlencoded" not in (request.header("Content-Type") or ""):
            return _error(400, "login", "send login and password form-encoded")
        form = request.form()
        if form.get("login") != self.login or form.get("password") != self.password:
            return _error(401, "login", "the login or password is wrong")
        return json_response({"token": self.issue_token(prefix="oomnitza-session-").value})

    @route("GET", "/api/v2/mappings", endpoint="mappings")
    def mappings(self, request: EmulatorRequest) -> EmulatorResponse:
        return self._authorized(request) or json_response({})

    # -- bulk ---------------------------------------------------------------------------

    @route("POST", "/api/v3/bulk", endpoint="bulk")
    def bulk(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        try:
            body = request.json()
        except ValueError as exc:
            return _error(400, "body", f"not JSON: {exc}")
        problem = self._check_bulk(body)
        if problem is not None:
            return problem
        with self.lock:
            portion = self.portions.get(body["portion"])
            connector = str(body.get("connector_name") or body.get("connector_id"))
            if portion is None:
                sync_field = tuple(body["sync_field"]) or self.stored_sync_field or ()
                portion = _Portion(
                    correlation_id=body["portion"],
                    portion_id=next(self._portion_ids),
                    connector=connector,
                    sync_field=sync_field,
                    insert_only=body["insert_only"],
                    update_only=body["update_only"],
                    test_run=body["test_run"],
                )
                self.portions[portion.correlation_id] = portion
            elif portion.finalized:
                return _error(400, "portion", f"the portion {portion.correlation_id} is finalized")
            elif portion.test_run != body["test_run"] or portion.connector != connector:
                return _error(400, "test_run", "the portion was started with other settings")
            digest = hashlib.sha256(
                json.dumps(
                    [body["records"], body.get("error"), body.get("error_type")],
                    sort_keys=True,
                ).encode()
            ).hexdigest()
            if digest in portion.digests:
                # The client retried a batch the server had applied: acknowledge, apply nothing.
                self.duplicate_batches += 1
                return json_response({"portion": portion.correlation_id, "accepted": 0})
            portion.digests.add(digest)
            self.applied_batches.append((portion.correlation_id, digest))
            if body.get("error_type") == FATAL_ERROR:
                portion.log(FATAL_ERROR, str(body.get("error")))
            elif body.get("error") is not None:
                for record in body["records"]:
                    portion.objects["failed"] += 1
                    portion.log("failed", f"{self._describe(portion, record)}: {body['error']}")
            else:
                for record in body["records"]:
                    self._apply(portion, record)
        return json_response({"portion": portion.correlation_id, "accepted": len(body["records"])})

    def _check_bulk(self, body: Any) -> EmulatorResponse | None:
        if not isinstance(body, dict):
            return _error(400, "body", "the body must be a JSON object")
        for key, types in _BULK_KEYS.items():
            if key not in body:
                return _error(400, key, f"'{key}' is required")
            value = body[key]
            if not isinstance(value, types) or (bool in types) != isinstance(value, bool):
                return _error(400, key, f"'{key}' must be {' or '.join(t.__name__ for t in types)}")
        for key, types in _OPTIONAL_KEYS.items():
            if key in body and not isinstance(body[key], types):
                return _error(400, key, f"'{key}' must be {' or '.join(t.__name__ for t in types)}")
        unknown = set(body) - set(_BULK_KEYS) - set(_OPTIONAL_KEYS)
        if unknown:
            key = sorted(unknown)[0]
            return _error(400, key, f"unknown key '{key}'")
        try:
            uuid.UUID(body["portion"], version=4)
        except ValueError:
            return _error(400, "portion", "'portion' must be a UUID4")
        if body["data_type"] != "users":
            return _error(400, "data_type", "the emulator takes data_type 'users'")
        if not body.get("connector_name") and body.get("connector_id") is None:
            return _error(400, "connector_name", "'connector_name' or 'connector_id' is required")
        if body["insert_only"] and body["update_only"]:
            return _error(400, "insert_only", "insert_only and update_only cannot both be true")
        if len(body["records"]) > MAX_RECORDS:
            return _error(400, "records", f"at most {MAX_RECORDS} records per request")
        if not all(isinstance(record, dict) for record in body["records"]):
            return _error(400, "records", "every record must be a JSON object")
        if not all(isinstance(f, str) and f for f in body["sync_field"]):
            return _error(400, "sync_field", "'sync_field' must be a list of field ids")
        if not body["sync_field"] and self.stored_sync_field is None:
            return _error(400, "sync_field", "'sync_field' is empty and no mapping is stored")
        if body.get("error_type") not in (None, FATAL_ERROR):
            return _error(400, "error_type", f"'error_type' must be '{FATAL_ERROR}'")
        return None

    def _describe(self, portion: _Portion, record: Mapping[str, Any]) -> str:
        return ", ".join(f"{f}={record.get(f)!r}" for f in portion.sync_field)

    def _apply(self, portion: _Portion, record: dict[str, Any]) -> None:
        record = dict(record)
        described = self._describe(portion, record)
        saas = record.pop("SAAS", None)

        def failed(reason: str) -> None:
            portion.objects["failed"] += 1
            portion.log("failed", f"{described}: {reason}")
            if portion.test_run:
                portion.test_run_payload.append(
                    {"action": "fail", "sync": described, "reason": reason}
                )

        missing = [f for f in portion.sync_field if record.get(f) in (None, "")]
        if missing:
            failed(f"the record has no value for the sync field {missing[0]}")
            return
        fields: dict[str, Any] = {}
        for key, value in record.items():
            fields[BULK_FIELDS.get(key, key)] = value
        if "role" in fields and (
            not isinstance(fields["role"], int) or isinstance(fields["role"], bool)
        ):
            failed(f"PERMISSIONS_ID must be a numeric role id, not {fields['role']!r}")
            return
        if saas is not None and (not isinstance(saas, dict) or not saas.get("name")):
            failed("SAAS must be an object with a name")
            return
        found = self._match(portion, record)
        if found is None:
            if portion.update_only:
                self._outcome(portion, "skipped", described, "update only: no such user")
                return
            clash = self._clash(portion, fields, None)
            if clash:
                failed(clash)
                return
            if portion.test_run:
                for name in self.unique:
                    if fields.get(name) not in (None, ""):
                        portion.claims[(name, str(fields[name]))] = "new"
                portion.objects["added"] += 1
                portion.log("added", described)
                portion.test_run_payload.append(
                    {"action": "create", "sync": described, "fields": fields}
                )
                return
            uid = next(self._uids)
            user_id = f"u{uid:08d}"
            user: dict[str, Any] = {"user_id": user_id, "uid": uid}
            user["creation_date"] = int(time.time())
            user.update(fields)
            self.users[user_id] = user
            self._reindex(user_id, {}, user)
            if saas is not None:
                self._link(user_id, saas)
            portion.objects["added"] += 1
            portion.log("added", described)
            return
        existing = self.users[found]
        if portion.insert_only:
            self._outcome(portion, "skipped", described, "insert only: the user exists")
            return
        changes = {k: v for k, v in fields.items() if existing.get(k) != v}
        clash = self._clash(portion, changes, found)
        if clash:
            failed(clash)
            return
        relink = saas is not None and self._link_differs(found, saas)
        if not changes and not relink:
            self._outcome(portion, "unchanged", described, "no change")
            return
        portion.objects["updated"] += 1
        portion.log("updated", described)
        if portion.test_run:
            portion.test_run_payload.append(
                {
                    "action": "update",
                    "sync": described,
                    "changes": {k: {"old": existing.get(k), "new": v} for k, v in changes.items()},
                }
            )
            return
        before = dict(existing)
        existing.update(changes)
        existing["change_date"] = int(time.time())
        self._reindex(found, before, existing)
        if relink:
            assert saas is not None
            self._link(found, saas)

    def _outcome(self, portion: _Portion, outcome: str, described: str, reason: str) -> None:
        portion.objects[outcome] += 1
        portion.log(outcome, f"{described}: {reason}")
        if portion.test_run:
            action = "skip" if outcome == "skipped" else outcome
            portion.test_run_payload.append({"action": action, "sync": described})

    def _match(self, portion: _Portion, record: Mapping[str, Any]) -> str | None:
        keys = [BULK_FIELDS.get(f, f) for f in portion.sync_field]
        wanted = [record[f] for f in portion.sync_field]
        first = keys[0]
        if first in self._index:
            found = self._index[first].get(str(wanted[0]))
            candidates = [found] if found else []
        else:
            candidates = [uid for uid, u in self.users.items() if u.get(first) == wanted[0]]
        for user_id in candidates:
            user = self.users[user_id]
            if all(user.get(k) == v for k, v in zip(keys, wanted, strict=True)):
                return user_id
        return None

    def _clash(
        self, portion: _Portion, fields: Mapping[str, Any], user_id: str | None
    ) -> str | None:
        for name in self.unique:
            value = fields.get(name)
            if value in (None, ""):
                continue
            owner = self._index[name].get(str(value))
            if owner is None and portion.test_run:
                owner = portion.claims.get((name, str(value)))
            if owner is not None and owner != user_id:
                return f"the value {value!r} of {name} already belongs to another user"
        return None

    def _reindex(self, user_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        for name in self.unique:
            old, new = before.get(name), after.get(name)
            if old == new:
                continue
            if old not in (None, ""):
                self._index[name].pop(str(old), None)
            if new not in (None, ""):
                self._index[name][str(new)] = user_id

    def _saas_id(self, name: str) -> str:
        for saas_id, app in self.saas.items():
            if app["saas_name"] == name:
                return saas_id
        saas_id = str(len(self.saas) + 1)
        self.saas[saas_id] = {"saas_id": int(saas_id), "saas_name": name, "source": 1}
        return saas_id

    def _link_differs(self, user_id: str, saas: Mapping[str, Any]) -> bool:
        entry = self._saas_users.get((self._saas_id(str(saas["name"])), user_id))
        return entry != self._saas_entry(saas)

    @staticmethod
    def _saas_entry(saas: Mapping[str, Any]) -> dict[str, Any]:
        role = saas.get("role")
        return {
            "user_external_id": saas.get("sync_key"),
            "roles": [] if role in (None, "") else [str(role)],
        }

    def _link(self, user_id: str, saas: Mapping[str, Any]) -> None:
        self._saas_users[(self._saas_id(str(saas["name"])), user_id)] = self._saas_entry(saas)

    @route("POST", "/api/v3/bulk/{portion}/finalize", endpoint="bulk.finalize")
    def finalize(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            portion = self.portions.get(request.path_params["portion"])
            if portion is None:
                return _error(404, "portion", "no such portion")
            if not portion.finalized:
                portion.finalized = True
                portion.end_time = time.time()
        return json_response({})

    @route("GET", "/api/v3/bulk/{portion}", endpoint="bulk.status")
    def portion_status(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        portion = self.portions.get(request.path_params["portion"])
        if portion is None:
            return _error(404, "portion", "no such portion")
        return json_response({"canceled": False, "finalized": portion.finalized})

    # -- run logs -------------------------------------------------------------------

    @route("GET", "/api/v3/connector_run_logs/connectors/{portion_id}", endpoint="run_log")
    def run_log(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            for portion in self.portions.values():
                if str(portion.portion_id) == request.path_params["portion_id"]:
                    detail = portion.summary()
                    detail.update(
                        objects=dict(portion.objects),
                        logs={k: list(v) for k, v in portion.logs.items()},
                        file_attachment=None,
                    )
                    if self.test_run_answer:
                        detail["test_run_payload"] = list(portion.test_run_payload)
                    return json_response(detail)
        return _error(404, "portion_id", "no such run")

    @route("GET", "/api/v3/connector_run_logs/{connector_id}", endpoint="run_logs")
    def run_logs(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            runs = [
                p.summary()
                for p in self.portions.values()
                if p.connector == request.path_params["connector_id"]
            ]
        return self._listing(request, runs, default_sort="portion_id")

    # -- users ---------------------------------------------------------------------------

    def _listing(
        self, request: EmulatorRequest, rows: list[dict[str, Any]], *, default_sort: str
    ) -> EmulatorResponse:
        text = request.query.get("filter")
        if text:
            position = 0
            while position < len(text):
                match = _FILTER_TERM.match(text, position)
                if match is None or match.end() == position:
                    return _error(400, "filter", f"cannot read the filter at {text[position:]!r}")
                position = match.end()
                _, field, quoted, double, number = match.groups()
                if number is not None:
                    rows = [r for r in rows if r.get(field) == int(number)]
                else:
                    value = quoted.replace("''", "'") if quoted is not None else double
                    rows = [r for r in rows if r.get(field) is not None and str(r[field]) == value]
        sort = request.query.get("sortby", f"{default_sort} asc").split()
        reverse = len(sort) > 1 and sort[1].lower() == "desc"
        rows.sort(
            key=lambda r: (r.get(sort[0]) is None, str(r.get(sort[0]) or "")), reverse=reverse
        )
        if sort[0] in ("uid", "portion_id"):
            rows.sort(key=lambda r: r.get(sort[0]) or 0, reverse=reverse)
        try:
            skip = int(request.query.get("skip", "0"))
            limit = int(request.query.get("limit", "200"))
        except ValueError:
            return _error(400, "limit", "limit and skip must be integers")
        if skip < 0 or not 1 <= limit <= 1000:
            return _error(400, "limit", "limit must be 1 to 1000 and skip at least 0")
        response = json_response(rows[skip : skip + limit])
        response.headers["X-Total-Count"] = str(len(rows))
        return response

    @route("GET", "/api/v3/users", endpoint="users")
    def list_users(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            rows = [dict(user) for user in self.users.values()]
        return self._listing(request, rows, default_sort="uid")

    def _find(self, ident: str) -> str | None:
        if ident in self.users:
            return ident
        return self._index["username"].get(ident)

    @route("GET", "/api/v3/users/{ident}", endpoint="user")
    def get_user(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            found = self._find(request.path_params["ident"])
            if found is None:
                return _error(404, "ident", "no such user")
            return json_response(dict(self.users[found]))

    @route("PATCH", "/api/v3/users/{ident}", endpoint="user.patch")
    def patch_user(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        try:
            body = request.json()
        except ValueError as exc:
            return _error(400, "body", f"not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "body", "the body must be a JSON object")
        for key in ("user_id", "uid"):
            if key in body:
                return _error(400, key, f"'{key}' cannot be changed")
        with self.lock:
            found = self._find(request.path_params["ident"])
            if found is None:
                return _error(404, "ident", "no such user")
            user = self.users[found]
            for name in self.unique:
                value = body.get(name)
                owner = None if value in (None, "") else self._index[name].get(str(value))
                if owner is not None and owner != found:
                    return _error(400, name, f"the value {value!r} belongs to another user")
            before = dict(user)
            user.update(body)
            user["change_date"] = int(time.time())
            self._reindex(found, before, user)
            self.patches.append((found, dict(body)))
            return json_response(dict(user))

    # -- SaaS -----------------------------------------------------------------------------

    @route("GET", "/api/v3/saas", endpoint="saas")
    def list_saas(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            rows = [dict(app) for app in self.saas.values()]
        return self._listing(request, rows, default_sort="saas_id")

    @route("GET", "/api/v3/saas/{ident}/users", endpoint="saas.users")
    def list_saas_users(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        with self.lock:
            saas_id = request.path_params["ident"]
            if saas_id not in self.saas:
                return _error(404, "ident", "no such SaaS")
            rows = []
            for (app, user_id), entry in self._saas_users.items():
                if app != saas_id:
                    continue
                user = self.users[user_id]
                rows.append(
                    {
                        "user_id": user_id,
                        "username": user.get("username"),
                        "email": user.get("email"),
                        "full_name": " ".join(
                            str(user[k]) for k in ("first_name", "last_name") if user.get(k)
                        ),
                        "user_external_id": entry["user_external_id"],
                        "roles": [
                            {"role_id": None, "role_external_id": r, "role_external_label": r}
                            for r in entry["roles"]
                        ],
                    }
                )
        return self._listing(request, rows, default_sort="username")
