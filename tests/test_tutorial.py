"""docs/tutorial.ipynb runs from top to bottom, and is kept in git without outputs."""

import nbformat
from nbclient import NotebookClient

from aicarousel import paths

NOTEBOOK = paths.DOCS_DIR / "tutorial.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None)]
    assert dirty == [], f"strip the outputs of cells {dirty} before committing"


def test_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel runs in tmp_path so nothing is written into the repository
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "refused:" in text and "Cloud Debt in 2030 changes by" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure was not drawn"
    assert list(tmp_path.iterdir()) == [], "the tutorial wrote files"
