"""Workflow presets: named vendor API calls run against one person or many.

A vendor plugin ships :class:`~oomnitza_connect.models.Preset` objects through
the ``workflow_presets`` hook. This module renders them with the sandboxed
template engine, checks that the rendered URL stays on the credential's host,
sends them, maps the response onto the person and records every call as a
:class:`~oomnitza_connect.models.WorkflowRun`.

>>> preset = get_preset("webex", "Get User Details")
>>> result = run_preset(session, preset, person=person, store=store)
>>> result.ok, result.mapped
(True, {'Webex Title': 'GM'})

People come from, and mapped values go back to, any
:class:`~oomnitza_connect.presets.people.PeopleDirectory`: the SQLite store,
or Oomnitza (``store=OomnitzaDestination(...)``, with ``ledger=`` the local
SQLite file that records each call).

Variables, weakest first: the vendor's global settings, the person's fields,
the person's SaaS-user record for the vendor, then the caller's variables.
``docs/presets.md`` describes every name a template can use.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import attrs
import requests

from ..errors import (
    MissingVariableError,
    OomnitzaConnectError,
    PresetError,
    TransportError,
    UnsafeURLError,
    VendorAPIError,
)
from ..models import (
    STANDARD_PERSON_FIELDS,
    FieldType,
    Person,
    PersonId,
    Preset,
    SaasUser,
    WorkflowRun,
)
from ..redaction import MASK, redact
from ..store.base import CustomField
from ..sync.mapping import normalize_target
from ..templating import (
    TemplateError,
    UndefinedVariableError,
    evaluate,
    render,
    render_value,
    variables_of,
)
from ..vendors.session import VendorSession
from .people import PeopleDirectory, WorkflowLog

__all__ = [
    "UNSET",
    "MissingVariableError",
    "PresetOverrides",
    "PresetResult",
    "RenderedRequest",
    "UnsafeURLError",
    "check_preset",
    "check_storable",
    "check_url_on_base",
    "field_variables",
    "get_preset",
    "list_presets",
    "merge_record",
    "person_variables",
    "preset_targets",
    "preset_variables",
    "render_preset",
    "run_preset",
    "run_preset_bulk",
    "scrub_secrets",
    "settings_variables",
    "vendor_user_id_variable",
]

SAAS_USER_TARGET_PREFIX = "saas_user."
"""Response-mapping targets starting with this go to the SaaS user, not the person."""

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NOT_IDENTIFIER = re.compile(r"\W+")
# Names of keys and headers whose values are masked whatever they hold.
_SENSITIVE_NAME = re.compile(
    r"authorization|token|secret|passw|private[_-]?key|api[_-]?key|apikey|cookie|signature"
    r"|assertion|credential",
    re.IGNORECASE,
)
_SENSITIVE_HEADER = re.compile(_SENSITIVE_NAME.pattern + r"|auth|session", re.IGNORECASE)
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
_MAX_UNQUOTE_ROUNDS = 8
_UNSAFE_TO_REPEAT = frozenset({"POST", "PATCH"})


class _Unset:
    """The type of :data:`UNSET`."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""Marks an override that was not given (``None`` is a valid body: "send none")."""


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Finding presets
# ---------------------------------------------------------------------------


def list_presets(vendor: str | None = None) -> list[Preset]:
    """Return the presets of *vendor*, or of every installed vendor, sorted by vendor and name."""
    from ..connectors import get_connector, list_connectors

    connectors = [get_connector(vendor)] if vendor else list_connectors()
    found = [preset for connector in connectors for preset in connector.presets()]
    return sorted(found, key=lambda p: (p.vendor, p.name.lower()))


def get_preset(vendor: str, name: str) -> Preset:
    """Return *vendor*'s preset called *name* (case-insensitive).

    :raises UnknownVendorError: no installed plugin provides *vendor*.
    :raises PresetError: the vendor has no such preset; the message lists those it has.
    """
    from ..connectors import get_connector

    return get_connector(vendor).preset(name)


def check_preset(preset: Preset) -> Preset:
    """Compile every template of *preset*, its response mappings included; return it.

    :raises PresetError: a template does not compile; the message names the
        preset, the part and points at a stray bracket.
    """
    parts: list[tuple[str, str]] = [("path", preset.path)]
    parts += [(f"query '{key}'", str(value)) for key, value in preset.query.items()]
    parts += [(f"header '{key}'", str(value)) for key, value in preset.headers.items()]
    parts += [("body", leaf) for leaf in _string_leaves(preset.body)]
    parts += [
        (f"response mapping '{target}'", str(expression))
        for target, expression in preset.response_mappings.items()
    ]
    if preset.find_existing is not None:
        parts.append(("record expression of its look-up", preset.find_existing.record))
    for where, template in parts:
        try:
            variables_of(template)
        except TemplateError as exc:
            raise PresetError(
                f"Preset '{preset.name}' of {preset.vendor} was refused: its {where} has a {exc}."
            ) from None
    return preset


def preset_variables(preset: Preset) -> list[str]:
    """Return every variable *preset*'s templates use, declared ones first."""
    found: set[str] = set()
    for template in _templates_of(preset):
        found |= variables_of(template)
    declared = list(preset.variables)
    return declared + sorted(found - set(declared))


def preset_targets(preset: Preset) -> list[str]:
    """Return the fields *preset*'s response is mapped to: templates' and its mapper's."""
    targets = list(preset.response_mappings)
    if preset.mapper is not None:
        targets += [t for t in preset.mapper_targets if t not in targets]
    return targets


def check_storable(preset: Preset, store: PeopleDirectory | None) -> None:
    """Refuse *preset* before any call when *store* cannot keep what it maps.

    :raises PresetError: the store's reason (Oomnitza keeps no SaaS-user fields).
    """
    if store is None:
        return
    reason = store.refused_targets(preset.vendor, preset_targets(preset))
    if reason is not None:
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} was not run (nothing was called): {reason}."
        )


def _templates_of(preset: Preset) -> Iterator[str]:
    yield preset.path
    yield from (str(v) for v in preset.query.values())
    yield from (str(v) for v in preset.headers.values())
    yield from _string_leaves(preset.body)


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _string_leaves(item)


# ---------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------


def flat_name(key: str) -> str:
    """Return *key* as a template identifier: ``Slack User Id`` -> ``slack_user_id``."""
    name = _NOT_IDENTIFIER.sub("_", key.strip()).strip("_")
    if name and name[0].isdigit():
        name = "_" + name
    return name


def settings_variables(settings: Mapping[str, str] | None) -> dict[str, Any]:
    """Expose vendor settings to templates.

    ``{{settings['Talkdesk.Subdomain']}}`` reads a setting by its exact key,
    ``{{settings.Talkdesk.Subdomain}}`` or ``{{Talkdesk.Subdomain}}`` by its
    dotted parts, and the flattened ``{{Talkdesk_Subdomain}}`` (every run of
    non-identifier characters becomes ``_``) as a top-level variable.
    """
    exact = dict(settings or {})
    view: dict[str, Any] = dict(exact)
    for key, value in exact.items():
        parts = key.split(".")
        if len(parts) < 2:
            continue
        node = view
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    break  # a plain setting of that name wins over the nested form
                child = node[part] = {}
            node = child
        else:
            node.setdefault(parts[-1], value)
    variables: dict[str, Any] = {"settings": view}
    for key, value in exact.items():
        name = flat_name(key)
        if name and name not in variables:
            variables[name] = value
    # The dotted form also works at the top level: {{Talkdesk.Subdomain}}.
    for key, value in view.items():
        if isinstance(value, dict) and key.isidentifier() and key not in variables:
            variables[key] = value
    return variables


def person_variables(person: Person | None, saas_user: SaasUser | None = None) -> dict[str, Any]:
    """Expose a person and their SaaS account to templates and ``--where`` filters.

    The person's fields appear under their own keys (``email``) and, for
    labels that are not identifiers, flattened (``Slack User Id`` ->
    ``slack_user_id``); ``person`` holds them all by their exact keys. The
    SaaS account adds ``vendor_user_id``, ``<vendor>_user_id``
    (``webex_user_id``), its fields and ``saas_user``.
    """
    variables: dict[str, Any] = {}
    if person is not None:
        fields = dict(person.fields)
        variables["person"] = fields
        variables["person_id"] = person.id
        variables["sync_key"] = person.sync_key
        variables["sync_value"] = person.sync_value
        for key, value in fields.items():
            variables[key] = value
            name = flat_name(key)
            variables.setdefault(name, value)
            variables.setdefault(name.lower(), value)
    if saas_user is not None:
        saas_fields = dict(saas_user.fields)
        for key, value in saas_fields.items():
            variables[flat_name(key)] = value
        variables["saas_user"] = {
            **saas_fields,
            "vendor": saas_user.vendor,
            "vendor_user_id": saas_user.vendor_user_id,
            "role": saas_user.role,
        }
        variables["vendor_user_id"] = saas_user.vendor_user_id
        variables[vendor_user_id_variable(saas_user.vendor)] = saas_user.vendor_user_id
        if saas_user.role is not None:
            variables["saas_role"] = saas_user.role
    return variables


def field_variables(preset: Preset, person: Person | None) -> dict[str, Any]:
    """Return the variables *preset* reads from *person*'s fields (``variable_fields``).

    ``{"intercom_admin_id": "Intercom ID"}`` gives ``intercom_admin_id`` the
    person's ``Intercom ID``; a field the person lacks (or holds empty) gives nothing.
    """
    if person is None or not preset.variable_fields:
        return {}
    found: dict[str, Any] = {}
    for name, field in preset.variable_fields.items():
        value = person.fields.get(field)
        if value is None:
            value = person.fields.get(normalize_target(field))
        if value not in (None, ""):
            found[name] = value
    return found


def _effective_variables(
    *,
    settings: Mapping[str, str] | None,
    person: Person | None,
    saas_user: SaasUser | None,
    caller: Mapping[str, Any] | None,
    preset: Preset | None = None,
) -> dict[str, Any]:
    variables = settings_variables(settings)
    variables.update(person_variables(person, saas_user))
    if preset is not None:
        for name, value in field_variables(preset, person).items():
            variables.setdefault(name, value)
    variables.update(caller or {})
    return variables


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


@attrs.frozen
class PresetOverrides:
    """Advanced mode: replace parts of a preset for one run.

    :param path: a path template used instead of the preset's.
    :param query: query templates merged over the preset's.
    :param headers: header templates merged over the preset's.
    :param body: a body used instead of the preset's (``None`` sends none);
        :data:`UNSET` keeps the preset's.
    :param response_mappings: mappings used instead of the preset's defaults
        (``{}`` maps nothing); ``None`` keeps the defaults.
    """

    path: str | None = None
    query: Mapping[str, Any] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: Any = UNSET
    response_mappings: Mapping[str, str] | None = None

    def apply(self, preset: Preset) -> Preset:
        """Return *preset* with these overrides in place (checked like a loaded preset)."""
        changed = attrs.evolve(
            preset,
            path=self.path if self.path is not None else preset.path,
            query={**preset.query, **self.query},
            headers={**preset.headers, **self.headers},
            body=preset.body if self.body is UNSET else self.body,
            response_mappings=(
                preset.response_mappings
                if self.response_mappings is None
                else self.response_mappings
            ),
            # The preset's Python mapper is part of its default mappings.
            mapper=preset.mapper if self.response_mappings is None else None,
        )
        # A declared variable only the replaced parts used is no longer needed
        # (a new body need not be given the old body's first_name).
        before = set().union(*(variables_of(t) for t in _templates_of(preset)))
        after = set().union(*(variables_of(t) for t in _templates_of(changed)))
        changed = attrs.evolve(
            changed,
            variables=tuple(v for v in preset.variables if v in after or v not in before),
        )
        return check_preset(changed)


@attrs.frozen
class RenderedRequest:
    """A preset call ready to send (or to show, in a dry run).

    :param url: the absolute URL when a base URL was known, otherwise the path.
    :param body: the JSON body (sent with ``json=``), ``None`` for none.
    :param read_request: for a read-merge-write preset, the read that comes first.
    :param find_request: for a preset with :attr:`~oomnitza_connect.models.Preset.find_existing`,
        the look-up made before the call (and again after a failed one).
    """

    method: str
    url: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: Any = None
    endpoint: str | None = None
    idempotent: bool | None = None
    read_request: RenderedRequest | None = None
    find_request: RenderedRequest | None = None

    def describe(self, secrets: Iterable[str] = ()) -> dict[str, Any]:
        """Return the request as plain data safe to show or store.

        Headers whose names suggest credentials are masked, and every known
        secret (plus *secrets*) is scrubbed from the URL, query and body.
        """
        secrets = tuple(secrets)
        described: dict[str, Any] = {
            "method": self.method,
            "url": scrub_secrets(self.full_url(), secrets),
            "headers": {
                name: MASK if _SENSITIVE_HEADER.search(name) else scrub_secrets(value, secrets)
                for name, value in self.headers.items()
            },
            "body": scrub_secrets(self.body, secrets),
        }
        if self.read_request is not None:
            described["read_request"] = self.read_request.describe(secrets)
        if self.find_request is not None:
            described["find_request"] = self.find_request.describe(secrets)
        return described

    def full_url(self) -> str:
        """Return the URL with the query string, as it goes on the wire."""
        if not self.params:
            return self.url
        pairs = [
            (key, _query_text(item))
            for key, value in self.params.items()
            if value is not None
            for item in (value if isinstance(value, list | tuple) else [value])
        ]
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}{urlencode(pairs)}" if pairs else self.url


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_preset(
    preset: Preset,
    variables: Mapping[str, Any],
    *,
    overrides: PresetOverrides | None = None,
    session: VendorSession | None = None,
    base_url: str | None = None,
) -> RenderedRequest:
    """Render *preset* with *variables* into a request.

    Path expressions are percent-encoded as single segments; query and header
    values are rendered as text (a single ``{{expression}}`` keeps its type);
    the body's string leaves are rendered and the body is later sent as JSON.
    With a *session* (or *base_url*) the URL is made absolute and checked to
    stay under the base URL.

    :raises MissingVariableError: a template uses a variable nobody supplied.
    :raises UnsafeURLError: the URL would leave the base URL.
    :raises PresetError: a template is malformed or renders something unusable.
    """
    if overrides is not None:
        preset = overrides.apply(preset)
    path = _render_part(preset, "path", lambda: _render_path(preset.path, variables))
    params = {
        key: _render_part(preset, f"query '{key}'", partial(_render_leaf, value, variables))
        for key, value in preset.query.items()
    }
    headers: dict[str, str] = {}
    for name, template in preset.headers.items():
        value = _render_part(preset, f"header '{name}'", partial(render, str(template), variables))
        headers[name] = _checked_header(preset, name, value)
    body = _render_part(preset, "body", lambda: _render_body(preset.body, variables))
    root = session.http.base_url if session is not None else base_url
    url = _absolute_url(path, root) if root else path
    return RenderedRequest(
        method=preset.method.upper(),
        url=url,
        params=params,
        headers=headers,
        body=body,
        endpoint=preset.endpoint,
        idempotent=_retry_safe(preset),
    )


def _retry_safe(preset: Preset) -> bool:
    # Preset.idempotent defaults to True, so a create preset that forgot to
    # say otherwise would be retried after a 5xx and create twice: POST and
    # PATCH are never treated as safe to repeat.
    return preset.idempotent and preset.method.upper() not in _UNSAFE_TO_REPEAT


def _render_part(preset: Preset, where: str, produce: Callable[[], Any]) -> Any:
    try:
        return produce()
    except UndefinedVariableError as exc:
        raise MissingVariableError(preset, exc.name, where=where) from None
    except PresetError:
        raise
    except TemplateError as exc:
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} could not render its {where}: {exc}."
        ) from None


def _render_path(template: str, variables: Mapping[str, Any]) -> str:
    if "{%" in template or "{#" in template:
        raise PresetError(
            f"A preset path may hold only {{{{expressions}}}}, not statements: {template!r}."
        )
    pieces: list[str] = []
    position = 0
    for match in _EXPRESSION.finditer(template):
        pieces.append(template[position : match.start()])
        expression = match.group(1).strip()
        value = evaluate(expression, variables)
        if value is None or value == "":
            raise PresetError(
                f"The path expression '{{{{{expression}}}}}' is empty; an empty path "
                "segment would address a different resource."
            )
        # Every expression is one path segment: '/', '?', '#', '@' and '%' in a
        # value are encoded, so a variable cannot steer the request elsewhere.
        pieces.append(quote(_query_text(value), safe=""))
        position = match.end()
    pieces.append(template[position:])
    return "".join(pieces)


def _render_leaf(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render_value(value, variables) if "{" in value else value
    return value


def _render_body(body: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(body, str):
        return _render_leaf(body, variables)
    if isinstance(body, Mapping):
        return {key: _render_body(value, variables) for key, value in body.items()}
    if isinstance(body, list | tuple):
        return [_render_body(item, variables) for item in body]
    return body


def _checked_header(preset: Preset, name: str, value: str) -> str:
    if name.lower() in _FORBIDDEN_HEADERS:
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} may not set the '{name}' header."
        )
    if any(ch in value for ch in "\r\n\0") or any(ch in name for ch in "\r\n\0: "):
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} rendered the header '{name}' with a "
            "line break or other control character, which would split the request."
        )
    return value


def _absolute_url(path: str, base_url: str) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    if path.startswith(("//", "\\\\", "/\\", "\\/")):
        raise UnsafeURLError(path, base, "it is a scheme-relative URL that names another host")
    is_absolute = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", path) is not None
    url = path if is_absolute else base + path.lstrip("/")
    return check_url_on_base(url, base)


def check_url_on_base(url: str, base_url: str) -> str:
    """Return *url* if it stays under *base_url*, otherwise raise :class:`UnsafeURLError`.

    Refused: another scheme, host or port; user info (``user@host``); a path
    outside the base path; ``.``/``..`` segments, also percent-encoded (once
    or many times) or written with backslashes; control characters and
    whitespace; fragments.
    """
    base = urlsplit(base_url if base_url.endswith("/") else base_url + "/")

    def refuse(reason: str) -> UnsafeURLError:
        return UnsafeURLError(url, base_url, reason)

    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise refuse("it holds whitespace, a control character or a backslash")
    parts = urlsplit(url)
    if parts.scheme.lower() != base.scheme.lower():
        raise refuse(f"its scheme '{parts.scheme}' differs from '{base.scheme}'")
    if "@" in parts.netloc:
        raise refuse("it carries user info ('@') in its host")
    if _host_and_port(parts.scheme, parts.netloc) != _host_and_port(base.scheme, base.netloc):
        raise refuse(f"its host '{parts.netloc}' is not the credential's host '{base.netloc}'")
    if parts.fragment or url.endswith("#"):
        raise refuse("it has a fragment ('#')")
    decoded = parts.path
    for _ in range(_MAX_UNQUOTE_ROUNDS):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    else:
        raise refuse("it is percent-encoded too many times over")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise refuse("it holds an encoded control character")
    if any(segment in (".", "..") for segment in re.split(r"[/\\]", decoded)):
        raise refuse("its path has '.' or '..' segments")
    if not parts.path.startswith(base.path):
        raise refuse(f"its path is outside the base path '{base.path}'")
    return url


def _host_and_port(scheme: str, netloc: str) -> tuple[str, int | None]:
    host, _, port = netloc.lower().rpartition(":")
    if not host or "]" in port:  # no port, or an IPv6 literal without one
        host, port = netloc.lower(), ""
    default = {"http": 80, "https": 443}.get(scheme.lower())
    try:
        number = int(port) if port else default
    except ValueError:
        number = -1
    return host, number


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------


def scrub_secrets(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Return *value* with every known secret replaced by the mask.

    Strings are scrubbed with :func:`~oomnitza_connect.redaction.redact`;
    mappings and lists are walked; values under keys that name credentials
    (``client_secret``, ``access_token``, ``password`` …) are masked whatever
    they hold, because a vendor may return secrets the SDK never saw.
    """
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if isinstance(key, str) and _SENSITIVE_NAME.search(key) and _is_secret_like(item)
                else scrub_secrets(item, secrets)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_secrets(item, secrets) for item in value]
    return value


def _is_secret_like(value: Any) -> bool:
    # token_type: "Bearer" and expires_in: 3600 are not secrets; short values
    # and numbers are kept so that responses stay useful.
    return isinstance(value, str) and len(value) >= 8 and value.lower() != "bearer"


# ---------------------------------------------------------------------------
# Read-merge-write
# ---------------------------------------------------------------------------


def merge_record(record: Any, changes: Any) -> Any:
    """Return *record* with *changes* applied: mappings merge key by key, other values replace.

    Used for vendors whose update replaces the whole record (Webex's PUT
    ``/people/{id}``): every field the changes do not mention keeps its value.
    """
    if isinstance(record, Mapping) and isinstance(changes, Mapping):
        merged = dict(record)
        for key, value in changes.items():
            merged[key] = merge_record(record.get(key), value) if key in record else value
        return merged
    return changes


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


@attrs.frozen
class PresetResult:
    """What one preset call did.

    :param ok: the call succeeded (always true for a dry run that rendered).
    :param request: the request as sent (or as it would be sent), safe to show.
    :param response: the vendor's response body, scrubbed of secrets.
    :param mapped: response-mapping target -> value written to the store.
    :param error: why the call failed, as a sentence.
    :param existing: the preset's look-up found the record before the call, so
        nothing was sent (:attr:`~oomnitza_connect.models.Preset.find_existing`).
    :param despite_error: the call failed with this error, but the look-up
        after it found the record, so the call counts as done.
    :param failure: the exception the call failed with, for Python callers that
        re-raise it (never stored or shown).
    """

    vendor: str
    preset: str
    ok: bool
    person_id: PersonId | None = None
    person: str | None = None
    """The person's email (or sync value), for reports."""
    status: int | None = None
    request: Mapping[str, Any] | None = None
    response: Any = None
    mapped: Mapping[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    dry_run: bool = False
    run_id: str | None = None
    existing: bool = False
    despite_error: str | None = None
    failure: Exception | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "vendor": self.vendor,
            "preset": self.preset,
            "ok": self.ok,
            "person_id": self.person_id,
            "person": self.person,
            "status": self.status,
            "request": dict(self.request) if self.request is not None else None,
            "response": self.response,
            "mapped": dict(self.mapped),
            "error": self.error,
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "existing": self.existing,
            "despite_error": self.despite_error,
        }


@attrs.frozen
class _Job:
    """One prepared call: everything a worker thread needs, nothing of the store."""

    preset: Preset
    variables: Mapping[str, Any]
    person: Person | None
    saas_user: SaasUser | None
    rendered: RenderedRequest | None
    render_error: str | None = None


@attrs.frozen
class _Outcome:
    job: _Job
    result: PresetResult
    person_fields: Mapping[str, Any] = attrs.field(factory=dict)
    saas_fields: Mapping[str, Any] = attrs.field(factory=dict)
    request_record: Mapping[str, Any] = attrs.field(factory=dict)
    started_at: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    text_fields: frozenset[str] = frozenset()
    """Person fields that hold a whole JSON object (long text)."""


def run_preset(
    session: VendorSession,
    preset: Preset,
    *,
    variables: Mapping[str, Any] | None = None,
    person: Person | None = None,
    saas_user: SaasUser | None = None,
    store: PeopleDirectory | None = None,
    ledger: WorkflowLog | None = None,
    overrides: PresetOverrides | None = None,
    dry_run: bool = False,
    settings: Mapping[str, str] | None = None,
) -> PresetResult:
    """Run *preset* once, optionally for *person*, and return what happened.

    Variables come from *settings* (the session's settings by default), the
    person, their SaaS account for the preset's vendor (looked up in *store*
    unless *saas_user* is given) and *variables*, which win. A vendor error is
    returned as a failed result (and recorded); a rendering problem raises.
    With a *store*, mapped values are written to the person (or SaaS user)
    and the call is recorded as a :class:`WorkflowRun` in *ledger*.

    :param store: where the person lives and mapped values go: the SQLite
        store or an Oomnitza destination (anything that is a
        :class:`~oomnitza_connect.presets.people.PeopleDirectory`).
    :param ledger: where the call is recorded; default *store*, when it is
        also a ledger (the SQLite store is both).
    :raises MissingVariableError: a template uses a variable nobody supplied.
    :raises UnsafeURLError: the rendered URL would leave the credential's host.
    :raises PresetError: *store* cannot keep what the preset maps (nothing is called).
    """
    check_storable(overrides.apply(preset) if overrides else preset, store)
    if person is None and saas_user is None and store is not None:
        person, saas_user = _account_named_by(store, preset, variables or {})
    if person is not None and saas_user is None and store is not None:
        saas_user = _saas_user_of(store, preset.vendor, person.id)
    job = _prepare(
        session,
        preset,
        read_preset=_read_preset_of(preset),
        find_preset=_find_preset_of(preset),
        person=person,
        saas_user=saas_user,
        caller=variables,
        settings=settings,
        overrides=overrides,
        raise_errors=True,
    )
    outcome = _execute(session, job, dry_run=dry_run)
    return _persist(store, _ledger_of(store, ledger), session, outcome)


def run_preset_bulk(
    session: VendorSession,
    preset: Preset,
    store: PeopleDirectory,
    *,
    ledger: WorkflowLog | None = None,
    where: str | None = None,
    variables: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    dry_run: bool = False,
    overrides: PresetOverrides | None = None,
    settings: Mapping[str, str] | None = None,
    linked_only: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[PresetResult], None] | None = None,
) -> list[PresetResult]:
    """Run *preset* for every person in *store* that matches *where*.

    *where* is an expression evaluated against each person's variables (see
    :func:`person_variables`), such as ``department == 'Sales'``; a person
    without a field it names does not match. Up to *concurrency* calls are in
    flight at once; one failure (including a variable missing for that
    person) is reported in its result and does not stop the others. Store
    reads and writes happen on the calling thread.

    :param store: the people: the SQLite store or an Oomnitza destination
        (read page by page through ``GET /api/v3/users``).
    :param ledger: where each call is recorded; default *store*, when it is
        also a ledger.
    :param linked_only: only people with an account at the preset's vendor.
    :param on_start: called once with the number of people selected.
    :param on_result: called on the calling thread after each person's call.
    :returns: one result per selected person, in the store's order.
    :raises PresetError: *where* is malformed, or names a variable no person has, or
        *store* cannot keep what the preset maps (nothing is called).
    """
    if concurrency < 1:
        raise PresetError(f"Concurrency must be at least 1, not {concurrency}.")
    check_storable(overrides.apply(preset) if overrides else preset, store)
    saas_by_person = {
        account.person_id: account
        for account in store.iter_saas_users(vendor=preset.vendor)
        if account.person_id is not None
    }
    read_preset = _read_preset_of(preset)
    find_preset = _find_preset_of(preset)
    people = _select_people(store, preset, where, saas_by_person, linked_only=linked_only)
    if on_start is not None:
        on_start(len(people))
    # Rendered lazily, as room opens in the window below, so that memory
    # holds a few rendered bodies rather than one per person.
    jobs = (
        _prepare(
            session,
            preset,
            read_preset=read_preset,
            find_preset=find_preset,
            person=person,
            saas_user=saas_by_person.get(person.id),
            caller=variables,
            settings=settings,
            overrides=overrides,
            raise_errors=False,
        )
        for person in people
    )
    results: list[PresetResult | None] = [None] * len(people)
    log = _ledger_of(store, ledger)

    def finish(index: int, outcome: _Outcome) -> None:
        result = _persist(store, log, session, outcome)
        results[index] = result
        if on_result is not None:
            on_result(result)

    pending: dict[Future[_Outcome], int] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="preset") as pool:
        for index, job in enumerate(jobs):
            # Keep a bounded window in flight so that memory does not grow
            # with the number of people and results are stored as they come.
            while len(pending) >= concurrency * 2:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    finish(pending.pop(future), future.result())
            pending[pool.submit(_execute_guarded, session, job, dry_run=dry_run)] = index
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finish(pending.pop(future), future.result())
    return [result for result in results if result is not None]


def _execute_guarded(session: VendorSession, job: _Job, *, dry_run: bool) -> _Outcome:
    try:
        return _execute(session, job, dry_run=dry_run)
    except Exception as exc:  # one person's surprise must not stop the others
        reason = f"The call failed unexpectedly: {exc.__class__.__name__}: {exc}"
        return _Outcome(
            job,
            PresetResult(
                vendor=job.preset.vendor,
                preset=job.preset.name,
                ok=False,
                person_id=job.person.id if job.person else None,
                person=_person_label(job.person),
                error=redact(reason, session.credential.secret_values()),
                dry_run=dry_run,
            ),
        )


def _select_people(
    store: PeopleDirectory,
    preset: Preset,
    where: str | None,
    saas_by_person: Mapping[PersonId, SaasUser],
    *,
    linked_only: bool,
) -> list[Person]:
    if where is not None and not where.strip():
        where = None
    if where is not None:
        try:  # fail on bad syntax before anything runs
            variables_of("{{ " + where + " }}")
        except TemplateError as exc:
            raise PresetError(f"The filter '{where}' is not a valid expression: {exc}.") from None
    selected: list[Person] = []
    undefined: set[str] = set()
    seen = 0
    # The destination may narrow the read (Oomnitza's filter); *where* decides below.
    people = store.iter_people() if where is None else store.iter_candidates(where)
    for person in people:
        saas_user = saas_by_person.get(person.id)
        if linked_only and saas_user is None:
            continue
        seen += 1
        if where is None:
            selected.append(person)
            continue
        variables = _effective_variables(
            settings=None, person=person, saas_user=saas_user, caller=None
        )
        try:
            matched = evaluate(where, variables)
        except UndefinedVariableError as exc:
            undefined.add(exc.name)
            continue
        except TemplateError as exc:
            raise PresetError(f"The filter '{where}' could not be evaluated: {exc}.") from None
        if matched:
            selected.append(person)
    if not selected and undefined and seen:
        names = ", ".join(f"'{name}'" for name in sorted(undefined))
        raise PresetError(
            f"The filter '{where}' uses {names}, which no selected person has; check the "
            "field names (person fields, flattened like 'slack_user_id')."
        )
    return selected


def vendor_user_id_variable(vendor: str) -> str:
    """The variable that names a person's account at *vendor*: ``webex_user_id``."""
    return f"{flat_name(vendor).lower()}_user_id"


def _account_named_by(
    store: PeopleDirectory, preset: Preset, variables: Mapping[str, Any]
) -> tuple[Person | None, SaasUser | None]:
    """The account (and its person) a one-person run names by variable, not by person.

    ``webex_user_id`` (or ``vendor_user_id``) names the account itself; ``email``
    names a person, used when the preset needs the vendor user id and the caller
    did not give it. So ``--var webex_user_id=…`` stores what ``--person`` would.
    """
    id_variable = vendor_user_id_variable(preset.vendor)
    account_id = variables.get(id_variable) or variables.get("vendor_user_id")
    if account_id not in (None, ""):
        account = next(
            (
                found
                for found in store.iter_saas_users(vendor=preset.vendor)
                if found.vendor_user_id == str(account_id)
            ),
            None,
        )
        if account is None or account.person_id is None:
            return None, account
        owner = next(
            (p for p in store.iter_people(vendor=preset.vendor) if p.id == account.person_id),
            None,
        )
        return owner, account
    email = variables.get("email")
    if email and id_variable in preset_variables(preset):
        return store.find_person("email", email), None
    return None, None


def _saas_user_of(store: PeopleDirectory, vendor: str, person_id: PersonId) -> SaasUser | None:
    for account in store.iter_saas_users(vendor=vendor):
        if account.person_id == person_id:
            return account
    return None


def _read_preset_of(preset: Preset) -> Preset | None:
    if not preset.read_merge_write:
        return None
    try:
        return get_preset(preset.vendor, preset.read_merge_write)
    except PresetError:
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} reads the record with "
            f"'{preset.read_merge_write}', which {preset.vendor} does not offer."
        ) from None


def _find_preset_of(preset: Preset) -> Preset | None:
    if preset.find_existing is None:
        return None
    try:
        return get_preset(preset.vendor, preset.find_existing.preset)
    except PresetError:
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} looks the record up with "
            f"'{preset.find_existing.preset}', which {preset.vendor} does not offer."
        ) from None


def _prepare(
    session: VendorSession,
    preset: Preset,
    *,
    read_preset: Preset | None,
    find_preset: Preset | None = None,
    person: Person | None,
    saas_user: SaasUser | None,
    caller: Mapping[str, Any] | None,
    settings: Mapping[str, str] | None,
    overrides: PresetOverrides | None,
    raise_errors: bool,
) -> _Job:
    variables = _effective_variables(
        settings=session.settings if settings is None else settings,
        person=person,
        saas_user=saas_user,
        caller=caller,
        preset=preset,
    )
    if overrides is not None:
        preset = overrides.apply(preset)
    try:
        for name in preset.variables:
            if name not in variables:
                raise MissingVariableError(preset, name)
        rendered = render_preset(preset, variables, session=session)
        if read_preset is not None:
            read = render_preset(read_preset, variables, session=session)
            rendered = attrs.evolve(rendered, read_request=read)
        if find_preset is not None:
            find = render_preset(find_preset, variables, session=session)
            rendered = attrs.evolve(rendered, find_request=find)
    except OomnitzaConnectError as exc:
        if raise_errors:
            raise
        return _Job(preset, variables, person, saas_user, None, render_error=str(exc))
    return _Job(preset, variables, person, saas_user, rendered)


def _execute(session: VendorSession, job: _Job, *, dry_run: bool) -> _Outcome:
    """Send one prepared call (thread-safe: touches only the HTTP client)."""
    started_at = datetime.now(UTC)
    secrets = session.credential.secret_values()
    preset = job.preset
    who = _person_label(job.person)

    def failed(
        reason: str,
        status: int | None = None,
        request: Any = None,
        failure: Exception | None = None,
    ) -> _Outcome:
        result = PresetResult(
            vendor=preset.vendor,
            preset=preset.name,
            ok=False,
            person_id=job.person.id if job.person else None,
            person=who,
            status=status,
            request=request,
            error=redact(reason, secrets),
            dry_run=dry_run,
            failure=failure,
        )
        return _Outcome(job, result, request_record=request or {}, started_at=started_at)

    if job.rendered is None:
        return failed(job.render_error or "The preset could not be rendered.")
    rendered = job.rendered
    described = rendered.describe(secrets)
    if dry_run:
        result = PresetResult(
            vendor=preset.vendor,
            preset=preset.name,
            ok=True,
            person_id=job.person.id if job.person else None,
            person=who,
            request=described,
            dry_run=True,
        )
        return _Outcome(job, result, request_record=described, started_at=started_at)
    try:
        if rendered.find_request is not None:
            found = _find_existing(session, preset, job, rendered.find_request)
            if found is not None:
                # Made before (perhaps by a create answered with an error): do not repeat it.
                return _succeeded(
                    session, job, found[1], found[0], described, started_at, existing=True
                )
        if rendered.read_request is not None:
            current = _send(session, rendered.read_request).json()
            if not isinstance(current, Mapping):
                return failed(
                    f"The read before the update returned {type(current).__name__}, not a "
                    "record, so the update was not sent.",
                    request=described,
                )
            merge = preset.merge or merge_record
            rendered = attrs.evolve(rendered, body=merge(current, rendered.body or {}))
            described = rendered.describe(secrets)
        response = _send(session, rendered)
    except (VendorAPIError, TransportError) as exc:
        status = getattr(exc, "status", None)
        if rendered.find_request is not None:
            try:
                found = _find_existing(session, preset, job, rendered.find_request)
            except (OomnitzaConnectError, ValueError):
                found = None  # the look-up failing too says nothing: report the call's error
            if found is not None:
                return _succeeded(
                    session,
                    job,
                    found[1],
                    status,
                    described,
                    started_at,
                    despite_error=redact(str(exc), secrets),
                )
        return failed(str(exc), status=status, request=described, failure=exc)
    except OomnitzaConnectError as exc:
        return failed(str(exc), request=described, failure=exc)
    except ValueError as exc:  # a read that was not JSON
        return failed(f"The vendor's answer was not JSON: {exc}.", request=described, failure=exc)
    return _succeeded(
        session, job, _response_body(response), response.status_code, described, started_at
    )


def _find_existing(
    session: VendorSession, preset: Preset, job: _Job, request: RenderedRequest
) -> tuple[int, Any] | None:
    """The look-up's status and the record it found, or ``None`` when there is none.

    :raises VendorAPIError, TransportError: the look-up failed.
    :raises PresetError: the record expression could not be evaluated.
    """
    assert preset.find_existing is not None
    response = _send(session, request)
    body = _response_body(response)
    expression = preset.find_existing.record
    try:
        record = render_value(expression, {**job.variables, "response": body})
    except TemplateError as exc:
        raise PresetError(
            f"Preset '{preset.name}' of {preset.vendor} could not read the record its "
            f"look-up found ({expression}): {exc}."
        ) from None
    return (response.status_code, record) if record else None


def _succeeded(
    session: VendorSession,
    job: _Job,
    response_body: Any,
    status: int | None,
    described: Mapping[str, Any],
    started_at: datetime,
    *,
    existing: bool = False,
    despite_error: str | None = None,
) -> _Outcome:
    """Map a successful answer (or the record a look-up found) and build the outcome."""
    secrets = session.credential.secret_values()
    preset = job.preset

    def failed(reason: str) -> _Outcome:
        result = PresetResult(
            vendor=preset.vendor,
            preset=preset.name,
            ok=False,
            person_id=job.person.id if job.person else None,
            person=_person_label(job.person),
            status=status,
            request=described,
            error=redact(reason, secrets),
        )
        return _Outcome(job, result, request_record=described, started_at=started_at)

    # Scrubbed before mapping, so that no mapping (not even {{response}} as
    # JSON text) can carry a secret into the store.
    body = scrub_secrets(response_body, secrets)
    try:
        person_fields, saas_fields, text_fields = _map_response(session, preset, job, body)
    except (OomnitzaConnectError, ValueError) as exc:
        return failed(f"The call succeeded but its response could not be mapped: {exc}")
    # Run for a person whose account is unknown: an error. Run by variables only
    # (an account the store does not hold, or no store): the values are reported.
    if saas_fields and job.saas_user is None and job.person is not None:
        return failed(
            f"The call succeeded, but its response maps to fields of the person's "
            f"{preset.vendor} account and the person has none in the store."
        )
    # Mappings may also use the caller's variables; scrub what they produced too.
    person_fields = scrub_secrets(person_fields, secrets)
    saas_fields = scrub_secrets(saas_fields, secrets)
    mapped = {**person_fields, **saas_fields}
    result = PresetResult(
        vendor=preset.vendor,
        preset=preset.name,
        ok=True,
        person_id=job.person.id if job.person else None,
        person=_person_label(job.person),
        status=status,
        request=described,
        response=body,
        mapped=mapped,
        existing=existing,
        despite_error=despite_error,
    )
    return _Outcome(
        job,
        result,
        person_fields=person_fields,
        saas_fields=saas_fields,
        text_fields=text_fields,
        request_record=described,
        started_at=started_at,
    )


def _send(session: VendorSession, rendered: RenderedRequest) -> requests.Response:
    return session.http.request(
        rendered.method,
        rendered.url,
        endpoint=rendered.endpoint,
        params=dict(rendered.params) or None,
        json=rendered.body,
        headers=dict(rendered.headers) or None,
        idempotent=rendered.idempotent,
    )


def _response_body(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _map_response(
    session: VendorSession, preset: Preset, job: _Job, body: Any
) -> tuple[dict[str, Any], dict[str, Any], frozenset[str]]:
    person_fields: dict[str, Any] = {}
    saas_fields: dict[str, Any] = {}
    text_fields: set[str] = set()
    variables = {**job.variables, "response": body}
    values: dict[str, Any] = {}
    for target, expression in preset.response_mappings.items():
        try:
            values[target] = render_value(expression, variables)
        except UndefinedVariableError as exc:
            raise PresetError(
                f"the mapping for '{target}' ({expression}) found no '{exc.name}' in the response."
            ) from None
        except TemplateError as exc:
            raise PresetError(f"the mapping for '{target}' ({expression}) failed: {exc}.") from None
    if preset.mapper is not None:
        values.update(preset.mapper(session, body))
    for target, value in values.items():
        if target.startswith(SAAS_USER_TARGET_PREFIX):
            # A SaaS user's fields are kept as JSON by the store: lists stay lists.
            saas_fields[target[len(SAAS_USER_TARGET_PREFIX) :]] = value
            continue
        key = normalize_target(target)
        if isinstance(value, Mapping | list | tuple):
            # A whole object goes to a person's long-text field as JSON.
            value = json.dumps(value, sort_keys=True, default=str)
            text_fields.add(key)
        person_fields[key] = value
    return person_fields, saas_fields, frozenset(text_fields)


def _ledger_of(store: PeopleDirectory | None, ledger: WorkflowLog | None) -> WorkflowLog | None:
    if ledger is not None:
        return ledger
    return store if isinstance(store, WorkflowLog) else None


def _persist(
    store: PeopleDirectory | None,
    ledger: WorkflowLog | None,
    session: VendorSession,
    outcome: _Outcome,
) -> PresetResult:
    """Write mapped values and the workflow-run record (on the calling thread)."""
    job = outcome.job
    run_id = uuid.uuid4().hex
    result = attrs.evolve(outcome.result, run_id=run_id)
    if store is not None and result.ok and not result.dry_run:
        try:
            _write_mapped(store, outcome)
        except OomnitzaConnectError as exc:
            # A store refusal, or Oomnitza answering the PATCH with an error:
            # this person's result fails, the others go on.
            result = attrs.evolve(
                result,
                ok=False,
                error=redact(
                    f"The call succeeded but its mapped values could not be stored: {exc}.",
                    session.credential.secret_values(),
                ),
            )
    if ledger is None:
        return result
    error = result.error
    if result.ok and result.despite_error:
        error = f"answered with an error, but the record exists: {result.despite_error}"
    ledger.record_workflow_run(
        WorkflowRun(
            id=run_id,
            vendor=job.preset.vendor,
            preset=job.preset.name,
            started_at=outcome.started_at,
            ok=result.ok,
            person_id=job.person.id if job.person is not None else None,
            status=result.status,
            request=dict(outcome.request_record),
            response=result.response,
            mapped=dict(result.mapped),
            error=error,
            dry_run=result.dry_run,
        )
    )
    return result


def _write_mapped(store: PeopleDirectory, outcome: _Outcome) -> None:
    job = outcome.job
    if outcome.person_fields and job.person is not None:
        defined = {field.label for field in store.custom_fields()}
        for name in outcome.text_fields - defined - set(STANDARD_PERSON_FIELDS):
            store.define_custom_field(CustomField(name, FieldType.TEXT))
        store.update_person_fields(job.person.id, outcome.person_fields)
    if outcome.saas_fields and job.saas_user is not None:
        store.update_saas_user_fields(
            job.saas_user.vendor, job.saas_user.vendor_user_id, outcome.saas_fields
        )


def _person_label(person: Person | None) -> str | None:
    if person is None:
        return None
    email = person.fields.get("email")
    return str(email) if email else person.sync_value
