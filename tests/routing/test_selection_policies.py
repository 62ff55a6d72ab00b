"""Each selection policy picks the expected candidate from a model card, and bad cards or
unknown policies are one-line typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workbench.core.errors import ConfigError
from workbench.core.schema import ComplexityConfig, SelectionConfig
from workbench.core.state import Chunk, RequestState
from workbench.routing import ModelSelector, complexity_score, fit_complexity, request_features

CARD = {
    "models": {
        "tiny": {"cost_per_1k": 0.0, "p50_ms": 4, "p95_ms": 9, "quality": {"factual": 0.40}},
        "small": {"cost_per_1k": 0.5, "p50_ms": 900, "p95_ms": 1500, "quality": {"factual": 0.41}},
        "large": {"cost_per_1k": 2.0, "p50_ms": 2500, "p95_ms": 4000, "quality": {"factual": 0.60}},
    }
}
MODELS = ["tiny", "small", "large"]


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(CARD))
    return path


def _pick(card: Path, query: str = "who built it", chunks: tuple[Chunk, ...] = (), **selection: object) -> str:
    config = SelectionConfig.model_validate({"models": MODELS, "card": card.name, **selection})
    selector = ModelSelector(config, "factual", costs={}, root=card.parent)
    choice = selector.run(RequestState(query=query, route="factual", chunks=chunks)).model_choice
    assert choice is not None and choice.policy == config.policy and choice.reason
    return choice.model


def test_fixed_picks_the_first_candidate(card: Path) -> None:
    assert _pick(card) == "tiny"
    assert _pick(card, policy="fixed", models=["large", "tiny"]) == "large"


def test_cheapest_within_delta_of_the_best(card: Path) -> None:
    assert _pick(card, policy="cheapest_within", quality_delta=0.02) == "large"
    assert _pick(card, policy="cheapest_within", quality_delta=0.25) == "tiny"
    # Only the measured candidates compete: without large, tiny is within 0.02 of small.
    assert _pick(card, policy="cheapest_within", models=["small", "tiny"]) == "tiny"


def test_latency_budget_cheapest_or_best_or_fastest(card: Path) -> None:
    assert _pick(card, policy="latency_budget", p95_ms=2000) == "tiny"
    assert _pick(card, policy="latency_budget", p95_ms=2000, prefer="best") == "small"
    assert _pick(card, policy="latency_budget", p95_ms=5000, prefer="best") == "large"
    assert _pick(card, policy="latency_budget", p95_ms=1, models=["large", "small"]) == "small"  # none fits: fastest


def test_inline_figures_override_the_card(card: Path) -> None:
    figures = {"tiny": {"quality": {"factual": 0.1}}, "large": {"cost_per_1k": 0.0}}
    assert _pick(card, policy="cheapest_within", quality_delta=0.02, figures=figures) == "large"


def test_complexity_sends_long_questions_with_unclear_retrieval_to_the_strong_model(card: Path) -> None:
    complexity = {"weights": {"query_words": 1.0, "margin": -20.0}, "bias": -8.0, "threshold": 0.5}
    short = "who built it"
    long = "which of the three architects that were named in the report designed the northern bridge"
    clear = (_chunk(0.9), _chunk(0.3))
    assert _pick(card, short, clear, policy="complexity", complexity=complexity) == "tiny"
    assert _pick(card, long, (_chunk(0.5), _chunk(0.49)), policy="complexity", complexity=complexity) == "large"
    assert _pick(card, long, clear, policy="complexity", complexity=complexity) == "tiny"  # margin 0.6 outweighs


def _chunk(score: float) -> Chunk:
    return Chunk(chunk_id=f"c{score}", doc_id="d", text="t", start=0, end=1, score=score)


def test_complexity_features_and_fit_recover_a_rule() -> None:
    assert request_features("a b c", (_chunk(0.8), _chunk(0.5))) == pytest.approx(
        {"query_words": 3.0, "top_score": 0.8, "margin": 0.3}
    )
    assert request_features("a", ()) == {"query_words": 1.0, "top_score": 0.0, "margin": 0.0}
    rows = [{"query_words": float(n), "top_score": 0.5, "margin": 0.1} for n in range(2, 30)]
    fitted = fit_complexity(rows, [row["query_words"] > 15 for row in rows])
    predicted = [complexity_score(fitted, row) >= 0.5 for row in rows]
    assert sum(p == (row["query_words"] > 15) for p, row in zip(predicted, rows, strict=True)) >= len(rows) - 2
    with pytest.raises(ConfigError, match="both labels"):
        fit_complexity(rows, [True] * len(rows))
    assert complexity_score(ComplexityConfig(weights={"margin": 1.0}), {"margin": 0.0}) == 0.5


@pytest.mark.parametrize(
    ("selection", "card_text", "message"),
    [
        (
            {"policy": "cheapest_on_tuesdays"},
            None,
            r"unknown selection policy 'cheapest_on_tuesdays'; valid: cheapest_within, ",
        ),
        ({"policy": "latency_budget"}, None, r"policy 'latency_budget' needs 'p95_ms'"),
        ({"policy": "cheapest_within"}, "models: {tiny: {cost_per_1k: 0}}", r"needs quality for route 'factual'"),
        ({"policy": "complexity"}, None, r"complexity: no weights"),
        ({}, "models: {tiny: {latency: 3}}", r"card\.yaml: unknown key 'models\.tiny\.latency'"),
        ({}, "models: {tiny: {cost_per_1k: -1}}", r"card\.yaml: invalid value .*'models\.tiny\.cost_per_1k'"),
        ({}, "models: [tiny", r"card\.yaml: not valid YAML"),
        ({"card": "missing.yaml"}, None, r"missing\.yaml: config file not found"),
    ],
)
def test_bad_selection_is_one_typed_line(tmp_path: Path, selection: dict, card_text: str | None, message: str) -> None:
    if card_text is not None:
        (tmp_path / "card.yaml").write_text(card_text)
        selection = {"card": "card.yaml", **selection}
    config = SelectionConfig.model_validate({"models": ["tiny"], **selection})
    with pytest.raises(ConfigError, match=message) as err:
        ModelSelector(config, "factual", costs={}, root=tmp_path)
    assert "\n" not in str(err.value)
