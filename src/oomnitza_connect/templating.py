"""Sandboxed templates and expressions, shared by mappings, filters and presets.

Users write ``{{ first_name }} {{ last_name }}``, ``is_bot == false`` or
``{{response['subscription_types'][0].type}}``. They run in Jinja2's
``SandboxedEnvironment``: no access to Python internals (``__class__``,
``__globals__``), no imports, and bounded in memory and time: no operator,
string method or filter builds a value larger than :data:`MAX_OUTPUT_CHARS`
(checked before it runs), every loop iteration and call counts against
:data:`MAX_STEPS`, and a render or evaluation ends after :data:`MAX_SECONDS`.
A variable that is not defined is an error naming it, never an empty string.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError, UndefinedVariableError

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_SECONDS",
    "MAX_STEPS",
    "TemplateError",
    "UndefinedVariableError",
    "evaluate",
    "render",
    "render_value",
    "required_equalities",
    "unbalanced_bracket",
    "variables_of",
]

MAX_OUTPUT_CHARS = 1_000_000
"""The largest string or list a template may build, and the longest output."""
MAX_STEPS = 2_000_000
"""Loop iterations plus calls one render or evaluation may make."""
MAX_SECONDS = 5.0
"""The longest one render or evaluation may run."""
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


def _owner_of(undefined: jinja2.Undefined) -> str | None:
    """Describe the value an undefined attribute was looked up on, if any."""
    owner = undefined._undefined_obj
    if owner is jinja2.utils.missing:
        return None
    return "None" if owner is None else f"a {type(owner).__name__} value"


class _NamedStrictUndefined(jinja2.StrictUndefined):
    """StrictUndefined that raises our error, naming the missing variable."""

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UndefinedVariableError(str(self._undefined_name or "?"), owner=_owner_of(self))

    __str__ = _fail_with_undefined_error
    __iter__ = _fail_with_undefined_error
    __bool__ = _fail_with_undefined_error
    __eq__ = _fail_with_undefined_error
    __len__ = _fail_with_undefined_error


def _too_large(operator: str, left: Any, right: Any) -> bool:
    """Tell, before computing it, whether ``left <operator> right`` would be too big."""
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                return len(sequence) * count > MAX_OUTPUT_CHARS
        return False
    if operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            return len(left) + len(right) > MAX_OUTPUT_CHARS
        return False
    # "**": the number of digits of an integer power.
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        return right * math.log10(abs(left)) > MAX_OUTPUT_CHARS
    return False


# -- the time budget --------------------------------------------------------------


class _Budget:
    __slots__ = ("deadline", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateError(f"too much work: more than {MAX_STEPS} loop steps and calls")
        # The clock is read every 1024 steps: cheap, and still at most a few ms late.
        if not self.steps & 1023 and time.monotonic() > self.deadline:
            raise TemplateError(f"took longer than {MAX_SECONDS:g} s")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "oomnitza_connect_template_budget", default=None
)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


def _bounded_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Wraps the sequence of every ``{% for %}`` (inserted at parse time)."""
    for item in iterable:
        _spend()
        yield item


# -- the memory bound -------------------------------------------------------------

# Widths and precisions in printf-style (``%-999d``, ``%.999f``) and format-spec
# (``{:>999}``, ``{0:999.3}``) conversions; other digits are the text's own.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_DIGITS = re.compile(r"\d+")


def _refuse(what: str) -> NoReturn:
    raise TemplateError(
        f"the result of {what} would be too large (more than {MAX_OUTPUT_CHARS} characters "
        "or items)"
    )


def _check_numbers(what: str, values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_OUTPUT_CHARS:
            _refuse(what)


def _check_format_string(what: str, text: str) -> None:
    """A width or precision in a format string (``'%999999999d'``, ``'{:>999999999}'``)."""
    numbers = [n for pair in _PERCENT_SPEC.findall(text) for n in pair if n]
    for spec in _BRACE_SPEC.findall(text):
        numbers.extend(_DIGITS.findall(spec))
    for number in numbers:
        if len(number) > 7 or int(number) > MAX_OUTPUT_CHARS:
            _refuse(what)


def _text_length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _check_str_call(text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a str method call whose result would exceed the bound, before it runs."""
    _check_numbers(f"str.{name}", (*args, *kwargs.values()))
    if name in ("format", "format_map"):
        _check_format_string(f"str.{name}", text)
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and text.count("\t") * size + len(text) > MAX_OUTPUT_CHARS:
            _refuse("str.expandtabs")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        growth = len(new) - len(old)
        if growth > 0 and len(text) + text.count(old) * growth > MAX_OUTPUT_CHARS:
            _refuse("replace")


def _check_join(separator: Any, items: list[Any]) -> None:
    size = len(separator) * max(len(items) - 1, 0) if isinstance(separator, str) else 0
    for item in items:
        size += _text_length(item)
        if size > MAX_OUTPUT_CHARS:
            _refuse("join")


def _check_percent(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _check_format_string("'%'", left)
        values = right if isinstance(right, tuple | list) else (right,)
        _check_numbers("'%'", values)


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a built-in filter so that it refuses to build an oversized value."""
    passes_context = getattr(original, "jinja_pass_arg", None) is not None

    @functools.wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _spend()
        values = list(args[1:] if passes_context else args)
        _check_numbers(f"the filter '{name}'", (*values[1:], *kwargs.values()))
        if name == "join" and values:
            items = list(values[0])
            separator = values[1] if len(values) > 1 else kwargs.get("d", "")
            _check_join(separator, items)
            leading = list(args[:1]) if passes_context else []
            return original(*leading, items, *values[1:], **kwargs)
        if name == "replace" and len(values) >= 3:
            _check_replace(values[0], values[1], values[2])
        elif name == "format" and values:
            _check_percent(values[0], tuple(values[1:]))
        elif name == "indent" and values:
            width = values[1] if len(values) > 1 else kwargs.get("width", 4)
            text = str(values[0])
            per_line = len(width) if isinstance(width, str) else width
            if (
                isinstance(per_line, int)
                and (text.count("\n") + 1) * per_line + len(text) > MAX_OUTPUT_CHARS
            ):
                _refuse("the filter 'indent'")
        elif name == "center" and values:
            width = values[1] if len(values) > 1 else kwargs.get("width", 80)
            _check_numbers("the filter 'center'", (width,))
        return original(*args, **kwargs)

    return bounded


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox whose operators refuse to build values larger than the output bound.

    ``'a' * 10**12`` or ``10 ** 10**10`` would exhaust memory or CPU before
    the output could be measured, so they are checked before they run (this
    also keeps Jinja from folding them at compile time).
    """

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "%":
            _check_percent(left, right)
        elif _too_large(operator, left, right):
            raise TemplateError(
                f"the result of '{operator}' would be too large "
                f"(more than {MAX_OUTPUT_CHARS} characters or items)"
            )
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args:
                items = list(args[0])
                _check_join(owner, items)
                args = (items, *args[1:])
            else:
                _check_str_call(owner, name, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format_string(f"str.{attribute}", obj)
        return super().getattr(obj, attribute)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every loop counts its steps: nested loops over range() would otherwise
        # run for hours without producing a byte of output.
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno
            )
        return tree


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedEnvironment(
        undefined=_NamedStrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["lower"] = lambda v: str(v).lower()
    for name, original in list(env.filters.items()):
        env.filters[name] = _bounded_filter(name, original)
    env.filters[_LOOP_FILTER] = _bounded_loop
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
    return env


_LOOP_FILTER = "oomnitza_connect_bounded_loop"


_ENV = _environment()


_OPENERS = {"]": "[", ")": "(", "}": "{"}


def unbalanced_bracket(source: str) -> int | None:
    """Return the index of the first bracket in *source* that has no partner, if any.

    Brackets inside quoted strings do not count; ``{{`` and ``}}`` delimiters
    pair like any other braces. Jinja reports "unexpected ']'" without a
    column, so this finds the column to point at.
    """
    stack: list[tuple[str, int]] = []
    quote: str | None = None
    escaped = False
    for index, char in enumerate(source):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in "[({":
            stack.append((char, index))
        elif char in _OPENERS:
            if not stack or stack[-1][0] != _OPENERS[char]:
                return index
            stack.pop()
    return stack[0][1] if stack else None


def _syntax_error(exc: jinja2.TemplateSyntaxError, source: str) -> TemplateError:
    message = f"syntax error: {exc.message}"
    column = unbalanced_bracket(source)
    if column is not None:
        message += (
            f" at character {column + 1}, the stray '{source[column]}' here: "
            f"{source[: column + 1]} <--"
        )
    return TemplateError(message, template=source)


@lru_cache(maxsize=512)
def _compile_template(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, source) from None


@lru_cache(maxsize=512)
def _compile_expression(source: str) -> Any:
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, source) from None


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Render *template* to a string.

    :raises UndefinedVariableError: the template uses a variable that is not given.
    :raises TemplateError: bad syntax, a sandbox violation or output too large.
    """
    compiled = _compile_template(template)
    pieces: list[str] = []
    size = 0
    budget = _BUDGET.set(_Budget())
    try:
        for piece in compiled.generate(dict(variables)):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(
                    f"output is larger than {MAX_OUTPUT_CHARS} characters", template=template
                )
            pieces.append(piece)
    except UndefinedVariableError as exc:
        raise UndefinedVariableError(exc.name, template=template, owner=exc.owner) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", template=template) from None
    except TemplateError as exc:
        if exc.template is None:
            raise TemplateError(str(exc), template=template) from None
        raise
    except Exception as exc:
        raise TemplateError(f"{exc.__class__.__name__}: {exc}", template=template) from None
    finally:
        _BUDGET.reset(budget)
    return "".join(pieces)


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression (``is_bot == false``) and return its value."""
    compiled = _compile_expression(expression)
    budget = _BUDGET.set(_Budget())
    try:
        value = compiled(**dict(variables))
    except UndefinedVariableError as exc:
        raise UndefinedVariableError(exc.name, template=expression, owner=exc.owner) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", template=expression) from None
    except TemplateError as exc:
        raise TemplateError(str(exc), template=expression) from None
    except Exception as exc:
        raise TemplateError(f"{exc.__class__.__name__}: {exc}", template=expression) from None
    finally:
        _BUDGET.reset(budget)
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise TemplateError(
            f"the value is larger than {MAX_OUTPUT_CHARS} characters or items",
            template=expression,
        )
    if isinstance(value, jinja2.Undefined):
        raise UndefinedVariableError(
            value._undefined_name or "?", template=expression, owner=_owner_of(value)
        )
    return value


def render_value(template: str, variables: Mapping[str, Any]) -> Any:
    """Render *template*, keeping the native type when it is one ``{{ expression }}``.

    ``{{response}}`` returns the response object itself and
    ``{{response.total_licenses}}`` an int; ``Hello {{name}}`` returns a string.
    """
    match = _SINGLE_EXPRESSION.match(template)
    if match and "{{" not in match.group("expr") and "{%" not in template:
        return evaluate(match.group("expr").strip(), variables)
    return render(template, variables)


def variables_of(template: str) -> set[str]:
    """Return the top-level variable names *template* refers to."""
    from jinja2 import meta

    try:
        parsed = _ENV.parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, template) from None
    return set(meta.find_undeclared_variables(parsed))


def required_equalities(expression: str) -> list[tuple[str, str | None, Any]]:
    """Return the ``name == constant`` terms *expression* cannot be true without.

    Only terms joined by ``and`` at the top level count: ``a == 1 and (b == 2
    or c)`` gives ``a`` alone. Each is ``(name, key, value)``:
    ``department == 'Sales'`` is ``("department", None, "Sales")`` and
    ``person['Cost Center'] == 'X'`` is ``("person", "Cost Center", "X")``;
    the constant is a string or an integer. A destination may narrow what it
    reads with them (Oomnitza's ``filter``); the expression stays the final word.

    :raises TemplateError: *expression* is not a valid expression.
    """
    try:
        parsed = _ENV.parse("{{ " + expression + " }}")
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, expression) from None
    body = parsed.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return []
    found: list[tuple[str, str | None, Any]] = []
    pending: list[nodes.Node] = [body[0].nodes[0]]
    while pending:
        node = pending.pop()
        if isinstance(node, nodes.And):
            pending += [node.right, node.left]
            continue
        if not isinstance(node, nodes.Compare) or len(node.ops) != 1 or node.ops[0].op != "eq":
            continue
        for side, other in ((node.expr, node.ops[0].expr), (node.ops[0].expr, node.expr)):
            if not isinstance(other, nodes.Const):
                continue
            value = other.value
            if isinstance(value, bool) or not isinstance(value, str | int):
                continue
            if isinstance(side, nodes.Name):
                found.append((side.name, None, value))
            elif (
                isinstance(side, nodes.Getitem)
                and isinstance(side.node, nodes.Name)
                and isinstance(side.arg, nodes.Const)
                and isinstance(side.arg.value, str)
            ):
                found.append((side.node.name, side.arg.value, value))
            break
    return found
