"""Sandboxed templates: values, native types, named undefined variables, no escapes."""

from __future__ import annotations

import pytest

from oomnitza_connect.templating import (
    MAX_OUTPUT_CHARS,
    TemplateError,
    UndefinedVariableError,
    evaluate,
    render,
    render_value,
    variables_of,
)


def test_render_fills_variables_and_filters() -> None:
    assert render("{{ first }} {{ last }}", {"first": "Ada", "last": "Lovelace"}) == "Ada Lovelace"
    assert render("{{ email | lower }}", {"email": "ADA@Example.COM"}) == "ada@example.com"
    assert render("{% if admin %}Admin{% else %}User{% endif %}", {"admin": False}) == "User"


def test_render_value_keeps_native_types_for_a_single_expression() -> None:
    response = {"total_licenses": 25, "items": [{"type": "pro"}]}
    assert render_value("{{response}}", {"response": response}) == response
    assert render_value("{{ response.total_licenses }}", {"response": response}) == 25
    assert render_value("{{response['items'][0].type}}", {"response": response}) == "pro"
    assert render_value("{{ a }}-{{ b }}", {"a": 1, "b": 2}) == "1-2"
    assert render_value("plain text", {}) == "plain text"


def test_evaluate_returns_the_value_of_a_filter_expression() -> None:
    assert evaluate("is_bot == false and not deleted", {"is_bot": False, "deleted": False}) is True
    assert evaluate("role in ['admin', 'owner']", {"role": "member"}) is False


@pytest.mark.parametrize(
    ("call", "template"),
    [
        (render, "Hello {{ name }}"),
        (render_value, "{{ name }}"),
        (evaluate, "name == 'x'"),
        (render, "{% if name %}x{% endif %}"),
    ],
)
def test_an_undefined_variable_is_an_error_naming_it(call: object, template: str) -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        call(template, {"other": 1})  # type: ignore[operator]
    assert caught.value.name == "name"
    assert str(caught.value).startswith("variable 'name' is not defined in template ")


@pytest.mark.parametrize(
    ("call", "template", "variables", "message"),
    [
        (evaluate, "email.endswith('@x.com')", {"email": None}, "None has no attribute or key"),
        (evaluate, "profile.title", {"profile": {}}, "a dict value has no attribute or key"),
        (render_value, "{{ response.user.id }}", {"response": {}}, "a dict value has no"),
    ],
)
def test_a_missing_attribute_names_the_value_not_a_variable(
    call: object, template: str, variables: dict[str, object], message: str
) -> None:
    # A filter such as email.endswith(...) on a record without an email used
    # to fail with "variable 'endswith' is not defined".
    with pytest.raises(UndefinedVariableError) as caught:
        call(template, variables)  # type: ignore[operator]
    assert str(caught.value).startswith(message)
    assert "variable" not in str(caught.value)


def test_a_missing_attribute_of_a_given_variable_is_not_silently_empty() -> None:
    with pytest.raises(TemplateError):
        render("{{ user.nickname }}", {"user": {}})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ items.append(1) }}",
    ],
)
def test_the_sandbox_refuses_python_internals_and_mutation(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, {"items": []})


def test_output_size_is_bounded() -> None:
    with pytest.raises(TemplateError, match=f"larger than {MAX_OUTPUT_CHARS} characters"):
        render("{% for i in range(2000) %}{{ chunk }}{% endfor %}", {"chunk": "x" * 1000})


def test_syntax_errors_say_so_and_show_the_template() -> None:
    with pytest.raises(TemplateError, match=r"syntax error: .* in template '\{\{ name '"):
        render("{{ name ", {})
    with pytest.raises(TemplateError, match="syntax error"):
        evaluate("a ==", {})
    with pytest.raises(TemplateError, match="syntax error"):
        variables_of("{% if %}")


def test_variables_of_lists_the_top_level_names() -> None:
    assert variables_of("/users/{{ user_id }}?q={{ query.text }}") == {"user_id", "query"}
    assert variables_of("{% for u in users %}{{ u.id }}{% endfor %}") == {"users"}
    assert variables_of("no variables") == set()


def test_errors_inside_expressions_become_template_errors() -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        evaluate("1 / zero", {"zero": 0})


@pytest.mark.parametrize(
    "expression",
    [
        f"'a' * {MAX_OUTPUT_CHARS + 1}",
        f"{MAX_OUTPUT_CHARS + 1} * [0]",
        "10 ** 2000000",
        f"('a' * {MAX_OUTPUT_CHARS // 2 + 1}) + ('b' * {MAX_OUTPUT_CHARS // 2 + 1})",
    ],
)
def test_operators_cannot_build_a_huge_value(expression: str) -> None:
    # Checked before the value is built: 'a' * 10**12 would exhaust memory
    # long before the output bound of render() could look at it.
    with pytest.raises(TemplateError, match="too large"):
        evaluate(expression, {})
    with pytest.raises(TemplateError, match="too large"):
        render("{{ " + expression + " }}", {})
