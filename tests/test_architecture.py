"""The architecture holds: no import cycles, layers in order, vendors without guards, budgets.

These read the source, not the behaviour: they fail the moment a module
reaches across a layer or a vendor plugin grows the plumbing the declarative
description exists to remove.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from oomnitza_connect.scaffold import render_plugin

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "src" / "oomnitza_connect"
PACKAGE = "oomnitza_connect"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _core_modules() -> dict[str, Path]:
    return {
        _module_name(path): path for path in CORE.rglob("*.py") if "templates" not in path.parts
    }


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """The core modules *path* imports (``from x import y`` counts ``x.y`` when a module)."""
    modules = _core_modules()
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # type-only imports cannot form a cycle at run time
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
            elif isinstance(node, ast.ImportFrom):
                target = (
                    _resolve(name, is_package, node.level, node.module)
                    if node.level
                    else node.module or ""
                )
                if not target.startswith(PACKAGE):
                    continue
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in modules else target)
            elif not module_level_only:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        visit([c for c in children if isinstance(c, ast.stmt)])
            elif isinstance(node, ast.ClassDef | ast.Try | ast.With | ast.If):
                visit(node.body)  # still module level at run time

    visit(tree.body)
    found.discard(name)
    return found


def test_the_core_has_no_import_cycles() -> None:
    graph = {name: _imports(path, module_level_only=True) for name, path in _core_modules().items()}
    # A package imports its submodules only through its own __init__: leave the
    # parent-package edge out, as Python initialises the parent first anyway.
    for name, edges in graph.items():
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        if node in done:
            return
        if node in visiting:
            cycles.append([*visiting[visiting.index(node) :], node])
            return
        visiting.append(node)
        for edge in sorted(graph.get(node, ())):
            walk(edge)
        visiting.pop()
        done.add(node)

    for module in sorted(graph):
        walk(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(m for m in _core_modules() if m != PACKAGE))
def test_no_core_module_imports_the_package_init(module: str) -> None:
    path = _core_modules()[module]
    assert PACKAGE not in _imports(path, module_level_only=False), (
        f"{module} imports the package __init__; import the module that defines the name"
    )


def test_no_core_module_outside_the_test_kit_and_the_cli_imports_the_test_kit() -> None:
    offenders = {
        module: sorted(i for i in _imports(path, module_level_only=False) if ".testing" in i)
        for module, path in _core_modules().items()
        if not module.startswith((f"{PACKAGE}.testing", f"{PACKAGE}.cli"))
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def _exception_classes(path: Path) -> list[str]:
    return [
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")  # private control flow, never raised to users
        and any(ast.unparse(base).endswith(("Error", "Exception")) for base in node.bases)
    ]


def test_errors_live_in_one_module() -> None:
    defined = {
        _module_name(path): _exception_classes(path)
        for path in CORE.rglob("*.py")
        # The CLI's click exceptions are exit codes, not SDK errors.
        if not {"templates", "testing", "cli"} & set(path.parts)
    }
    elsewhere = {module: names for module, names in defined.items() if names}
    assert set(elsewhere) == {f"{PACKAGE}.errors"}, elsewhere


def test_no_vendor_guards_remain_in_plugins_or_the_template() -> None:
    guarded = [
        str(path.relative_to(ROOT))
        for path in [*ROOT.glob("plugins/*/src/**/*.py"), *CORE.glob("templates/**/*.j2")]
        if re.search(r"if vendor\s*!=", path.read_text())
    ]
    assert guarded == []


def _runtime_lines(paths: list[Path]) -> int:
    return sum(len(path.read_text().splitlines()) for path in paths)


def test_slack_runs_on_the_description_within_its_budget() -> None:
    package = ROOT / "plugins" / "slack" / "src" / "oomnitza_connect_slack"
    runtime = [p for p in package.glob("*.py") if p.name != "emulator.py"]
    assert _runtime_lines(runtime) <= 600


def test_talkdesk_runs_on_the_description_within_its_budget() -> None:
    # Its emulator and its app.installed import (module and command) are not runtime plumbing.
    package = ROOT / "plugins" / "talkdesk" / "src" / "oomnitza_connect_talkdesk"
    outside = {"emulator.py", "cli.py", "installation.py"}
    runtime = [p for p in package.glob("*.py") if p.name not in outside]
    assert not {"client.py", "mapping.py", "auth.py", "plugin.py"} & {p.name for p in runtime}
    assert _runtime_lines(runtime) <= 600


def test_a_simple_rest_vendor_is_at_most_150_lines(tmp_path: Path) -> None:
    # The rendered template is that vendor: bearer token, page/per_page, 10 fields, 2 presets.
    target = render_plugin("acme", tmp_path)
    package = target / "src" / "oomnitza_connect_acme"
    vendor_source = (package / "vendor.py").read_text()
    assert vendor_source.count("FieldSpec(") == 10
    assert vendor_source.count("Preset(") == 2
    assert "PageNumberPaging()" in vendor_source
    runtime = [p for p in package.glob("*.py") if p.name != "emulator.py"]
    assert _runtime_lines(runtime) <= 150


def test_the_slack_emulator_runs_on_the_test_kit() -> None:
    # Slack's emulator reuses the test kit's OAuth server, fake people and per-user changes
    # instead of its own copies. Issue 10 holds it to 600 lines.
    from oomnitza_connect_slack.emulator import SlackEmulator

    from oomnitza_connect.testing.fakes import FakePeople
    from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin
    from oomnitza_connect.testing.users import GeneratedUsers

    package = ROOT / "plugins" / "slack" / "src" / "oomnitza_connect_slack"
    assert issubclass(SlackEmulator, OAuthTokenEndpointMixin)
    assert issubclass(SlackEmulator, GeneratedUsers)
    assert isinstance(SlackEmulator(users=1).people, FakePeople)
    assert _runtime_lines([package / "emulator.py"]) <= 600


def test_intercom_runs_on_the_description_within_its_budget() -> None:
    # Its emulator is not runtime plumbing; the bridge, client, model and auth modules are gone.
    from importlib.metadata import entry_points

    from oomnitza_connect_intercom import IntercomVendor, vendor

    from oomnitza_connect.vendors import RestVendor, SinglePage

    package = ROOT / "plugins" / "intercom" / "src" / "oomnitza_connect_intercom"
    runtime = [p for p in package.glob("*.py") if p.name != "emulator.py"]
    assert not {"client.py", "mapping.py", "auth.py", "plugin.py"} & {p.name for p in runtime}
    assert _runtime_lines(runtime) <= 600
    (entry_point,) = entry_points(group="oomnitza_connect", name="intercom")
    assert entry_point.value == "oomnitza_connect_intercom:vendor"
    assert entry_point.load() is vendor
    assert isinstance(vendor, IntercomVendor)
    assert isinstance(vendor, RestVendor)
    assert isinstance(vendor.users.paging, SinglePage)


def test_the_intercom_emulator_runs_on_the_test_kit() -> None:
    # The test kit's OAuth server and fake people, not copies of its own.
    from oomnitza_connect_intercom.emulator import IntercomEmulator

    from oomnitza_connect.testing.fakes import FakePeople
    from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin

    package = ROOT / "plugins" / "intercom" / "src" / "oomnitza_connect_intercom"
    emulator = IntercomEmulator(users=3, seed=5)
    assert issubclass(IntercomEmulator, OAuthTokenEndpointMixin)
    assert isinstance(emulator.people, FakePeople)
    admin = emulator.admin(emulator.admin_ids()[0])
    assert admin is not None
    assert admin["name"] == emulator.people[0].full_name
    assert _runtime_lines([package / "emulator.py"]) <= 660
