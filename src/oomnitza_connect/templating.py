"""Sandboxed templates and expressions, shared by mappings, filters and presets.

Users write ``{{ first_name }} {{ last_name }}``, ``is_bot == false`` or
``{{response['subscription_types'][0].type}}``. They run in Jinja2's
``SandboxedEnvironment``: no access to Python internals (``__class__``,
``__globals__``), no imports, and output bounded in size. A variable that is
not defined is an error naming it, never an empty string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError, UndefinedVariableError

__all__ = [
    "MAX_OUTPUT_CHARS",
    "TemplateError",
    "UndefinedVariableError",
    "evaluate",
    "render",
    "render_value",
    "variables_of",
]

MAX_OUTPUT_CHARS = 1_000_000
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


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox whose operators refuse to build values larger than the output bound.

    ``'a' * 10**12`` or ``10 ** 10**10`` would exhaust memory or CPU before
    the output could be measured, so they are checked before they run (this
    also keeps Jinja from folding them at compile time).
    """

    intercepted_binops = frozenset({"*", "+", "**"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if _too_large(operator, left, right):
            raise TemplateError(
                f"the result of '{operator}' would be too large "
                f"(more than {MAX_OUTPUT_CHARS} characters or items)"
            )
        return super().call_binop(context, operator, left, right)


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedEnvironment(
        undefined=_NamedStrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["lower"] = lambda v: str(v).lower()
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
    return env


_ENV = _environment()


@lru_cache(maxsize=512)
def _compile_template(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error: {exc.message}", template=source) from None


@lru_cache(maxsize=512)
def _compile_expression(source: str) -> Any:
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error: {exc.message}", template=source) from None


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Render *template* to a string.

    :raises UndefinedVariableError: the template uses a variable that is not given.
    :raises TemplateError: bad syntax, a sandbox violation or output too large.
    """
    compiled = _compile_template(template)
    pieces: list[str] = []
    size = 0
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
    return "".join(pieces)


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression (``is_bot == false``) and return its value."""
    compiled = _compile_expression(expression)
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
        raise TemplateError(f"syntax error: {exc.message}", template=template) from None
    return set(meta.find_undeclared_variables(parsed))
