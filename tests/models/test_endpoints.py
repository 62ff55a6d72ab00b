import pytest

from workbench.core.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import Cost, ExtractiveEndpoint
from workbench.core.state import Chunk
from workbench.models import EndpointPool, ExtractiveModel, ProviderRejected, provider_registry
from workbench.testing.models import FailingModel, FunctionModel, ScriptedModel, SlowModel

REQ = GenerationRequest(question="q?", messages=({"role": "user", "content": "say hi"},))


def endpoint(**kw) -> ExtractiveEndpoint:
    kw.setdefault("retry", {"max_attempts": 2, "base_delay_s": 0})
    return ExtractiveEndpoint(provider="extractive", **kw)


def pool(configs, overrides, **kw) -> EndpointPool:
    kw.setdefault("sleep", lambda s: None)
    return EndpointPool(configs, overrides, **kw)


def test_unknown_endpoint_lists_valid_names():
    p = pool({"a": endpoint(), "b": endpoint()}, {})
    with pytest.raises(ConfigError, match="unknown model endpoint 'zzz'; valid: a, b"):
        p.complete("zzz", REQ)


def test_unknown_override_or_fallback_is_a_config_error():
    with pytest.raises(ConfigError, match="valid: a"):
        pool({"a": endpoint()}, {"b": ScriptedModel(["x"])})
    with pytest.raises(ConfigError, match="a.fallbacks"):
        pool({"a": endpoint(fallbacks=["nope"])}, {})


def test_registry_builds_models_lazily_from_config():
    p = pool({"ex": endpoint()}, None)
    assert "ex" not in p._models
    assert isinstance(p.model("ex"), ExtractiveModel)
    assert p.model("ex") is p.model("ex")


def test_success_records_one_call_with_cost_and_attempts():
    model = ScriptedModel([ProviderTimeout("slow"), "hello there"])
    p = pool({"a": endpoint(cost=Cost(input_per_1k=1.0, output_per_1k=2.0))}, {"a": model})
    completion, calls = p.complete("a", REQ)
    assert completion.text == "hello there"
    [call] = calls
    assert (call.endpoint, call.attempts, call.fallback_from) == ("a", 2, None)
    assert call.cost == pytest.approx(call.tokens_in / 1000 + call.tokens_out * 2 / 1000)
    assert call.latency_s >= 0


def test_fallback_chain_is_walked_in_order_and_recorded():
    primary = FailingModel(ProviderUnavailable)
    second = FailingModel(ProviderTimeout)
    third = ScriptedModel(["from c"])
    p = pool(
        {"a": endpoint(fallbacks=["b", "c"]), "b": endpoint(), "c": endpoint()},
        {"a": primary, "b": second, "c": third},
    )
    completion, [call] = p.complete("a", REQ)
    assert completion.text == "from c"
    assert (call.endpoint, call.fallback_from) == ("c", "a")
    assert (primary.calls, second.calls, third.calls) == (2, 2, 1)  # two attempts each


def test_fallbacks_of_fallbacks_each_once():
    p = pool(
        {"a": endpoint(fallbacks=["b"]), "b": endpoint(fallbacks=["c", "a"]), "c": endpoint()},
        {},
    )
    assert p.chain("a") == ["a", "b", "c"]


def test_non_retryable_error_skips_retries_but_still_falls_back():
    primary = FailingModel(ProviderRejected("HTTP 400"))
    p = pool({"a": endpoint(fallbacks=["b"]), "b": endpoint()}, {"a": primary, "b": ScriptedModel(["ok"])})
    _, [call] = p.complete("a", REQ)
    assert primary.calls == 1 and call.endpoint == "b"


def test_all_failed_is_one_line_naming_endpoints_and_last_error():
    p = pool(
        {"a": endpoint(fallbacks=["b"]), "b": endpoint()},
        {"a": FailingModel(ProviderUnavailable("down")), "b": FailingModel(ProviderTimeout("too\nslow"))},
    )
    with pytest.raises(ProviderUnavailable) as info:
        p.complete("a", REQ)
    message = str(info.value)
    assert "\n" not in message
    assert message == "all endpoints failed for 'a' (tried a, b); last error from b: ProviderTimeout: too slow"
    assert isinstance(info.value.__cause__, ProviderTimeout)


def test_breaker_opens_and_later_calls_go_straight_to_the_fallback():
    now = [0.0]
    primary = FailingModel(ProviderUnavailable("down"))
    backup = FunctionModel(lambda r: "backup")
    p = pool(
        {
            "a": endpoint(fallbacks=["b"], breaker={"window": 2, "min_calls": 2, "cooldown_s": 60}),
            "b": endpoint(),
        },
        {"a": primary, "b": backup},
        clock=lambda: now[0],
    )
    p.complete("a", REQ)  # two failed attempts open the breaker
    assert p.breaker("a").state == "open"
    _, [call] = p.complete("a", REQ)
    assert primary.calls == 2  # not called again while open
    assert call.fallback_from == "a"
    now[0] = 61
    primary.fail_times = 0  # recovered
    _, [call] = p.complete("a", REQ)
    assert call.endpoint == "a" and p.breaker("a").state == "closed"


def test_circuit_open_alone_gives_provider_unavailable():
    p = pool({"a": endpoint(breaker={"window": 1, "min_calls": 1})}, {"a": FailingModel(ProviderError)})
    with pytest.raises(ProviderUnavailable):
        p.complete("a", REQ)
    with pytest.raises(ProviderUnavailable, match="CircuitOpen: circuit open for endpoint a"):
        p.complete("a", REQ)


async def test_async_path_retries_with_async_sleep_and_falls_back():
    slept: list[float] = []

    async def asleep(s: float) -> None:
        slept.append(s)

    p = pool(
        {
            "a": endpoint(fallbacks=["b"], retry={"max_attempts": 3, "base_delay_s": 0.5, "jitter": 0}),
            "b": endpoint(),
        },
        {"a": FailingModel(ProviderTimeout), "b": ScriptedModel(["async ok"])},
        asleep=asleep,
    )
    completion, [call] = await p.acomplete("a", REQ)
    assert completion.text == "async ok" and call.fallback_from == "a"
    assert slept == [0.5, 1.0]


async def test_async_timeout_becomes_provider_timeout_and_falls_back():
    slow = SlowModel(delay_s=30)
    p = pool(
        {"a": endpoint(timeout_s=0.05, fallbacks=["b"], retry={"max_attempts": 1}), "b": endpoint()},
        {"a": slow, "b": ScriptedModel(["fast"])},
    )
    completion, [call] = await p.acomplete("a", REQ)
    assert completion.text == "fast" and call.endpoint == "b"
    assert p.breaker("a").failure_rate() == 1.0


def test_fingerprint_changes_with_endpoint_params():
    a = pool({"a": endpoint(params={"temperature": 0})}, {})
    b = pool({"a": endpoint(params={"temperature": 0.7})}, {})
    assert a.fingerprint("a") != b.fingerprint("a")


def test_quickstart_config_builds_a_pool_with_the_extractive_fallback():
    from pathlib import Path

    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig

    config = load_yaml(PipelineConfig, Path(__file__).parents[2] / "experiments" / "quickstart.yaml")
    p = EndpointPool(
        config.models, {"smollm2": FailingModel(ProviderUnavailable("no weights here"))}, sleep=lambda s: None
    )
    assert p.chain("smollm2") == ["smollm2", "extractive"]
    request = GenerationRequest(
        question="Who was granted Normandy?",
        chunks=(Chunk(chunk_id="1", doc_id="d", text="Rollo was granted Normandy in 911.", start=0, end=34),),
    )
    completion, [call] = p.complete("smollm2", request)
    assert completion.text == "Rollo was granted Normandy in 911."
    assert (call.endpoint, call.model, call.fallback_from, call.attempts) == ("extractive", "extractive", "smollm2", 1)


def rate_limited(after: float) -> RateLimited:
    exc = RateLimited("HTTP 429")
    exc.retry_after = after  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("primary", "settings"),
    [
        (SlowModel(delay_s=30), {"timeout_s": 0.05}),
        (FailingModel(ProviderUnavailable), {}),  # retries exhausted
        (FailingModel(ProviderRejected("HTTP 400")), {}),
        (FailingModel(ProviderError), {"breaker": {"window": 1, "min_calls": 1}}),  # open after one
        (ScriptedModel([rate_limited(60.0)], repeat_last=True), {}),  # asks for a wait beyond the cap
    ],
)
async def test_every_answer_not_from_the_primary_is_marked_degraded(primary, settings):
    p = pool({"a": endpoint(fallbacks=["b"], **settings), "b": endpoint()}, {"a": primary, "b": ScriptedModel(["b"])})
    for _ in range(2):  # the second call meets the open breaker in the breaker case
        p._models["b"] = ScriptedModel(["b"])
        completion, [call] = await p.acomplete("a", REQ)
        assert (completion.text, call.endpoint, call.fallback_from) == ("b", "b", "a")


async def test_a_primary_answer_after_retries_is_not_degraded():
    slept: list[float] = []

    async def asleep(s: float) -> None:
        slept.append(s)

    primary = ScriptedModel([rate_limited(0.75), "a"])
    p = pool({"a": endpoint(fallbacks=["b"]), "b": endpoint()}, {"a": primary, "b": ScriptedModel([])}, asleep=asleep)
    completion, [call] = await p.acomplete("a", REQ)
    assert (completion.text, call.attempts, call.fallback_from) == ("a", 2, None)
    assert slept == [0.75]  # the server's Retry-After, not the configured zero backoff


def test_chain_replaces_the_endpoints_tried():
    skipped = ScriptedModel([])
    p = pool(
        {"a": endpoint(fallbacks=["b", "c"]), "b": endpoint(), "c": endpoint()},
        {"a": FailingModel(ProviderUnavailable), "b": skipped, "c": ScriptedModel(["c"])},
    )
    _, [call] = p.complete("a", REQ, chain=["a", "c"])
    assert (call.endpoint, call.fallback_from, skipped.calls) == ("c", "a", 0)
    with pytest.raises(ConfigError, match="unknown model endpoint 'zzz'"):
        p.complete("a", REQ, chain=["a", "zzz"])


class Closable(ExtractiveModel):
    def __init__(self, config: ExtractiveEndpoint) -> None:
        super().__init__(config)
        self.closed = self.aclosed = 0

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.aclosed += 1


async def test_close_closes_built_models_once_and_leaves_overrides_alone():
    registry = provider_registry()
    registry.add("extractive", Closable)
    override = Closable(endpoint())
    p = pool({"a": endpoint(), "b": endpoint()}, {"b": override}, registry=registry)
    built = p.model("a")
    await p.aclose()
    p.close()
    assert (built.aclosed, built.closed) == (1, 1)
    assert (override.aclosed, override.closed) == (0, 0)
    assert p.model("a") is not built  # used again after close: built afresh
    p.close()
