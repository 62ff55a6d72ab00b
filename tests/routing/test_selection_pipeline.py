"""Model selection inside a real pipeline: the choice and its reason land in the state, pick
the generator that answers (so it changes the downstream cache key), and a config without a
selection builds and caches exactly as before. A reply route answers without a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import write_config
from workbench.core.stage import MemoryStageCache, Pipeline
from workbench.core.state import RequestState
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder

SHORT = "Who won the war?"
LONG = "Which of the many different people that were named in these old stories built the very first bridge?"
# Strong at 8 words or more: SHORT goes to the weak model, LONG to the strong one.
COMPLEXITY = {"weights": {"query_words": 1.0}, "bias": -7.5, "threshold": 0.5}
MODELS = {
    "extractive": {"provider": "extractive", "min_support": 0.25},
    "weak": {"provider": "extractive", "min_support": 0.0},
    "strong": {"provider": "extractive", "min_support": 0.0, "max_sentences": 2, "cost": {"input_per_1k": 1.0}},
}


def _workbench(tmp_path: Path, corpus: Path, cache: MemoryStageCache, general: dict[str, Any]) -> Workbench:
    routing = {
        "default": "general",
        "threshold": 0.5,
        "routes": {
            "general": general,
            "refuse": {
                "utterances": ["book me a flight to paris"],
                "reply": "Sorry, I only answer document questions.",
            },
        },
    }
    path = write_config(tmp_path, corpus, models=MODELS, routing=routing, guardrails={})
    wb = Workbench.from_yaml(path, embedder=HashingEmbedder(256), cache=cache, root=tmp_path)
    wb.ingest()
    return wb


@pytest.fixture
def corpus(small_dataset: Path) -> Path:
    return small_dataset / "corpus.jsonl"


def _generator_cached(state: RequestState) -> bool:
    [timing] = [t for t in state.timings if t.stage == "generator"]
    return timing.cached


def test_the_choice_and_reason_are_in_the_state_and_pick_the_model(tmp_path: Path, corpus: Path) -> None:
    selection = {"policy": "complexity", "models": ["weak", "strong"], "complexity": COMPLEXITY}
    with _workbench(tmp_path, corpus, MemoryStageCache(), {"selection": selection}) as wb:
        short, long = wb.ask(SHORT), wb.ask(LONG)
    assert short.model_choice is not None and long.model_choice is not None
    assert (short.model_choice.model, long.model_choice.model) == ("weak", "strong")
    assert short.model_choice.policy == "complexity" and "weak" in short.model_choice.reason
    assert long.model_choice.complexity is not None and long.model_choice.complexity >= 0.5
    assert [c.endpoint for c in short.calls] == ["weak"] and [c.endpoint for c in long.calls] == ["strong"]
    assert long.cost > 0 and short.cost == 0


def test_the_decision_is_part_of_the_downstream_cache_key(tmp_path: Path, corpus: Path) -> None:
    cache = MemoryStageCache()
    weak_first = {"policy": "complexity", "models": ["weak", "strong"], "complexity": COMPLEXITY}
    with _workbench(tmp_path, corpus, cache, {"selection": weak_first}) as wb:
        first = wb.ask(SHORT)
        again = wb.ask(SHORT)
    assert not _generator_cached(first) and _generator_cached(again) and again.answer == first.answer
    # Same question, same retrieval, a policy that now picks the strong model: no stale hit.
    always_strong = weak_first | {"complexity": COMPLEXITY | {"threshold": 0.0}}
    with _workbench(tmp_path, corpus, cache, {"selection": always_strong}) as wb:
        strong = wb.ask(SHORT)
    assert strong.model_choice is not None and strong.model_choice.model == "strong"
    assert not _generator_cached(strong) and [c.endpoint for c in strong.calls] == ["strong"]


def test_no_selection_builds_and_caches_as_before(tmp_path: Path, corpus: Path) -> None:
    cache = MemoryStageCache()
    with _workbench(tmp_path, corpus, cache, {}) as wb:
        plain = wb.ask(SHORT)
        route = wb.pipeline.stages[2].routes["general"]  # type: ignore[attr-defined]
        assert isinstance(route, Pipeline)
        assert [s.kind for s in route.stages] == ["retriever", "reranker", "generator"]
    assert plain.model_choice is None and not _generator_cached(plain)
    # An explicit fixed selection of the same model reuses that answer: the generator's key is the same.
    with _workbench(tmp_path, corpus, cache, {"selection": {"models": ["extractive"]}}) as wb:
        fixed = wb.ask(SHORT)
    assert fixed.model_choice is not None and fixed.model_choice.policy == "fixed"
    assert _generator_cached(fixed) and fixed.answer == plain.answer


def test_a_reply_route_answers_without_a_model(tmp_path: Path, corpus: Path) -> None:
    with _workbench(tmp_path, corpus, MemoryStageCache(), {}) as wb:
        state = wb.ask("book me a flight to paris")
    assert state.route == "refuse" and state.answer == "Sorry, I only answer document questions."
    assert state.calls == () and state.chunks == ()


def test_reply_routes_and_selection_models_are_validated(tmp_path: Path, corpus: Path) -> None:
    from workbench.core.config import load_yaml
    from workbench.core.errors import ConfigError
    from workbench.core.schema import PipelineConfig

    for general, message in (
        ({"selection": {"models": ["nope"]}}, "unknown model 'nope' in routing.routes.general.selection.models"),
        ({"reply": "no", "model": "weak"}, "a reply route calls no model"),
    ):
        data = yaml.safe_load(write_config(tmp_path, corpus, models=MODELS).read_text())
        data["routing"] = {"default": "general", "routes": {"general": general}}
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError, match=message):
            load_yaml(PipelineConfig, path)


def test_a_tool_route_selects_the_model_that_writes_the_arguments(tmp_path: Path, corpus: Path) -> None:
    from workbench.testing.models import ScriptedModel

    models = MODELS | {"cheap_args": {"provider": "extractive"}, "dear_args": {"provider": "extractive"}}
    card = {"models": {"cheap_args": {"p95_ms": 50}, "dear_args": {"p95_ms": 900}}}
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(card))
    selection = {"policy": "latency_budget", "models": ["dear_args", "cheap_args"], "card": "card.yaml", "p95_ms": 100}
    calc = {"utterances": ["compute 12 times 7"], "tool": {"tool": "calculator"}, "selection": selection}
    routing = {"default": "general", "threshold": 0.5, "routes": {"general": {}, "calc": calc}}
    path = write_config(tmp_path, corpus, models=models, routing=routing, guardrails={})
    cheap, dear = ScriptedModel(['{"expression": "12 * 7"}']), ScriptedModel([])
    overrides = {"cheap_args": cheap, "dear_args": dear}
    with Workbench.from_yaml(path, embedder=HashingEmbedder(256), models=overrides, root=tmp_path, cache=None) as wb:
        state = wb.ask("compute 12 times 7")
    assert state.route == "calc" and state.answer == "84"
    assert state.model_choice is not None and state.model_choice.model == "cheap_args"
    assert "p95 <= 100 ms" in state.model_choice.reason
    assert len(cheap.requests) == 1 and dear.requests == []


async def test_the_choice_reaches_run_rows_and_served_responses(tmp_path: Path, small_dataset: Path) -> None:
    from tests.serve.conftest import serving
    from workbench.serve.app import create_app
    from workbench.serve.service import ServedPipeline

    selection = {"policy": "complexity", "models": ["weak", "strong"], "complexity": COMPLEXITY}
    wb = _workbench(tmp_path, small_dataset / "corpus.jsonl", MemoryStageCache(), {"selection": selection})
    frame = wb.run(small_dataset, limit=6, log=False).frame
    answered = frame[frame["route"] == "general"]
    assert len(answered) > 0 and set(answered["model_choice"]) <= {"weak", "strong"}
    long_questions = answered["question"].str.split().str.len() >= 8
    assert (answered.loc[long_questions, "model_choice"] == "strong").all()
    assert (answered.loc[~long_questions, "model_choice"] == "weak").all()
    assert answered["choice_reason"].str.len().gt(0).all() and answered["complexity"].notna().all()
    served = ServedPipeline.from_workbench(wb, log_dir=tmp_path / "requests", close_session=True)
    async with serving(create_app(served)) as client:
        reply = await client.post("/v1/ask", json={"question": LONG})
    assert reply.status_code == 200, reply.text
    choice = reply.json()["model_choice"]
    assert choice["model"] == "strong" and choice["policy"] == "complexity" and choice["complexity"] >= 0.5
