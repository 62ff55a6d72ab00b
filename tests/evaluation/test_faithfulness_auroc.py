"""`claim_support` separates context-supported answers from parametric (context-contradicting)
ones on knowledge_conflicts, with the real local embedder: as short answers (>= 0.95 AUROC) and
as full sentences that restate the question (>= 0.9, on the held-out templates).

The sentence-form rows are `datasets/knowledge_conflicts/sentence_answers.jsonl`, built by
`benchmarks/bench_faithfulness.py` (its docstring says how); the full figures are in
`benchmarks/RESULTS.md`.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from workbench.core.config import load_yaml
from workbench.core.dataset import load_dataset
from workbench.core.schema import PipelineConfig
from workbench.evaluation.base import Metric, ScoreInput
from workbench.evaluation.metrics import build_metrics
from workbench.evaluation.scoring import score_sync

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "knowledge_conflicts"
EVERY = 2  # a fixed half of the 300 questions; the benchmark scores them all


def auroc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_auroc_helper() -> None:
    assert auroc([1, 2], [0, 0]) == 1.0
    assert auroc([0], [1]) == 0.0
    assert auroc([1, 1], [1, 0]) == 0.75


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_faithfulness", ROOT / "benchmarks" / "bench_faithfulness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sentence_rows(split: str | None = None) -> list[dict[str, str]]:
    lines = (DATA / "sentence_answers.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if split is None or row["split"] == split]


def test_sentence_form_file_is_what_the_builder_writes() -> None:
    built = _builder().build_sentence_answers()
    assert sentence_rows() == built
    templates = {split: {r["template"] for r in built if r["split"] == split} for split in ("tune", "report")}
    assert templates["tune"].isdisjoint(templates["report"]) and len(templates["report"]) >= 3
    for row in built:  # both sides say the same thing but the answer
        assert row["supported"] != row["unsupported"]


def pairs(answers: dict[str, tuple[str, str]]) -> list[ScoreInput]:
    """Rows `<key>:supported` and `<key>:parametric`; keys start with the question id."""
    dataset = load_dataset(DATA)
    docs = {d.id: d.text for d in dataset.documents}
    questions = {q.id: q for q in dataset.questions}
    rows = []
    for key, (supported, parametric) in answers.items():
        q = questions[key.split("/")[0]]
        context = [docs[q.gold_doc_ids[0]]]
        for label, answer in (("supported", supported), ("parametric", parametric)):
            rows.append(ScoreInput(question_id=f"{key}:{label}", question=q.question, answer=answer, contexts=context))
    return rows


def area(rows: list[ScoreInput], metrics: list[Metric]) -> tuple[float, int]:
    report = score_sync(rows, metrics)
    assert report.failures == {"claim_support": 0}
    values = report.frame.set_index("question_id")["claim_support"]
    positives = [v for k, v in values.items() if str(k).endswith(":supported")]
    negatives = [v for k, v in values.items() if str(k).endswith(":parametric")]
    return auroc(positives, negatives), len(positives)


@pytest.fixture(scope="module")
def metrics() -> list[Metric]:
    pytest.importorskip("sentence_transformers")
    from workbench.models.embedder import SentenceTransformerEmbedder

    config = load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")
    return build_metrics(["claim_support"], embedder=SentenceTransformerEmbedder(config.embedder))


@pytest.fixture(scope="module")
def sampled() -> list[str]:
    questions = load_dataset(DATA).questions
    return [q.id for q in questions if q.answer and q.parametric_answer and q.gold_doc_ids][::EVERY]


@pytest.mark.integration
@pytest.mark.slow
def test_short_answers(metrics: list[Metric], sampled: list[str]) -> None:
    questions = {q.id: q for q in load_dataset(DATA).questions}
    answers = {qid: (questions[qid].answer or "", questions[qid].parametric_answer or "") for qid in sampled}
    value, n = area(pairs(answers), metrics)
    print(f"claim_support AUROC, short answers ({n} pairs): {value:.3f}")
    assert n >= 100
    assert value >= 0.95


@pytest.mark.integration
@pytest.mark.slow
def test_sentence_answers_on_held_out_templates(metrics: list[Metric], sampled: list[str]) -> None:
    wanted = set(sampled)
    rows = [r for r in sentence_rows("report") if r["question_id"] in wanted]
    answers = {f"{r['question_id']}/{r['template']}": (r["supported"], r["unsupported"]) for r in rows}
    value, n = area(pairs(answers), metrics)
    print(f"claim_support AUROC, sentence answers, held-out templates ({n} pairs): {value:.3f}")
    assert n >= 400
    assert value >= 0.9
