"""Vendor objects: a plugin registers one object, and its hooks answer only for it.

:class:`Vendor` turns the hook specs (which every plugin may still implement by
hand) into methods of one object, so a vendor plugin writes no ``if vendor !=``
guards: the object is registered once, as llm's ``register_models`` and tox's
``register.add_run_env`` do, and the core hands back its behaviour.

:class:`RestVendor` adds the declarative REST description
(:mod:`oomnitza_connect.vendors.description`): a plugin states its base URL,
settings, auth, who-am-I call, users endpoint, fields and error rules, and
overrides a method only where the vendor needs real logic.
"""

from __future__ import annotations

import collections
import functools
import importlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import requests

from .. import decoding
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    MappingError,
)
from ..hookspecs import hookimpl
from ..models import (
    AuthKind,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    GlobalSetting,
    Preset,
    RateBudget,
    UnreadRecord,
    VendorInfo,
    VendorRecord,
)
from ..transport import pagination
from ..transport.http import (
    ClientOptions,
    PageMemo,
    VendorErrorInfo,
    decode_json,
    parse_retry_after,
)
from .description import (
    CursorPaging,
    ErrorRules,
    HalPaging,
    LinkHeaderPaging,
    OffsetPaging,
    PageNumberPaging,
    SinglePage,
    UsersEndpoint,
    WhoAmI,
    compile_path,
)
from .session import VendorSession, open_session

if TYPE_CHECKING:
    from ..auth.oauth import TokenResponseParser

__all__ = ["RestVendor", "Vendor"]

log = logging.getLogger(__name__)

_NUMBERED_PAGE_SIZE = 100
"""The page size of page-number and offset paging when none is declared (they need one)."""

_TEMPLATE = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")


class Vendor:
    """One vendor as one object; subclass it and register an instance.

    Register the instance through the ``oomnitza_connect`` entry point
    (``slack = "oomnitza_connect_slack:vendor"``) or with
    :func:`oomnitza_connect.plugins.register_plugin`. Its hook implementations
    answer only for :attr:`name`; override the plain methods below.
    """

    name: ClassVar[str]

    @property
    def token_response_parser(self) -> TokenResponseParser | None:
        """How to read the vendor's OAuth2 token answers, or ``None`` for RFC 6749's."""
        return None

    emulator: ClassVar[str | None] = None
    """``"module:Class"`` of the vendor's emulator; imported only when asked for."""

    @property
    def info(self) -> VendorInfo:
        """The vendor's description for the core (fields, mapping, settings…)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # -- behaviour a vendor provides ------------------------------------------------

    def authenticate(
        self,
        credential: Credential,
        settings: Mapping[str, str],
        options: ClientOptions,
    ) -> VendorSession:
        """Open a session and prove the credential (see the ``authenticate`` hook)."""
        raise NotImplementedError

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:
        """Yield the vendor's users lazily (see the ``list_users`` hook)."""
        raise NotImplementedError

    def last_logins(self, session: VendorSession) -> Iterable[Mapping[str, Any]] | None:
        """Yield ``{"vendor_user_id", "last_login"}`` or return ``None`` when there are none."""
        return None

    def workflow_presets(self) -> Sequence[Preset]:
        """Return the vendor's workflow presets."""
        return ()

    def create_emulator(self, options: Mapping[str, Any]) -> Any:
        """Return a new, not yet started emulator of the vendor, from :attr:`emulator`."""
        if self.emulator is None:
            return None
        module_name, _, class_name = self.emulator.partition(":")
        emulator_class = getattr(importlib.import_module(module_name), class_name)
        factory = getattr(emulator_class, "from_options", None)
        return factory(options) if factory is not None else emulator_class(**options)

    # -- the hook implementations: one guard, here, for every vendor ------------------

    @hookimpl(specname="register_vendors")
    def _register_vendors(self, register: Callable[[Any], None]) -> None:
        register(self)

    @hookimpl(specname="authenticate")
    def _authenticate(
        self,
        vendor: str,
        credential: Credential,
        settings: Mapping[str, str],
        options: ClientOptions,
    ) -> VendorSession | None:
        return self.authenticate(credential, settings, options) if vendor == self.name else None

    @hookimpl(specname="list_users")
    def _list_users(
        self, vendor: str, session: VendorSession
    ) -> Iterator[VendorRecord | UnreadRecord] | None:
        return self.iter_users(session) if vendor == self.name else None

    @hookimpl(specname="list_last_logins")
    def _list_last_logins(
        self, vendor: str, session: VendorSession
    ) -> Iterable[Mapping[str, Any]] | None:
        return self.last_logins(session) if vendor == self.name else None

    @hookimpl(specname="workflow_presets")
    def _workflow_presets(self, vendor: str) -> list[Preset] | None:
        return list(self.workflow_presets()) if vendor == self.name else None


# ---------------------------------------------------------------------------
# Reading records through the declared fields
# ---------------------------------------------------------------------------


def _as_text(value: Any) -> str | None:
    if type(value) is str:  # the common case first (a str subclass goes the long way)
        return value if value.strip() else None
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _as_string(value: Any) -> str | None:
    """A short text field: a list or an object there is a malformed record, never a name
    or an address (as JSON text it would even become a sync key)."""
    if isinstance(value, list | tuple | dict):
        raise MappingError(f"a {type(value).__name__} is not a text value", value=_shown(value))
    return _as_text(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_bool(value: Any) -> bool | None:
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
    if isinstance(value, int | float):
        return bool(value)
    raise MappingError(f"{value!r} is not a true/false value", value=value)


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MappingError(f"{value!r} is not a whole number", value=value)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise MappingError(f"{value!r} is not a whole number", value=value) from None


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return _to_datetime()(value)


@functools.cache
def _to_datetime() -> Callable[[Any], datetime]:
    from ..sync.converters import to_datetime  # imported once, by the first timestamp

    return to_datetime


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, list | tuple) else [value]


_COERCERS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.STRING: _as_string,
    FieldType.TEXT: _as_text,
    FieldType.BOOLEAN: _as_bool,
    FieldType.INTEGER: _as_int,
    FieldType.DATETIME: _as_datetime,
    FieldType.LIST: _as_list,
}


def _reader(path: str) -> Callable[[Any], Any]:
    """A path, or alternatives ``a|b`` (the first that is not blank wins)."""
    alternatives = [compile_path(part) for part in path.split("|")]
    if len(alternatives) == 1:
        return alternatives[0]

    def first(item: Any) -> Any:
        for read in alternatives:
            value = read(item)
            if value is not None and value != "":
                return value
        return None

    return first


# ---------------------------------------------------------------------------
# The declarative REST vendor
# ---------------------------------------------------------------------------


class RestVendor(Vendor):
    """A REST vendor described by data; override a method where it needs logic.

    Every class attribute below is part of the description. URL and header
    values are templates over the global settings: ``{{Intercom.Region}}``
    renders the setting (through its ``values``, so a region becomes a host).
    """

    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    base_url: ClassVar[str]
    auth_kinds: ClassVar[tuple[AuthKind, ...]] = (AuthKind.API_KEY,)
    scopes: ClassVar[tuple[str, ...]] = ()
    token_url: ClassVar[str | None] = None
    authorize_url: ClassVar[str | None] = None
    headers: ClassVar[Mapping[str, str]] = {}
    settings: ClassVar[tuple[GlobalSetting, ...]] = ()
    who_am_i: ClassVar[WhoAmI | None] = None
    users: ClassVar[UsersEndpoint]
    fields: ClassVar[tuple[FieldSpec, ...]] = ()
    open_fields: ClassVar[bool] = False
    """Records carry fields beyond :attr:`fields` (a ``to_record`` that adds its own)."""
    id_path: ClassVar[str] = "id"
    sync_time_field: ClassVar[str | None] = None
    """The field that holds when the record's page was fetched (Connector Sync Time)."""
    active_field: ClassVar[str | None] = None
    """A boolean field that is false for a deactivated account (Talkdesk ``active``)."""
    inactive_field: ClassVar[str | None] = None
    """A boolean field that is true for a deactivated account (Slack ``deleted``); an
    active account wins a unique value (an email) over an inactive one."""
    standard_mapping: ClassVar[tuple[FieldMapping, ...]] = ()
    default_filters: ClassVar[tuple[str, ...]] = ()
    rate_budgets: ClassVar[tuple[RateBudget, ...]] = ()
    presets: ClassVar[tuple[Preset, ...]] = ()
    errors: ClassVar[ErrorRules] = ErrorRules()
    api_version: ClassVar[str | None] = None
    plugin_version: ClassVar[str | None] = None

    # -- the description for the core ---------------------------------------------

    @cached_property
    def info(self) -> VendorInfo:
        return VendorInfo(
            name=self.name,
            display_name=self.display_name,
            base_url=self._render_or_template(self.base_url),
            auth_kinds=self.auth_kinds,
            scopes=self.scopes,
            global_settings=self.settings,
            fields=self.fields,
            open_fields=self.open_fields,
            standard_mapping=self.standard_mapping,
            default_filters=self.default_filters,
            rate_budgets=self.rate_budgets,
            api_version=self.api_version,
            authorize_url=self.authorize_url,
            token_url=self.token_url,
            description=self.description,
        )

    def workflow_presets(self) -> Sequence[Preset]:
        return self.presets

    # -- settings and templates ---------------------------------------------------

    def parse_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Return every declared setting as its typed value (defaults filled in).

        :raises ConfigurationError: a value is not allowed (before any request).
        """
        return {spec.key: spec.parse(settings.get(spec.key)) for spec in self.settings}

    def template_variables(self, settings: Mapping[str, Any]) -> dict[str, str]:
        """What ``{{Key}}`` renders to; override to derive more (a region's two hosts)."""
        return {spec.key: spec.template_value(settings.get(spec.key)) for spec in self.settings}

    def render(self, template: str, settings: Mapping[str, Any]) -> str:
        """Render ``{{Setting.Key}}`` placeholders of *template*.

        :raises ConfigurationError: a placeholder names no setting, or a required
            one is not given.
        """
        if "{{" not in template:
            return template
        variables = self.template_variables(settings)

        def value_of(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in variables:
                # "(allowed: none)" would say no value is accepted; there is no such setting.
                why = (
                    "which is not one of its settings"
                    if variables
                    else f"but {self.display_name} has no settings"
                )
                raise ConfigurationError(
                    f"{self.display_name}'s template {template!r} names '{key}', {why}.",
                    key_path=key,
                    allowed=", ".join(variables) or None,
                )
            value = variables[key]
            if not value:
                spec = next((s for s in self.settings if s.key == key), None)
                raise ConfigurationError(
                    f"{self.display_name} needs the setting '{key}'"
                    + (f" ({spec.description})" if spec else "")
                    + ".",
                    key_path=key,
                    allowed=spec.allowed() if spec else None,
                )
            return value

        return _TEMPLATE.sub(value_of, template)

    def _render_or_template(self, template: str) -> str:
        try:
            return self.render(template, {})
        except ConfigurationError:
            return template  # needs a setting without a default (Talkdesk's subdomain)

    # -- sessions -----------------------------------------------------------------

    def open_session(
        self,
        credential: Credential,
        settings: Mapping[str, str],
        options: ClientOptions,
    ) -> VendorSession:
        """Return an authenticated but unverified session (the who-am-I call comes next)."""
        if credential.kind not in self.auth_kinds:
            kinds = ", ".join(kind.value for kind in self.auth_kinds)
            raise AuthenticationError(
                f"Credential '{credential.name}' is of kind '{credential.kind}', but "
                f"{self.display_name} takes: {kinds}.",
                vendor=self.name,
            )
        if credential.kind is AuthKind.API_KEY and not credential.token:
            raise AuthenticationError(
                f"Credential '{credential.name}' has no token; give a {self.display_name} token.",
                vendor=self.name,
            )
        self.parse_settings(settings)
        info = attrs.evolve(
            self.info,
            base_url=self.render(self.base_url, settings),
            token_url=self.render(self.token_url, settings) if self.token_url else None,
            authorize_url=(
                self.render(self.authorize_url, settings) if self.authorize_url else None
            ),
        )
        headers = {name: self.render(value, settings) for name, value in self.headers.items()}
        return open_session(
            info,
            credential,
            settings,
            options,
            error_parser=self.parse_error,
            default_headers=headers,
            plugin_version=self.plugin_version,
            token_response_parser=self.token_response_parser,
        )

    def authenticate(
        self,
        credential: Credential,
        settings: Mapping[str, str],
        options: ClientOptions,
    ) -> VendorSession:
        session = self.open_session(credential, settings, options)
        try:
            session.identity = self.verify(session)
        except CredentialRefusedError as exc:
            session.close()
            raise CredentialRefusedError(
                f"{self.display_name} refused the credential '{credential.name}': "
                f"{exc.vendor_message}",
                vendor=self.name,
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
                method=exc.method,
                endpoint=exc.endpoint,
            ) from None
        except BaseException:
            session.close()
            raise
        return session

    def verify(self, session: VendorSession) -> dict[str, Any]:
        """Make the who-am-I call and return what it says about the credential's owner."""
        call = self.who_am_i
        if call is None:
            return {}
        result = session.http.request_json(
            call.method,
            call.path,
            params=dict(call.params) or None,
            endpoint=call.endpoint or call.path,
        )
        identity: dict[str, Any] = {}
        for name, path in call.identity.items():
            value = _reader(path)(result.data)
            if value is not None:
                identity[name] = value
        if call.scopes_header:
            granted = result.response.headers.get(call.scopes_header)
            if granted is not None:
                identity["scopes"] = tuple(s.strip() for s in granted.split(",") if s.strip())
        return identity

    # -- errors -------------------------------------------------------------------

    def parse_error(self, response: requests.Response) -> VendorErrorInfo | None:
        """Return the error *response* carries according to :attr:`errors`, or ``None``.

        :raises ValueError: a 2xx body that must be read (a success flag) is not JSON.
        """
        rules = self.errors
        status = response.status_code
        body: Any = None
        if status < 400:
            if rules.success_flag is None:
                return None
            body = decode_json(response)
            if not isinstance(body, Mapping) or _reader(rules.success_flag)(body) is not False:
                return None
        else:
            try:
                body = decode_json(response)
            except ValueError:
                body = None
        code = _first_text(body, rules.code)
        request_id = next(
            (response.headers[h] for h in rules.request_id_headers if response.headers.get(h)),
            None,
        ) or _first_text(body, rules.request_id)
        retry_after = None
        rate_limited = status == 429 or (code is not None and code in rules.rate_limited_codes)
        if rate_limited and (status != 429 or rules.default_retry_after is not None):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = rules.default_retry_after or 1.0
        return VendorErrorInfo(
            message=self.explain(code, body, response),
            code=code,
            request_id=request_id,
            retry_after=retry_after,
            token_expired=code is not None and code in rules.token_expired_codes,
            credential_refused=code is not None
            and (code in rules.credential_codes or code in rules.missing_scope_codes),
        )

    def explain(self, code: str | None, body: Any, response: requests.Response) -> str:
        """Return a sentence for people about the error *code* (override for more)."""
        rules = self.errors
        if code is not None and code in rules.missing_scope_codes:
            needed = _first_text(body, rules.needed_scope) or "an unnamed scope"
            return (
                f"The {self.display_name} token lacks the scope '{needed}'; grant '{needed}' "
                "to the app and store a new token"
            )
        if code is not None and code in rules.explanations:
            return rules.explanations[code]
        message = _first_text(body, rules.message)
        if message:
            return message
        if code:
            return f"{self.display_name} answered with error '{code}'"
        return response.reason or f"HTTP {response.status_code}"

    # -- users --------------------------------------------------------------------

    def page_size(self, settings: Mapping[str, Any]) -> int | None:
        """The page size to ask for, or ``None`` to let the vendor choose."""
        endpoint = self.users
        if endpoint.page_size_setting:
            value = next((s for s in self.settings if s.key == endpoint.page_size_setting), None)
            if value is not None:
                parsed = value.parse(settings.get(endpoint.page_size_setting))
                if isinstance(parsed, int):
                    return parsed
        return endpoint.default_page_size

    def user_pages(self, session: VendorSession) -> Iterator[Any]:
        """Yield the decoded pages of the users endpoint, fetched as the caller iterates."""
        endpoint = self.users
        http = session.http
        params: dict[str, Any] = {}
        for key, template in endpoint.params.items():
            try:
                value = self.render(template, session.settings)
            except ConfigurationError:
                value = ""
            if value:
                params[key] = value
        wanted = session.wanted_fields
        for field, extra in endpoint.field_params.items():
            if wanted is None or field in wanted:
                params.update(extra)
        size = self.page_size(session.settings)
        paging = endpoint.paging
        budget = endpoint.budget_name
        numbered = isinstance(paging, PageNumberPaging | OffsetPaging)
        if endpoint.page_size_param and size is not None and not numbered:
            # (the page-number and offset helpers add the page size themselves)
            params[endpoint.page_size_param] = size
        if size is None:
            size = _NUMBERED_PAGE_SIZE
        # Pages found by cursor or link may be recognised by their bytes; numbered
        # ones are not (their helpers count each page's users to know when to stop).
        memo = session.page_memo if self._skeleton_path is not None else None
        if memo is not None and endpoint.volatile_keys:
            memo = _WithoutVolatileKeys(memo, endpoint.volatile_keys)
        if isinstance(paging, SinglePage):
            return pagination.iter_single_page(
                http, endpoint.path, params=params, endpoint=budget, memo=memo
            )
        if isinstance(paging, CursorPaging):
            return pagination.iter_cursor_pages(
                http,
                endpoint.path,
                params=params,
                endpoint=budget,
                cursor_param=paging.cursor_param,
                cursor_path=tuple(paging.next_cursor_path.split(".")),
                memo=memo,
            )
        if isinstance(paging, LinkHeaderPaging):
            return pagination.iter_link_header_pages(
                http,
                endpoint.path,
                params=params,
                endpoint=budget,
                repair_next=paging.repair_next,
                memo=memo,
            )
        if isinstance(paging, HalPaging):
            return pagination.iter_hal_pages(
                http,
                endpoint.path,
                params=params,
                endpoint=budget,
                next_path=tuple(paging.next_path.split(".")),
                repair_next=paging.repair_next,
                memo=memo,
            )
        if isinstance(paging, PageNumberPaging):
            return pagination.iter_page_number_pages(
                http,
                endpoint.path,
                items=endpoint.items,
                params=params,
                endpoint=budget,
                page_param=paging.page_param,
                per_page_param=endpoint.page_size_param or "per_page",
                per_page=size,
                first_page=paging.first_page,
                total_pages_path=_steps(paging.total_pages_path),
                next_page_path=_steps(paging.next_page_path),
            )
        return pagination.iter_offset_pages(
            http,
            endpoint.path,
            items=endpoint.items,
            params=params,
            endpoint=budget,
            offset_param=paging.offset_param,
            limit_param=endpoint.page_size_param or "limit",
            limit=size,
        )

    def items_of(self, page: Any) -> Sequence[Any]:
        """Return a page's users (the :attr:`UsersEndpoint.items` path)."""
        found = self._items_reader(page)
        return found if isinstance(found, list) else ()

    def skip_reason(self, item: Any) -> str | None:
        """Return why *item* is not a user (Intercom's old team entries), or ``None``."""
        return None

    def iter_users(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:
        """Yield every user of every page, still to be read; non-users are counted as skipped.

        Each user is an :class:`~oomnitza_connect.models.UnreadRecord`: the sync
        engine reads it inside its per-record handling, so one user the vendor
        sent malformed fails alone instead of ending the listing.
        """
        skipped: Counter[str] = Counter()
        session.skipped = skipped
        total_of = self._total_reader
        memo = session.page_memo
        # Pages recognised by their bytes, in order, whose members the memo is
        # still checking: the next page is fetched meanwhile, and one is settled
        # only when a later page has come (or the listing has ended).
        recognised: collections.deque[pagination.KnownPage] = collections.deque()

        def settled(waiting: int) -> Iterator[Any]:
            """The users of the recognised pages but the last *waiting*, in order."""
            while len(recognised) > waiting:
                assert memo is not None  # only a memo recognises pages
                yield from self._settle(recognised.popleft(), memo, skipped)

        for page in self.user_pages(session):
            if total_of is not None and session.expected_total is None:
                total = total_of(page)
                if isinstance(total, int) and not isinstance(total, bool):
                    session.expected_total = total  # for the progress display
            if memo is not None and type(page) is pagination.KnownPage:
                recognised.append(page)
                yield from settled(1)
                continue
            yield from settled(0)
            yield from self._page_users(page, memo, skipped)
        yield from settled(0)
        for reason, count in skipped.items():
            log.info("%s: %d entries skipped: %s", self.name, count, reason)

    def _settle(
        self, known: pagination.KnownPage, memo: PageMemo, skipped: Counter[str]
    ) -> Iterator[Any]:
        recalled = memo.settle(known.recalled)
        if recalled is not None:
            yield recalled  # what the memo knows stands for the page's users
            return
        # One of its members changed since: the page is read as any other.
        yield from self._page_users(
            decoding.loads(known.recalled.content), memo, skipped, pending=known.recalled
        )

    def _page_users(
        self, page: Any, memo: PageMemo | None, skipped: Counter[str], pending: Any = None
    ) -> Iterator[Any]:
        read = functools.partial(self.to_record, fetched_at=datetime.now(UTC))
        not_users = 0
        for item in self.items_of(page):
            reason = self.skip_reason(item)
            if reason is not None:
                skipped[reason] += 1
                not_users += 1
                continue
            yield UnreadRecord(self.name, item, read)
        if memo is not None and not not_users and self._skeleton_path is not None:
            skeleton = _without_items(page, self._skeleton_path)
            read_whole = None if skeleton is None else memo.page_read(skeleton, pending)
            if read_whole is not None:
                yield read_whole

    def to_record(self, item: Any, *, fetched_at: datetime | None = None) -> VendorRecord:
        """Read one vendor object into a record through the declared field paths.

        :raises MappingError: the object has no id, or a field has the wrong type.
        """
        if type(item) is not dict and not isinstance(item, Mapping):  # (the ABC check is dear)
            raise MappingError(
                f"{self.display_name} returned a user that is not an object (so no id): "
                f"{item!r:.80}"
            )
        user_id = self._id_reader(item)
        if user_id is None or user_id == "":
            raise MappingError(
                f"{self.display_name} returned a user object without an id ('{self.id_path}').",
                field=self.id_path,
            )
        values: dict[str, Any]
        key = ""
        raw: Any = None
        try:
            if type(item) is dict:
                values = self._dict_reader(item)
            else:
                values = {}
                for key, read, coerce, default in self._field_readers:
                    raw = read(item)
                    value = coerce(raw)
                    values[key] = default if value is None else value
        except _FieldFailure as failure:
            key, raw, exc = failure.key, failure.raw, failure.error
            raise MappingError(
                f"{self.display_name} user {user_id!r}: field '{key}': {exc}",
                field=key,
                value=raw,
            ) from None
        except MappingError as exc:
            raise MappingError(
                f"{self.display_name} user {user_id!r}: field '{key}': {exc}",
                field=key,
                value=raw,
            ) from None
        if self.sync_time_field:
            values[self.sync_time_field] = fetched_at or datetime.now(UTC)
        active = True
        active_field, inactive_field = self.active_field, self.inactive_field
        if active_field is not None and values.get(active_field) is False:
            active = False
        if inactive_field is not None and values.get(inactive_field) is True:
            active = False
        return VendorRecord(
            vendor=self.name, id=str(user_id), fields=values, raw=item, active=active
        )

    # Compiled once per vendor object, not per record.
    @cached_property
    def _field_readers(
        self,
    ) -> tuple[tuple[str, Callable[[Any], Any], Callable[[Any], Any], Any], ...]:
        return tuple(
            (spec.key, _reader(spec.path or spec.key), _COERCERS[spec.type], spec.default)
            for spec in self.fields
            if spec.key != self.sync_time_field
        )

    @cached_property
    def _dict_reader(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        paths = {spec.key: spec.path or spec.key for spec in self.fields}
        return _compile_dict_reader(
            [(key, paths[key], coerce, default) for key, _, coerce, default in self._field_readers]
        )

    @cached_property
    def _id_reader(self) -> Callable[[Any], Any]:
        return _reader(self.id_path)

    @cached_property
    def _total_reader(self) -> Callable[[Any], Any] | None:
        return _reader(self.users.total_path) if self.users.total_path else None

    @cached_property
    def _items_reader(self) -> Callable[[Any], Any]:
        return _reader(self.users.items) if self.users.items else (lambda page: page)

    @cached_property
    def _skeleton_path(self) -> tuple[str, ...] | None:
        """The keys to a page's users when a page without them can be made, else ``None``."""
        steps = tuple(self.users.items.split("."))
        if not self.users.items or not all(_PLAIN_KEY.fullmatch(step) for step in steps):
            return None
        return steps


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALAR = re.compile(rb'\s*(?:-?[0-9][0-9.eE+-]*|"[^"\\]*"|true|false|null)')


class _WithoutVolatileKeys:
    """A page memo shown each page without its volatile keys (:attr:`UsersEndpoint.volatile_keys`).

    Each key's last occurrence is cut out with its scalar value: the vendor
    sends it after the users, so no user's own key of that name is cut.
    """

    def __init__(self, memo: PageMemo, keys: tuple[str, ...]) -> None:
        self.memo = memo
        self.markers = tuple(f'"{key}":'.encode() for key in keys)

    def recall(self, content: bytes) -> Any | None:
        known = self.memo.recall(self._without_volatile_keys(content))
        if known is not None and hasattr(known.recalled, "content"):
            known.recalled.content = content  # read as sent, if read after all
        return known

    def _without_volatile_keys(self, content: bytes) -> bytes:
        cuts: list[tuple[int, int]] = []
        for marker in self.markers:
            at = content.rfind(marker)
            found = _SCALAR.match(content, at + len(marker)) if at >= 0 else None
            if found is not None:
                cuts.append((at, found.end()))
        if cuts:
            view = memoryview(content)
            kept: list[memoryview] = []
            start = 0
            for begin, end in sorted(cuts):
                if begin >= start:
                    kept.append(view[start:begin])
                    start = end
            kept.append(view[start:])
            content = b"".join(kept)
        return content

    def settle(self, pending: Any) -> Any | None:
        return self.memo.settle(pending)

    def page_read(self, skeleton: dict[str, Any], pending: Any | None = None) -> Any | None:
        return self.memo.page_read(skeleton, pending)


def _without_items(page: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    """*page* with its list of users (at *path*) emptied, or ``None`` when it has none there."""
    if type(page) is not dict:
        return None
    top: dict[str, Any] = dict(page)
    here = top
    for step in path[:-1]:
        inner = here.get(step)
        if type(inner) is not dict:
            return None
        copied = dict(inner)
        here[step] = copied
        here = copied
    if type(here.get(path[-1])) is not list:
        return None
    here[path[-1]] = []
    return top


class _FieldFailure(Exception):
    """A declared field that could not be read: which one, from what."""

    def __init__(self, key: str, raw: Any, error: MappingError) -> None:
        super().__init__(key)
        self.key, self.raw, self.error = key, raw, error


def _compile_dict_reader(
    fields: Sequence[tuple[str, str, Callable[[Any], Any], Any]],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """One function reading every declared field of a user object that is a dict.

    What :meth:`RestVendor.to_record`'s loop does for each field (read the
    path, coerce, default), written out once per vendor as straight-line
    Python, the way attrs writes ``__init__``: a key read is ``item.get(key)``,
    a two-step path reads its parent once for every field under it, and the
    common coercions (non-blank text, true/false) are tested inline before the
    coercer is called. Any other shape of value goes through the same path
    readers and coercers as the loop, so the results and errors are the same.

    :param fields: ``(key, path, coercer, default)`` for each field, in order.
    """
    namespace: dict[str, Any] = {"_FieldFailure": _FieldFailure, "MappingError": MappingError}
    body: list[str] = []
    parents: dict[str, str] = {}
    for index, (key, path, coerce, default) in enumerate(fields):
        namespace[f"read_{index}"] = _reader(path)
        namespace[f"coerce_{index}"] = coerce
        namespace[f"default_{index}"] = default
        steps = path.split(".")
        body.append(f"        key = {key!r}")
        if "|" in path or not all(steps) or any(step.isdigit() for step in steps):
            body.append(f"        raw = read_{index}(item)")
        elif len(steps) == 1:
            body.append(f"        raw = item.get({steps[0]!r})")
        elif len(steps) == 2:
            parent = parents.get(steps[0])
            if parent is None:
                parent = parents[steps[0]] = f"parent_{len(parents)}"
                body.insert(0, f"    {parent} = item.get({steps[0]!r})")
            body.append(
                f"        raw = {parent}.get({steps[1]!r}) if type({parent}) is dict "
                f"else (None if {parent} is None else read_{index}(item))"
            )
        else:
            body.append(f"        raw = read_{index}(item)")
        if coerce is _as_text or coerce is _as_string:
            body.append(
                f"        value = raw if type(raw) is str and raw.strip() else coerce_{index}(raw)"
            )
        elif coerce is _as_bool:
            body.append(
                f"        value = raw if raw is True or raw is False else coerce_{index}(raw)"
            )
        else:
            body.append(f"        value = coerce_{index}(raw)")
        if default is None:
            body.append(f"        values[{key!r}] = value")
        else:
            body.append(f"        values[{key!r}] = default_{index} if value is None else value")
    lines = [line for line in body if line.startswith("    parent_")]
    lines = [
        "def read_fields(item):",
        *lines,
        "    values = {}",
        "    key = raw = None",
        "    try:",
        *(line for line in body if not line.startswith("    parent_")),
        "        pass",
        "    except MappingError as exc:",
        "        raise _FieldFailure(key, raw, exc) from None",
        "    return values",
    ]
    exec(compile("\n".join(lines), "<oomnitza_connect field reader>", "exec"), namespace)  # noqa: S102 - our own text
    reader: Callable[[dict[str, Any]], dict[str, Any]] = namespace["read_fields"]
    return reader


def _steps(path: str | None) -> tuple[str, ...] | None:
    return tuple(path.split(".")) if path else None


def _first_text(body: Any, paths: Sequence[str]) -> str | None:
    for path in paths:
        value = _reader(path)(body)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None
