"""The SDK's data model: frozen attrs classes, validated at the edges.

Vendor plugins describe themselves with :class:`VendorInfo`; credentials are
:class:`Credential` (secret fields are :class:`~oomnitza_connect.redaction.Secret`);
an integration is :class:`IntegrationSettings`; what the sync engine reads and
writes are :class:`VendorRecord`, :class:`Person`, :class:`SaasUser` and
:class:`SyncSession`; workflow presets are :class:`Preset`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from .errors import ConfigurationError
from .redaction import Secret

__all__ = [
    "STANDARD_PERSON_FIELDS",
    "AuthKind",
    "ClientAuthMethod",
    "Credential",
    "DestinationKind",
    "DestinationSettings",
    "FieldMapping",
    "FieldSpec",
    "FieldType",
    "FindExisting",
    "GlobalSetting",
    "IntegrationSettings",
    "Person",
    "PersonId",
    "Preset",
    "RateBudget",
    "RecordError",
    "SaasUser",
    "SettingKind",
    "SyncCounts",
    "SyncPreference",
    "SyncSession",
    "SyncStatus",
    "UnreadRecord",
    "UserSelection",
    "VendorInfo",
    "VendorRecord",
    "WorkflowRun",
]


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


def _own_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Keep a plain dict as given (the record owns it), copy anything else.

    A sync builds two of these per vendor user (fields and raw); copying both
    was a fifth of the record's cost.
    """
    return value if type(value) is dict else dict(value or {})


# ---------------------------------------------------------------------------
# Vendor description
# ---------------------------------------------------------------------------


class AuthKind(enum.StrEnum):
    """How a connector authenticates to its vendor."""

    API_KEY = "api_key"
    """A static token in a header (``Authorization: Bearer x`` or ``X-Api-Key: x``)."""
    BASIC = "basic"
    """HTTP Basic with a username (or client id) and password (or secret)."""
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"
    """Machine-to-machine OAuth2; client_secret_basic, client_secret_post or private_key_jwt."""
    OAUTH2_AUTHORIZATION_CODE = "oauth2_authorization_code"
    """A user grants access in a browser; the SDK keeps and refreshes the tokens."""


class ClientAuthMethod(enum.StrEnum):
    """How an OAuth2 client proves itself at the token endpoint (RFC 7591 names)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"


class FieldType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    LIST = "list"
    TEXT = "text"
    """Long text, for example a whole JSON response stored by a preset."""


@attrs.frozen
class FieldSpec:
    """One field a vendor offers on its user records.

    :param key: the key in :attr:`VendorRecord.fields` (``user_name``).
    :param label: the name people see (``User Name``).
    :param type: the value's type once the plugin has decoded it.
    :param unique: whether the vendor guarantees the value is unique per user.
    """

    key: str
    label: str
    type: FieldType = FieldType.STRING
    unique: bool = False
    description: str = ""
    path: str | None = None
    """Where the value sits in the vendor's JSON object, as a dotted path
    (``profile.email``, ``roles.0``); ``None`` means the key itself. Vendors on the
    declarative description (:class:`oomnitza_connect.vendors.RestVendor`) read
    their records through it."""
    default: Any = None
    """The value when the vendor leaves the field out or sends ``null`` (Slack omits
    false flags)."""

    @classmethod
    def flag(cls, key: str, label: str, description: str = "") -> FieldSpec:
        """A true/false field that the vendor may leave out or send as ``null``: false then."""
        return cls(key, label, FieldType.BOOLEAN, description=description, default=False)


class SettingKind(enum.StrEnum):
    """What a global setting's value is; it is checked before any request."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"


_SETTING_TRUE = frozenset({"true", "yes", "on", "1"})
_SETTING_FALSE = frozenset({"false", "no", "off", "0"})


@attrs.frozen
class GlobalSetting:
    """A per-vendor setting an integration must or may give (``Talkdesk.Subdomain``).

    :param kind: the value's type; ``choice`` when *choices* are given.
    :param minimum: the smallest whole number allowed (``integer``).
    :param maximum: the largest whole number allowed (``integer``).
    :param values: for a choice, what templates see instead of the choice
        (``{"EU": "api.eu.intercom.io"}``), so a region picks a host.
    """

    key: str
    description: str
    default: str | None = None
    required: bool = False
    choices: tuple[str, ...] = ()
    kind: SettingKind = SettingKind.TEXT
    minimum: int | None = None
    maximum: int | None = None
    values: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)

    @property
    def effective_kind(self) -> SettingKind:
        if self.choices:
            return SettingKind.CHOICE
        if self.kind is SettingKind.TEXT and (self.minimum is not None or self.maximum is not None):
            return SettingKind.INTEGER  # bounds alone make a whole number
        return self.kind

    def allowed(self) -> str:
        """Describe the allowed values, for error messages and ``integrations init``."""
        kind = self.effective_kind
        if kind is SettingKind.CHOICE:
            return ", ".join(self.choices)
        if kind is SettingKind.INTEGER:
            if self.minimum is not None and self.maximum is not None:
                return f"a whole number from {self.minimum} to {self.maximum}"
            if self.minimum is not None:
                return f"a whole number of at least {self.minimum}"
            if self.maximum is not None:
                return f"a whole number of at most {self.maximum}"
            return "a whole number"
        if kind is SettingKind.BOOLEAN:
            return "true or false"
        return "text"

    def parse(self, raw: Any) -> Any:
        """Return *raw* as this setting's typed value (the default when blank).

        :raises ConfigurationError: the value is not allowed; the error names
            the setting's key, the value and what is allowed.
        """
        text = "" if raw is None else str(raw).strip()
        if not text:
            if self.default is None:
                return None
            text = self.default
        kind = self.effective_kind

        def refuse() -> ConfigurationError:
            return ConfigurationError(
                f"the setting '{self.key}' must be {self.allowed()}, not {raw!r}.",
                key_path=self.key,
                value=raw,
                allowed=self.allowed(),
            )

        if kind is SettingKind.CHOICE:
            for choice in self.choices:
                if choice.lower() == text.lower():
                    return choice
            raise refuse()
        if kind is SettingKind.INTEGER:
            try:
                number = int(text)
            except ValueError:
                raise refuse() from None
            if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum
            ):
                raise refuse()
            return number
        if kind is SettingKind.BOOLEAN:
            if text.lower() in _SETTING_TRUE:
                return True
            if text.lower() in _SETTING_FALSE:
                return False
            raise refuse()
        return text

    def template_value(self, raw: Any) -> str:
        """What ``{{Key}}`` renders to in the vendor's URL and header templates."""
        value = self.parse(raw)
        if value is None:
            return ""
        if self.values:
            return self.values.get(str(value), str(value))
        return str(value).lower() if isinstance(value, bool) else str(value)


@attrs.frozen
class RateBudget:
    """How fast a connector may call one vendor endpoint without being throttled.

    :param endpoint: the endpoint name the plugin passes to the HTTP client
        (``users.list``); ``"*"`` applies to every endpoint without a budget of its own.
    :param requests_per_minute: the sustained rate the client keeps to.
    :param burst: how many requests may go out back to back before pacing starts.
    """

    endpoint: str
    requests_per_minute: float
    burst: int = 1


@attrs.frozen
class FieldMapping:
    """Where one target field of a person gets its value.

    Exactly one of *source* and *expression* is set.

    :param target: the system-of-record field: a standard one (``username``,
        ``email``, ``role`` …, see :data:`STANDARD_PERSON_FIELDS`) or the label
        of a custom field (``Slack User Id``).
    :param source: the vendor field key to copy.
    :param expression: a sandboxed template computing the value from the record
        (``{{ first_name }} {{ last_name }}``).
    :param converter: the name of a converter applied to the value (``lower``,
        ``bool``, ``timestamp``, ``list``, ``first_name``, ``last_name``).
    :param unique: the target holds one value per person (a custom field that
        can serve as the sync key).
    """

    target: str
    source: str | None = None
    expression: str | None = None
    converter: str | None = None
    unique: bool = False

    def __attrs_post_init__(self) -> None:
        if (self.source is None) == (self.expression is None):
            raise ValueError(
                f"mapping for '{self.target}' needs exactly one of 'source' or 'expression'"
            )


STANDARD_PERSON_FIELDS: Mapping[str, str] = {
    "username": "Username",
    "email": "Email",
    "first_name": "First Name",
    "last_name": "Last Name",
    "full_name": "Full Name",
    "phone_number": "Phone",
    "position": "Position",
    "role": "Role",
    "address": "Address",
    "external_id": "External Id",
    "connector_sync_time": "Connector Sync Time",
    "vendor_api_version": "Vendor API Version",
    "last_login": "Last Login",
}
"""The system of record's own person fields: key -> label. Every other target is custom."""

UNIQUE_STANDARD_FIELDS = frozenset({"username", "email", "external_id"})


@attrs.frozen
class VendorInfo:
    """Everything the core needs to know about a vendor, given by its plugin.

    :param name: the connector name used everywhere (``slack``).
    :param display_name: the vendor as people write it (``Slack``).
    :param base_url: the production API root; integrations and tests may override it.
    :param auth_kinds: the credential kinds the plugin accepts.
    :param scopes: OAuth scopes (or vendor permissions) the connector needs.
    :param global_settings: per-integration settings (``Intercom.Version``).
    :param fields: the fields of :attr:`VendorRecord.fields`.
    :param standard_mapping: the mapping used unless an integration overrides it.
    :param default_filters: record filters applied unless an integration overrides them.
    :param rate_budgets: request budgets the HTTP client keeps to.
    :param api_version: the vendor API version the plugin speaks.
    :param authorize_url: the OAuth2 authorization endpoint, if any.
    :param token_url: the OAuth2 token endpoint, if any.
    """

    name: str
    display_name: str
    base_url: str
    auth_kinds: tuple[AuthKind, ...]
    scopes: tuple[str, ...] = ()
    global_settings: tuple[GlobalSetting, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    standard_mapping: tuple[FieldMapping, ...] = ()
    default_filters: tuple[str, ...] = ()
    rate_budgets: tuple[RateBudget, ...] = ()
    api_version: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    description: str = ""
    open_fields: bool = True
    """Records may carry fields beyond *fields* (a vendor that passes its JSON
    through): an expression or filter naming an unknown variable is then only
    warned about. ``False`` (every declarative vendor) refuses it when the
    integration is loaded."""

    def field(self, key: str) -> FieldSpec:
        for spec in self.fields:
            if spec.key == key:
                return spec
        raise KeyError(key)


# ---------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------


def _to_secret(value: Secret | str | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


@attrs.frozen
class Credential:
    """A named set of secrets for one vendor account.

    Secret fields are :class:`Secret`; they print redacted in ``repr``/``str``.
    Token fields (*access_token*, *refresh_token*, *expires_at*) are filled in
    and rotated by the SDK for the OAuth2 kinds.
    """

    name: str
    vendor: str
    kind: AuthKind
    token: Secret | None = attrs.field(default=None, converter=_to_secret)
    header_name: str = "Authorization"
    header_prefix: str = "Bearer"
    username: str | None = None
    password: Secret | None = attrs.field(default=None, converter=_to_secret)
    client_id: str | None = None
    client_secret: Secret | None = attrs.field(default=None, converter=_to_secret)
    client_auth_method: ClientAuthMethod = ClientAuthMethod.CLIENT_SECRET_BASIC
    private_key: Secret | None = attrs.field(default=None, converter=_to_secret)
    key_id: str | None = None
    signing_algorithm: str | None = None
    token_url: str | None = None
    authorize_url: str | None = None
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = ()
    access_token: Secret | None = attrs.field(default=None, converter=_to_secret)
    refresh_token: Secret | None = attrs.field(default=None, converter=_to_secret)
    expires_at: datetime | None = None
    base_url: str | None = None
    ca_bundle: str | None = None

    def secret_values(self) -> tuple[str, ...]:
        """Return every secret this credential holds (for scrubbing recorded traffic)."""
        secrets = (
            self.token,
            self.password,
            self.client_secret,
            self.private_key,
            self.access_token,
            self.refresh_token,
        )
        return tuple(s.reveal() for s in secrets if s)


# ---------------------------------------------------------------------------
# Integrations
# ---------------------------------------------------------------------------


class UserSelection(enum.StrEnum):
    USERS = "users"
    """Create and update people only."""
    USERS_AND_SAAS = "users+saas"
    """Also link each person to the vendor's SaaS app as a SaaS user."""


class SyncPreference(enum.StrEnum):
    CREATE_UPDATE = "create_update"
    CREATE_ONLY = "create_only"
    UPDATE_ONLY = "update_only"


class DestinationKind(enum.StrEnum):
    """Where an integration's people are written."""

    SQLITE = "sqlite"
    OOMNITZA = "oomnitza"


@attrs.frozen
class DestinationSettings:
    """An integration's ``[destination]`` table (see ``docs/destinations.md``).

    :param type: ``sqlite`` (people in a local SQLite file) or ``oomnitza``.
    :param path: the SQLite file (``sqlite``); it is also the run's ledger.
    :param url: the Oomnitza instance (``https://example.oomnitza.com``).
    :param credential: the stored credential for Oomnitza (a raw API token, or
        a login and password exchanged for a token).
    :param batch_size: records per ``POST /api/v3/bulk`` (at most 100).
    :param concurrency: bulk requests in flight at once.
    :param fields: person field -> Oomnitza field id, for custom fields (by
        their external id) and to override the standard ones (``USER``, ``EMAIL``).
    :param roles: role name -> numeric Oomnitza role id (``PERMISSIONS_ID``);
        a numeric role is sent as it is.
    :param default_role_id: the role id sent for a role *roles* does not name;
        without it such a record fails, naming the role.
    :param vanished_field: an Oomnitza user field set (by ``PATCH``) on people
        who vanished from the vendor, e.g. a custom "Removed from Slack" field.
    :param vanished_value: the value set in *vanished_field*.
    :param translate_where: narrow a ``--where`` read with Oomnitza's ``filter``
        (its ``name == 'text'`` terms); the expression is still checked on each
        person, so turning it off only reads more pages.
    """

    type: DestinationKind
    path: str | None = None
    url: str | None = None
    credential: str | None = None
    connector_name: str = "oomnitza-connect"
    batch_size: int = 100
    test_run_batch_size: int = 10
    concurrency: int = 4
    timeout: float = 30.0
    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    roles: Mapping[str, int] = attrs.field(factory=dict, converter=_freeze_mapping)
    default_role_id: int | None = None
    vanished_field: str | None = None
    vanished_value: str = "true"
    translate_where: bool = True


def _refuse_value(key: str, enum_type: type[enum.StrEnum], value: Any) -> ConfigurationError:
    allowed = ", ".join(member.value for member in enum_type)
    return ConfigurationError(f"bad value {value!r}", key_path=key, value=value, allowed=allowed)


def _to_selection(value: UserSelection | str) -> UserSelection:
    """A member or its value; anything else is refused naming the key and the choices."""
    try:
        return UserSelection(value)
    except ValueError:
        raise _refuse_value("selection", UserSelection, value) from None


def _to_preference(value: SyncPreference | str) -> SyncPreference:
    try:
        return SyncPreference(value)
    except ValueError:
        raise _refuse_value("preference", SyncPreference, value) from None


def _texts(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A list of texts as a tuple; one text alone is a one-item list (not its characters)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _optional_texts(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else _texts(value)


def _mappings(value: tuple[FieldMapping, ...] | list[FieldMapping]) -> tuple[FieldMapping, ...]:
    return tuple(value)


@attrs.frozen
class IntegrationSettings:
    """One integration: which vendor account syncs into the store, and how.

    Loaded from a TOML file (see ``docs/integrations.md``). An integration is a
    draft until Username and Email are mapped, a default role is set and the
    sync key is a unique field.
    """

    name: str
    vendor: str
    credential: str
    settings: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    selection: UserSelection = attrs.field(default=UserSelection.USERS, converter=_to_selection)
    preference: SyncPreference = attrs.field(
        default=SyncPreference.CREATE_UPDATE, converter=_to_preference
    )
    integration_user: str | None = None
    contacts: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    """Email addresses; one address alone (``"it@example.com"``) is a list of one."""
    schedule: str = "daily"
    filters: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_texts)
    """Expressions a record must satisfy; ``None`` means the vendor's default filters."""
    mapping: tuple[FieldMapping, ...] = attrs.field(default=(), converter=_mappings)
    """Mappings added to (or replacing targets of) the vendor's standard mapping."""
    use_standard_mapping: bool = True
    sync_key: str | None = None
    default_role: str | None = None
    base_url: str | None = None
    """Overrides the vendor's API root (a region, a proxy or an emulator)."""
    destination: DestinationSettings | None = None
    """Where people go; ``None`` is the ledger's own SQLite file (``--db``)."""
    rate_budgets: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    """The rate budgets the vendor plan grants, ``ENDPOINT=PER_MINUTE[/BURST]``
    (``users.list=100/5``); each replaces the plugin's budget for that endpoint."""
    pace_requests: bool = True
    """Keep to the rate budgets before the vendor says 429 (off only for emulators)."""
    vanish_limit_percent: int = 50
    """The safeguard on vanished people: a run that would mark more than this share
    of the integration's people as vanished (or all of them, because the vendor
    listed nobody) marks none and completes with errors; 100 turns it off."""


# ---------------------------------------------------------------------------
# Records, people and sessions
# ---------------------------------------------------------------------------


@attrs.frozen
class VendorRecord:
    """One user as a vendor returns it, decoded into the plugin's declared fields.

    :param id: the vendor's user id.
    :param fields: values keyed by :attr:`FieldSpec.key`.
    :param raw: the vendor's JSON object, for presets and troubleshooting.
    :param active: ``False`` for a deactivated or deleted account; an active
        account wins a unique value (an email) over it, whatever the order.
    """

    vendor: str
    id: str
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_own_mapping)
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_own_mapping, repr=False)
    active: bool = True


PersonId = int | str
"""A person's id in its destination: a row id in SQLite, Oomnitza's ``user_id``."""


@attrs.frozen
class UnreadRecord:
    """A user as the vendor sent it, read into a :class:`VendorRecord` only when used.

    ``list_users`` yields these (or records) so that a user the plugin cannot
    read fails alone: the sync engine calls :meth:`read` inside its
    per-record error handling, and any error there (a missing id, a wrong
    type, a timestamp out of range) becomes that user's
    :class:`RecordError` while the others sync. A generator that raised
    instead would end the listing.

    :param raw: the vendor's JSON value for one user (anything, even ``null``).
    :param reader: turns *raw* into a record; raise for what it cannot read.
    """

    vendor: str
    raw: Any
    reader: Callable[[Any], VendorRecord] = attrs.field(repr=False)

    def read(self) -> VendorRecord:
        return self.reader(self.raw)

    def id_hint(self) -> str | None:
        """The vendor's id of the user, when the raw value has a plain one."""
        raw = self.raw
        if type(raw) is dict or isinstance(raw, Mapping):
            value = raw.get("id")
            if type(value) is str:
                return value
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
        return None


@attrs.frozen
class Person:
    """A person in the system of record."""

    id: PersonId
    sync_key: str
    sync_value: str
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)
    vanished_from: tuple[str, ...] = ()
    """Vendors whose last complete run no longer returned this person."""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen
class SaasUser:
    """A person's account in one vendor's SaaS app."""

    vendor: str
    vendor_user_id: str
    person_id: PersonId | None = None
    role: str | None = None
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)


class SyncStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    """Not run: another run of the integration was still going (Celery workers)."""


@attrs.frozen
class SyncCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    vanished: int = 0
    """People marked as vanished from the vendor at the end of a complete run (not in total)."""

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.skipped + self.failed


@attrs.frozen
class RecordError:
    """Why one record did not sync."""

    vendor_user_id: str | None
    reason: str
    field: str | None = None


@attrs.frozen
class SyncSession:
    """What one sync run did, as recorded in the store."""

    id: str
    integration: str
    vendor: str
    started_at: datetime
    status: SyncStatus
    test_run: bool = False
    ended_at: datetime | None = None
    counts: SyncCounts = SyncCounts()
    errors: tuple[RecordError, ...] = ()
    payload: tuple[Mapping[str, Any], ...] = ()
    """For a test run, its plan: every person's action (when asked for)."""
    message: str | None = None
    """A run-level error (authentication failed, vendor unreachable)."""


# ---------------------------------------------------------------------------
# Workflow presets
# ---------------------------------------------------------------------------


@attrs.frozen
class FindExisting:
    """How a create preset finds the record the vendor may have made already.

    Some vendors answer a create with an error although they created the
    record (Webex's 400 on ``POST /v1/people``), so repeating the create could
    add it twice. The presets engine looks the record up before the create
    (found: nothing is sent) and again after a failed one (found: the create
    counts as done), in Python and on the command line alike.

    :param preset: the vendor's preset that looks the record up; it is rendered
        with the create's variables (``GET /people?email={{email}}``).
    :param record: an expression over ``response`` (the look-up's answer) that
        gives the record found, or something empty (``None``, ``{}``) for none.
    """

    preset: str
    record: str = "{{response}}"


@attrs.frozen
class Preset:
    """A named, reusable vendor API call with ``{{variable}}`` templates.

    :param path: a path template relative to the vendor's base URL
        (``/users/{{talkdesk_user_id}}``).
    :param query: query parameters; values are templates.
    :param headers: extra headers; values are templates.
    :param body: a JSON body whose string leaves are templates; ``None`` sends none.
    :param variables: the variables the caller must supply (or the person's fields).
    :param response_mappings: target field -> response expression
        (``{{response}}``, ``{{response.total_licenses}}``).
    :param idempotent: safe to retry when the request may have reached the vendor.
    :param read_merge_write: the vendor's update replaces the whole record; the
        preset named here is read first and the body is merged into it.
    :param variable_fields: where a variable comes from when the caller does not
        give it: a person field's key or label (a custom field such as ``Intercom ID``).
    :param find_existing: for a create the vendor may report failed although it
        created the record: how to look the record up first and after a failure.
    :param merge: for a read-merge-write preset, Python that turns the record
        read and the rendered changes into the body sent (Webex keeps only the
        PUT's writable fields). Default: :func:`~oomnitza_connect.presets.engine.merge_record`,
        every field of the record with the changes merged in. Python callers
        and ``presets run`` both go through it.
    :param mapper: Python for what a template cannot say: called with the
        session and the response body, it returns more target -> value pairs
        (winning over *response_mappings*). Webex's User Role turns role ids into
        names with one ``GET /v1/roles`` per session. Not called in a dry run,
        nor when the caller replaces the mappings (``--map``, ``--no-mapping``).
    :param mapper_targets: the targets *mapper* returns (``saas_user.role``), so
        that a destination that cannot store one refuses before any call.
    """

    vendor: str
    name: str
    description: str
    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    body: Any = None
    variables: tuple[str, ...] = ()
    response_mappings: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    idempotent: bool = True
    read_merge_write: str | None = None
    endpoint: str | None = None
    """The rate-budget name of the call (``users.info``)."""
    variable_fields: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    """Variable -> the person field (key or label) it is read from when the caller does
    not give it: ``{"intercom_admin_id": "Intercom ID"}``."""
    find_existing: FindExisting | None = None
    mapper: Callable[[Any, Any], Mapping[str, Any]] | None = attrs.field(default=None, eq=False)
    merge: Callable[[Mapping[str, Any], Any], Any] | None = attrs.field(default=None, eq=False)
    mapper_targets: tuple[str, ...] = ()


@attrs.frozen
class WorkflowRun:
    """One preset call against one person (or none), as recorded in the store."""

    id: str
    vendor: str
    preset: str
    started_at: datetime
    ok: bool
    person_id: PersonId | None = None
    status: int | None = None
    request: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)
    """method, url and body as sent (never headers carrying secrets)."""
    response: Any = None
    mapped: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)
    error: str | None = None
    dry_run: bool = False
