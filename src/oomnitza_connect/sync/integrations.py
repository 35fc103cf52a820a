"""Integration files: load, validate, tell drafts apart, and write a starting file.

An integration is one TOML file (see ``docs/integrations.md``) loaded into
:class:`~oomnitza_connect.models.IntegrationSettings`. Loading checks the
file against the vendor: its global settings, the fields the mapping reads,
converter names, and the syntax of expressions and filters. A file that loads
may still be a *draft*: it cannot sync for real until Username and Email are
mapped, a default role is set and the sync key is a unique field
(:func:`draft_problems`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ..errors import ConfigurationError, TemplateError, UnknownVendorError, did_you_mean
from ..models import (
    STANDARD_PERSON_FIELDS,
    UNIQUE_STANDARD_FIELDS,
    DestinationKind,
    FieldMapping,
    IntegrationSettings,
    SyncPreference,
    UserSelection,
    VendorInfo,
)
from ..plugins import vendor_info
from ..schedule.scheduler import parse_schedule
from .converters import converter_names
from .mapping import merge_mappings, normalize_target

if TYPE_CHECKING:
    from tomlkit.items import Table
    from tomlkit.toml_document import TOMLDocument as Document

    from ..store.base import IntegrationEntry, Ledger

__all__ = [
    "CONTEXT_VARIABLES",
    "NAME_RULE",
    "IntegrationWarning",
    "check_integration",
    "check_ledger",
    "check_rate_budgets",
    "check_settings",
    "check_sync_key",
    "claim_name",
    "draft_problems",
    "effective_filters",
    "effective_mapping",
    "free_integration_name",
    "integration_warnings",
    "ledger_problems",
    "load_integration",
    "rate_budget_problems",
    "render_integration_template",
    "sync_key_of",
    "unique_targets",
]


@attrs.frozen
class _Problem:
    key_path: str
    message: str
    allowed: str | None = None

    def __str__(self) -> str:
        text = f"key '{self.key_path}': {self.message}"
        return f"{text} (allowed: {self.allowed})" if self.allowed else text


def load_integration(path: str | Path, *, info: VendorInfo | None = None) -> IntegrationSettings:
    """Load and check the integration file at *path*.

    :param info: the vendor's description; looked up from the installed
        plugins by the file's ``vendor`` when not given.
    :raises ConfigurationError: the file is missing, not TOML, or has bad
        keys or values; the error names the file, each key, the value and
        what is allowed.
    :raises UnknownVendorError: no installed plugin provides the vendor.
    """
    from ..config import load_toml, structure  # cattrs, only when a file is read

    data = load_toml(path)
    settings = structure(data, IntegrationSettings, file=path)
    try:
        vendor = info or vendor_info(settings.vendor)
    except UnknownVendorError as exc:
        # Worded like the file's other bad keys; installing is the fix only when
        # the name is not a misspelling, so it comes after the suggestion.
        install = f"if '{exc.vendor}' is right, install oomnitza-connect-{exc.vendor}"
        raise UnknownVendorError(
            exc.vendor,
            exc.installed,
            hint="; ".join(h for h in (install, exc.hint) if h),
            file=str(path),
            key_path="vendor",
        ) from None
    problems = _problems(settings, vendor)
    if problems:
        _raise(problems, file=str(path))
    for warning in integration_warnings(settings, vendor):
        warnings.warn(f"{path}: {warning}", IntegrationWarning, stacklevel=2)
    return settings


class IntegrationWarning(UserWarning):
    """Something in an integration that may fail records but is not refused
    (a variable a vendor with open fields does not declare)."""


def check_integration(settings: IntegrationSettings, info: VendorInfo) -> list[str]:
    """Return what is wrong with *settings* for *info* (empty when it is valid)."""
    return [str(problem) for problem in _problems(settings, info)]


def _raise(problems: list[_Problem], *, file: str | None) -> None:
    if len(problems) == 1:
        only = problems[0]
        raise ConfigurationError(
            only.message, file=file, key_path=only.key_path, allowed=only.allowed
        )
    raise ConfigurationError(
        f"{len(problems)} problems in the integration",
        file=file,
        problems=[str(p) for p in problems],
    )


def rate_budget_problems(
    texts: Iterable[str], info: VendorInfo, *, key_path: str = "rate_budgets"
) -> list[str]:
    """Return what is wrong with rate budgets given for *info* (empty when they are good).

    Each must be ``ENDPOINT=PER_MINUTE[/BURST]`` naming an endpoint the vendor
    declares a budget for (or ``*``): a misspelled endpoint would be ignored
    and leave the plan's limit unapplied. A vendor that declares no budgets
    names no endpoints, so any is accepted. ``sync --rate-budget`` goes through
    the same check (``key_path="--rate-budget"``).
    """
    return [str(problem) for problem in _budget_problems(texts, info, key_path)]


def _budget_problems(texts: Iterable[str], info: VendorInfo, key_path: str) -> list[_Problem]:
    from ..transport.ratelimit import FALLBACK_ENDPOINT, RATE_BUDGET_FORMAT, parse_rate_budget

    # A vendor that declares no budgets does not say which endpoints it has: any goes.
    known = [budget.endpoint for budget in info.rate_budgets]
    if known and FALLBACK_ENDPOINT not in known:
        known.append(FALLBACK_ENDPOINT)
    problems: list[_Problem] = []
    for index, text in enumerate(texts):
        where = f"{key_path}[{index}]"
        if not isinstance(text, str):
            problems.append(_Problem(where, f"bad rate budget {text!r}", RATE_BUDGET_FORMAT))
            continue
        try:
            budget = parse_rate_budget(text)
        except ConfigurationError:
            problems.append(_Problem(where, f"bad rate budget {text!r}", RATE_BUDGET_FORMAT))
            continue
        if known and budget.endpoint not in known:
            problems.append(
                _Problem(
                    where,
                    f"{info.display_name} has no endpoint '{budget.endpoint}'"
                    + did_you_mean(budget.endpoint, known),
                    ", ".join(known),
                )
            )
    return problems


def check_rate_budgets(texts: Iterable[str], info: VendorInfo, *, key_path: str) -> None:
    """Refuse rate budgets that are malformed or name an endpoint *info* does not have.

    :raises ConfigurationError: listing every bad one and the vendor's endpoints.
    """
    problems = _budget_problems(texts, info, key_path)
    if problems:
        _raise(problems, file=None)


NAME_RULE = (
    "a non-empty name without leading or trailing spaces, control characters, "
    "'/' or '\\', and not '.' or '..'"
)
"""What an integration's ``name`` may be: it keys the store's records and file names."""


def _name_problems(name: object) -> list[_Problem]:
    if not isinstance(name, str):
        return [_Problem("name", f"bad value {name!r}", NAME_RULE)]
    if not name.strip():
        return [_Problem("name", "the name is empty", NAME_RULE)]
    bad = (
        name != name.strip()
        or name in (".", "..")
        or any(ch in "/\\" or not ch.isprintable() for ch in name)
    )
    return [_Problem("name", f"bad name {name!r}", NAME_RULE)] if bad else []


def _field_problems(settings: IntegrationSettings) -> list[_Problem]:
    """Types a Python caller may have got wrong (a TOML file is checked as it is read)."""
    problems = _name_problems(settings.name)
    for key in ("vendor", "credential"):
        value = getattr(settings, key)
        if not isinstance(value, str) or not value.strip():
            problems.append(_Problem(key, f"bad value {value!r}", "a non-empty string"))
    for key, kind in (("selection", UserSelection), ("preference", SyncPreference)):
        value = getattr(settings, key)
        if not isinstance(value, kind):
            allowed = ", ".join(member.value for member in kind)
            problems.append(_Problem(key, f"bad value {value!r}", allowed))
    for key in ("sync_key", "default_role", "integration_user", "base_url"):
        value = getattr(settings, key)
        if value is not None and not isinstance(value, str):
            problems.append(_Problem(key, f"bad value {value!r}", "a string"))
    limit = settings.vanish_limit_percent
    if not isinstance(limit, int) or isinstance(limit, bool):
        problems.append(_Problem("vanish_limit_percent", f"bad value {limit!r}", "1 to 100"))
    if not isinstance(settings.schedule, str):
        problems.append(_Problem("schedule", f"bad value {settings.schedule!r}", "a string"))
    for index, contact in enumerate(settings.contacts):
        if not isinstance(contact, str):
            problems.append(_Problem(f"contacts[{index}]", f"bad value {contact!r}", "an email"))
    for key in ("filters", "rate_budgets"):
        for index, item in enumerate(getattr(settings, key) or ()):
            if not isinstance(item, str):
                problems.append(_Problem(f"{key}[{index}]", f"bad value {item!r}", "a string"))
    for index, mapping in enumerate(settings.mapping):
        if not isinstance(mapping, FieldMapping):
            problems.append(
                _Problem(f"mapping[{index}]", f"bad value {mapping!r}", "a FieldMapping")
            )
    return problems


def _duplicate_target_problems(mappings: Iterable[FieldMapping]) -> list[_Problem]:
    # Targets are compared as the mapping resolves them: "Email" and "email" are one field.
    seen: dict[str, int] = {}
    problems: list[_Problem] = []
    for index, mapping in enumerate(mappings):
        target = normalize_target(mapping.target)
        first = seen.setdefault(target, index)
        if first != index:
            problems.append(
                _Problem(
                    f"mapping[{index}].target",
                    f"'{mapping.target}' is already mapped by mapping[{first}]",
                    "one mapping per target",
                )
            )
    return problems


def _role_problems(settings: IntegrationSettings) -> list[_Problem]:
    """Roles an Oomnitza destination cannot send: each needs an id in ``[destination.roles]``.

    The destination sends a role by its id: a name ``roles`` maps, a number as
    it is, else ``default_role_id``; any other role fails every record that has
    it. The default role and the constant roles a role mapping can give are
    known before the run.
    """
    destination = settings.destination
    if destination is None or destination.type != DestinationKind.OOMNITZA:
        return []
    if destination.default_role_id is not None:
        return []
    # A number is sent as it is, so it is allowed even when the table names no role.
    known = (
        ", ".join(sorted(destination.roles)) or "a numeric role id ([destination.roles] is empty)"
    )

    def unknown(role: str) -> bool:
        return role not in destination.roles and not role.isdigit()

    problems: list[_Problem] = []
    role = settings.default_role
    if role and role.strip() and unknown(role):
        problems.append(
            _Problem(
                "destination.roles",
                f"the default role {settings.default_role!r} has no Oomnitza role id: add it "
                "to [destination.roles] (or set destination.default_role_id)",
                known,
            )
        )
    for index, mapping in enumerate(settings.mapping):
        if normalize_target(mapping.target) != "role" or mapping.expression is None:
            continue
        for constant in _constant_outputs(mapping.expression):
            if constant.strip() and unknown(constant):
                problems.append(
                    _Problem(
                        f"mapping[{index}].expression",
                        f"the role {constant!r} has no Oomnitza role id in [destination.roles]",
                        known,
                    )
                )
    return problems


def _constant_outputs(expression: str) -> list[str]:
    """The texts *expression* can render that are fixed in it (``'Admin' if x else 'Employee'``).

    Only a template that is one output, made of constants and conditionals,
    is read; any other shape gives nothing (its values are known only per record).
    """
    import jinja2
    from jinja2 import nodes

    try:
        tree = jinja2.Environment(autoescape=True).parse(expression)  # parsed, never rendered
    except jinja2.TemplateSyntaxError:
        return []
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return []
    parts = tree.body[0].nodes
    if len(parts) != 1:
        return []

    def walk(node: nodes.Node) -> list[str] | None:
        if isinstance(node, nodes.Const) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
            one, other = walk(node.expr1), walk(node.expr2)
            if one is None or other is None:
                return None
            return one + other
        return None

    return walk(parts[0]) or []


def _problems(settings: IntegrationSettings, info: VendorInfo) -> list[_Problem]:
    problems = _field_problems(settings)
    if problems:
        return problems  # the checks below read these fields as the types they declare
    if settings.vendor != info.name:
        problems.append(_Problem("vendor", f"'{settings.vendor}' is not '{info.name}'"))
    if not 1 <= settings.vanish_limit_percent <= 100:
        problems.append(
            _Problem(
                "vanish_limit_percent",
                f"{settings.vanish_limit_percent} is not a percentage",
                "1 to 100; 100 turns the safeguard off",
            )
        )
    problems.extend(_setting_problems(settings, info))
    if settings.destination is not None:
        from ..destinations import destination_problems

        problems.extend(
            _Problem(key, message) for key, message in destination_problems(settings.destination)
        )
        problems.extend(_role_problems(settings))
    problems.extend(_budget_problems(settings.rate_budgets, info, "rate_budgets"))
    problems.extend(_duplicate_target_problems(settings.mapping))
    if settings.base_url:
        from ..transport.http import base_url_problem

        problem = base_url_problem(settings.base_url)
        if problem is not None:
            problems.append(_Problem("base_url", problem, "https://host/path"))
    fields = [spec.key for spec in info.fields]
    # Jinja (30 ms to import) only when there is an expression to check.
    has_expressions = bool(settings.filters) or any(
        mapping.expression is not None for mapping in settings.mapping
    )
    known = None if info.open_fields or not has_expressions else _known_variables(info)
    converters = converter_names()
    for index, mapping in enumerate(settings.mapping):
        where = f"mapping[{index}]"
        if not mapping.target.strip():
            problems.append(_Problem(f"{where}.target", "the target is empty"))
        if mapping.source is not None and fields:
            root = mapping.source.split(".")[0]
            if mapping.source not in fields and root not in fields and mapping.source != "id":
                problems.append(
                    _Problem(
                        f"{where}.source",
                        f"{info.display_name} has no field '{mapping.source}'",
                        ", ".join(fields),
                    )
                )
        if mapping.expression is not None:
            problems.extend(_expression_problems(f"{where}.expression", mapping.expression, known))
        if mapping.converter is not None:
            aliases = {"boolean", "int", "datetime", "str"}
            if mapping.converter not in converters and mapping.converter not in aliases:
                problems.append(
                    _Problem(
                        f"{where}.converter",
                        f"there is no converter named '{mapping.converter}'",
                        ", ".join(converters),
                    )
                )
        if mapping.unique and normalize_target(mapping.target) in STANDARD_PERSON_FIELDS:
            standard = normalize_target(mapping.target)
            if standard not in UNIQUE_STANDARD_FIELDS:
                problems.append(
                    _Problem(
                        f"{where}.unique",
                        f"the standard field '{standard}' cannot be made unique",
                        ", ".join(sorted(UNIQUE_STANDARD_FIELDS)) + " are unique already",
                    )
                )
    for index, expression in enumerate(settings.filters or ()):
        problems.extend(
            _expression_problems(f"filters[{index}]", "{{ " + expression + " }}", known)
        )
    for index, contact in enumerate(settings.contacts):
        if not isinstance(contact, str) or "@" not in contact:
            problems.append(_Problem(f"contacts[{index}]", f"'{contact}' is not an email address"))
    try:
        parse_schedule(settings.schedule)
    except ConfigurationError as exc:
        problems.append(_Problem("schedule", f"bad schedule {settings.schedule!r}", exc.allowed))
    return problems


CONTEXT_VARIABLES = (
    "id",
    "fields",
    "raw",
    "sync_time",
    "api_version",
    "vendor",
    "integration",
    "default_role",
    "settings",
)
"""The names every expression and filter may use besides the vendor's fields
(``docs/mapping.md``): the user's id, all fields, the vendor's JSON and the run's context."""


def _known_variables(info: VendorInfo) -> frozenset[str] | None:
    """The names an expression may read for *info*, or ``None`` when it declares no fields."""
    if not info.fields:
        return None
    from jinja2.defaults import DEFAULT_NAMESPACE  # range, dict, namespace ...

    return frozenset(
        {spec.key for spec in info.fields} | set(CONTEXT_VARIABLES) | set(DEFAULT_NAMESPACE)
    )


def _expression_problems(
    key_path: str, expression: str, known: frozenset[str] | None = None
) -> list[_Problem]:
    from jinja2.defaults import DEFAULT_NAMESPACE

    from ..templating import variables_of  # Jinja: imported when an expression is checked

    try:
        names = variables_of(expression)
    except TemplateError as exc:
        return [_Problem(key_path, str(exc))]
    if known is None:
        return []
    problems: list[_Problem] = []
    shown = ", ".join(sorted(known - set(DEFAULT_NAMESPACE)))
    for name in sorted(names - known):
        problems.append(
            _Problem(
                key_path, f"variable '{name}' is not defined" + did_you_mean(name, known), shown
            )
        )
    return problems


def integration_warnings(settings: IntegrationSettings, info: VendorInfo) -> list[str]:
    """Return what may fail records but is not refused: for a vendor whose records
    may carry fields it does not declare (:attr:`VendorInfo.open_fields`), the
    variables expressions and filters read that it does not declare."""
    if not info.open_fields:
        return []
    return [str(problem) for problem in _variable_problems(settings, info)]


def _variable_problems(settings: IntegrationSettings, info: VendorInfo) -> list[_Problem]:
    known = _known_variables(info)
    if known is None:
        return []
    problems: list[_Problem] = []
    for index, mapping in enumerate(settings.mapping):
        if isinstance(mapping, FieldMapping) and isinstance(mapping.expression, str):
            where = f"mapping[{index}].expression"
            problems.extend(_expression_problems(where, mapping.expression, known))
    for index, expression in enumerate(settings.filters or ()):
        if isinstance(expression, str):
            where = f"filters[{index}]"
            problems.extend(_expression_problems(where, "{{ " + expression + " }}", known))
    return problems


def _vendor_prefix(key: str) -> str:
    """``Slack.`` of ``Slack.PageSize``; ``""`` for a key without one."""
    head, dot, _ = key.partition(".")
    return head + dot


def _value_problems(
    values: Mapping[str, str], info: VendorInfo, prefix: str = "settings."
) -> list[_Problem]:
    known = {spec.key: spec for spec in info.global_settings}
    # With nothing to list, "(allowed: none)" would read as if no value of this key
    # were accepted; the vendor has no such key at all.
    allowed = ", ".join(known) or None
    none_at_all = "" if known else " (it has no global settings)"
    problems: list[_Problem] = []
    for key, value in values.items():
        spec = known.get(key)
        if spec is None:
            problems.append(
                _Problem(
                    f"{prefix}{key}",
                    f"{info.display_name} has no setting '{key}'{none_at_all}"
                    # Settings share the vendor's prefix (Slack.PageSize).
                    + did_you_mean(key, known, shared_prefix=_vendor_prefix(key)),
                    allowed,
                )
            )
        else:
            try:
                spec.parse(value)
            except ConfigurationError:
                problems.append(_Problem(f"{prefix}{key}", f"bad value {value!r}", spec.allowed()))
    return problems


def check_settings(values: Mapping[str, str], info: VendorInfo, *, source: str) -> None:
    """Refuse unknown global settings and bad values given outside an integration file.

    :param source: where they came from, for the message (``--setting``).
    :raises ConfigurationError: listing every problem, before any request.
    """
    problems = _value_problems(values, info, prefix="")
    if problems:
        raise ConfigurationError(
            f"{source}: bad settings for {info.display_name}",
            problems=[str(problem) for problem in problems],
        )


def _setting_problems(settings: IntegrationSettings, info: VendorInfo) -> list[_Problem]:
    known = {spec.key: spec for spec in info.global_settings}
    allowed = ", ".join(known)  # only used below, where the vendor has a setting
    problems = _value_problems(settings.settings, info)
    for spec in info.global_settings:
        if spec.required and spec.default is None and _key_missing(settings, spec.key):
            problems.append(
                _Problem(
                    f"settings.{spec.key}",
                    f"{info.display_name} requires this setting ({spec.description})",
                    allowed,
                )
            )
    return problems


def _key_missing(settings: IntegrationSettings, key: str) -> bool:
    value = settings.settings.get(key)
    return value is None or str(value).strip() == ""


# ---------------------------------------------------------------------------
# One name, one integration per store
# ---------------------------------------------------------------------------


def ledger_problems(
    settings: IntegrationSettings,
    ledger: Ledger,
    *,
    source: str | Path | None = None,
    replace: bool = False,
) -> list[str]:
    """Return why *ledger* holds another integration under ``settings.name`` (empty if none).

    Two integrations under one name share their sessions and each marks the
    other's people vanished on every run. The ledger knows an integration's
    vendor (from its launch and its sessions) and the file it was launched
    from: a different vendor is always refused; a different *source* file is
    refused unless *replace* (``integrations launch --replace``).
    """
    name = settings.name
    problems: list[str] = []
    entry = next((e for e in ledger.list_integrations() if e.name == name), None)
    vendor = entry.vendor if entry is not None else None
    if vendor is None:
        sessions = ledger.list_sessions(integration=name, limit=1)
        vendor = sessions[0].vendor if sessions else None
    if vendor is not None and vendor != settings.vendor:
        problems.append(
            f"the store already has an integration '{name}' that syncs {vendor}, not "
            f'{settings.vendor}: give this one another name (name = "...")'
        )
    elif (
        not replace
        and source is not None
        and entry is not None
        and entry.source
        and Path(entry.source) != Path(source).resolve()
    ):
        problems.append(
            f"the integration '{name}' is already launched from {entry.source}: give this "
            'file another name (name = "..."), or launch it with --replace to put it in '
            "that one's place"
        )
    return problems


def check_ledger(
    settings: IntegrationSettings,
    ledger: Ledger,
    *,
    source: str | Path | None = None,
    replace: bool = False,
) -> None:
    """Refuse to sync or launch *settings* over another integration of the same name.

    :raises ConfigurationError: naming the file (*source*), the key ``name`` and what to do.
    """
    problems = ledger_problems(settings, ledger, source=source, replace=replace)
    if problems:
        raise ConfigurationError(
            problems[0], file=str(source) if source is not None else None, key_path="name"
        )


def claim_name(settings: IntegrationSettings, ledger: Ledger, *, source: str | Path) -> None:
    """Check the name is this file's in *ledger* (:func:`check_ledger`), and record it when
    the ledger has no integration by that name yet: as inactive (a launch makes it active),
    with the file, so that a second file under the same name is refused next time.

    What ``oomnitza-connect sync FILE`` does before it runs.

    :raises ConfigurationError: the name is another vendor's or another file's.
    """
    check_ledger(settings, ledger, source=source)
    if any(entry.name == settings.name for entry in ledger.list_integrations()):
        return
    ledger.save_integration(integration_entry(settings, source, launched=False))


def integration_entry(
    settings: IntegrationSettings, source: str | Path, *, launched: bool
) -> IntegrationEntry:
    """What the ledger records of an integration read from *source*: active and
    stamped now when *launched*, else only known (a ``sync FILE``)."""
    from datetime import UTC, datetime

    from ..store.base import IntegrationEntry

    return IntegrationEntry(
        name=settings.name,
        vendor=settings.vendor,
        active=launched,
        schedule=settings.schedule,
        contacts=settings.contacts,
        source=str(Path(source).resolve()),
        launched_at=datetime.now(UTC) if launched else None,
    )


def free_integration_name(vendor: str, taken: Iterable[str]) -> str:
    """The first of ``VENDOR-main``, ``VENDOR-2``, ``VENDOR-3`` ... not in *taken*."""
    used = set(taken)
    name, number = f"{vendor}-main", 1
    while name in used:
        number += 1
        name = f"{vendor}-{number}"
    return name


def effective_mapping(settings: IntegrationSettings, info: VendorInfo) -> tuple[FieldMapping, ...]:
    """Return the mapping a run uses: the vendor's standard one (unless turned off) with
    the integration's mappings replacing the same targets and adding new ones."""
    standard = info.standard_mapping if settings.use_standard_mapping else ()
    return merge_mappings(standard, settings.mapping)


def effective_filters(settings: IntegrationSettings, info: VendorInfo) -> tuple[str, ...]:
    """Return the integration's filters, or the vendor's defaults when it names none."""
    return info.default_filters if settings.filters is None else settings.filters


def unique_targets(mapping: Iterable[FieldMapping]) -> frozenset[str]:
    """Return the targets that are unique: the standard unique ones and those marked ``unique``."""
    marked = {normalize_target(m.target) for m in mapping if m.unique}
    return frozenset(UNIQUE_STANDARD_FIELDS | marked)


def sync_key_of(settings: IntegrationSettings) -> str | None:
    """Return the sync key as a target key (``Email`` gives ``email``), or ``None``."""
    return normalize_target(settings.sync_key) if settings.sync_key else None


def draft_problems(settings: IntegrationSettings, info: VendorInfo) -> list[str]:
    """Return why the integration is still a draft (empty when it is complete)."""
    mapping = effective_mapping(settings, info)
    targets = {normalize_target(m.target) for m in mapping}
    problems: list[str] = []
    if "username" not in targets:
        problems.append('Username is not mapped: add a mapping with target = "username"')
    if "email" not in targets:
        problems.append('Email is not mapped: add a mapping with target = "email"')
    if not (settings.default_role or "").strip():
        problems.append('no default role is set: add default_role = "Employee" (or another)')
    if sync_key_of(settings) is None:
        problems.append('no sync key is set: add sync_key = "email" (or another unique field)')
    else:
        problem = _sync_key_problem(settings, info)
        if problem is not None:
            problems.append(str(problem))
    return problems


def _sync_key_problem(settings: IntegrationSettings, info: VendorInfo) -> _Problem | None:
    """Why the sync key the file names cannot match anyone (``None`` when it can, or is unset)."""
    sync_key = sync_key_of(settings)
    if sync_key is None:
        return None
    mapping = effective_mapping(settings, info)
    targets = {normalize_target(m.target) for m in mapping}
    usable = sorted(targets & unique_targets(mapping))
    allowed = ", ".join(usable) + (", " if usable else "") + "or a target marked unique = true"
    if sync_key not in targets:
        return _Problem(
            "sync_key",
            f"bad value {settings.sync_key!r}: it is not a target of the mapping"
            + did_you_mean(sync_key, usable),
            allowed,
        )
    if sync_key not in unique_targets(mapping):
        return _Problem(
            "sync_key",
            f"bad value {settings.sync_key!r}: it is not a unique field; "
            "mark its mapping with unique = true",
            allowed,
        )
    return None


def check_sync_key(
    settings: IntegrationSettings, info: VendorInfo, *, file: str | Path | None = None
) -> None:
    """Refuse a sync key that names no unique target of the mapping (a misspelling).

    Even a test run, which a draft may have, needs it: with it every record
    would fail, or the run would be refused once the vendor had been asked.

    :param file: the integration file, named in the error.
    :raises ConfigurationError: naming the file, ``sync_key`` and the targets it may be.
    """
    problem = _sync_key_problem(settings, info)
    if problem is not None:
        _raise([problem], file=None if file is None else str(file))


# ---------------------------------------------------------------------------
# Writing a starting file
# ---------------------------------------------------------------------------


def _value(value: object) -> str:
    """*value* as TOML (for the examples written in comments)."""
    import tomlkit

    return tomlkit.item(value).as_string()


def _key(name: str) -> str:
    """*name* as a TOML key: bare when it may be, quoted otherwise (``"Slack.PageSize"``)."""
    import tomlkit

    return tomlkit.key(name).as_string()


def _comment(container: Document | Table, text: str) -> None:
    # One comment per line: a newline inside one would end the comment and
    # leave the rest of the text as (broken) TOML.
    import tomlkit

    for line in text.splitlines() or [""]:
        container.add(tomlkit.comment(line))


def render_integration_template(
    info: VendorInfo, *, name: str | None = None, taken: Iterable[str] = ()
) -> str:
    """Return a commented integration file for *info*, prefilled with its standard mapping.

    :param name: the integration's name; default: the first of ``VENDOR-main``,
        ``VENDOR-2`` ... that is not *taken* (the names a store already has).

    Written with tomlkit, so every value is quoted and escaped as TOML wants
    (quotes, backslashes, newlines, any Unicode) and the comments stay in place.
    """
    # Imported here: only `integrations init` writes TOML, and start-up stays quick.
    import tomlkit

    doc = tomlkit.document()
    _comment(doc, f"{info.display_name} integration for oomnitza-connect.")
    _comment(doc, "Check it with `oomnitza-connect integrations validate FILE`, try it with")
    _comment(doc, "`oomnitza-connect sync FILE --test-run`, then `integrations launch FILE`.")
    _comment(doc, "Reference: docs/integrations.md and docs/mapping.md.")
    doc.add(tomlkit.nl())
    doc.add("name", name or free_integration_name(info.name, taken))
    doc.add("vendor", info.name)
    _comment(doc, "The name of a stored credential (`oomnitza-connect credentials add`).")
    doc.add("credential", info.name)
    doc.add(tomlkit.nl())
    _comment(doc, "users: create and update people; users+saas: also link each person to the")
    _comment(doc, f"{info.display_name} app as a SaaS user with the vendor's user id and role.")
    doc.add("selection", "users")
    _comment(doc, "create_update, create_only or update_only.")
    doc.add("preference", "create_update")
    _comment(doc, "How often a scheduler runs it (daily, hourly, weekly or a cron expression).")
    doc.add("schedule", "daily")
    _comment(doc, "Who hears about failed runs.")
    doc.add("contacts", tomlkit.array())
    _comment(doc, "The person field that identifies a person: username, email, external_id, or a")
    _comment(doc, "custom field whose mapping says unique = true.")
    doc.add("sync_key", "email")
    _comment(doc, "The role given to people whose record maps none. Required before launching.")
    _comment(doc, f"default_role = {_value('Employee')}")
    _comment(doc, f"integration_user = {_value('it-admin@example.com')}")
    _comment(
        doc, f"base_url = {_value('https://proxy.example.com')}  # another API root (region, proxy)"
    )
    doc.add(tomlkit.nl())
    _comment(doc, "Record filters (sandboxed expressions); a record must pass all of them.")
    if info.default_filters:
        _comment(doc, "Leave out to use the vendor's defaults:")
        _comment(doc, f"filters = {_value(list(info.default_filters))}")
    else:
        _comment(doc, f"filters = {_value(['deleted == false'])}")
    _comment(doc, "false: use only the [[mapping]] entries below, not the vendor's standard ones.")
    doc.add("use_standard_mapping", True)
    doc.add(tomlkit.nl())

    settings = tomlkit.table()
    if not info.global_settings:
        _comment(settings, f"{info.display_name} has no global settings.")
    for spec in info.global_settings:
        notes = [spec.description]
        if spec.choices:
            notes.append(f"one of: {', '.join(spec.choices)}")
        notes.append("required" if spec.required else "optional")
        _comment(settings, f"{'; '.join(n for n in notes if n)}.")
        value = spec.default if spec.default is not None else ""
        if spec.required:
            settings.add(spec.key, value)
        else:
            _comment(settings, f"{_key(spec.key)} = {_value(value)}")
    settings.add(tomlkit.nl())
    _comment(
        settings, f"The {info.display_name} standard mapping, written out so that you can edit it."
    )
    _comment(settings, "A mapping here replaces the standard one with the same target; new targets")
    _comment(settings, "become custom fields. Converters: " + ", ".join(converter_names()) + ".")
    doc.add("settings", settings)

    # Comments after the last [[mapping]] belong to it; without a mapping, to [settings].
    last: Table = settings
    if info.standard_mapping:
        mappings = tomlkit.aot()
        for mapping in info.standard_mapping:
            entry = tomlkit.table()
            entry.add("target", mapping.target)
            if mapping.source is not None:
                entry.add("source", mapping.source)
            if mapping.expression is not None:
                entry.add("expression", mapping.expression)
            if mapping.converter:
                entry.add("converter", mapping.converter)
            if mapping.unique:
                entry.add("unique", True)
            mappings.append(entry)
        doc.add("mapping", mappings)
        last = mappings[-1]
    last.add(tomlkit.nl())
    _comment(last, "A computed custom field and the tracking fields, for example:")
    _comment(last, "[[mapping]]")
    _comment(last, f"target = {_value(info.display_name + ' Sync Time')}")
    _comment(last, f"expression = {_value('{{ sync_time }}')}")
    if info.fields:
        last.add(tomlkit.nl())
        _comment(last, f"{info.display_name} fields: " + ", ".join(s.key for s in info.fields))
    return tomlkit.dumps(doc)
