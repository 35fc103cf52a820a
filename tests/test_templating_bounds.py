"""Issue 14, defect 9: render and evaluate are bounded in memory and time.

Each case would allocate hundreds of megabytes or run for minutes if it were computed;
each must be refused quickly with a TemplateError, by render and evaluate alike.
"""

from __future__ import annotations

import resource
import time

import pytest

from oomnitza_connect.templating import MAX_OUTPUT_CHARS, TemplateError, evaluate, render

HUGE = "10**9"

OVERSIZED_EXPRESSIONS = [
    f"'x'.center({HUGE})|length",
    f"'x'.ljust({HUGE})|length",
    f"'x'.rjust({HUGE})|length",
    f"'x'.zfill({HUGE})|length",
    f"'x'|center({HUGE})|length",
    f"('{{:>{10**9}}}'.format(1))|length",
    f"('%{10**9}d' % 1)|length",
    f"('%*d' % ({HUGE}, 1))|length",
    f"('%{10**9}d'|format(1))|length",
    "(('x' * 1000000)|replace('x', 'xxxx'))|length",
    "(('x' * 1000000).replace('x', 'xxxx'))|length",
    "(('\\n' * 500000)|indent(10))|length",
    "(('y' * 1000)|indent(" + HUGE + "))|length",
    "(('x' * 1000000)|list|join('abc'))|length",
    "('abc'.join('x' * 1000000))|length",
    "('\\t' * 1000).expandtabs(" + HUGE + ")|length",
    "(range(10)|batch(" + HUGE + ", 'x')|list)|length",
]


@pytest.mark.parametrize("expression", OVERSIZED_EXPRESSIONS)
def test_evaluate_refuses_to_build_an_oversized_value(expression: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"too large|larger than"):
        evaluate(expression, {})
    assert time.monotonic() - started < 3
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200_000, f"{expression} allocated about {grown_kib // 1024} MiB"


@pytest.mark.parametrize("expression", OVERSIZED_EXPRESSIONS)
def test_render_refuses_the_same(expression: str) -> None:
    with pytest.raises(TemplateError, match=r"too large|larger than"):
        render("{{ " + expression + " }}", {})


def test_evaluate_refuses_a_result_beyond_the_output_bound() -> None:
    with pytest.raises(TemplateError, match="larger than"):
        evaluate("big ~ big", {"big": "x" * (MAX_OUTPUT_CHARS // 2 + 10)})


def test_nested_loops_end_within_the_time_budget() -> None:
    template = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"
    )
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"too much work|took longer"):
        render(template, {})
    assert time.monotonic() - started < 10


def test_loops_over_variables_count_too() -> None:
    items = list(range(5000))
    template = "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match=r"too much work|took longer"):
        render(template, {"items": items})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'ab'.center(6, '*') }}", "**ab**"),
        ("{{ '%05d' % 42 }}", "00042"),
        ("{{ 'Order 123456789: {}'.format('ok') }}", "Order 123456789: ok"),
        ("{{ '%s costs 99999999' % 'x' }}", "x costs 99999999"),
        ("{{ ['a', 'b']|join(', ') }}", "a, b"),
        ("{{ 'a-b'.replace('-', '+') }}", "a+b"),
        ("{{ 'x\ny'|indent(2, first=true) }}", "  x\n  y"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ '{:>5}'.format('x') }}", "    x"),
    ],
)
def test_ordinary_templates_still_work(template: str, expected: str) -> None:
    assert render(template, {}) == expected
