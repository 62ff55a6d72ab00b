"""The notebooks execute top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


EXPECTED = {
    "01_quickstart.ipynb": ("MLflow run:", "retrieval_hit_rate"),
    "02_evaluate_and_compare.ipynb": ("runs:", "ci_low", "claim_support", "significant"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_executes(name: str, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_NB_LIMIT", "4")
    path = REPO / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    for needle in EXPECTED[name]:
        assert needle in text, needle
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot did not render"
    assert Path(mlflow_uri.removeprefix("sqlite:///")).exists()
