"""Sandboxed templates and expressions, shared by mappings, filters and presets.

Users write ``{{ first_name }} {{ last_name }}``, ``is_bot == false`` or
``{{response['subscription_types'][0].type}}``. They run in Jinja2's
``SandboxedEnvironment``: no access to Python internals (``__class__``,
``__globals__``), no imports, and output bounded in size. A variable that is
not defined is an error naming it, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import OomnitzaConnectError

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


class TemplateError(OomnitzaConnectError):
    """A template or expression could not be compiled or evaluated."""

    def __init__(self, message: str, *, template: str | None = None) -> None:
        self.template = template
        suffix = f" in template {template!r}" if template else ""
        super().__init__(f"{message}{suffix}")


class UndefinedVariableError(TemplateError):
    """A template used a variable that was not given."""

    def __init__(self, name: str, *, template: str | None = None) -> None:
        self.name = name
        super().__init__(f"variable '{name}' is not defined", template=template)


class _NamedStrictUndefined(jinja2.StrictUndefined):
    """StrictUndefined that raises our error, naming the missing variable."""

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UndefinedVariableError(str(self._undefined_name or "?"))

    __str__ = _fail_with_undefined_error
    __iter__ = _fail_with_undefined_error
    __bool__ = _fail_with_undefined_error
    __eq__ = _fail_with_undefined_error
    __len__ = _fail_with_undefined_error


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
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
        raise UndefinedVariableError(exc.name, template=template) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", template=template) from None
    except TemplateError:
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
        raise UndefinedVariableError(exc.name, template=expression) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", template=expression) from None
    except Exception as exc:
        raise TemplateError(f"{exc.__class__.__name__}: {exc}", template=expression) from None
    if isinstance(value, jinja2.Undefined):
        raise UndefinedVariableError(value._undefined_name or "?", template=expression)
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
