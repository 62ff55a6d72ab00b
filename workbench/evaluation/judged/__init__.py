"""LLM-judged metrics (faithfulness, answer relevancy, context precision and recall) computed
through ragas with a workbench `Judge` as the LLM: a local GGUF via llama.cpp with
JSON-schema-constrained decoding, or any OpenAI-compatible endpoint. Nothing here imports
ragas until a metric scores."""

from workbench.evaluation.judged._llm import JudgeParseError
from workbench.evaluation.judged.judge import DEFAULT_CACHE, Judge, JudgeStats, judge_providers
from workbench.evaluation.judged.metrics import (
    AnswerRelevancy,
    ContextPrecision,
    ContextRecall,
    Faithfulness,
    JudgedMetric,
)

__all__ = [
    "DEFAULT_CACHE",
    "AnswerRelevancy",
    "ContextPrecision",
    "ContextRecall",
    "Faithfulness",
    "Judge",
    "JudgeParseError",
    "JudgeStats",
    "JudgedMetric",
    "judge_providers",
]
