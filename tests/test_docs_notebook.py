"""The example notebook (docs/notebooks/example.ipynb) runs, top to bottom, in a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from oomnitza_connect.plugins import ALLOW_ENV, BLOCK_ENV, LOAD_ENTRY_POINTS_ENV

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "example.ipynb"


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def _text(output: dict) -> str:
    return str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))


@pytest.mark.slow
def test_the_example_notebook_executes(tmp_path, monkeypatch):
    # The kernel is a reader's: it loads the installed vendor plugins, as a
    # notebook does (this suite's isolation is for its own process only).
    monkeypatch.setenv(LOAD_ENTRY_POINTS_ENV, "1")
    for name in (ALLOW_ENV, BLOCK_ENV):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # what is checked is this run's output, not the stored one
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()  # raises CellExecutionError on the first cell that fails
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(_text(o) for o in outputs)
    assert "40 Slack users" in text
    assert "slack-main  succeeded" in text
    assert "webex-main  succeeded" in text
    assert "slack      37" in text
    assert "webex      24" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the last-login plot
    assert "True 200" in text  # the preset ran


def test_the_stored_notebook_is_executed():
    """The shipped copy shows its outputs (readers see them without running it)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
    assert any("image/png" in o.get("data", {}) for o in _outputs(notebook))
