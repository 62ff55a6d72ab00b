"""The four LLM-judged RAG metrics, each computed by its ragas 0.4 collections class with our
judge plugged in as the LLM (and our embedder, for answer relevancy).

A ragas metric object is built per judged item around a fresh adapter, so the retries an item
spent are counted for that item alone; building one costs only its prompt objects.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from workbench.core.errors import ConfigError, MissingDependency
from workbench.core.protocols import Embedder, embedder_identity
from workbench.evaluation.base import MetricKind, MetricResult, ScoreInput
from workbench.evaluation.judged._llm import ragas_embedding
from workbench.evaluation.judged.judge import Judge


def _ragas_class(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise MissingDependency("ragas", "eval") from exc


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(isinstance(v, str) and v.strip() for v in value)
    return value is not None


class JudgedMetric:
    """Shared `Metric` behaviour: skip rows lacking `requires`, then judge through ragas."""

    name: ClassVar[str]
    kind: ClassVar[MetricKind] = "judge"
    requires: ClassVar[tuple[str, ...]]
    ragas_class: ClassVar[str]

    def __init__(self, judge: Judge) -> None:
        self.judge = judge

    def ragas_inputs(self, item: ScoreInput) -> dict[str, Any]:
        """Keyword arguments of the ragas metric's `ascore`; also the cache key's inputs."""
        raise NotImplementedError

    def ragas_metric(self, llm: Any) -> Any:
        return _ragas_class(self.ragas_class)(llm=llm)

    def config(self) -> dict[str, Any]:
        """Settings of this metric that change its verdicts (part of the cache key)."""
        return {"ragas_class": self.ragas_class}

    async def ascore(self, item: ScoreInput) -> MetricResult:
        if not all(_present(getattr(item, f, None)) for f in self.requires):
            return self.judge.not_applicable()
        inputs = self.ragas_inputs(item)

        async def run(llm: Any) -> float:
            value = (await self.ragas_metric(llm).ascore(**inputs)).value
            return float("nan") if value is None else float(value)

        return await self.judge.ajudge(self.name, inputs, run, self.config())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(judge={self.judge.label!r})"


def _contexts(item: ScoreInput) -> list[str]:
    return [c for c in item.contexts if c.strip()]


class Faithfulness(JudgedMetric):
    """Share of the answer's statements the contexts support (ragas: statements, then NLI)."""

    name = "faithfulness"
    requires = ("question", "answer", "contexts")
    ragas_class = "ragas.metrics.collections.faithfulness:Faithfulness"

    def ragas_inputs(self, item: ScoreInput) -> dict[str, Any]:
        return {"user_input": item.question, "response": item.answer, "retrieved_contexts": _contexts(item)}


class AnswerRelevancy(JudgedMetric):
    """Mean cosine similarity between the question and questions the judge infers from the answer
    (`strictness` of them); 0 when every inferred question is flagged noncommittal."""

    name = "answer_relevancy"
    requires = ("question", "answer")
    ragas_class = "ragas.metrics.collections.answer_relevancy:AnswerRelevancy"

    def __init__(self, judge: Judge, embedder: Embedder | None = None, strictness: int = 3) -> None:
        super().__init__(judge)
        self.embedder = embedder or judge.embedder
        if self.embedder is None:
            raise ConfigError("answer_relevancy needs an embedder: pass one to AnswerRelevancy or to the Judge")
        if strictness < 1:
            raise ConfigError(f"answer_relevancy strictness must be at least 1, got {strictness}")
        self.strictness = strictness
        self._embeddings: Any = None

    def config(self) -> dict[str, Any]:
        assert self.embedder is not None
        return {**super().config(), "strictness": self.strictness, "embedder": embedder_identity(self.embedder)}

    def ragas_metric(self, llm: Any) -> Any:
        if self._embeddings is None:
            assert self.embedder is not None
            self._embeddings = ragas_embedding(self.embedder)
        return _ragas_class(self.ragas_class)(llm=llm, embeddings=self._embeddings, strictness=self.strictness)

    def ragas_inputs(self, item: ScoreInput) -> dict[str, Any]:
        return {"user_input": item.question, "response": item.answer}


class ContextPrecision(JudgedMetric):
    """Average precision of the retrieved contexts, each judged useful or not for the reference."""

    name = "context_precision"
    requires = ("question", "contexts", "reference")
    ragas_class = "ragas.metrics.collections.context_precision:ContextPrecision"

    def ragas_inputs(self, item: ScoreInput) -> dict[str, Any]:
        return {"user_input": item.question, "reference": item.reference, "retrieved_contexts": _contexts(item)}


class ContextRecall(JudgedMetric):
    """Share of the reference's statements the judge attributes to the retrieved contexts."""

    name = "context_recall"
    requires = ("question", "contexts", "reference")
    ragas_class = "ragas.metrics.collections.context_recall:ContextRecall"

    def ragas_inputs(self, item: ScoreInput) -> dict[str, Any]:
        return {"user_input": item.question, "retrieved_contexts": _contexts(item), "reference": item.reference}
