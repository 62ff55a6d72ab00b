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


def test_sweep_notebook_executes(mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_NB_LIMIT", "4")
    path = REPO / "notebooks" / "03_sweep.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and c.outputs], "commit the notebook with outputs cleared"
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    for needle in ("4 variants x 4 questions", "winner: v-", "is best on token_f1", "objective_score", "p_holm"):
        assert needle in text, needle
    assert "gold_answer" in text and "answer" in text  # the separating questions
    assert "mlflow ui --backend-store-uri" in text
    # The live view rendered as a widget, and the Pareto plot as an image.
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot did not render"
    assert Path(mlflow_uri.removeprefix("sqlite:///")).exists()
