"""`claim_support` separates context-supported answers from parametric (context-contradicting)
ones on knowledge_conflicts, with the real local embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.config import load_yaml
from workbench.core.dataset import load_dataset
from workbench.core.schema import PipelineConfig
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics import build_metrics
from workbench.evaluation.scoring import score_sync

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def auroc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_auroc_helper() -> None:
    assert auroc([1, 2], [0, 0]) == 1.0
    assert auroc([0], [1]) == 0.0
    assert auroc([1, 1], [1, 0]) == 0.75


def conflict_rows(every: int = 2) -> list[ScoreInput]:
    """Every `every`-th question (a fixed sample: the full 300 run in benchmarks/bench_scoring.py)."""
    dataset = load_dataset(ROOT / "datasets" / "knowledge_conflicts")
    docs = {d.id: d.text for d in dataset.documents}
    rows = []
    for q in dataset.questions[::every]:
        if not (q.answer and q.parametric_answer and q.gold_doc_ids):
            continue
        context = [docs[q.gold_doc_ids[0]]]
        for label, answer in (("supported", q.answer), ("parametric", q.parametric_answer)):
            rows.append(ScoreInput(question_id=f"{q.id}:{label}", question=q.question, answer=answer, contexts=context))
    return rows


def test_claim_support_ranks_supported_above_parametric_answers() -> None:
    pytest.importorskip("sentence_transformers")
    from workbench.models.embedder import SentenceTransformerEmbedder

    config = load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")
    metrics = build_metrics(["claim_support"], embedder=SentenceTransformerEmbedder(config.embedder))
    rows = conflict_rows()
    assert len(rows) >= 2 * 100
    report = score_sync(rows, metrics)
    assert report.failures == {"claim_support": 0}
    values = report.frame.set_index("question_id")["claim_support"]
    positives = [v for k, v in values.items() if k.endswith(":supported")]
    negatives = [v for k, v in values.items() if k.endswith(":parametric")]
    area = auroc(positives, negatives)
    print(f"claim_support AUROC on knowledge_conflicts ({len(positives)} pairs): {area:.3f}")
    assert area >= 0.9
