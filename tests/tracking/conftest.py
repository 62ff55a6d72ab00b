from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _mlflow_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow 3 may try to send usage telemetry; tests must not reach the network.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")


@pytest.fixture
def results_frame() -> pd.DataFrame:
    """Per-question results as the evaluation layer produces them: lists, dicts and gaps included."""
    return pd.DataFrame(
        {
            "question_id": ["q1", "q2", "q3"],
            "question": ["What is RAG?", "Who wrote it?", "Why?"],
            "answer": ["Retrieval-augmented generation", None, "Because"],
            "retrieved_ids": [["d1", "d2"], [], ["d3"]],
            "guard": [{"pii": "pass"}, {"pii": "block", "score": 0.9}, None],
            "faithfulness": [0.9, float("nan"), 0.5],
            "latency_ms.retrieve": [12.5, 10.0, 11.0],
        }
    )
