"""The example notebook runs from top to bottom (so it never goes stale)."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_example_notebook_runs():
    """examples/sbc_in_a_notebook.ipynb executes without error and shows the verdict table."""
    notebook = nbformat.read(EXAMPLES / "sbc_in_a_notebook.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": EXAMPLES}}
    ).execute()
    html = [
        output["data"]["text/html"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "text/html" in output.get("data", {})
    ]
    assert any("sbc-inline" in h and "calibrated" in h for h in html)
