"""Mapping vendor records onto person fields, and filtering them.

This module is the core's built-in ``map_record`` implementation (registered
as a builtin plugin, ``trylast`` so a vendor plugin's own implementation
wins). A mapping is a tuple of :class:`~oomnitza_connect.models.FieldMapping`:
each target takes a vendor field (``source``) or a sandboxed expression
(``expression``), then an optional converter. Expressions and filters see
the record's fields by key, plus ``id`` (the vendor's user id), ``raw`` (the
vendor's JSON), ``fields`` (all fields as one mapping) and the run context:
``sync_time``, ``api_version``, ``vendor``, ``default_role``, ``settings``.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import MappingError, OomnitzaConnectError, TemplateError, UndefinedVariableError
from ..hookspecs import hookimpl
from ..models import STANDARD_PERSON_FIELDS, FieldMapping, UnreadRecord, VendorRecord
from .converters import ConversionError, resolve

if TYPE_CHECKING:
    import jinja2
    from jinja2 import nodes as jinja_nodes

__all__ = [
    "SAAS_ROLE_TARGET",
    "CompiledMapping",
    "apply_mapping",
    "compile_filters",
    "fields_read",
    "map_record",
    "merge_mappings",
    "normalize_target",
    "read_record",
    "record_passes",
    "record_variables",
    "variables_for",
]

SAAS_ROLE_TARGET = "saas_role"
"""A mapping target that sets the SaaS user's role in the vendor's app, not a person field."""


def read_record(unread: UnreadRecord) -> VendorRecord:
    """Read one user the vendor sent; whatever goes wrong becomes a :class:`MappingError`.

    The reason names the problem (the exception's type and text), so the
    session says why this one user did not sync.
    """
    try:
        record = unread.read()
    except OomnitzaConnectError:
        raise
    except Exception as exc:  # a plugin's reader may fail any way the raw JSON allows
        raise MappingError(
            f"the {unread.vendor} user could not be read ({exc.__class__.__name__}: {exc})"
        ) from None
    if not isinstance(record, VendorRecord):
        raise MappingError(
            f"the {unread.vendor} plugin read a user into {type(record).__name__}, "
            "not a VendorRecord"
        )
    return record


_LABEL_TO_KEY = {label.lower(): key for key, label in STANDARD_PERSON_FIELDS.items()}


def normalize_target(target: str) -> str:
    """Return the standard key for a standard field's key or label, else *target* unchanged.

    ``"Username"`` and ``"username"`` both give ``"username"``; ``"Slack User Id"``
    is a custom field and stays as written.
    """
    if target in STANDARD_PERSON_FIELDS or target == SAAS_ROLE_TARGET:
        return target
    return _LABEL_TO_KEY.get(target.strip().lower(), target)


def merge_mappings(
    standard: Iterable[FieldMapping], overrides: Iterable[FieldMapping]
) -> tuple[FieldMapping, ...]:
    """Return *standard* with each target that *overrides* maps replaced, then the new targets."""
    merged: dict[str, FieldMapping] = {}
    for mapping in standard:
        merged[normalize_target(mapping.target)] = mapping
    for mapping in overrides:
        merged[normalize_target(mapping.target)] = mapping
    return tuple(merged.values())


def record_variables(record: VendorRecord, context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the names an expression or filter can use for *record*."""
    variables = dict(context)
    variables.update(record.fields)
    variables["id"] = record.id
    variables["fields"] = record.fields
    variables["raw"] = record.raw
    return variables


def fields_read(
    mapping: Iterable[FieldMapping], filters: Iterable[str] = ()
) -> frozenset[str] | None:
    """Return the record field keys *mapping* and *filters* read, or ``None`` for all of them.

    An expression or filter that reads ``fields`` or ``raw`` may read anything.
    The names include context names (``sync_time``); callers compare against
    field keys, so the extras do no harm.
    """
    names: set[str] = set()
    for item in mapping:
        if item.source is not None:
            names.add(item.source)
        if item.expression is not None:
            from ..templating import variables_of  # Jinja: parses the expressions

            names |= variables_of(item.expression)
    for expression in filters:
        names |= filter_variables(expression)
    if names & {"fields", "raw"}:
        return None
    return frozenset(names)


def variables_for(
    names: Iterable[str], record: VendorRecord, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Return only *names* of :func:`record_variables` (cheaper when a filter reads few).

    A name found nowhere is left out, so the expression still fails naming it.
    """
    extras = {"id": record.id, "fields": record.fields, "raw": record.raw}
    found: dict[str, Any] = {}
    for name in names:
        if name in extras:
            found[name] = extras[name]
        elif name in record.fields:
            found[name] = record.fields[name]
        elif name in context:
            found[name] = context[name]
    return found


def _source_value(record: VendorRecord, source: str) -> Any:
    if source in record.fields:
        return record.fields[source]
    if source == "id":
        return record.id
    # A dotted path reaches into nested values (``profile.email``), first in
    # the decoded fields, then in the vendor's raw JSON.
    for root in (record.fields, record.raw):
        value: Any = root
        for part in source.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                break
        else:
            return value
    return None


_MISSING = object()


def _failing_converter(error: ConversionError) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        raise error

    return convert


class CompiledMapping:
    """A mapping resolved once per run: targets normalized, converters looked up.

    :func:`apply_mapping` resolved every target and source for every record
    (784,000 lookups of each for 100,000 users); a sync compiles its mapping
    once and calls :meth:`apply` per record, with the same results and errors.
    """

    def __init__(self, mapping: Iterable[FieldMapping]) -> None:
        self._steps: list[tuple[str, str | None, str, Callable[[Any], Any] | None, str]] = []
        for field_mapping in mapping:
            convert: Callable[[Any], Any] | None = None
            if field_mapping.converter:
                try:
                    convert = resolve(field_mapping.converter)
                except ConversionError as exc:
                    # Reported per record, as before, naming the target field.
                    convert = _failing_converter(exc)
            self._steps.append(
                (
                    normalize_target(field_mapping.target),
                    field_mapping.source,
                    field_mapping.expression or "",
                    convert,
                    field_mapping.converter or "",
                )
            )

    def apply(self, record: VendorRecord, context: Mapping[str, Any]) -> dict[str, Any]:
        """Map *record* onto person fields (target keys normalized).

        :raises MappingError: a converter failed or an expression could not be
            evaluated; the error names the target field.
        """
        result: dict[str, Any] = {}
        fields = record.fields
        variables: dict[str, Any] | None = None
        for target, source, expression, convert, converter_name in self._steps:
            if source is not None:
                value = fields.get(source, _MISSING)
                if value is _MISSING:
                    value = _source_value(record, source)
            else:
                if variables is None:
                    variables = record_variables(record, context)
                from ..templating import render_value  # Jinja, for expressions only

                try:
                    value = render_value(expression, variables)
                except TemplateError as exc:
                    raise MappingError(str(exc), field=target) from None
            if convert is not None and value is not None:
                try:
                    value = convert(value)
                except ConversionError as exc:
                    raise MappingError(exc.args[0], field=target, value=value) from None
                except (TypeError, ValueError) as exc:
                    raise MappingError(
                        f"converter '{converter_name}' failed on {value!r}: {exc}",
                        field=target,
                        value=value,
                    ) from None
            result[target] = value
        return result


@functools.lru_cache(maxsize=64)
def _compiled(mapping: tuple[FieldMapping, ...]) -> CompiledMapping:
    return CompiledMapping(mapping)


def apply_mapping(
    record: VendorRecord,
    mapping: Iterable[FieldMapping],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Map *record* onto person fields (target keys normalized).

    :raises MappingError: a converter failed or an expression could not be
        evaluated; the error names the target field.
    """
    steps = tuple(mapping)
    try:
        compiled = _compiled(steps)
    except TypeError:  # a mapping object that cannot be hashed
        compiled = CompiledMapping(steps)
    return compiled.apply(record, context)


def record_passes(filters: Iterable[str], variables: Mapping[str, Any]) -> bool:
    """Return whether every filter expression is true for a record's *variables*.

    :raises MappingError: a filter could not be evaluated (it names the
        missing variable or the error).
    """
    for expression in filters:
        try:
            if not _evaluate(expression, variables):
                return False
        except TemplateError as exc:
            raise MappingError(f"filter failed: {exc}") from None
    return True


# ---------------------------------------------------------------------------
# Filters, fast
# ---------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


class _NotSimple(Exception):
    """The expression needs the full sandboxed engine."""


def _plain(node: jinja_nodes.Node) -> Callable[[Mapping[str, Any]], Any]:
    """Turn a filter's syntax tree into a function, for the plain subset only.

    Names, constants, lists, ``not``/``and``/``or``, comparisons and key
    lookups on mappings: the shapes filters take (``not is_bot``,
    ``user_id != 'USLACKBOT'``). Anything else raises :class:`_NotSimple`, and
    the expression runs in the sandbox instead. Nothing here can reach an
    attribute of a Python object, so the sandbox's guarantees hold.
    """
    from jinja2 import nodes as jinja_nodes  # imported once, on the first filter

    if isinstance(node, jinja_nodes.Name):
        return _plain_lookup(node.name)
    if isinstance(node, jinja_nodes.Const):
        value = node.value
        return lambda variables: value
    if isinstance(node, jinja_nodes.List | jinja_nodes.Tuple):
        items = [_plain(item) for item in node.items]
        return lambda variables: [item(variables) for item in items]
    if isinstance(node, jinja_nodes.Not):
        inner = _plain(node.node)
        return lambda variables: not inner(variables)
    if isinstance(node, jinja_nodes.And):
        return _plain_and(_plain(node.left), _plain(node.right))
    if isinstance(node, jinja_nodes.Or):
        return _plain_or(_plain(node.left), _plain(node.right))
    if isinstance(node, jinja_nodes.Compare):
        steps: list[tuple[Callable[[Any, Any], Any], _Plain]] = []
        for operand in node.ops:
            if operand.op not in _COMPARE:
                raise _NotSimple
            steps.append((_COMPARE[operand.op], _plain(operand.expr)))
        return _plain_compare(_plain(node.expr), steps)
    if isinstance(node, jinja_nodes.Getattr | jinja_nodes.Getitem):
        container = _plain(node.node)
        if isinstance(node, jinja_nodes.Getattr):
            key: Any = node.attr
        elif isinstance(node.arg, jinja_nodes.Const):
            key = node.arg.value
        else:
            raise _NotSimple
        return _plain_item(container, key)
    raise _NotSimple


_Plain = Callable[[Mapping[str, Any]], Any]
"""A plain expression as a closure of the record's variables."""


def _plain_lookup(name: str) -> _Plain:
    def lookup(variables: Mapping[str, Any]) -> Any:
        try:
            return variables[name]
        except KeyError:
            raise UndefinedVariableError(name) from None

    return lookup


def _plain_and(left: _Plain, right: _Plain) -> _Plain:
    return lambda variables: left(variables) and right(variables)


def _plain_or(left: _Plain, right: _Plain) -> _Plain:
    return lambda variables: left(variables) or right(variables)


def _plain_compare(first: _Plain, steps: list[tuple[Callable[[Any, Any], Any], _Plain]]) -> _Plain:
    def compare(variables: Mapping[str, Any]) -> bool:
        left = first(variables)
        for test, right_of in steps:
            right = right_of(variables)
            if not test(left, right):
                return False
            left = right
        return True

    return compare


def _plain_item(container: _Plain, key: Any) -> _Plain:
    def item(variables: Mapping[str, Any]) -> Any:
        value = container(variables)
        if (type(value) is not dict and not isinstance(value, Mapping)) or key not in value:
            raise _NotSimple
        return value[key]

    return item


_PYTHON_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "lteq",
    ast.Gt: "gt",
    ast.GtE: "gteq",
    ast.In: "in",
    ast.NotIn: "notin",
}
_JINJA_CONSTANTS = {"true": True, "false": False, "none": None}


def plain_filter(expression: str) -> tuple[_Plain, frozenset[str]] | None:
    """*expression* as a closure and the names it reads, when it is plain; else ``None``.

    The plain subset (names, constants, lists, ``not``/``and``/``or``,
    comparisons, constant keys) is written alike in Jinja and Python, so
    Python's own parser reads it, and a run whose filters are all plain (every
    vendor's defaults) never imports Jinja (30 ms). The closures are the ones
    Jinja's syntax tree gives (:func:`_plain`). Whatever Python could read
    otherwise than Jinja is not plain: ``is``, comments, backslashes, string
    prefixes, and any other kind of node.
    """
    if "#" in expression or "\\" in expression:
        return None
    source = expression.strip()  # (not wrapped in brackets: "a) or (b" is no expression)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):  # ValueError: a NUL in the text
        return None
    names: set[str] = set()
    try:
        return _plain_python(tree.body, source, names), frozenset(names)
    except _NotSimple:
        return None


def _plain_python(node: ast.expr, source: str, names: set[str]) -> _Plain:
    """:func:`_plain` for Python's syntax tree of a plain expression; the rest raises."""
    if isinstance(node, ast.Name):
        if node.id in _JINJA_CONSTANTS:
            named: Any = _JINJA_CONSTANTS[node.id]
            return lambda variables: named
        names.add(node.id)
        return _plain_lookup(node.id)
    if isinstance(node, ast.Constant):
        value: Any = node.value
        if type(value) is str:
            text = ast.get_source_segment(source, node) or ""
            if text[:1] not in ("'", '"'):  # r'', u'', b'': not Jinja
                raise _NotSimple
        elif type(value) not in (int, float, bool) and value is not None:
            raise _NotSimple
        return lambda variables: value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_plain_python(item, source, names) for item in node.elts]
        return lambda variables: [item(variables) for item in items]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _plain_python(node.operand, source, names)
        return lambda variables: not inner(variables)
    if isinstance(node, ast.BoolOp):
        parts = [_plain_python(value, source, names) for value in node.values]
        combined = parts[0]
        for part in parts[1:]:
            combined = (_plain_and if isinstance(node.op, ast.And) else _plain_or)(combined, part)
        return combined
    if isinstance(node, ast.Compare):
        if not all(type(op) in _PYTHON_COMPARE for op in node.ops):
            raise _NotSimple
        return _plain_compare(
            _plain_python(node.left, source, names),
            [
                (_COMPARE[_PYTHON_COMPARE[type(op)]], _plain_python(right, source, names))
                for op, right in zip(node.ops, node.comparators, strict=True)
            ],
        )
    if isinstance(node, ast.Attribute):
        return _plain_item(_plain_python(node.value, source, names), node.attr)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        key = node.slice.value
        if type(key) not in (str, int):
            raise _NotSimple
        return _plain_item(_plain_python(node.value, source, names), key)
    raise _NotSimple


def filter_variables(expression: str) -> set[str]:
    """The names a filter reads (plain ones without Jinja)."""
    plain = plain_filter(expression)
    if plain is not None:
        return set(plain[1])
    from ..templating import variables_of  # Jinja: for a filter beyond the plain subset

    return variables_of("{{ " + expression + " }}")


def compile_filters(filters: Iterable[str]) -> Callable[[Mapping[str, Any]], bool]:
    """Return one function telling whether a record's variables pass all *filters*.

    Plain expressions run as small Python closures; the rest run in the
    sandboxed engine (:func:`record_passes`). Either way a missing variable
    is a :class:`MappingError` naming it.
    """
    expressions = tuple(filters)
    plain = [plain_filter(e) for e in expressions]
    if all(item is not None for item in plain):
        checks = [item[0] for item in plain if item is not None]
    else:
        import jinja2

        try:
            checks = [
                _plain(_parser().parse("{{ " + e + " }}").body[0].nodes[0])  # type: ignore[attr-defined]
                for e in expressions
            ]
        except (_NotSimple, jinja2.TemplateSyntaxError):
            return lambda variables: record_passes(expressions, variables)

    def passes(variables: Mapping[str, Any]) -> bool:
        try:
            for check in checks:  # noqa: SIM110 - all() of a generator costs a frame per record
                if not check(variables):
                    return False
            return True
        except _NotSimple:
            # A lookup the plain subset cannot answer (an attribute of an
            # object): the sandbox decides, with its own rules.
            return record_passes(expressions, variables)
        except UndefinedVariableError as exc:
            raise MappingError(f"filter failed: variable '{exc.name}' is not defined") from None
        except Exception as exc:
            raise MappingError(f"filter failed: {exc.__class__.__name__}: {exc}") from None

    return passes


@functools.cache
def _parser() -> jinja2.Environment:
    import jinja2

    # Parsing only (no rendering), so the plain environment is enough.
    return jinja2.Environment(autoescape=True)


@hookimpl(trylast=True)
def map_record(
    vendor: str,
    record: VendorRecord,
    mapping: tuple[FieldMapping, ...],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Apply *mapping* to *record*: sources, expressions and converters."""
    return apply_mapping(record, mapping, context)


def _evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    from ..templating import evaluate  # Jinja: for the filters the plain subset cannot run

    return evaluate(expression, variables)
