import pytest

from workbench.core.errors import ConfigError
from workbench.core.schema import ExtractiveEndpoint, PromptTemplate
from workbench.core.stage import MemoryStageCache, Pipeline
from workbench.core.state import Chunk, RequestState
from workbench.models import EndpointPool, GeneratorConfig, GeneratorStage
from workbench.models.generator import render_context, says_unknown
from workbench.testing.models import FunctionModel, ScriptedModel

PROMPT = PromptTemplate(system="Be brief.", template="Context:\n{context}\n\nQ: {question}\nA:")
CHUNKS = (
    Chunk(chunk_id="1", doc_id="d", text="Rollo was the first ruler of Normandy.", start=0, end=38),
    Chunk(chunk_id="2", doc_id="d", text="Normandy   is in\nFrance.", start=39, end=62),
)
STATE = RequestState(query="Who ruled Normandy?", chunks=CHUNKS, route="general")


def stage(model=None, *, params=None, **cfg) -> GeneratorStage:
    endpoints = {"gen": ExtractiveEndpoint(provider="extractive", params=params or {})}
    pool = EndpointPool(endpoints, {"gen": model or ScriptedModel(["Rollo."], repeat_last=True)})
    return GeneratorStage(GeneratorConfig(endpoint="gen", prompt=PROMPT, **cfg), pool)


def test_renders_numbered_context_and_messages():
    model = FunctionModel(lambda r: "Rollo.")
    out = stage(model).run(STATE)
    [request] = model.requests
    assert request.messages[0] == {"role": "system", "content": "Be brief."}
    expected = (
        "Context:\n[1] Rollo was the first ruler of Normandy.\n\n[2] Normandy is in France."
        "\n\nQ: Who ruled Normandy?\nA:"
    )
    assert request.messages[1] == {"role": "user", "content": expected}
    assert request.json_schema is None and request.chunks == CHUNKS
    assert out.prompt == expected
    assert (out.answer, out.abstained) == ("Rollo.", False)
    assert len(out.calls) == 1 and out.calls[0].endpoint == "gen"
    assert STATE.answer is None  # input state untouched


def test_context_is_cut_to_max_chars():
    text = render_context(CHUNKS, max_chars=50)
    assert len(text) <= 50
    assert text.startswith("[1] Rollo was the first ruler of Normandy.\n\n[2] N")
    assert render_context(CHUNKS, max_chars=10) == "[1] Rollo"


def test_json_route_passes_the_schema():
    schema = {"type": "object", "required": ["answer"]}
    model = FunctionModel(lambda r: '{"answer": "Rollo"}')
    stage(model, output="json", json_schema=schema).run(STATE)
    assert model.requests[0].json_schema == schema
    assert model.requests[0].params == {"stop": None}  # a newline stop would cut the JSON


def test_text_route_keeps_the_endpoint_stop():
    model = FunctionModel(lambda r: "Rollo")
    stage(model, params={"stop": ["\n"]}).run(STATE)
    assert model.requests[0].params == {} and model.requests[0].json_schema is None


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("I don't know", True),
        ("I do not know.", True),
        ("i don\u2019t know", True),
        ("Rollo", False),
        ("The context does not mention it.", True),
        ("Known as Rollo", False),
    ],
)
def test_says_unknown(text, unknown):
    assert says_unknown(text) is unknown


def test_abstains_when_the_answer_says_it_does_not_know():
    out = stage(ScriptedModel(["I don't know."])).run(STATE)
    assert out.abstained and out.answer == "I don't know."


def test_bad_template_is_a_config_error():
    bad = PromptTemplate(template="{context} {question} {other}")
    pool = EndpointPool({"gen": ExtractiveEndpoint(provider="extractive")})
    with pytest.raises(ConfigError, match="cannot be rendered"):
        GeneratorStage(GeneratorConfig(endpoint="gen", prompt=bad), pool).run(STATE)


def test_cache_key_changes_with_model_params_and_inputs():
    base = stage(params={"temperature": 0.0}).cache_key(STATE)
    assert base == stage(params={"temperature": 0.0}).cache_key(STATE)
    assert base != stage(params={"temperature": 0.7}).cache_key(STATE)
    assert base != stage(params={"temperature": 0.0}).cache_key(STATE.model_copy(update={"route": "structured"}))
    assert base != stage(params={"temperature": 0.0}, max_context_chars=100).cache_key(STATE)


def test_pipeline_cache_reuses_generation():
    model = ScriptedModel(["Rollo."])
    cache = MemoryStageCache()
    pipeline = Pipeline([stage(model)], cache=cache)
    first = pipeline.run(STATE)
    second = pipeline.run(STATE)
    assert model.calls == 1 and cache.hits == 1
    assert (second.answer, second.calls) == (first.answer, first.calls)


async def test_async_run_uses_the_async_pool():
    out = await stage(ScriptedModel(["Rollo."])).arun(STATE)
    assert out.answer == "Rollo."
