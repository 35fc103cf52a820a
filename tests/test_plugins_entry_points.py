"""Entry-point loading against real installed distributions.

Each test "installs" distributions the way an installer does: a directory on
``sys.path`` holding ``<name>.dist-info`` (METADATA and entry_points.txt) and
the plugin module, which ``importlib.metadata`` finds like any other.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oomnitza_connect import PluginError, UnknownVendorError, get_connector, list_connectors
from oomnitza_connect import plugins as plugin_system

VENDOR_MODULE = """
from oomnitza_connect import AuthKind, VendorInfo, hookimpl

@hookimpl
def register_vendors(register):
    register(VendorInfo(name="{vendor}", display_name="{vendor}", base_url="https://x.example",
                        auth_kinds=(AuthKind.API_KEY,)))
"""

Install = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Return install(dist, entry_name, module_name, source) and load entry points afresh."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(plugin_system.LOAD_ENTRY_POINTS_ENV, "1")
    # Only the distributions made here: the repository's own plugins are installed too.
    already_installed = {
        entry_point.name
        for entry_point in importlib.metadata.entry_points(group="oomnitza_connect")
    }
    monkeypatch.setenv(plugin_system.BLOCK_ENV, ",".join(sorted(already_installed)))
    modules: list[str] = []

    def install_distribution(dist: str, entry_name: str, module: str, source: str) -> None:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[oomnitza_connect]\n{entry_name} = {module}\n")
        modules.append(module)

    plugin_system.reset_plugin_manager()
    yield install_distribution
    plugin_system.reset_plugin_manager()
    for module in modules:
        sys.modules.pop(module, None)


def test_installed_plugins_load_on_first_use_and_only_once(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    calls = []
    real_entry_points = importlib.metadata.entry_points

    def counting_entry_points(**kwargs: str) -> importlib.metadata.EntryPoints:
        calls.append(kwargs)
        return real_entry_points(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting_entry_points)
    assert "alpha_plugin" not in sys.modules  # nothing is loaded at import time
    first = plugin_system.get_plugin_manager()
    second = plugin_system.get_plugin_manager()
    assert first is second
    assert [c.name for c in list_connectors()] == ["alpha"]
    assert [c.name for c in list_connectors()] == ["alpha"]
    assert calls == [{"group": "oomnitza_connect"}]
    (loaded,) = plugin_system.loaded_distributions()
    assert loaded == plugin_system.PluginDistribution(
        "alpha", "oomnitza-connect-alpha", "1.2.3", "alpha_plugin"
    )


def test_the_allow_list_loads_only_the_named_plugins(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    install("oomnitza-connect-beta", "beta", "beta_plugin", VENDOR_MODULE.format(vendor="beta"))
    monkeypatch.setenv(plugin_system.ALLOW_ENV, "beta")
    assert [c.name for c in list_connectors()] == ["beta"]
    assert "alpha_plugin" not in sys.modules


def test_the_allow_list_accepts_distribution_names(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    install("oomnitza-connect-beta", "beta", "beta_plugin", VENDOR_MODULE.format(vendor="beta"))
    monkeypatch.setenv(plugin_system.ALLOW_ENV, " oomnitza-connect-alpha , ")
    assert [c.name for c in list_connectors()] == ["alpha"]


def test_the_block_list_skips_the_named_plugins(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    install("oomnitza-connect-beta", "beta", "beta_plugin", VENDOR_MODULE.format(vendor="beta"))
    blocked = os.environ[plugin_system.BLOCK_ENV]
    monkeypatch.setenv(plugin_system.BLOCK_ENV, f"{blocked},alpha")
    assert [c.name for c in list_connectors()] == ["beta"]
    assert "alpha_plugin" not in sys.modules
    assert plugin_system.get_plugin_manager().is_blocked("alpha")


def test_tracing_logs_every_hook_call(
    install: Install, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    monkeypatch.setenv(plugin_system.TRACE_ENV, "1")
    with caplog.at_level(logging.DEBUG, logger="oomnitza_connect.plugins"):
        get_connector("alpha")
    messages = [r.getMessage() for r in caplog.records]
    assert "hook register_vendors called on ['alpha'] with ['register']" in messages
    assert "hook register_vendors returned list" in messages


def test_without_tracing_nothing_is_logged(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    with caplog.at_level(logging.DEBUG, logger="oomnitza_connect.plugins"):
        get_connector("alpha")
    assert not [r for r in caplog.records if "hook register_vendors" in r.getMessage()]


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(
    install: Install,
) -> None:
    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    install("oomnitza-connect-broken", "broken", "broken_plugin", "import not_a_real_module\n")
    with pytest.warns(RuntimeWarning) as warned:
        names = [c.name for c in list_connectors()]
    assert names == ["alpha"]
    (failure,) = plugin_system.failed_plugins()
    assert failure.name == "broken"
    assert failure.distribution == "oomnitza-connect-broken"
    assert failure.error == "ModuleNotFoundError: No module named 'not_a_real_module'"
    assert str(warned[0].message) == (
        "oomnitza-connect plugin 'broken' from distribution 'oomnitza-connect-broken' "
        "failed to load and is skipped: ModuleNotFoundError: No module named 'not_a_real_module'"
    )


def test_an_installed_plugin_with_a_misspelled_hook_fails_loudly(install: Install) -> None:
    source = (
        "from oomnitza_connect import hookimpl\n\n@hookimpl\ndef list_user(vendor):\n    pass\n"
    )
    install("oomnitza-connect-typo", "typo", "typo_plugin", source)
    with pytest.raises(PluginError) as caught:
        list_connectors()
    message = str(caught.value)
    assert message.startswith("Plugin 'typo' implements hook 'list_user', which does not exist.")
    assert plugin_system.BLOCK_ENV in message  # says how to get going again
    # Not half-loaded: the next call tries again and fails the same way.
    with pytest.raises(PluginError):
        plugin_system.get_plugin_manager()


def test_entry_points_are_not_loaded_under_pytest_by_default() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugin_system.reset_plugin_manager()
        assert plugin_system.loaded_distributions() == []
        assert list_connectors() == []


def test_the_plugins_command_shows_installed_and_failed_plugins(install: Install) -> None:
    from click.testing import CliRunner

    from oomnitza_connect.cli import main

    install("oomnitza-connect-alpha", "alpha", "alpha_plugin", VENDOR_MODULE.format(vendor="alpha"))
    install("oomnitza-connect-broken", "broken", "broken_plugin", "raise RuntimeError('boom')\n")
    result = CliRunner().invoke(main, ["plugins", "--json"])  # lists failures itself
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [(p["name"], p["distribution"], p["version"]) for p in payload["plugins"]] == [
        ("alpha", "oomnitza-connect-alpha", "1.2.3")
    ]
    assert payload["failed"] == [
        {"name": "broken", "distribution": "oomnitza-connect-broken", "error": "RuntimeError: boom"}
    ]
    text = CliRunner().invoke(main, ["plugins"])
    assert "alpha  (oomnitza-connect-alpha 1.2.3)" in text.stdout
    assert (
        "Plugin 'broken' from distribution 'oomnitza-connect-broken' failed to load: "
        "RuntimeError: boom" in text.stderr
    )


def test_a_failed_plugin_is_one_warning_line_on_the_command_line(install: Install) -> None:
    from click.testing import CliRunner

    from oomnitza_connect.cli import main

    install("oomnitza-connect-broken", "broken", "broken_plugin", "raise RuntimeError('boom')\n")
    result = CliRunner().invoke(main, ["integrations", "init", "nosuch"])
    assert result.exit_code == 2
    warning = (
        "Warning: oomnitza-connect plugin 'broken' from distribution 'oomnitza-connect-broken' "
        "failed to load and is skipped: RuntimeError: boom"
    )
    assert result.stderr.count(warning) == 1
    assert "RuntimeWarning" not in result.stderr  # not Python's file:line form
    assert "broken_plugin" not in result.stderr.replace("'broken'", "")


def test_an_unknown_vendor_names_the_plugins_that_failed_to_load(install: Install) -> None:
    install("oomnitza-connect-broken", "broken", "broken_plugin", "raise RuntimeError('boom')\n")
    with pytest.warns(RuntimeWarning):
        plugin_system.get_plugin_manager()
    with pytest.raises(UnknownVendorError) as caught:
        get_connector("broken")
    assert (
        "plugins that failed to load: 'broken' (oomnitza-connect-broken: RuntimeError: boom)"
        in str(caught.value)
    )


def test_the_plugins_command_with_only_a_failed_plugin_does_not_say_none_are_installed(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from oomnitza_connect.cli import main

    install("oomnitza-connect-broken", "broken", "broken_plugin", "raise RuntimeError('boom')\n")
    monkeypatch.delenv(plugin_system.BLOCK_ENV)
    monkeypatch.setenv(plugin_system.ALLOW_ENV, "broken")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "No plugins are" not in result.stdout  # neither "installed" nor "loaded"
    assert "Plugin 'broken' from distribution 'oomnitza-connect-broken' failed" in result.stderr
