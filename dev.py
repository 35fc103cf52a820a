#!/usr/bin/env python3
"""Developer entry point: `python3 dev.py demo | test | lint | sync`.

Needs only Python 3.11+ and access to the package registry. The first run
installs uv (into .bootstrap/) and then the core and every plugin, from the
lock file, into .venv/; later runs reuse both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOTSTRAP = ROOT / ".bootstrap"
VENV = ROOT / ".venv"
UV_VERSION = "0.13.9"
BIN = "Scripts" if os.name == "nt" else "bin"


def uv_executable() -> str:
    found = shutil.which("uv")
    if found:
        return found
    uv = BOOTSTRAP / BIN / "uv"
    if not uv.exists():
        print(f"dev.py: installing uv {UV_VERSION} into {BOOTSTRAP.name}/ (first run only)")
        venv.EnvBuilder(with_pip=True, clear=True).create(BOOTSTRAP)
        subprocess.run(
            [
                str(BOOTSTRAP / BIN / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"uv=={UV_VERSION}",
            ],
            check=True,
        )
    return str(uv)


def sync_environment() -> None:
    """Install the core, every plugin and the dev tools exactly as locked."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    subprocess.run(
        [uv_executable(), "sync", "--all-packages", "--locked", "--quiet"],
        cwd=ROOT,
        check=True,
        env=env,
    )


def run(*command: str) -> int:
    env = {**os.environ, "VIRTUAL_ENV": str(VENV)}
    # The caller's own PATH, without .venv: the demo's closing hint says whether
    # `oomnitza-connect` will run as typed in the caller's shell.
    env.setdefault("OOMNITZA_CONNECT_CALLER_PATH", env.get("PATH", ""))
    env["PATH"] = f"{VENV / BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(VENV / BIN / command[0]), *command[1:]], cwd=ROOT, env=env
    ).returncode


def main(argv: list[str]) -> int:
    commands = {
        "demo": "sync every vendor emulator into a SQLite store and print a summary",
        "test": "run every package's tests",
        "lint": "ruff and mypy",
        "build": "build every package on its own (sdist and wheel)",
        "docs": "build the docs site (mkdocs --strict: a broken link fails); serve: docs serve",
        "setup": "only install the environment",
    }
    if not argv or argv[0] not in commands:
        print("usage: python3 dev.py {" + "|".join(commands) + "} [args...]")
        for name, text in commands.items():
            print(f"  {name:6} {text}")
        return 2
    sync_environment()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return run("oomnitza-connect", "demo", *rest)
    if command == "test":
        return run("pytest", *parallel_options(rest), *rest)
    if command == "lint":
        status = run("ruff", "check", ".")
        status |= run("ruff", "format", "--check", ".")
        status |= run("mypy")
        return status
    if command == "build":
        return build_every_package()
    if command == "docs":
        # `docs serve` previews the site; anything else builds it into site/.
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
        if rest[:1] == ["serve"]:
            return run("mkdocs", "serve", "--strict", *rest[1:])
        return run("mkdocs", "build", "--strict", *rest)
    return 0


def parallel_options(args: list[str]) -> list[str]:
    """pytest-xdist's options for the suite: one worker per CPU, groups kept together.

    ``--dist loadgroup`` sends the tests marked ``serial`` (an
    ``xdist_group``, see conftest.py) to one worker, one after another. Given
    after these, the caller's own ``-n 2`` (land.sh) or ``-n 0`` (to debug) wins;
    ``-p no:xdist`` turns them off.
    """
    if "no:xdist" in args or any(arg.startswith("-pno:xdist") for arg in args):
        return []
    return ["-n", "auto", "--dist", "loadgroup"]


# What every distribution's metadata must have for its PyPI page to stand on its own.
REQUIRED_PROJECT_URLS = {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
# A Markdown link whose target is neither absolute nor an anchor is dead on PyPI.
RELATIVE_LINK = r"\]\((?!https?://|mailto:|#)[^)]*\)"


def check_metadata(uv: str, built: list[Path], *, expected: int) -> list[str]:
    """Check every built distribution as PyPI will: ``twine check --strict``, then ours.

    Ours: each wheel has a license expression and a license file, classifiers, the
    project URLs, and a long description with no relative link and nothing that
    only works in this checkout (``dev.py``).
    """
    import re
    import zipfile
    from email.parser import Parser

    problems: list[str] = []
    if len([p for p in built if p.suffix == ".whl"]) != expected:
        problems.append(f"expected {expected} wheels, built {[p.name for p in built]}")
    twine = subprocess.run(
        [uv, "run", "--no-sync", "twine", "check", "--strict", *map(str, built)],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)},
    )
    if twine.returncode != 0:
        problems.append("twine check --strict failed (above)")
    for wheel in (p for p in built if p.suffix == ".whl"):
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
            metadata = Parser().parsestr(archive.read(metadata_name).decode())
        name = metadata["Name"]
        if metadata["License-Expression"] != "Apache-2.0":
            problems.append(f"{name}: License-Expression is {metadata['License-Expression']!r}")
        if not any(n.endswith("/licenses/LICENSE") for n in names):
            problems.append(f"{name}: the wheel holds no LICENSE file")
        if not metadata.get_all("Classifier"):
            problems.append(f"{name}: no classifiers")
        urls = {url.split(",")[0].strip() for url in metadata.get_all("Project-URL") or []}
        if not urls >= REQUIRED_PROJECT_URLS:
            problems.append(f"{name}: project URLs miss {sorted(REQUIRED_PROJECT_URLS - urls)}")
        description = metadata.get_payload()
        for link in re.findall(RELATIVE_LINK, description):
            problems.append(f"{name}: its PyPI page links {link}, relative to nothing there")
        if "dev.py" in description:
            problems.append(f"{name}: its PyPI page mentions dev.py, which only a checkout has")
    if not problems:
        print(f"metadata: {len(built)} distributions pass twine check --strict and stand alone")
    return problems


def build_every_package() -> int:
    """Build the core and each plugin separately, as PyPI will receive them.

    Then install the wheels alone into a new virtual environment (dependencies
    from the registry, nothing from this checkout) and check that every plugin
    is found through its entry point.
    """
    import json
    import tempfile

    uv = uv_executable()
    plugins = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "dist"
        for package in [ROOT, *plugins]:
            result = subprocess.run(
                [uv, "build", "--quiet", "--out-dir", str(out), str(package)], cwd=ROOT
            )
            if result.returncode != 0:
                print(f"dev.py: building {package.relative_to(ROOT) or '.'} failed")
                return result.returncode
        wheels = sorted(out.glob("*.whl"))
        built = sorted(p for p in out.iterdir() if p.suffix in (".whl", ".gz"))
        print("built:", ", ".join(p.name for p in built))
        problems = check_metadata(uv, built, expected=1 + len(plugins))
        if problems:
            for problem in problems:
                print(f"dev.py: {problem}")
            return 1

        env_dir = Path(scratch) / "venv"
        subprocess.run([uv, "venv", "--quiet", str(env_dir)], check=True, cwd=scratch)
        python = env_dir / BIN / "python"
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python), *map(str, wheels)],
            check=True,
            cwd=scratch,
        )
        listed = subprocess.run(
            [str(env_dir / BIN / "oomnitza-connect"), "plugins", "--json"],
            check=True,
            capture_output=True,
            text=True,
            cwd=scratch,
            env={k: v for k, v in os.environ.items() if not k.startswith("OOMNITZA_CONNECT_")},
        )
        found = {plugin["name"] for plugin in json.loads(listed.stdout)["plugins"]}
        expected = {package.name for package in plugins}
        if not expected <= found:
            print(f"dev.py: installed wheels do not provide plugins {sorted(expected - found)}")
            return 1
        print(f"installed on their own: the wheels provide plugins {sorted(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
