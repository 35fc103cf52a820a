"""Every hook is typed, documented where it is declared, and on the reference page."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from oomnitza_connect import hookspecs

HOOKS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "hooks.md"
SPEC_MARKER = f"{hookspecs.PROJECT_NAME}_spec"


def _specs() -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, SPEC_MARKER)
    }


def _sections() -> dict[str, str]:
    text = HOOKS_PAGE.read_text(encoding="utf-8")
    parts = re.split(r"^## `(\w+)`\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


HOOKS = sorted(_specs())


def test_the_hookspecs_module_declares_the_known_hooks() -> None:
    # Guards the introspection itself: an empty list would make every test below vacuous.
    assert {"register_vendors", "authenticate", "list_users", "map_record"} <= set(HOOKS)


def test_the_reference_page_has_no_section_for_a_hook_that_does_not_exist() -> None:
    assert set(_sections()) <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_section_with_signature_rule_and_example(name: str) -> None:
    sections = _sections()
    assert name in sections, f"docs/plugins/hooks.md has no '## `{name}`' section"
    section = sections[name]
    assert f"{name}(" in section, "the section does not show the signature"
    assert re.search(rf"def {name}\(", section), "the section has no example implementation"
    first_result = hookspecs_first_result(name)
    rule = "**First result wins.**" if first_result else "**All results**"
    assert rule in section, f"the section must say {rule!r}"


def hookspecs_first_result(name: str) -> bool:
    return bool(getattr(_specs()[name], SPEC_MARKER).get("firstresult"))


@pytest.mark.parametrize("name", HOOKS)
def test_every_spec_is_typed_and_documents_its_arguments(name: str) -> None:
    spec = _specs()[name]
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, "no return type"
    doc = inspect.getdoc(spec) or ""
    first_line = doc.splitlines()[0] if doc else ""
    assert re.match(r"^(Register|Open|Return|Map)\b", first_line), (
        f"the first line should be imperative: {first_line!r}"
    )
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{parameter.name} untyped"
        assert f":param {parameter.name}:" in doc, f"no :param {parameter.name}: in the docstring"
    assert ":returns:" in doc
    if hookspecs_first_result(name):
        assert "The first non-``None`` result wins." in doc
    else:
        assert "All implementations are called" in doc or "All results are collected" in doc
