"""ragas' own non-LLM metrics behind the workbench contract: string similarity, ROUGE, exact
match and semantic similarity (through a ragas embeddings wrapper around the local embedder;
nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.core.errors import MissingDependency
from workbench.core.protocols import Embedder
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics._ragas import RagasMetric
from workbench.evaluation.metrics._vectors import VectorCache, as_vectors

from ragas.embeddings.base import BaseRagasEmbedding  # isort: skip  (after _ragas sets the env)
from ragas.metrics import collections as ragas_metrics  # isort: skip

__all__ = ["StringSimilarity", "Rouge", "RagasExactMatch", "SemanticSimilarity", "RagasEmbeddings"]


class RagasEmbeddings(BaseRagasEmbedding):
    """ragas' modern embeddings interface over a workbench `Embedder` (via its vector cache)."""

    def __init__(self, embedder: Embedder | VectorCache) -> None:
        super().__init__(cache=None)
        self.vectors = as_vectors(embedder)

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        return self.vectors.embed([text])[0].tolist()

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return (await self.vectors.aembed([text]))[0].tolist()

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return self.vectors.embed(texts).tolist()

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return (await self.vectors.aembed(texts)).tolist()


class _AgainstReference(RagasMetric):
    kind: ClassVar = "ragas"
    requires: ClassVar[tuple[str, ...]] = ("answer", "reference")

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        return {"reference": item.reference, "response": item.answer}


def _needs(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependency(module.replace("_", "-"), "eval")


class StringSimilarity(_AgainstReference):
    """ragas `NonLLMStringSimilarity`: 1 - normalised Levenshtein distance (rapidfuzz)."""

    def __init__(self, name: str = "string_similarity") -> None:
        _needs("rapidfuzz")
        super().__init__(name, ragas_metrics.NonLLMStringSimilarity(name=name))


class Rouge(_AgainstReference):
    """ragas `RougeScore` (ROUGE-L F-measure by default; rouge-score)."""

    def __init__(self, name: str = "rouge", rouge_type: str = "rougeL", mode: str = "fmeasure") -> None:
        _needs("rouge_score")
        super().__init__(name, ragas_metrics.RougeScore(name=name, rouge_type=rouge_type, mode=mode))  # type: ignore[arg-type]


class RagasExactMatch(_AgainstReference):
    """ragas `ExactMatch`: the raw strings are identical (no normalisation)."""

    def __init__(self, name: str = "ragas_exact_match") -> None:
        super().__init__(name, ragas_metrics.ExactMatch(name=name))


class SemanticSimilarity(_AgainstReference):
    """ragas `SemanticSimilarity`: cosine of answer and reference embeddings (-1..1)."""

    def __init__(self, embedder: Embedder | VectorCache, name: str = "semantic_similarity") -> None:
        self.embeddings = RagasEmbeddings(embedder)
        metric = ragas_metrics.SemanticSimilarity(embeddings=self.embeddings, name=name, allowed_values=(-1.0, 1.0))
        super().__init__(name, metric)

    async def ainputs(self, item: ScoreInput) -> Mapping[str, Any]:
        # ragas calls the sync `embed_text`; encode both texts here, batched with other rows.
        await self.embeddings.vectors.aembed([item.reference or " ", item.answer or " "])
        return self.inputs(item)
