"""The Oomnitza REST destination: people go to Oomnitza through its bulk portion protocol.

One sync session is one **portion** (a UUID4). Mapped records go out as
``POST /api/v3/bulk`` batches of 100 (``batch_size``), several in flight at
once (``concurrency``), with the integration's sync key as ``sync_field`` and
its preference as ``insert_only`` / ``update_only``; Oomnitza matches them by
sync key on its side. Records that failed before Oomnitza (a mapping error,
a repeated sync value) are sent as error records, a run-level failure as a
fatal error; then ``POST /api/v3/bulk/{portion}/finalize``. The outcome is
read back from the run logs.

A batch that meets a 429 (after its ``Retry-After``), a 5xx or a time-out is
sent again with the same portion and the same records. Every acknowledged
batch is written to the local ledger, so a run that is killed and run again
continues the same portion and never sends an acknowledged batch again.

People are read back through ``GET /api/v3/users`` (offset paging,
``filter``), which serves presets (``--person``, ``--where``) and the people
listing; preset response mappings are written with ``PATCH /api/v3/users/{id}``.
See ``docs/destinations.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import attrs
import requests
import requests.adapters

from ..errors import ConfigurationError, OomnitzaConnectError, StoreError
from ..models import (
    STANDARD_PERSON_FIELDS,
    UNIQUE_STANDARD_FIELDS,
    AuthKind,
    Credential,
    DestinationSettings,
    Person,
    PersonId,
    RecordError,
    SaasUser,
    SyncCounts,
    SyncPreference,
    SyncSession,
    UserSelection,
)
from ..redaction import redact
from ..store.base import (
    CustomField,
    Destination,
    Ledger,
    MappedRecord,
    Portion,
    PortionResult,
    SyncPlan,
    VanishedPerson,
)
from ..sync.mapping import SAAS_ROLE_TARGET
from ..sync.rules import json_ready
from ..transport.http import ClientOptions, HttpClient, VendorErrorInfo

__all__ = ["BULK_FIELD_IDS", "OomnitzaDestination"]

log = logging.getLogger(__name__)

VENDOR = "oomnitza"
BULK_FIELD_IDS: Mapping[str, str] = {
    "username": "USER",
    "email": "EMAIL",
    "first_name": "FIRST_NAME",
    "last_name": "LAST_NAME",
    "position": "POSITION",
    "phone_number": "PHONE",
    "role": "PERMISSIONS_ID",
    "address": "ADDRESS",
    "external_id": "EXTERNAL_ID",
}
"""Person fields and the upper-case field ids bulk records carry."""
V3_KEYS: Mapping[str, str] = {
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
"""Bulk field ids and the v3 user keys they are read back as."""
FATAL_ERROR = "Fatal Error"
SAAS_USER_PREFIX = "saas_user."
"""A ``[destination.fields]`` key for a SaaS-user field a preset writes (``saas_user.role``)."""
CONNECTOR_VERSION = "oomnitza-connect"
_PAGE = 200
_FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_FIELDS = frozenset(
    {"person", "person_id", "sync_key", "sync_value", "saas_user", "saas_role", "settings"}
)
"""Variables a ``--where`` sees that are not fields of the Oomnitza user."""
_NOT_FILTERED = frozenset({"connector_sync_time", "last_login", "full_name"})
_OUTCOME_WAIT = 120.0


def external_id_of(label: str) -> str:
    """The default Oomnitza external id of a custom field (``Slack User Id``: ``slack_user_id``)."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


def _field_value(value: Any) -> Any:
    """A value as an Oomnitza user field takes it: a list as comma-separated text."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return json_ready(value)


def _error_parser(response: requests.Response) -> VendorErrorInfo | None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return VendorErrorInfo(message=response.reason or f"HTTP {response.status_code}")
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict) and errors:
        key, message = next(iter(errors.items()))
        return VendorErrorInfo(message=f"{key}: {message}", code=str(key))
    if isinstance(errors, list) and errors:
        return VendorErrorInfo(message="; ".join(str(e) for e in errors))
    return VendorErrorInfo(message=response.reason or f"HTTP {response.status_code}")


class _TokenAuth(requests.auth.AuthBase):
    """``Authorization2: <token>``; a login/password credential gets its token first."""

    def __init__(self, credential: Credential, base_url: str, options: ClientOptions) -> None:
        self.credential = credential
        self.base_url = base_url
        self.options = options
        self.lock = threading.Lock()
        self.token: str | None = None
        if credential.kind == AuthKind.API_KEY:
            if credential.token is None:
                raise ConfigurationError(
                    f"the credential '{credential.name}' for Oomnitza has no token"
                )
            self.token = credential.token.reveal()
        elif credential.kind == AuthKind.BASIC:
            if not credential.username or credential.password is None:
                raise ConfigurationError(
                    f"the credential '{credential.name}' for Oomnitza needs a username "
                    "(login) and a password"
                )
        else:
            raise ConfigurationError(
                f"the credential '{credential.name}' is {credential.kind.value}; Oomnitza takes "
                "an api_key (its API token) or basic (login and password)"
            )

    def _request_token(self) -> str:
        assert self.credential.username
        assert self.credential.password is not None
        with HttpClient(
            VENDOR, self.base_url, options=self.options, error_parser=_error_parser
        ) as client:
            data = client.request_json(
                "POST",
                "/api/request_token",
                data={
                    "login": self.credential.username,
                    "password": self.credential.password.reveal(),
                },
                endpoint="request_token",
            ).data
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise StoreError("Oomnitza answered POST /api/request_token without a token")
        return token

    def current(self) -> str:
        with self.lock:
            if self.token is None:
                self.token = self._request_token()
            return self.token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization2"] = self.current()
        return request

    def token_rejected(self, sent_authorization: str | None) -> bool:
        if self.credential.kind != AuthKind.BASIC:
            return False
        with self.lock:
            self.token = None
        return True


class OomnitzaDestination(Destination):
    """People and SaaS users in Oomnitza, written through the bulk portion protocol.

    :param settings: the integration's ``[destination]`` table (``type = "oomnitza"``).
    :param credential: an ``api_key`` credential (the raw API token, sent as
        ``Authorization2``) or a ``basic`` one (login and password, exchanged at
        ``POST /api/request_token``).
    :param options: HTTP options (time-outs, retries, a private CA).
    :param person_fields: the person fields (by name: ``Intercom ID``) people are
        read back under; a custom field is sent as its external id
        (``intercom_id``), so without its name it would come back as that id.
        :meth:`~oomnitza_connect.connectors.Connector.person_fields` gives an
        integration's. ``[destination.fields]`` names its own.
    """

    matches_by_sync_key = True

    def __init__(
        self,
        settings: DestinationSettings,
        credential: Credential,
        *,
        options: ClientOptions | None = None,
        person_fields: Iterable[str] = (),
        sync_key: str | None = None,
    ) -> None:
        url = settings.url or credential.base_url
        if not url:
            raise ConfigurationError(
                "the oomnitza destination needs its URL", key_path="destination.url"
            )
        self.settings = settings
        self.url = url.rstrip("/")
        # v3 key -> person field: the standard ones, then the named, then the table's.
        self._names: dict[str, str] = {V3_KEYS[b]: p for p, b in BULK_FIELD_IDS.items()}
        self._named: list[str] = []
        # The person fields the integration writes: read back even when empty (None),
        # as the SQLite store keeps a mapped field whose value was empty.
        self._written: set[str] = set()
        # The person field people read back are matched by (the integration's sync
        # key), as the SQLite store records it; Oomnitza's own is the username.
        self.sync_key = sync_key or "username"
        # (vendor, vendor user id) -> user_id of the SaaS users read: a preset's
        # SaaS-user fields go to that person.
        self._saas_people: dict[tuple[str, str], str] = {}
        self.name_fields(person_fields)
        self.options = options or ClientOptions(
            read_timeout=settings.timeout, pace_requests=False, max_retries=8
        )
        self.auth = _TokenAuth(credential, self.url, self.options)
        self.client = HttpClient(
            VENDOR, self.url, auth=self.auth, options=self.options, error_parser=_error_parser
        )
        # One connection per batch in flight, reused across the run.
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=2, pool_maxsize=max(10, settings.concurrency * 2)
        )
        self.client.session.mount("https://", adapter)
        self.client.session.mount("http://", adapter)
        self.client.session.headers["Content-Type"] = "application/json; charset=utf-8"

    def __repr__(self) -> str:
        return f"<OomnitzaDestination {self.url}>"

    # -- field names ------------------------------------------------------------------

    def field_id(self, person_field: str) -> str | None:
        """The bulk field id a person field is sent as (``None``: not sent)."""
        mapped = self.settings.fields.get(person_field)
        if mapped is not None:
            return mapped
        if person_field in BULK_FIELD_IDS:
            return BULK_FIELD_IDS[person_field]
        if person_field in STANDARD_PERSON_FIELDS:
            # Oomnitza has no such user field (connector_sync_time, last_login, full_name).
            return None
        return external_id_of(person_field)

    def v3_key(self, person_field: str) -> str:
        field = self.field_id(person_field) or person_field
        return V3_KEYS.get(field, field)

    def name_fields(self, person_fields: Iterable[str]) -> None:
        """Read the custom fields among *person_fields* back under their names.

        ``Intercom ID`` is sent as ``intercom_id`` and read back as ``Intercom
        ID``, as the SQLite store holds it; a field ``[destination.fields]``
        maps keeps the name the table gives it, and a name met first wins.
        """
        for name in person_fields:
            if not name.startswith(SAAS_USER_PREFIX) and name != SAAS_ROLE_TARGET:
                self._written.add(name)
            if name in STANDARD_PERSON_FIELDS or name == SAAS_ROLE_TARGET:
                continue
            if name.startswith(SAAS_USER_PREFIX) or name in self._named:
                continue
            field = self.field_id(name)
            if field is None:
                continue
            key = V3_KEYS.get(field, field)
            if key not in self._names:
                self._names[key] = name
                self._named.append(name)
        for name, field in self.settings.fields.items():
            if not name.startswith(SAAS_USER_PREFIX):
                self._names[V3_KEYS.get(field, field)] = name

    def _person_fields(self) -> dict[str, str]:
        """v3 key -> person field, for reading users back."""
        return dict(self._names)

    def role_names(self) -> dict[int, str]:
        """Oomnitza role id -> the name people read back carry: the first name the
        [destination.roles] table gives it, when several vendor roles share one id."""
        names: dict[int, str] = {}
        for name, role_id in self.settings.roles.items():
            names.setdefault(role_id, name)
        return names

    def role_id(self, role: Any) -> int | None:
        if role is None or role == "":
            return None
        if isinstance(role, int) and not isinstance(role, bool):
            return role
        text = str(role)
        if text in self.settings.roles:
            return int(self.settings.roles[text])
        if text.isdigit():
            return int(text)
        if self.settings.default_role_id is not None:
            return self.settings.default_role_id
        raise _RecordProblem(
            f"the role {text!r} has no Oomnitza role id; add it to the [destination.roles] table "
            f"(known: {', '.join(sorted(self.settings.roles)) or 'none'})",
            "role",
        )

    def to_bulk(self, plan: SyncPlan, record: MappedRecord) -> dict[str, Any]:
        """One mapped record as a bulk record (upper-case field ids, numeric role)."""
        out: dict[str, Any] = {}
        for name, value in record.fields.items():
            if name == SAAS_ROLE_TARGET:
                continue
            field = self.field_id(name)
            if field is None:
                continue
            out[field] = self.role_id(value) if field == "PERMISSIONS_ID" else json_ready(value)
        if plan.selection == UserSelection.USERS_AND_SAAS:
            role = record.fields.get(SAAS_ROLE_TARGET, record.role)
            out["SAAS"] = {
                "sync_key": record.vendor_user_id,
                "name": plan.vendor,
                "role": None if role is None else str(role),
            }
        return out

    def _person(self, user: Mapping[str, Any]) -> Person:
        names = self._person_fields()
        roles = self.role_names()
        fields: dict[str, Any] = {}
        for key, value in user.items():
            if key in ("user_id", "uid", "creation_date", "change_date"):
                continue
            name = names.get(key, key)
            # An empty field the integration does not write is one the person lacks;
            # one it writes is kept as None, as in the SQLite store.
            if value is None and name not in self._written:
                continue
            if name == "role" and value in roles:
                value = roles[value]
            fields[name] = value
        sync_value = fields.get(self.sync_key)
        return Person(
            id=str(user.get("user_id")),
            sync_key=self.sync_key,
            sync_value="" if sync_value is None else str(sync_value),
            fields=fields,
        )

    # -- people -------------------------------------------------------------------------

    def _filter_value(self, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return "'" + str(json_ready(value)).replace("'", "''") + "'"

    def _users(self, filter_text: str | None = None) -> Iterator[dict[str, Any]]:
        skip = 0
        while True:
            params: dict[str, Any] = {"limit": _PAGE, "skip": skip, "sortby": "uid asc"}
            if filter_text:
                params["filter"] = filter_text
            answer = self.client.request_json(
                "GET", "/api/v3/users", params=params, endpoint="users"
            )
            page = answer.data
            if not isinstance(page, list):
                raise StoreError("Oomnitza answered GET /api/v3/users with something not a list")
            yield from page
            skip += len(page)
            total = answer.response.headers.get("X-Total-Count")
            if len(page) < _PAGE or (total is not None and skip >= int(total)):
                return

    def get_person(self, person_id: PersonId) -> Person | None:
        try:
            user = self.client.get_json(f"/api/v3/users/{person_id}", endpoint="user")
        except OomnitzaConnectError as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        return self._person(user)

    def find_person(self, field: str, value: Any) -> Person | None:
        for user in self._users(f"{self.v3_key(field)} eq {self._filter_value(value)}"):
            return self._person(user)
        return None

    def iter_people(self, *, vendor: str | None = None) -> Iterator[Person]:
        linked: set[str] | None = None
        if vendor is not None:
            linked = {str(u.person_id) for u in self.iter_saas_users(vendor=vendor)}
        for user in self._users():
            if linked is None or str(user.get("user_id")) in linked:
                yield self._person(user)

    def iter_candidates(self, where: str) -> Iterator[Person]:
        """Yield the people who may match *where*, narrowed by Oomnitza's ``filter``.

        The ``name == 'text'`` terms *where* needs (joined by ``and``) on fields
        Oomnitza holds become ``filter=(key eq 'text') and ...``, so that only
        matching users are paged through; the caller still evaluates *where* on
        each person. ``translate_where = false`` in ``[destination]`` reads
        every user instead; so does a filter Oomnitza refuses (400).
        """
        terms, guessed = self._filter_terms(where) if self.settings.translate_where else ([], [])
        text = " and ".join(terms) or None
        if text is None:
            yield from self.iter_people()
            return
        users = self._users(text)
        try:
            first = next(users, None)
        except OomnitzaConnectError as exc:
            if getattr(exc, "status", None) != 400:
                raise
            log.warning("Oomnitza refused filter=%s (%s); reading every user", text, exc)
            yield from self.iter_people()
            return
        if first is None:
            if guessed:
                # A misspelt name reads like an Oomnitza field no one holds that value
                # of; only reading every user (the store's "no person has" error)
                # would tell them apart, so it is said instead of paid for.
                log.warning(
                    "Oomnitza's filter=%s matched nobody; %s no field the integration or "
                    "[destination.fields] names, so a misspelling would look the same "
                    "(translate_where = false reads every user and names the fields no one has)",
                    text,
                    " and ".join(f"'{name}' is" for name in guessed),
                )
            return
        yield self._person(first)
        for user in users:
            yield self._person(user)

    def where_filter(self, where: str) -> str | None:
        """The ``filter`` that narrows a read to users who may match *where*, if any."""
        return " and ".join(self._filter_terms(where)[0]) or None

    def _filter_terms(self, where: str) -> tuple[list[str], list[str]]:
        """The terms of :meth:`where_filter`, and the names among them no one named.

        Those are sent as Oomnitza keys of their own (``department``): whether
        Oomnitza has such a field is not known here (its fields are the
        instance's own; no confirmed call lists them).
        """
        from ..presets.engine import flat_name
        from ..templating import required_equalities

        keys: dict[str, str] = {}
        for v3_key, person_field in self._names.items():
            for variable in (
                person_field,
                flat_name(person_field),
                flat_name(person_field).lower(),
            ):
                keys.setdefault(variable, v3_key)
        roles = dict(self.settings.roles)
        terms: list[str] = []
        guessed: list[str] = []
        for variable, item, value in required_equalities(where):
            if item is not None:
                if variable != "person":
                    continue
                name = item
            elif variable in _NOT_FIELDS or variable.endswith("_user_id"):
                # Not a person field (or, like webex_user_id, possibly the SaaS account's id).
                continue
            else:
                name = variable
            key = keys.get(name)
            named = key is not None
            if key is None:
                # A field read back under its own key (an Oomnitza field: department).
                field = name if item is None else self.field_id(name)
                key = None if field is None else V3_KEYS.get(field, field)
            if key is None or not _FILTER_KEY.match(key) or key in _NOT_FILTERED:
                continue
            if key == "role":
                role = roles.get(value) if isinstance(value, str) else value
                if isinstance(role, int):
                    terms.append(f"(role eq {role})")
                continue
            if isinstance(value, str):
                # Only text: Python's 1 == True would match what the server's 1 does not.
                terms.append(f"({key} eq {self._filter_value(value)})")
                if not named and name not in guessed:
                    guessed.append(name)
        return terms, guessed

    def count_people(self, *, vendor: str | None = None) -> int:
        if vendor is not None:
            return super().count_people(vendor=vendor)
        answer = self.client.request_json(
            "GET", "/api/v3/users", params={"limit": 1, "skip": 0}, endpoint="users"
        )
        total = answer.response.headers.get("X-Total-Count")
        if total is not None:
            return int(total)
        return super().count_people()

    def update_person_fields(self, person_id: PersonId, fields: Mapping[str, Any]) -> None:
        body: dict[str, Any] = {}
        for name, value in fields.items():
            key = self.v3_key(name)
            body[key] = self.role_id(value) if key == "role" else json_ready(value)
        self.client.request_json(
            "PATCH", f"/api/v3/users/{person_id}", json=body, endpoint="user.patch"
        )

    def define_custom_field(self, field: CustomField) -> None:
        # Custom fields are set up in Oomnitza (Configuration > Fields); records
        # name them by external id.
        return

    def custom_fields(self) -> list[CustomField]:
        # The custom fields this destination knows of: those [destination.fields]
        # names, then those it was told the names of, then the person fields that
        # hold SaaS-user fields (read back under their Oomnitza keys: webex_role).
        saas_keys = [
            V3_KEYS.get(field, field)
            for name, field in self.settings.fields.items()
            if name.startswith(SAAS_USER_PREFIX)
        ]
        labels = [*self.settings.fields, *self._named, *saas_keys]
        return [
            CustomField(label)
            for label in dict.fromkeys(labels)
            if label not in STANDARD_PERSON_FIELDS
            and label != SAAS_ROLE_TARGET
            and not label.startswith(SAAS_USER_PREFIX)
        ]

    def unique_fields(self) -> frozenset[str]:
        return UNIQUE_STANDARD_FIELDS

    def iter_saas_users(self, *, vendor: str | None = None) -> Iterator[SaasUser]:
        apps = self.client.get_json("/api/v3/saas", params={"limit": 1000}, endpoint="saas")
        for app in apps if isinstance(apps, list) else ():
            name = str(app.get("saas_name"))
            if vendor is not None and name != vendor:
                continue
            skip = 0
            while True:
                page = self.client.get_json(
                    f"/api/v3/saas/{app['saas_id']}/users",
                    params={"limit": _PAGE, "skip": skip},
                    endpoint="saas.users",
                )
                for user in page:
                    roles = user.get("roles") or []
                    self._saas_people[(name, str(user.get("user_external_id")))] = str(
                        user.get("user_id")
                    )
                    yield SaasUser(
                        vendor=name,
                        vendor_user_id=str(user.get("user_external_id")),
                        person_id=str(user.get("user_id")),
                        role=roles[0].get("role_external_id") if roles else None,
                    )
                skip += len(page)
                if len(page) < _PAGE:
                    break

    def refused_targets(self, vendor: str, targets: Iterable[str]) -> str | None:
        saas_targets = [t for t in targets if t.startswith(SAAS_USER_PREFIX)]
        unmapped = [t for t in saas_targets if t not in self.settings.fields]
        if unmapped:
            example = unmapped[0]
            field = external_id_of(f"{vendor} {example[len(SAAS_USER_PREFIX) :]}")
            return (
                f"it writes SaaS-user fields ({', '.join(unmapped)}) and Oomnitza keeps no "
                "fields of its own on a SaaS user. Name an Oomnitza person field for each in "
                f'the integration\'s [destination.fields] table (e.g. "{example}" = "{field}"; '
                "the value is then written to the person), or run it against the SQLite store"
            )
        # Oomnitza's own user fields, and the ones it sets itself, in any case: a SaaS
        # role is not a permission id, nor an account's email its login's.
        own = {
            name.lower()
            for name in (*BULK_FIELD_IDS, *V3_KEYS, *V3_KEYS.values(), *STANDARD_PERSON_FIELDS)
        }
        own |= {"user_id", "uid", "creation_date", "change_date"}
        for target in saas_targets:
            if self.settings.fields[target].strip().lower() in own:
                # A SaaS role is not a permission id, nor an account's email its login's.
                return (
                    f"[destination.fields] sends {target} to Oomnitza's own user field "
                    f"'{self.settings.fields[target]}'; name a custom field for it instead"
                )
        return None

    def update_saas_user_fields(
        self, vendor: str, vendor_user_id: str, fields: Mapping[str, Any]
    ) -> None:
        """Write a SaaS user's *fields* to its person, by ``[destination.fields]``.

        Oomnitza keeps no fields on a SaaS user; ``"saas_user.role" = "webex_role"``
        sends the SaaS user's ``role`` as the person's ``webex_role``.
        """
        reason = self.refused_targets(vendor, (SAAS_USER_PREFIX + name for name in fields))
        if reason is not None:
            raise StoreError(reason)
        person_id = self._saas_people.get((vendor, vendor_user_id))
        if person_id is None:
            for account in self.iter_saas_users(vendor=vendor):
                if account.vendor_user_id == vendor_user_id and account.person_id is not None:
                    person_id = str(account.person_id)
                    break
        if person_id is None:
            raise StoreError(f"Oomnitza has no {vendor} SaaS user {vendor_user_id}")
        body = {
            self.settings.fields[SAAS_USER_PREFIX + name]: _field_value(value)
            for name, value in fields.items()
        }
        self.client.request_json(
            "PATCH", f"/api/v3/users/{person_id}", json=body, endpoint="user.patch"
        )

    def apply_last_logins(self, vendor: str, logins: Iterable[tuple[str, datetime]]) -> int:
        for _ in logins:
            pass
        log.info("Oomnitza takes no last logins through the bulk protocol; they were not sent")
        return 0

    # -- sync ----------------------------------------------------------------------------

    def prepare_run(self, plan: SyncPlan, *, test_run: bool) -> None:
        if self.field_id(plan.sync_key) is None:
            raise StoreError(
                f"the sync key '{plan.sync_key}' has no Oomnitza field; map it in the "
                "[destination.fields] table"
            )
        self.check_access()

    def check_access(self) -> None:
        """Read one user, so that a refused token or a wrong URL fails the run at once.

        Without it the first sign is the first bulk batch's answer, after the
        vendor's listing has begun, and an unreachable server is only given up
        on when the portion is finalized. Retried twice at most: a run that
        cannot reach Oomnitza now says so in seconds, not minutes.

        :raises StoreError: naming the URL and Oomnitza's answer.
        """
        options = attrs.evolve(self.options, max_retries=min(self.options.max_retries, 2))
        checking = HttpClient(
            VENDOR, self.url, auth=self.auth, options=options, error_parser=_error_parser
        )
        checking.session.close()
        checking.session = self.client.session  # the run's connection, kept for its batches
        try:
            checking.request_json(
                "GET", "/api/v3/users", params={"limit": 1, "skip": 0}, endpoint="users"
            )
        except OomnitzaConnectError as exc:
            raise StoreError(
                f"the Oomnitza destination at {self.url} cannot be used: {redact(str(exc))}"
            ) from None

    def open_portion(self, plan: SyncPlan, session: SyncSession, ledger: Ledger) -> Portion:
        portion_id, acknowledged = ledger.open_portion_log(
            plan.integration, session.id, test_run=session.test_run
        )
        if acknowledged:
            log.info(
                "continuing portion %s of an interrupted run (%s batches already acknowledged)",
                portion_id,
                len(acknowledged),
            )
        return _OomnitzaPortion(self, plan, ledger, portion_id, acknowledged, session.test_run)

    def mark_vanished(self, plan: SyncPlan, vanished: Sequence[VanishedPerson]) -> int:
        field = self.settings.vanished_field
        if not field:
            return 0
        key = self.v3_key(plan.sync_key)
        marked = 0
        for person in vanished:
            if person.sync_value is None:
                continue
            for user in self._users(f"{key} eq {self._filter_value(person.sync_value)}"):
                self.client.request_json(
                    "PATCH",
                    f"/api/v3/users/{user['user_id']}",
                    json={field: self.settings.vanished_value},
                    endpoint="user.patch",
                )
                marked += 1
                break
        log.info("set %s on %s people who vanished from %s", field, marked, plan.vendor)
        return marked

    def close(self) -> None:
        self.client.close()


class _RecordProblem(Exception):
    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class _OomnitzaPortion(Portion):
    """One portion: batches sent concurrently, acknowledged into the ledger."""

    def __init__(
        self,
        destination: OomnitzaDestination,
        plan: SyncPlan,
        ledger: Ledger,
        portion_id: str,
        acknowledged: Mapping[int, str],
        test_run: bool,
    ) -> None:
        self.destination = destination
        self.plan = plan
        self.ledger = ledger
        self.portion_id = portion_id
        self.acknowledged = dict(acknowledged)
        self.test_run = test_run
        settings = destination.settings
        self.batch_size = settings.test_run_batch_size if test_run else settings.batch_size
        self.pool = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="oomnitza-bulk"
        )
        # At most two batches per worker wait: memory stays flat however many users.
        self.slots = threading.BoundedSemaphore(settings.concurrency * 2)
        self.futures: set[Future[None]] = set()
        self.lock = threading.Lock()
        self.failure: BaseException | None = None
        self.pending: list[dict[str, Any]] = []
        self.index = 0
        self.local_errors: list[RecordError] = []
        self.sent_errors: Counter[str] = Counter()
        self.sent_error_records = 0
        self.resent = 0
        # A test run keeps what it sent on disk (flat memory) so that its plan
        # can name the vendor users, or be worked out here when Oomnitza's
        # run log carries no test-run answer.
        # v3 key -> person field, so that a plan speaks of the fields the mapping
        # wrote ('Slack User Id', not slack_user_id), roles by name.
        self.names = destination._person_fields()
        self.seen_fields: set[str] = set()
        self.role_names = destination.role_names()
        # Closed by finish() or abandon(), the portion's two ends.
        self.sent: Any = (
            tempfile.TemporaryFile("w+", encoding="utf-8", prefix="oomnitza-plan-")  # noqa: SIM115
            if test_run
            else None
        )

    # -- sending ------------------------------------------------------------------------

    def _body(self, records: list[dict[str, Any]], error: str | None = None) -> dict[str, Any]:
        sync_field = self.destination.field_id(self.plan.sync_key)
        body: dict[str, Any] = {
            "connector_version": CONNECTOR_VERSION,
            "sync_field": [sync_field] if sync_field else [],
            "records": records,
            "portion": self.portion_id,
            "data_type": "users",
            "insert_only": self.plan.preference == SyncPreference.CREATE_ONLY,
            "update_only": self.plan.preference == SyncPreference.UPDATE_ONLY,
            "error": error,
            "test_run": self.test_run,
            "multi_str_input_value": None,
            "connector_name": self.destination.settings.connector_name,
        }
        return body

    def _raise_failure(self) -> None:
        with self.lock:
            failure = self.failure
        if failure is not None:
            raise failure

    def _submit(self, body: dict[str, Any]) -> None:
        index = self.index
        self.index += 1
        digest = hashlib.sha256(
            json.dumps(
                [body["records"], body["error"], body.get("error_type")], sort_keys=True
            ).encode()
        ).hexdigest()
        if self.acknowledged.get(index) == digest:
            # Acknowledged before the run was interrupted: never sent again.
            return
        self._raise_failure()
        self.slots.acquire()
        future = self.pool.submit(self._post, index, digest, body)
        with self.lock:
            self.futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self.slots.release()
        with self.lock:
            self.futures.discard(future)
            error = future.exception()
            if error is not None and self.failure is None:
                self.failure = error

    def _post(self, index: int, digest: str, body: dict[str, Any]) -> None:
        self.destination.client.request_json(
            "POST", "/api/v3/bulk", json=body, endpoint="bulk", idempotent=True
        )
        self.ledger.acknowledge_batch(self.portion_id, index, digest)

    def send(self, records: Sequence[MappedRecord], failed: Sequence[RecordError]) -> None:
        self._raise_failure()
        for record in records:
            if self.sent is not None:
                self._learn_names(record)
            try:
                bulk = self.destination.to_bulk(self.plan, record)
            except _RecordProblem as problem:
                error = RecordError(record.vendor_user_id, problem.reason, problem.field)
                self.local_errors.append(error)
                self._send_error(error)
                continue
            self.pending.append(bulk)
            if self.sent is not None:
                sync_value = record.fields.get(self.plan.sync_key)
                line = [record.vendor_user_id, None if sync_value is None else str(sync_value)]
                self.sent.write(json.dumps([*line, bulk], default=str) + "\n")
            if len(self.pending) >= self.batch_size:
                self._submit(self._body(self.pending))
                self.pending = []
        for error in failed:
            self._send_error(error)

    def _send_error(self, error: RecordError) -> None:
        # A record that failed on the source side goes as its own POST, raw
        # record in `records`, the reason in `error`.
        reason = redact(error.reason)
        self.sent_errors[reason] += 1
        self.sent_error_records += 1
        self._submit(self._body([{"vendor_user_id": error.vendor_user_id}], error=reason))

    def _drain(self) -> None:
        if self.pending:
            self._submit(self._body(self.pending))
            self.pending = []
        while True:
            with self.lock:
                waiting = list(self.futures)
            if not waiting:
                return
            for future in waiting:
                future.exception()

    # -- finishing -------------------------------------------------------------------------

    def finish(self, *, fatal: str | None = None) -> PortionResult:
        try:
            if fatal is None:
                self._drain()
                self._raise_failure()
                if self.index == 0:
                    # Nothing was ever sent (an empty account): Oomnitza has never
                    # heard of this portion, and finalizing it would be a 404.
                    self.ledger.portion_finalized(self.portion_id)
                    return PortionResult(counts=SyncCounts())
            else:
                with self.lock:
                    self.failure = None
                try:
                    self._drain()
                except OomnitzaConnectError as exc:
                    log.warning("a batch was not delivered before the fatal error: %s", exc)
                body = self._body([], error=redact(fatal))
                body["error_type"] = FATAL_ERROR
                self.destination.client.request_json(
                    "POST", "/api/v3/bulk", json=body, endpoint="bulk", idempotent=True
                )
            self.destination.client.request_json(
                "POST",
                f"/api/v3/bulk/{self.portion_id}/finalize",
                json={},
                endpoint="bulk.finalize",
                idempotent=True,
            )
            self.ledger.portion_finalized(self.portion_id)
            return self._outcome()
        finally:
            self.pool.shutdown(wait=True)
            if self.sent is not None:
                self.sent.close()

    def abandon(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.sent is not None:
            self.sent.close()

    def _detail(self) -> dict[str, Any]:
        client = self.destination.client
        connector = self.destination.settings.connector_name
        deadline = time.monotonic() + _OUTCOME_WAIT
        while True:
            runs = client.get_json(
                f"/api/v3/connector_run_logs/{connector}",
                params={"filter": f"portion_correlation_id eq '{self.portion_id}'", "limit": 1},
                endpoint="run_logs",
            )
            if runs:
                detail = client.get_json(
                    f"/api/v3/connector_run_logs/connectors/{runs[0]['portion_id']}",
                    endpoint="run_log",
                )
                objects = detail.get("objects") or {}
                if not objects.get("processing") and detail.get("status") != "Processing":
                    return dict(detail)
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"Oomnitza had not finished portion {self.portion_id} "
                    f"after {_OUTCOME_WAIT:.0f} seconds; see its run log"
                )
            time.sleep(1.0)

    def _outcome(self) -> PortionResult:
        detail = self._detail()
        objects = detail.get("objects") or {}
        logs = detail.get("logs") or {}
        errors = list(self.local_errors)
        unmatched = Counter(self.sent_errors)
        for message in logs.get("failed") or ():
            text = str(message)
            reason = text.split(": ", 1)[-1]
            if unmatched[reason] > 0:
                unmatched[reason] -= 1
                continue
            errors.append(RecordError(None, f"Oomnitza: {text}"))
        server_failed = int(objects.get("failed", 0)) - self.sent_error_records
        counts = SyncCounts(
            created=int(objects.get("added", 0)),
            updated=int(objects.get("updated", 0)),
            unchanged=int(objects.get("unchanged", 0)),
            skipped=int(objects.get("skipped", 0)),
            failed=max(server_failed, 0) + len(self.local_errors),
        )
        fatal = logs.get(FATAL_ERROR) or []
        payload: tuple[Mapping[str, Any], ...] = ()
        if self.test_run:
            answer = detail.get("test_run_payload")
            if isinstance(answer, list):
                payload = self._named(tuple(self._plan_entry(entry) for entry in answer))
            else:
                log.info("Oomnitza's run log has no test-run answer; the plan is worked out here")
                payload = tuple(self._local_plan())
        message = f"Oomnitza: {fatal[0]}" if fatal and not self.test_run else None
        return PortionResult(counts=counts, errors=tuple(errors), payload=payload, message=message)

    def _learn_names(self, record: MappedRecord) -> None:
        for name in record.fields:
            if name in self.seen_fields:
                continue
            self.seen_fields.add(name)
            field = self.destination.field_id(name)
            if field is not None:
                self.names.setdefault(V3_KEYS.get(field, field), name)

    def _person_value(self, key: str, value: Any) -> Any:
        if key == "role" and isinstance(value, int) and value in self.role_names:
            return self.role_names[value]
        return value

    def _person_fields_of(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {self.names.get(k, k): self._person_value(k, v) for k, v in fields.items()}

    def _person_changes_of(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        return {
            self.names.get(k, k): {
                "old": self._person_value(k, change.get("old")),
                "new": self._person_value(k, change.get("new")),
            }
            for k, change in changes.items()
            if isinstance(change, Mapping)
        }

    def _sent_records(self) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
        assert self.sent is not None
        self.sent.flush()
        self.sent.seek(0)
        for line in self.sent:
            vendor_user_id, sync_value, bulk = json.loads(line)
            yield vendor_user_id, sync_value, bulk

    def _named(self, entries: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        """Oomnitza's entries, each with the vendor user it is about."""
        wanted = {e["sync_value"] for e in entries if "sync_value" in e} - {None}
        if not wanted or self.sent is None:
            return entries
        users: dict[str, str] = {}
        for vendor_user_id, sync_value, _ in self._sent_records():
            if sync_value is not None and sync_value in wanted:
                users.setdefault(sync_value, vendor_user_id)
        for entry in entries:
            if "vendor_user_id" not in entry and entry.get("sync_value") in users:
                entry["vendor_user_id"] = users[entry["sync_value"]]
        return entries

    def _local_plan(self) -> Iterator[dict[str, Any]]:
        """The plan against the users Oomnitza holds now, one look-up per record sent."""
        destination = self.destination
        sync_field = destination.field_id(self.plan.sync_key) or self.plan.sync_key
        key = V3_KEYS.get(sync_field, sync_field)
        for vendor_user_id, sync_value, bulk in self._sent_records():
            entry: dict[str, Any] = {
                "source": "oomnitza-connect",
                "vendor_user_id": vendor_user_id,
                "sync_value": sync_value,
            }
            wanted = {V3_KEYS.get(k, k): v for k, v in bulk.items() if k != "SAAS"}
            existing = next(
                destination._users(f"{key} eq {destination._filter_value(sync_value)}"), None
            )
            if existing is None:
                if self.plan.preference == SyncPreference.UPDATE_ONLY:
                    yield {**entry, "action": "skip", "reason": "update only: no such user"}
                elif (clash := self._clash(wanted, None)) is not None:
                    yield {**entry, "action": "fail", "reason": clash}
                else:
                    fields = self._person_fields_of(wanted)
                    yield {**entry, "action": "create", "fields": fields}
                continue
            if self.plan.preference == SyncPreference.CREATE_ONLY:
                yield {**entry, "action": "skip", "reason": "insert only: the user exists"}
                continue
            changed = {k: v for k, v in wanted.items() if existing.get(k) != v}
            changes = self._person_changes_of(
                {k: {"old": existing.get(k), "new": v} for k, v in changed.items()}
            )
            if changes and (clash := self._clash(changed, existing.get("user_id"))) is not None:
                yield {**entry, "action": "fail", "reason": clash}
            elif changes:
                fields = {name: change["new"] for name, change in changes.items()}
                yield {**entry, "action": "update", "changes": changes, "fields": fields}
            else:
                yield {**entry, "action": "unchanged"}

    def _clash(self, fields: Mapping[str, Any], user_id: Any) -> str | None:
        """Why Oomnitza would refuse *fields*: a unique value another user holds."""
        destination = self.destination
        for key in ("username", "email", "external_id"):
            value = fields.get(key)
            if value in (None, ""):
                continue
            for owner in destination._users(f"{key} eq {destination._filter_value(value)}"):
                if owner.get("user_id") != user_id:
                    return f"the value {value!r} of {key} already belongs to another user"
        return None

    def _plan_entry(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"source": "oomnitza", **entry}
        if "sync" in entry:
            out["sync_value"] = str(entry["sync"]).split("=", 1)[-1].strip("'\"")
        if isinstance(entry.get("changes"), Mapping):
            out["changes"] = self._person_changes_of(entry["changes"])
            out["fields"] = {k: v["new"] for k, v in out["changes"].items()}
        if isinstance(entry.get("fields"), Mapping) and "changes" not in entry:
            out["fields"] = self._person_fields_of(entry["fields"])
        return out


def new_portion_id() -> str:
    """A portion id: a UUID4, as the vendor's own connector makes them."""
    return str(uuid.uuid4())
