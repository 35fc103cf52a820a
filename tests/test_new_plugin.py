"""`oomnitza-connect new-plugin`: the rendered package installs, is found, and passes its tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from oomnitza_connect import ConfigurationError
from oomnitza_connect.cli import EXIT_USAGE, main
from oomnitza_connect.scaffold import PluginNames, plugin_names, render_plugin


def test_plugin_names_follow_the_one_name_everywhere_rule() -> None:
    assert plugin_names("acme-hr") == PluginNames(
        vendor="acme_hr",
        distribution="oomnitza-connect-acme-hr",
        module="oomnitza_connect_acme_hr",
        display_name="Acme Hr",
        class_prefix="AcmeHr",
    )
    assert plugin_names("zoom", display_name="Zoom Video").display_name == "Zoom Video"


@pytest.mark.parametrize("bad", ["Acme", "1acme", "acme--hr", "acme hr", "", "acme-", "ac.me"])
def test_a_name_that_cannot_name_a_package_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot name a plugin.*allowed: lowercase"):
        plugin_names(bad)


def test_the_rendered_package_is_complete_and_has_no_template_left(tmp_path: Path) -> None:
    target = render_plugin("acme", tmp_path)
    assert target == tmp_path / "oomnitza-connect-acme"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/oomnitza_connect_acme/__init__.py",
        "src/oomnitza_connect_acme/emulator.py",
        "src/oomnitza_connect_acme/py.typed",
        "src/oomnitza_connect_acme/vendor.py",
        "tests/test_conformance.py",
        "tests/test_mapping.py",
    ]
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "{@" not in text, f"{path} still holds template syntax"
            if path.suffix == ".py":
                compile(text, str(path), "exec")
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "oomnitza-connect-acme"
    assert project["project"]["entry-points"]["oomnitza_connect"] == {
        "acme": "oomnitza_connect_acme:vendor"
    }
    # Commands are declared in their own entry-point group: written commented out,
    # ready to take the plugin's own group (docs/plugins/hooks.md).
    text = (target / "pyproject.toml").read_text()
    uncommented = text.replace(
        '# [project.entry-points."oomnitza_connect.commands"]',
        ('[project.entry-points."oomnitza_connect.commands"]'),
    ).replace('# acme = "oomnitza_connect_acme.commands', 'acme = "oomnitza_connect_acme.commands')
    assert tomllib.loads(uncommented)["project"]["entry-points"]["oomnitza_connect.commands"] == {
        "acme": "oomnitza_connect_acme.commands:acme_group"
    }
    assert "oomnitza_connect.commands" not in project["project"]["entry-points"]
    # Preset templates pass through the renderer untouched.
    assert (
        '"/api/users/{{acme_user_id}}"'
        in (target / "src/oomnitza_connect_acme/vendor.py").read_text()
    )
    assert (
        "class TestAcmeConformance(ConnectorConformance)"
        in (target / "tests/test_conformance.py").read_text()
    )


def test_new_plugin_refuses_to_overwrite_a_directory(tmp_path: Path) -> None:
    (tmp_path / "oomnitza-connect-acme").mkdir()
    result = CliRunner().invoke(main, ["new-plugin", "acme", "--directory", str(tmp_path)])
    assert result.exit_code == EXIT_USAGE
    assert "already exists" in result.output
    assert list((tmp_path / "oomnitza-connect-acme").iterdir()) == []


def test_new_plugin_with_a_bad_name_is_bad_usage(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new-plugin", "Acme!", "--directory", str(tmp_path)])
    assert result.exit_code == EXIT_USAGE
    assert "Error: 'Acme!' cannot name a plugin" in result.output
    assert list(tmp_path.iterdir()) == []


def _install_metadata(site: Path, distribution: str, entry_point: str) -> None:
    """Make importlib.metadata see *distribution* with one ``oomnitza_connect`` entry point."""
    info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[oomnitza_connect]\n{entry_point}\n")


@pytest.mark.parametrize(
    ("distribution", "entry_point", "named"),
    [
        # The same entry-point name: the new package's replaces the installed one's.
        ("acme-tools", "acme = acme_tools:vendor", "the installed plugin 'acme'"),
        # The same distribution: installing the new package uninstalls the other.
        ("oomnitza-connect-acme", "acme_v1 = acme_v1:vendor", "'oomnitza-connect-acme'"),
        # The same module: one of the two imports the other's code.
        ("acme-legacy", "legacy = oomnitza_connect_acme.plugin:vendor", "'oomnitza_connect_acme'"),
    ],
)
def test_new_plugin_refuses_a_name_an_installed_plugin_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, distribution: str, entry_point: str, named: str
) -> None:
    _install_metadata(tmp_path / "site", distribution, entry_point)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["new-plugin", "acme", "--directory", str(out)])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "Error: 'acme' is taken by the installed plugin" in result.output
    assert named in result.output
    assert f"distribution '{distribution}'" in result.output
    assert "choose another name (for example 'acme-custom')" in result.output
    assert not out.exists()
    # The suggested name is free.
    result = CliRunner().invoke(main, ["new-plugin", "acme-custom", "--directory", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "oomnitza-connect-acme-custom" / "pyproject.toml").exists()


REPOSITORY = Path(__file__).resolve().parents[1]


def _installer(site: Path, package: Path) -> list[str]:
    # uv is on PATH for developers; dev.py installs it into .bootstrap/ otherwise.
    bootstrapped = REPOSITORY / ".bootstrap" / ("Scripts" if os.name == "nt" else "bin") / "uv"
    uv = shutil.which("uv") or (str(bootstrapped) if bootstrapped.exists() else None)
    if uv is not None:
        return [uv, "pip", "install", "--no-deps", "--python", sys.executable,
                "--target", str(site), str(package)]  # fmt: skip
    return [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site),
            str(package)]  # fmt: skip


def _environment(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OOMNITZA_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.mark.slow
def test_the_rendered_plugin_installs_is_listed_and_passes_its_own_tests(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["new-plugin", "acme-hr", "--directory", str(tmp_path / "src")]
    )
    assert result.exit_code == 0, result.output
    package = tmp_path / "src" / "oomnitza-connect-acme-hr"
    assert f"Created {package}" in result.output

    # The rendered code meets the house style under its own pyproject's settings.
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():
        for check in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
            linted = subprocess.run(
                [str(ruff), *check], cwd=package, capture_output=True, text=True, check=False
            )
            assert linted.returncode == 0, linted.stdout + linted.stderr

    site = tmp_path / "site"
    install = subprocess.run(
        _installer(site, package), capture_output=True, text=True, timeout=240, check=False
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "oomnitza_connect_acme_hr-0.1.0.dist-info" / "entry_points.txt").exists()

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=package,
        env=_environment(site),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
    assert "failed" not in tests.stdout

    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "from oomnitza_connect.cli import main; main()",
            "plugins",
            "--json",
        ],
        cwd=tmp_path,
        env=_environment(site, OOMNITZA_CONNECT_LOAD_ENTRY_POINTS="1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}
    acme = plugins["acme_hr"]
    assert acme["distribution"] == "oomnitza-connect-acme-hr"
    assert acme["version"] == "0.1.0"
    assert acme["vendors"] == ["acme_hr"]
    assert acme["auth_kinds"] == ["api_key"]
    assert acme["presets"] == 2
    assert set(acme["hooks"]) == {
        "authenticate",
        "list_last_logins",
        "list_users",
        "register_vendors",
        "workflow_presets",
    }
