"""The docs site builds with --strict: a broken link, anchor or API reference fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_docs_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    page = (tmp_path / "site" / "reference" / "package" / "index.html").read_text()
    # The API reference is generated from the docstrings.
    assert "Yield a vendor&#39;s users as records" in page or "Yield a vendor's users" in page
    assert (tmp_path / "site" / "emulators" / "index.html").exists()
    # The example notebook is a page, shown with the outputs it was executed with.
    notebook = (tmp_path / "site" / "notebooks" / "example" / "index.html").read_text()
    assert "data:image/png" in notebook  # the plot of last logins
    assert "people_view" in notebook
