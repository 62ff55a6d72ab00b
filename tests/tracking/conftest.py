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


@pytest.fixture
def request_states() -> list:
    """Three finished request states as the pipeline leaves them: guard, retriever, generator timings."""
    from workbench.core.state import Chunk, GuardVerdict, ModelCall, RequestState, StageTiming

    n, started_at = 3, 1_767_225_600.0
    states = []
    for i in range(n):
        t0 = started_at + i * 10
        states.append(
            RequestState(
                query=f"question {i}?",
                route="general",
                route_score=0.8,
                chunks=(
                    Chunk(chunk_id=f"d{i}-0", doc_id=f"d{i}", text="alpha text", start=0, end=10, score=0.9),
                    Chunk(chunk_id=f"d{i}-1", doc_id=f"d{i}", text="beta text", start=10, end=19, score=0.4),
                ),
                prompt=f"Context: alpha\nQuestion: question {i}?",
                answer=f"answer {i}",
                verdicts=(GuardVerdict(stage="input_guard", check="pii", triggered=i == 1, action="mask"),),
                calls=(
                    ModelCall(endpoint="local", model="smollm2", tokens_in=40, tokens_out=8, cost=0.001, latency_s=0.5),
                ),
                timings=(
                    StageTiming(stage="input_guard", seconds=0.01, started_at=t0),
                    StageTiming(stage="retriever", seconds=0.05, cached=i == 2, started_at=t0 + 0.01),
                    StageTiming(stage="generator", seconds=0.5, started_at=t0 + 0.06),
                ),
            )
        )
    return states
