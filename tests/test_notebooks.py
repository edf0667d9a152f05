"""The notebooks run headless from top to bottom (`make test-full`), writing into a temp folder.

Each notebook asserts its own results (a run record with scores, a report without failed runs);
this test executes it with nbclient in this interpreter's Jupyter kernel and fails on the first
cell that raises.
"""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from scmint.utils.config import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SCMINT_NOTEBOOK_OUT", str(tmp_path))  # the kernel inherits the environment
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one torch thread per process (docs/scaling.md)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    errors = [
        o
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert any(tmp_path.iterdir()), "the notebook writes its runs under SCMINT_NOTEBOOK_OUT"


def test_notebooks_are_stored_without_outputs():
    """Outputs (plots, logs) are produced by running; the repository keeps the source only."""
    assert NOTEBOOKS, "notebooks/ holds the quick start and the figure reproduction"
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        stale = [
            i
            for i, c in enumerate(notebook.cells)
            if c.cell_type == "code" and (c.outputs or c.execution_count)
        ]
        assert not stale, f"{path.name}: clear the outputs of cells {stale} before committing"
        assert os.path.getsize(path) < 50_000
