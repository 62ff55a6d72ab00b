"""A sweep before it runs: its id, its question splits, its work items and what they should cost.

The sweep id names everything a finished row depends on: the spec (minus its budget and
concurrency, which change how much runs, not what a row holds), the base config, the
dataset's content and chosen questions, the workbench's code and the model packages. Run the
same command again and it resumes the same sweep; change any of these and it is a new one
(the stage cache still serves every stage that did not change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.core.dataset import Dataset, Question
from workbench.core.implementation import package_versions, workbench_code_version
from workbench.core.schema import LlamaCppEndpoint, PipelineConfig
from workbench.sweeps.expand import Variant, digest
from workbench.sweeps.spec import SweepSpec
from workbench.sweeps.work import WorkItem

# Libraries whose version can change a row without changing a config.
_LIBRARIES = (
    "llama_cpp_python",
    "sentence-transformers",
    "transformers",
    "torch",
    "llama-index-core",
    "duckdb",
    "bm25s",
    "presidio-analyzer",
    "spacy",
    "ragas",
)
# Rough costs for `--dry-run` (benchmarks/RESULTS.md): llama.cpp on 2 cores evaluates about 300
# prompt tokens/s and generates about 25 tokens/s; a remote endpoint answers in about a second.
_PROMPT_TOKENS_PER_S = 300.0
_OUTPUT_TOKENS_PER_S = 25.0
_REMOTE_CALL_S = 1.0
_CHARS_PER_TOKEN = 4.0


def sweep_id(spec: SweepSpec, base: PipelineConfig, dataset: Dataset, questions: Sequence[Question]) -> str:
    packages = {ep.source.package for ep in base.models.values() if isinstance(ep, LlamaCppEndpoint)}
    packages |= {base.embedder.source.package} if base.embedder.source.package else set()
    identity = {
        "spec": spec.model_dump(mode="json", exclude={"budget", "concurrency"}),
        "base": base.model_dump(mode="json"),
        "dataset": dataset.content_hash,
        "questions": [q.id for q in questions],
        "code": workbench_code_version(),
        "packages": package_versions(tuple(sorted(p for p in packages if p)) + _LIBRARIES),
    }
    return f"sw-{digest(identity, 12)}"


def _rank(seed: int, question_id: str) -> str:
    return hashlib.sha256(f"{seed}:{question_id}".encode()).hexdigest()


def split_questions(questions: Sequence[Question], holdout: float, seed: int) -> tuple[list[Question], list[Question]]:
    """(search, confirm): a seeded shuffle, so that any prefix of `search` is a random sample
    (successive halving's rungs are prefixes) and `confirm` never overlaps it."""
    shuffled = sorted(questions, key=lambda q: _rank(seed, q.id))
    n_confirm = round(len(shuffled) * holdout)
    if holdout > 0 and len(shuffled) > 1:
        n_confirm = min(max(n_confirm, 1), len(shuffled) - 1)
    return shuffled[n_confirm:], shuffled[:n_confirm]


def work_items(
    variants: Iterable[str],
    questions: Sequence[Question],
    repeats: int,
    split: str,
    done: set[tuple[str, str, int]],
) -> list[WorkItem]:
    """The items not yet done, question by question (the variants of one question together, in
    name order), so that an interrupted sweep has compared its variants on the same questions."""
    names = sorted(variants)
    return [
        WorkItem(v, q, r, split) for q in questions for r in range(repeats) for v in names if (v, q.id, r) not in done
    ]


@dataclass
class Estimate:
    model_calls: int = 0
    tokens: int = 0
    dollars: float = 0.0
    seconds: float = 0.0


def estimate_item(config: PipelineConfig, question: Question) -> Estimate:
    """An upper bound on one answer: the default route's model, a full context, no cache hit."""
    endpoint = config.models[config.generation.model]
    prompt = config.prompts[config.generation.prompt]
    chunk_chars = config.ingestion.chunk_size * _CHARS_PER_TOKEN * config.retrieval.top_k
    context = min(config.generation.max_context_chars, chunk_chars)
    chars = len(prompt.system) + len(prompt.template) + len(question.question) + context
    tokens_in = int(chars / _CHARS_PER_TOKEN)
    if endpoint.provider == "extractive":
        return Estimate(1, 0, 0.0, 0.01)
    tokens_out = int(endpoint.params.get("max_tokens", 64))
    dollars = tokens_in / 1000 * endpoint.cost.input_per_1k + tokens_out / 1000 * endpoint.cost.output_per_1k
    if endpoint.provider == "llama_cpp":
        seconds = tokens_in / _PROMPT_TOKENS_PER_S + tokens_out / _OUTPUT_TOKENS_PER_S
    else:
        seconds = _REMOTE_CALL_S
    return Estimate(1, tokens_in + tokens_out, dollars, seconds)


def estimate(items: Sequence[WorkItem], configs: dict[str, PipelineConfig]) -> Estimate:
    total = Estimate()
    for item in items:
        one = estimate_item(configs[item.variant], item.question)
        total.model_calls += one.model_calls
        total.tokens += one.tokens
        total.dollars += one.dollars
        total.seconds += one.seconds
    return total


def variants_frame(variants: Sequence[Variant], pruned: dict[str, tuple[int, str]] | None = None) -> pd.DataFrame:
    pruned = pruned or {}
    rows: list[dict[str, Any]] = []
    for v in variants:
        rung, reason = pruned.get(v.id, (None, None))
        rows.append(
            {
                "variant": v.id,
                "label": v.label,
                **v.params,
                "config_hash": v.config_hash,
                "pruned_at_rung": rung,
                "pruned_reason": reason,
            }
        )
    return pd.DataFrame(rows)
