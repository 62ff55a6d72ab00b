"""The metric registry: name -> "module:Class", resolved lazily, and `build_metrics`.

Offline metrics need nothing or an embedder; the four LLM-judged metrics live in
`workbench.evaluation.judged` and need a judge. How each name is constructed is declared in
`_BUILDERS` next to the map, so adding a metric is one line in each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.protocols import Embedder
from workbench.core.registry import Registry
from workbench.evaluation.base import Metric

__all__ = ["DEFAULT_METRICS", "JUDGED_METRICS", "metric_registry", "build_metrics"]

_M = "workbench.evaluation.metrics"
_J = "workbench.evaluation.judged"

_ENTRIES: dict[str, str] = {
    "hit_at_k": f"{_M}.retrieval:HitAtK",
    "recall_at_k": f"{_M}.retrieval:RecallAtK",
    "mrr": f"{_M}.retrieval:MRR",
    "ndcg_at_k": f"{_M}.retrieval:NDCGAtK",
    "exact_match": f"{_M}.answer:ExactMatch",
    "token_f1": f"{_M}.answer:TokenF1",
    "abstention": f"{_M}.answer:Abstention",
    "claim_support": f"{_M}.claims:ClaimSupport",
    "qa_relevance": f"{_M}.embedding:QaRelevance",
    "string_similarity": f"{_M}.ragas_builtin:StringSimilarity",
    "rouge": f"{_M}.ragas_builtin:Rouge",
    "ragas_exact_match": f"{_M}.ragas_builtin:RagasExactMatch",
    "semantic_similarity": f"{_M}.ragas_builtin:SemanticSimilarity",
    "faithfulness": f"{_J}:Faithfulness",
    "answer_relevancy": f"{_J}:AnswerRelevancy",
    "context_precision": f"{_J}:ContextPrecision",
    "context_recall": f"{_J}:ContextRecall",
}

DEFAULT_METRICS: tuple[str, ...] = (
    "hit_at_k",
    "recall_at_k",
    "mrr",
    "ndcg_at_k",
    "exact_match",
    "token_f1",
    "claim_support",
    "qa_relevance",
    "abstention",
    "string_similarity",
    "rouge",
    "ragas_exact_match",
    "semantic_similarity",
)
"""The offline set: no LLM; `qa_relevance` and `semantic_similarity` need an embedder."""

JUDGED_METRICS: tuple[str, ...] = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


@dataclass
class _Deps:
    name: str
    embedder: Any  # a VectorCache shared by the metrics of one build
    judge: Any
    k: int


def _plain(cls: type, deps: _Deps) -> Any:
    return cls(name=deps.name)


def _top_k(cls: type, deps: _Deps) -> Any:
    return cls(k=deps.k, name=deps.name)


def _optional_embedder(cls: type, deps: _Deps) -> Any:
    return cls(embedder=deps.embedder, name=deps.name)


def _embedder(cls: type, deps: _Deps) -> Any:
    return cls(deps.embedder, name=deps.name)


def _judge(cls: type, deps: _Deps) -> Any:
    return cls(deps.judge)


Builder = Callable[[type, _Deps], Any]
_BUILDERS: dict[str, Builder] = {
    "hit_at_k": _top_k,
    "recall_at_k": _top_k,
    "ndcg_at_k": _top_k,
    "claim_support": _optional_embedder,
    "qa_relevance": _embedder,
    "semantic_similarity": _embedder,
} | {name: _judge for name in JUDGED_METRICS}


def metric_registry() -> Registry:
    """A fresh registry of every built-in metric; `add` user metrics to it."""
    return Registry("metric", _ENTRIES)


def build_metrics(
    names: Iterable[str] = DEFAULT_METRICS,
    *,
    embedder: Embedder | None = None,
    judge: Any = None,
    k: int = 5,
    registry: Registry | None = None,
) -> list[Metric]:
    """Instantiate metrics by name. Embedding metrics share one vector cache; LLM-judged ones
    need `judge`. Metrics added to a custom `registry` are built with no arguments."""
    from workbench.evaluation.metrics._vectors import VectorCache

    registry = registry or metric_registry()
    names = list(dict.fromkeys(names))
    known = set(registry.names())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}; valid: {', '.join(registry.names())}")
    judged = [n for n in names if _BUILDERS.get(n) is _judge]
    if judged and judge is None:
        raise ConfigError(f"metric {judged[0]!r} is LLM-judged and needs a judge: pass --judge (or judge=...)")
    needs_embedder = [n for n in names if _BUILDERS.get(n) is _embedder]
    if needs_embedder and embedder is None:
        raise ConfigError(f"metric {needs_embedder[0]!r} needs an embedder: pass embedder=...")
    vectors = VectorCache(embedder) if embedder is not None else None
    built: list[Metric] = []
    for name in names:
        build = _BUILDERS.get(name, _plain) if name in _ENTRIES else _custom
        built.append(build(registry.resolve(name), _Deps(name, vectors, judge, k)))
    return built


def _custom(cls: type, deps: _Deps) -> Any:
    return cls()
